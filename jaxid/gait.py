"""``jaxid.gait`` moved to :mod:`jaxid.walker.gait`.

This alias keeps the old import path working for code, notebooks and pickled objects that
name it: ``jaxid.gait`` is the module ``jaxid.walker.gait`` itself.
"""

import sys

from .walker import gait as _moved

sys.modules[__name__] = _moved
