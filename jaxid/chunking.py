"""``jaxid.chunking`` moved to :mod:`jaxid.simulate.chunking`.

This alias keeps the old import path working for code, notebooks and pickled objects that
name it: ``jaxid.chunking`` is the module ``jaxid.simulate.chunking`` itself.
"""

import sys

from .simulate import chunking as _moved

sys.modules[__name__] = _moved
