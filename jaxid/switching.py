"""``jaxid.switching`` moved to :mod:`jaxid.simulate.events`.

This alias keeps the old import path working for code, notebooks and pickled objects that
name it: ``jaxid.switching`` is the module ``jaxid.simulate.events`` itself.
"""

import sys

from .simulate import events as _moved

sys.modules[__name__] = _moved
