"""The run-time type checker of the test suite (installed on jaxid by ``tests/conftest.py``).

Every annotated function of jaxid is wrapped by jaxtyping with this checker: beartype with the
numeric tower of PEP 484 (an ``int`` is accepted where a signature says ``float``, as static
checkers accept it), and jaxtyping's shape checks on every annotated array. Inside
``pytest.raises`` blocks the checks are off (``tests/conftest.py`` switches them): those blocks
test jaxid's own errors for bad input, which a type violation would otherwise pre-empt.
"""

import functools

from beartype import BeartypeConf, beartype

_beartype = beartype(conf=BeartypeConf(is_pep484_tower=True))
enabled = True


def typechecker(fn):
    checked = _beartype(fn)
    if checked is fn:
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return (checked if enabled else fn)(*args, **kwargs)

    return wrapper
