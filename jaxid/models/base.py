"""The abstract model every jaxid model derives from.

A model is an :class:`equinox.Module` that holds its physical parameters as array fields
(so :func:`jax.vmap`, :func:`jax.grad` and :func:`jax.jacfwd` reach them) and its options as
static fields. It declares:

* ``param_names`` / ``param_units``: the parameter fields, in a fixed order (the order of
  :attr:`AbstractModel.params`);
* ``default_priors``: a uniform range ``(low, high)`` for each parameter;
* ``positive_params`` / ``nonnegative_params``: the sign constraints checked on construction;
* :meth:`vector_field` (the right-hand side ``dy/dt = f(t, y)``), :meth:`observe` (the
  observation at one time) and :attr:`state_names` / :attr:`obs_names`.

Construction checks every parameter: finite, of the right sign, and all of one broadcastable
batch shape, raising a :class:`ValueError` that names the argument. The checks run on concrete
values; inside ``jit`` (tracers) only shapes are checked and failures surface as
``success=False`` in :func:`jaxid.simulate`.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..typing import Key, ParamBatch, RealScalar


def as_param(x) -> Array:
    """Convert a parameter (or state) value to a (strongly typed) floating JAX array.

    Python numbers and integer arrays become the default float dtype (float64 when x64 is
    enabled); floating arrays keep their dtype.
    """
    if isinstance(x, jax.core.Tracer):
        return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))
    arr = jnp.asarray(x)
    if jnp.issubdtype(arr.dtype, jnp.floating) and not getattr(arr, "weak_type", False):
        return arr
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"expected a real number or array, got dtype {arr.dtype}")
    return jnp.asarray(arr, dtype=jnp.result_type(float))


class _Unconverted:
    """A parameter value that is not a real number (a string, None, a bool, a complex number):
    kept as given so that the model's check can name the parameter in its error."""

    def __init__(self, value):
        self.value = value


def param_field(x):
    """The converter of model parameter fields: :func:`as_param`, except that a value which is not
    a real number is kept (wrapped) for :meth:`AbstractModel.__check_init__` to reject by name."""
    if isinstance(x, jax.core.Tracer):
        return as_param(x)
    if x is None or isinstance(x, (str, bytes, bool, np.bool_, complex)):
        return _Unconverted(x)
    try:
        arr = np.asarray(x)
    except Exception:
        return _Unconverted(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        return _Unconverted(x)
    return as_param(x)


def check_choice(model: str, name: str, value, choices) -> None:
    """Raise a ValueError naming ``name`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{model}: {name}={value!r} is not one of {sorted(choices)}")


class AbstractModel(eqx.Module):
    """A continuous-time model ``dy/dt = f(t, y; params)`` with an observation ``h(t, y)``."""

    param_names: ClassVar[tuple[str, ...]]
    param_units: ClassVar[tuple[str, ...]]
    default_priors: ClassVar[dict[str, tuple[float, float]]]
    positive_params: ClassVar[frozenset[str]] = frozenset()
    nonnegative_params: ClassVar[frozenset[str]] = frozenset()

    def __check_init__(self):
        name = type(self).__name__
        shapes = {}
        for p in self.param_names:
            value = getattr(self, p)
            if isinstance(value, _Unconverted):
                raise TypeError(
                    f"{name}: parameter {p!r} must be a real number or an array of real numbers "
                    f"[{self.unit_of(p)}], got {value.value!r} ({type(value.value).__name__})"
                )
            shapes[p] = jnp.shape(value)
            if isinstance(value, jax.core.Tracer):
                continue
            arr = np.asarray(value)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: parameter {p!r} must be finite, got {arr}")
            if p in self.positive_params and not np.all(arr > 0):
                raise ValueError(
                    f"{name}: parameter {p!r} must be > 0, got {arr} "
                    f"(unit {self.unit_of(p)}; a non-positive value has no physical meaning)"
                )
            if p in self.nonnegative_params and not np.all(arr >= 0):
                raise ValueError(f"{name}: parameter {p!r} must be >= 0, got {arr}")
        try:
            np.broadcast_shapes(*shapes.values())
        except ValueError:
            desc = ", ".join(f"{p}: {s}" for p, s in shapes.items())
            raise ValueError(
                f"{name}: parameter shapes do not broadcast to one batch shape ({desc}); "
                "give each parameter a scalar or an array of the same batch shape"
            ) from None

    def params_valid(self) -> Bool[Array, ""]:
        """Whether every parameter is finite and of the declared sign, as a boolean (array) that
        also works on traced values: :func:`jaxid.simulate` folds it into ``success``, so a model
        built inside ``jit`` with invalid parameters is reported as failed."""
        ok = jnp.asarray(True)
        for p in self.param_names:
            v = getattr(self, p)
            ok = ok & jnp.all(jnp.isfinite(v))
            if p in self.positive_params:
                ok = ok & jnp.all(v > 0)
            if p in self.nonnegative_params:
                ok = ok & jnp.all(v >= 0)
        return ok

    # ------------------------------------------------------------------ declared by models
    @property
    @abc.abstractmethod
    def state_names(self) -> tuple[str, ...]:
        """Names of the state components, in order."""

    @property
    @abc.abstractmethod
    def obs_names(self) -> tuple[str, ...]:
        """Names of the observation channels, in order."""

    @abc.abstractmethod
    def vector_field(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " state"]:
        """The right-hand side ``f(t, y)`` for one record (scalar parameters)."""

    @abc.abstractmethod
    def observe(self, t: RealScalar, y: Float[Array, " state"]) -> Float[Array, " channel"]:
        """The observation ``h(t, y)`` at one time for one record."""

    # ------------------------------------------------------------------ shared helpers
    @property
    def state_size(self) -> int:
        return len(self.state_names)

    @classmethod
    def unit_of(cls, name: str) -> str:
        return dict(zip(cls.param_names, cls.param_units, strict=True))[name]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The broadcast shape of the parameters: ``()`` for one record."""
        return np.broadcast_shapes(*(jnp.shape(getattr(self, p)) for p in self.param_names))

    @property
    def params(self) -> Float[Array, "*batch param"]:
        """The parameters stacked along the last axis, in ``param_names`` order."""
        shape = self.batch_shape
        return jnp.stack([jnp.broadcast_to(getattr(self, p), shape) for p in self.param_names], -1)

    def with_params(self, params: ParamBatch) -> AbstractModel:
        """A copy with parameters replaced from a vector (last axis in ``param_names`` order).

        Works with traced values, so ``jax.jacfwd(lambda p: simulate(model.with_params(p), ...))``
        differentiates with respect to all parameters at once.
        """
        params = jnp.asarray(params)
        n = len(self.param_names)
        if params.ndim == 0 or params.shape[-1] != n:
            raise ValueError(
                f"{type(self).__name__}.with_params: params must have last axis {n} "
                f"({', '.join(self.param_names)}), got shape {params.shape}"
            )
        return eqx.tree_at(
            lambda m: [getattr(m, p) for p in m.param_names],
            self,
            [params[..., i] for i in range(n)],
        )

    def broadcast(self) -> AbstractModel:
        """A copy with every parameter broadcast to :attr:`batch_shape` (ready for ``vmap``)."""
        return self.with_params(self.params)

    @classmethod
    def sample(
        cls,
        key: Key,
        n: int,
        *,
        priors: dict[str, tuple[float, float]] | None = None,
        **options,
    ) -> AbstractModel:
        """Draw ``n`` records with parameters uniform on their prior ranges.

        ``priors`` overrides some or all of :attr:`default_priors`; ``options`` are passed to the
        constructor (static options such as ``observe``).
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{cls.__name__}.sample: n must be a positive int, got {n!r}")
        ranges = dict(cls.default_priors)
        for p, r in (priors or {}).items():
            if p not in cls.param_names:
                raise ValueError(
                    f"{cls.__name__}.sample: priors names unknown parameter {p!r}; known: {cls.param_names}"
                )
            lo, hi = r
            if not hi >= lo:
                raise ValueError(f"{cls.__name__}.sample: prior for {p!r} has high < low: {r}")
            ranges[p] = (lo, hi)
        keys = jax.random.split(key, len(cls.param_names))
        values = {
            p: jax.random.uniform(k, (n,), minval=ranges[p][0], maxval=ranges[p][1])
            for p, k in zip(cls.param_names, keys, strict=True)
        }
        return cls(**values, **options)


SWITCH = -1
"""Event action: apply the model's switch and continue."""


class Status(eqxi.Enumeration):
    """The outcome of an event-switching simulation: an enumeration with a message per code, as
    diffrax's ``RESULTS``. A model with failures of its own subclasses it (the base codes keep
    their values, the subclass's follow them) and names the subclass in
    :attr:`AbstractSwitchingModel.status_enum`; see :mod:`jaxid.simulate.events` for the design.
    """

    ok = "The record reached the last save time, or ended at a stopping event."
    iteration_limit = (
        "The record ran out of iterations (max_steps) before the last save time; pass a larger "
        "max_steps or a larger dt0."
    )
    phase_timeout = "A phase (the time between two switches) lasted longer than the model's max_phase_time."
    nonfinite_state = "The state became NaN or infinite."


def status_code(item: eqx.Module) -> int:
    """The integer code of a :class:`Status` item (of any model's subclass; an item is an
    equinox Module, e.g. ``WalkerStatus.fall``): the value stored in
    :attr:`jaxid.simulate.events.SwitchingSimulation.status` and in data sets."""
    enum = getattr(item, "_enumeration", None)
    if not (isinstance(enum, type) and issubclass(enum, Status)):
        raise TypeError(f"status_code: expected an item of a Status enumeration, got {item!r}")
    return int(np.asarray(item._value))


def status_messages(status_enum: type[Status]) -> tuple[str, ...]:
    """The message of each code of a :class:`Status` enumeration, indexed by code."""
    return tuple(status_enum._index_to_message)


STATUS_OK = status_code(Status.ok)
"""Record finished (or stopped by a ``STOP`` event) without failure (the int code of
:attr:`Status.ok`)."""
STATUS_ITERATION_LIMIT = status_code(Status.iteration_limit)
"""The int code of :attr:`Status.iteration_limit`."""
STATUS_TIMEOUT = status_code(Status.phase_timeout)
"""The int code of :attr:`Status.phase_timeout`."""
STATUS_NONFINITE = status_code(Status.nonfinite_state)
"""The int code of :attr:`Status.nonfinite_state`."""
BASE_STATUS_NAMES = ("ok", "iteration limit", "phase time-out", "non-finite state")
"""Short names of the status codes shared by every switching model (the codes of :class:`Status`);
model-specific failure codes follow these."""


class AbstractSwitchingModel(AbstractModel):
    r"""A model whose vector field switches at state-dependent events.

    The discrete part of the state (for the walker: foot positions and the contact mode) is kept in
    the state vector with zero time derivative, so ``vector_field(t, y)`` and ``observe(t, y)`` keep
    the smooth models' signatures. Events are declared by :meth:`event_functions`: event ``i``
    fires when ``h_i`` crosses from ``< 0`` to ``>= 0`` while ``enabled_i`` is true (write a
    down-crossing of ``g`` as ``h = -g``). :func:`jaxid.simulate` locates the crossing time by root
    finding on the solver's dense output and then steps exactly to it.

    :attr:`event_actions` says what each event does: ``SWITCH`` (apply :meth:`apply_event` and go
    on), ``STATUS_OK`` (end the record successfully) or a failure code: the int code
    (:func:`status_code`) of an item of :attr:`status_enum`, a subclass of :class:`Status` that
    adds the model's own failures with their messages. :attr:`status_names` gives each code a
    short name (it starts with :data:`BASE_STATUS_NAMES`), as used in reports and data sets.
    """

    event_names: ClassVar[tuple[str, ...]]
    event_actions: ClassVar[tuple[int, ...]]
    status_names: ClassVar[tuple[str, ...]]
    status_enum: ClassVar[type[Status]] = Status

    @classmethod
    def status_message(cls, code: Int[ArrayLike, ""]) -> str:
        """The message of the concrete int status ``code`` (e.g. ``sim.status`` of one record)."""
        messages = status_messages(cls.status_enum)
        code = int(np.asarray(code))
        if not 0 <= code < len(messages):
            raise ValueError(
                f"{cls.__name__}.status_message: {code} is not a status code of "
                f"{cls.status_enum.__name__} (0 to {len(messages) - 1})"
            )
        return messages[code]

    @classmethod
    def status_item(cls, code: Int[ArrayLike, "*batch"]) -> eqx.Module:  # an item of status_enum
        """The int status ``code`` (an array, traced or not) as an item of :attr:`status_enum`, to
        compare with its members (``model.status_item(sim.status) == Walker.status_enum.fall``)
        or to raise its message (``.error_if``). Codes outside the enumeration are not checked."""
        return eqx.tree_at(lambda item: item._value, cls.status_enum.ok, jnp.asarray(code, jnp.int32))

    @abc.abstractmethod
    def event_functions(
        self, t: RealScalar, y: Float[Array, " state"]
    ) -> tuple[Float[Array, " event"], Bool[Array, " event"]]:
        """``(h, enabled)``: the event functions at ``(t, y)`` and which of them are armed."""

    @abc.abstractmethod
    def apply_event(
        self, index: Int[ArrayLike, ""], t: RealScalar, y: Float[Array, " state"]
    ) -> Float[Array, " state"]:
        """The state just after the switching event ``index`` (an int array) at ``(t, y)``."""

    @property
    def continuous_size(self) -> int:
        """The first ``continuous_size`` state components evolve; the rest are discrete (constant
        between events) and are left out of the Runge-Kutta arithmetic."""
        return self.state_size

    @property
    def max_phase_time(self) -> float | None:
        """A phase (time between switches) longer than this is a failure (``"phase time-out"``)."""
        return None

    @property
    def default_dt(self) -> float:
        """The default internal step of the event-aware integrator."""
        raise NotImplementedError


AbstractHybridModel = AbstractSwitchingModel
"""The former name of :class:`AbstractSwitchingModel` (kept so that existing code runs; "hybrid"
now names only the physics+neural models of :mod:`jaxid.hybrid`)."""
