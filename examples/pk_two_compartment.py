r"""A two-compartment pharmacokinetic model written as a jaxid user model.

An intravenous bolus ``dose`` into the central compartment (volume ``V1``), exchange with a
peripheral compartment (volume ``V2``) at inter-compartmental clearance ``Q``, elimination from
the central compartment at clearance ``CL``. With amounts ``x1``, ``x2``:

.. math::
    \dot x_1 = -\frac{CL + Q}{V_1} x_1 + \frac{Q}{V_2} x_2, \qquad
    \dot x_2 = \frac{Q}{V_1} x_1 - \frac{Q}{V_2} x_2,

observed as the plasma concentration ``conc = x1 / V1`` (and, if measured, the peripheral
concentration ``conc2 = x2 / V2``). All four parameters are identifiable from the plasma curve
(a bi-exponential with four free constants, given the dose).

Run its study from the repository root with
``PYTHONPATH=examples jaxid study examples/pk_two_compartment.toml`` (the module must be importable
for the configuration's ``pk_two_compartment:TwoCompartment``).
"""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxid.models import AbstractModel
from jaxid.models.base import as_param

Scalar = Float[Array, "*batch"]


class TwoCompartment(AbstractModel):
    """Two-compartment pharmacokinetics: ``CL`` [L/h], ``V1`` [L], ``Q`` [L/h], ``V2`` [L]."""

    CL: Scalar = eqx.field(converter=as_param)
    V1: Scalar = eqx.field(converter=as_param)
    Q: Scalar = eqx.field(converter=as_param)
    V2: Scalar = eqx.field(converter=as_param)

    param_names: ClassVar = ("CL", "V1", "Q", "V2")
    param_units: ClassVar = ("L/h", "L", "L/h", "L")
    default_priors: ClassVar = {"CL": (1.0, 10.0), "V1": (5.0, 50.0), "Q": (1.0, 20.0), "V2": (10.0, 100.0)}
    positive_params: ClassVar = frozenset({"CL", "V1", "Q", "V2"})

    @property
    def state_names(self):
        return ("x1", "x2")

    @property
    def obs_names(self):
        return ("conc", "conc2")

    def vector_field(self, t, y):
        c1, c2 = y[0] / self.V1, y[1] / self.V2
        flow = self.Q * (c1 - c2)
        return jnp.stack([-self.CL * c1 - flow, flow])

    def observe(self, t, y):
        return jnp.stack([y[0] / self.V1, y[1] / self.V2])
