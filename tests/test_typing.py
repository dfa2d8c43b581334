"""The shared array types of jaxid.typing: their shapes, and the public signatures that use them."""

from __future__ import annotations

import typing

import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid import typing as jt
from jaxid.identify import Experiment, fisher


@pytest.mark.parametrize(
    ("alias", "good", "bad"),
    [
        (jt.ParamVector, (4,), (2, 4)),
        (jt.ParamBatch, (3, 2, 4), ()),
        (jt.StateVector, (2,), (1, 2)),
        (jt.StateBatch, (5, 2), (2,)),
        (jt.TimeGrid, (7,), (7, 1)),
        (jt.Observations, (5, 7, 3), (3,)),
    ],
)
def test_aliases_accept_their_shape_only(alias, good, bad):
    from beartype.door import is_bearable

    assert is_bearable(jnp.zeros(good), alias)
    assert is_bearable(np.zeros(good), alias)  # array-like inputs: NumPy too
    assert not is_bearable(jnp.zeros(bad), alias)
    assert not is_bearable(jnp.zeros(good, dtype=jnp.int32), alias)  # float arrays only


def test_real_scalar_takes_numbers_and_zero_d_arrays_only():
    from beartype.door import is_bearable

    for good in (2, 1.5, np.float64(0.5), jnp.array(3.0), jnp.array(3)):
        assert is_bearable(good, jt.RealScalar), good
    for bad in (jnp.zeros(2), "1.0", None, 1j):
        assert not is_bearable(bad, jt.RealScalar), bad


def test_public_signatures_resolve_to_the_shared_aliases():
    # The annotations are strings (postponed evaluation): they must resolve, to the aliases.
    hints = typing.get_type_hints(jaxid.simulate)
    assert hints["y0"] is jt.StateVector and hints["ts"] is jt.TimeGrid
    assert typing.get_type_hints(jaxid.simulate_batch)["ts"] is jt.TimeGrid
    assert typing.get_type_hints(fisher.sensitivities)["theta"] is jt.ParamBatch
    assert typing.get_type_hints(Experiment.value_and_jacobian)["theta"] is jt.ParamBatch


def _public_functions():
    """Every public function and method of jaxid (the names in each module's ``__all__``)."""
    import inspect

    from public_api import all_modules, exported

    for qualname, obj in exported(all_modules()).items():
        if inspect.isfunction(obj):
            yield qualname, obj
        elif inspect.isclass(obj) and obj.__module__.startswith("jaxid"):
            for attr, value in vars(obj).items():
                public = not attr.startswith("_") or attr in ("__init__", "__call__")
                if public and inspect.isfunction(value):
                    yield f"{qualname}.{attr}", value


def test_every_public_signature_is_annotated():
    import inspect

    missing = []
    for qualname, fn in _public_functions():
        sig = inspect.signature(fn)
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        for name, p in sig.parameters.items():
            if name not in ("self", "cls") and p.kind not in skip and p.annotation is p.empty:
                missing.append(f"{qualname}({name})")
        if fn.__name__ != "__init__" and sig.return_annotation is sig.empty:
            missing.append(f"{qualname} -> ?")
    assert not missing, "unannotated: " + ", ".join(missing)


def test_signatures_are_checked_at_run_time():
    # The suite runs with jaxtyping's import hook (tests/conftest.py): a wrong shape or type in a
    # public call is an error before jaxid's own code runs. (Not inside pytest.raises, which
    # switches the checks off.)
    from jaxtyping import TypeCheckError

    model = jaxid.Pendulum(m=1.0, L=1.5, b=0.2)
    good = dict(y0=jnp.array([0.1, 0.0]), ts=jnp.linspace(0.0, 1.0, 3))
    caught = []
    for bad in (dict(ts=jnp.zeros((3, 2))), dict(y0=jnp.zeros((2, 2))), dict(rtol="1e-6")):
        try:
            jaxid.simulate(model, **(good | bad))
        except TypeCheckError as e:
            caught.append(str(e))
    assert len(caught) == 3, caught
