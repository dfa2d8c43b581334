"""User models for the study tests, loaded by ``module:Name`` (the tests folder is on sys.path)."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from jaxid.models import AbstractModel
from jaxid.models.base import as_param

TIMES = jnp.linspace(0.0, 2.0, 21)


def scaled_decay(theta):
    """``a b exp(-c t)`` at 21 times: only ``a b`` and ``c`` are identifiable."""
    a, b, c = theta[0], theta[1], theta[2]
    return a * b * jnp.exp(-c * TIMES)


class Elimination(AbstractModel):
    """One compartment: ``dx/dt = -k x``, observed concentration ``x / V``."""

    k: jnp.ndarray = eqx.field(converter=as_param)
    V: jnp.ndarray = eqx.field(converter=as_param)

    param_names: ClassVar = ("k", "V")
    param_units: ClassVar = ("1/h", "L")
    default_priors: ClassVar = {"k": (0.1, 1.0), "V": (1.0, 10.0)}
    positive_params: ClassVar = frozenset({"k", "V"})

    @property
    def state_names(self):
        return ("x",)

    @property
    def obs_names(self):
        return ("conc",)

    def vector_field(self, t, y):
        return -self.k * y

    def observe(self, t, y):
        return y / self.V


not_a_model = 3.0


def concentration_start(model):
    """An initial amount ``2 V``: the concentration starts at 2 whatever ``V``, which then leaves
    the record (a start that is a function of the parameters)."""
    return jnp.reshape(2.0 * model.V, (1,))


def decay_with_a_hole(theta):
    """``a exp(-c t)``, undefined (NaN) for ``a > 1.9``: a model that fails in part of its prior."""
    a, c = theta[0], theta[1]
    return jnp.where(a > 1.9, jnp.nan, a * jnp.exp(-c * TIMES))
