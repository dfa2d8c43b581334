"""``jaxid.gait_store`` moved to :mod:`jaxid.walker.store`.

This alias keeps the old import path working for code, notebooks and pickled objects that
name it: ``jaxid.gait_store`` is the module ``jaxid.walker.store`` itself.
"""

import sys

from .walker import store as _moved

sys.modules[__name__] = _moved
