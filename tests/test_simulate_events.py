"""The event-switching engine (jaxid.simulate.events) on switching models with closed-form answers:
status codes and their messages, event times and post-event states, derivatives of event times."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid import Walker
from jaxid.models.base import (
    BASE_STATUS_NAMES,
    STATUS_ITERATION_LIMIT,
    STATUS_NONFINITE,
    STATUS_OK,
    STATUS_TIMEOUT,
    Status,
    status_code,
)
from jaxid.walker.model import FALL, FLIGHT, FRONT_LIFTOFF, STALL, STATUS_NAMES, WalkerStatus

# ------------------------------------------------------------------ status codes


def test_base_status_codes_keep_their_int_values_and_have_messages():
    # The int codes are stored in data sets: they must not move.
    assert (STATUS_OK, STATUS_ITERATION_LIMIT, STATUS_TIMEOUT, STATUS_NONFINITE) == (0, 1, 2, 3)
    items = (Status.ok, Status.iteration_limit, Status.phase_timeout, Status.nonfinite_state)
    assert [status_code(i) for i in items] == [0, 1, 2, 3]
    assert len(Status) == len(BASE_STATUS_NAMES) == 4
    assert "max_steps" in Status[Status.iteration_limit]
    assert "max_phase_time" in Status[Status.phase_timeout]
    assert "NaN" in Status[Status.nonfinite_state]


def test_walker_status_extends_the_base_codes():
    # The subclass keeps the base codes and numbers its own after them, in STATUS_NAMES's order.
    assert (FALL, STALL, FLIGHT, FRONT_LIFTOFF) == (4, 5, 6, 7)
    assert len(WalkerStatus) == len(STATUS_NAMES) == len(Walker.status_names)
    assert status_code(WalkerStatus.ok) == STATUS_OK
    assert status_code(WalkerStatus.promote(Status.phase_timeout)) == STATUS_TIMEOUT
    for code, name in enumerate(STATUS_NAMES[len(BASE_STATUS_NAMES) :], start=len(BASE_STATUS_NAMES)):
        assert Walker.status_message(code).startswith(name + ":"), (code, name)
    assert Walker.status_message(STATUS_NONFINITE) == Status[Status.nonfinite_state]
    with pytest.raises(ValueError, match="not a status code of WalkerStatus"):
        Walker.status_message(8)
    with pytest.raises(TypeError, match="expected an item of a Status enumeration"):
        status_code(3)


def test_status_item_compares_with_the_members():
    codes = jnp.asarray([STATUS_OK, FALL, STALL])
    items = Walker.status_item(codes)
    np.testing.assert_array_equal(items == WalkerStatus.fall, [False, True, False])
    np.testing.assert_array_equal(jax.jit(Walker.status_item)(codes) == WalkerStatus.ok, [True, False, False])


def test_throw_raises_the_failure_message():
    w = Walker(m=80.0, k=2000.0, l0=1.0)  # the legs cannot carry the weight: a fall
    y0, ts = w.initial_state(0.9782, 1.09), jnp.linspace(0.0, 3.0, 4)
    sim = jaxid.simulate(w, y0, ts)
    assert int(sim.status) == FALL
    with pytest.raises(Exception, match="fall: the centre of mass dropped"):
        jaxid.simulate(w, y0, ts, throw=True)


def test_inconsistent_status_tables_are_refused():
    class Bad(Walker):
        status_names = (*STATUS_NAMES, "extra")

    w = Bad(m=80.0, k=20000.0, l0=1.0)
    with pytest.raises(ValueError, match=r"status_names has 9 names but Bad\.status_enum"):
        jaxid.simulate(w, w.initial_state(0.9782, 1.09), jnp.linspace(0.0, 1.0, 3))
