"""``jaxid.store`` moved to :mod:`jaxid.data.store`.

This alias keeps the old import path working for code, notebooks and pickled objects that
name it: ``jaxid.store`` is the module ``jaxid.data.store`` itself.
"""

import sys

from .data import store as _moved

sys.modules[__name__] = _moved
