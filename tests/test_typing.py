"""The shared array types of jaxid.typing: their shapes, and the public signatures that use them."""

from __future__ import annotations

import typing

import jax.numpy as jnp
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
    assert isinstance(jnp.zeros(good), alias)
    assert not isinstance(jnp.zeros(bad), alias)
    assert not isinstance(jnp.zeros(good, dtype=jnp.int32), alias)  # float arrays only


def test_public_signatures_resolve_to_the_shared_aliases():
    # The annotations are strings (postponed evaluation): they must resolve, to the aliases.
    hints = typing.get_type_hints(jaxid.simulate)
    assert hints["y0"] is jt.StateVector and hints["ts"] is jt.TimeGrid
    assert typing.get_type_hints(jaxid.simulate_batch)["ts"] is jt.TimeGrid
    assert typing.get_type_hints(fisher.sensitivities)["theta"] is jt.ParamBatch
    assert typing.get_type_hints(Experiment.value_and_jacobian)["theta"] is jt.ParamBatch
