"""``jaxid.models.walking`` moved to :mod:`jaxid.walker.model`.

This alias keeps the old import path working for code, notebooks and pickled objects that
name it: ``jaxid.models.walking`` is the module ``jaxid.walker.model`` itself.
"""

import sys

from ..walker import model as _moved

sys.modules[__name__] = _moved
