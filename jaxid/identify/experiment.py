r"""Experiments: a map from parameters to observations, and the noise on those observations.

An :class:`Experiment` is what the identifiability analysis differentiates: a function
``theta -> y`` (any jaxid model simulated from a fixed initial state, or a user's own function)
together with the standard deviation of the Gaussian noise on ``y``. Several experiments on the
same parameters (kinematics and a force plate, several initial conditions) add their Fisher
information.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from ..models.base import AbstractModel, AbstractSwitchingModel, as_param
from ..simulate import simulate
from ..typing import ParamBatch, ParamVector, StateBatch, StateVector, TimeGrid

NoiseLevel = Real[ArrayLike, "..."] | Sequence[float]
"""A noise standard deviation: a number, one per channel or one per observation (NumPy
broadcasting against the observations), as an array or a sequence of numbers."""


class Experiment(eqx.Module):
    r"""One experiment: observations ``y = fn(theta)`` with Gaussian noise of standard deviation
    ``noise``.

    An equinox Module: the noise (and any arrays inside ``fn`` when ``fn`` is itself a Module) are
    pytree leaves, so :func:`fisher_information` can be jitted, vmapped over designs (noise
    levels, sampling times closed over by ``fn``) and differentiated (``jax.jacfwd``) with an
    experiment as an argument.

    **Arguments:**

    - ``fn``: a JAX-traceable function from a parameter vector ``theta`` (shape ``(p,)``) to an
      array of observations of any fixed shape. The last axis is read as the channel axis when
      ``relative=True`` (a 1-D output is one channel). It must be differentiable in forward mode
      (``jax.jvp``); for a jaxid model use :meth:`from_model`, which takes care of that.
    - ``noise``: the noise standard deviation, broadcast against the observations with NumPy rules:
      a scalar for all of them, one value per channel (last axis), or one per observation. Must be
      finite and positive.
    - ``relative``: if true, ``noise`` is a fraction of each channel's standard deviation over the
      noise-free observations at the analysed ``theta`` (over every axis but the last), the
      convention of :func:`jaxid.walker.add_noise`.
    - ``name``: a label used in reports and error messages.
    - ``param_names``: names of the ``p`` parameters (optional for a plain function; default
      ``p0, p1, ...``).
    - ``theta0``: a default parameter point (optional).
    - ``channels``: names of the channels (the last axis of the observations; optional).
    - ``describe_failure``: a function ``theta -> str`` that says why the observations are not
      finite at ``theta`` (used in error messages; :meth:`from_model` provides one).
    - ``check_function``: check, before first use, that ``fn`` traces and returns one float array
      (default true; jaxid's own simulations skip it).

    **Noise model.** :math:`y_{obs} = y(\theta) + \epsilon`, :math:`\epsilon \sim N(0, \Sigma)` with
    :math:`\Sigma = \mathrm{diag}(\sigma^2)`, independent between observations and between
    experiments. A relative ``noise`` is fixed at the analysed point (it is not differentiated).
    """

    fn: Callable[[ParamVector], Array]
    noise: Array
    relative: bool = eqx.field(static=True)
    name: str = eqx.field(static=True)
    param_names: tuple[str, ...] | None = eqx.field(static=True)
    theta0: np.ndarray | Array | None
    channels: tuple[str, ...] | None = eqx.field(static=True)
    describe_failure: Callable[[np.ndarray], str] | None
    check_function: bool = eqx.field(static=True)

    def __init__(
        self,
        fn: Callable[[ParamVector], Array],
        noise: NoiseLevel,
        *,
        relative: bool = False,
        name: str = "experiment",
        param_names: Sequence[str] | None = None,
        theta0: ParamVector | None = None,
        channels: Sequence[str] | None = None,
        describe_failure: Callable[[np.ndarray], str] | None = None,
        check_function: bool = True,
    ):
        if not callable(fn):
            raise TypeError(
                f"Experiment: fn must be callable (theta -> observations), got {type(fn).__name__}"
            )
        if isinstance(noise, jax.core.Tracer):  # a design traced by jit/vmap: checked at run time
            noise_arr = eqx.error_if(
                jnp.asarray(noise, float),
                ~(jnp.isfinite(noise) & (noise > 0)),
                f"Experiment {name!r}: noise must be finite and > 0 (a standard deviation)",
            )
        else:
            host = np.asarray(noise, dtype=float)
            if host.size == 0 or not np.all(np.isfinite(host)) or not np.all(host > 0):
                raise ValueError(
                    f"Experiment {name!r}: noise must be finite and > 0 (a standard deviation), got "
                    f"{noise!r}; a zero noise level would give infinite information"
                )
            noise_arr = jnp.asarray(host)
        self.fn = fn
        self.noise = noise_arr
        self.relative = bool(relative)
        self.name = str(name)
        self.param_names = None if param_names is None else tuple(str(n) for n in param_names)
        if theta0 is not None and not isinstance(theta0, jax.core.Tracer):
            theta0 = np.asarray(theta0, dtype=float)  # a host default (NumPy), as the reports read it
        self.theta0 = theta0
        self.channels = None if channels is None else tuple(channels)
        self.describe_failure = describe_failure
        self.check_function = bool(check_function)

    def __repr__(self):
        kind = "relative" if self.relative else "absolute"
        noise = np.asarray(self.noise).tolist()
        return f"Experiment({self.name!r}, noise={noise} ({kind}), params={self.param_names})"

    # ------------------------------------------------------------------ construction from a model
    @classmethod
    def from_model(
        cls,
        model: AbstractModel,
        y0: StateVector | StateBatch | Callable[[AbstractModel], Array],
        ts: TimeGrid,
        *,
        noise: NoiseLevel,
        params: Sequence[str] | None = None,
        channels: Sequence[str] | None = None,
        relative: bool = False,
        name: str | None = None,
        **simulate_kwargs,
    ) -> Experiment:
        r"""An experiment that simulates ``model`` from ``y0`` and observes it at ``ts``.

        - ``model``: a jaxid model with scalar parameters; the parameters not named in ``params``
          stay at its values.
        - ``y0``: initial state ``(state,)``, or ``(records, state)`` for several records of the same
          parameters (their information adds); or a function ``model -> y0`` of the model with the
          analysed parameters set (differentiated along with the simulation), e.g.
          :func:`jaxid.walker.gait_initial_state` to start every parameter point on its own gait.
        - ``params``: the analysed parameters, a subset of ``model.param_names`` (default: all).
        - ``channels``: a subset of ``model.obs_names`` (default: all).
        - ``simulate_kwargs``: passed to :func:`jaxid.simulate`. For smooth models the adjoint
          defaults to :class:`diffrax.ForwardMode` (forward-mode sensitivities); solver tolerances
          should sit orders of magnitude below the rank tolerance (the defaults, rtol 1e-7 in
          float64, are fine for gap-based ranks).

        A failed simulation makes the observations NaN, which the analysis reports as an error
        naming the failure (for switching models, the status, e.g. ``fall``).
        """
        where = "Experiment.from_model"
        if not isinstance(model, AbstractModel):
            raise TypeError(f"{where}: model must be a jaxid model, got {type(model).__name__}")
        if model.batch_shape != ():
            raise ValueError(
                f"{where}: model must hold one parameter set (scalars), got batch {model.batch_shape}"
            )
        params = tuple(model.param_names if params is None else params)
        unknown = [p for p in params if p not in model.param_names]
        if unknown or not params or len(set(params)) != len(params):
            raise ValueError(
                f"{where}: params must be distinct names from {model.param_names}, got {params!r}"
            )
        all_channels = tuple(model.obs_names)
        channels = all_channels if channels is None else tuple(channels)
        bad = [c for c in channels if c not in all_channels]
        if bad or not channels:
            raise ValueError(f"{where}: channels {bad or channels!r} not among the model's {all_channels}")
        ch_idx = np.array([all_channels.index(c) for c in channels])
        p_idx = np.array([model.param_names.index(p) for p in params])
        y0_fn = y0 if callable(y0) else None
        y0 = jax.eval_shape(y0_fn, model) if y0_fn is not None else as_param(y0)
        if len(y0.shape) not in (1, 2) or y0.shape[-1] != model.state_size:
            raise ValueError(
                f"{where}: y0 must have shape ({model.state_size},) or (records, {model.state_size}), "
                f"got {y0.shape}"
            )
        ts = as_param(ts)
        switching = isinstance(model, AbstractSwitchingModel)
        if not switching:
            simulate_kwargs.setdefault("adjoint", dfx.ForwardMode())
        base = model.params

        def run(theta):
            m = model.with_params(base.at[p_idx].set(theta))
            start = y0 if y0_fn is None else y0_fn(m)
            run_one = lambda y: simulate(m, y, ts, **simulate_kwargs)  # noqa: E731
            # one record runs without vmap: a batched loop predicate would cost a select per carry
            sims = jax.vmap(run_one)(start) if len(y0.shape) == 2 else run_one(start)
            obs = sims.obs[..., ch_idx]
            obs = jnp.where(sims.success[..., None, None], obs, jnp.nan)
            status = sims.status if switching else jnp.where(sims.success, 0, -1)
            return obs, status

        def fn(theta):
            return run(theta)[0]

        run_jit = eqx.filter_jit(run)

        def describe_failure(theta):
            _, status = jax.device_get(run_jit(jnp.asarray(theta)))
            names = model.status_names if switching else {-1: "solver failure or non-finite state"}
            bad = sorted({names[int(s)] for s in np.ravel(status) if int(s) != 0})
            return f"{type(model).__name__} simulation failed: {', '.join(bad) or 'non-finite observations'}"

        return cls(
            fn,
            noise,
            relative=relative,
            name=name or f"{type(model).__name__}({', '.join(channels)})",
            param_names=params,
            theta0=base[p_idx],
            channels=channels,
            describe_failure=describe_failure,
            check_function=False,
        )

    # ------------------------------------------------------------------ views
    def select(
        self,
        channels: str | int | Sequence[str] | Sequence[int],
        *,
        noise: NoiseLevel | None = None,
        relative: bool | None = None,
        name: str | None = None,
    ) -> Experiment:
        """The same experiment observed on fewer channels (the last axis of the observations), with
        its own noise: a view that shares this experiment's compiled simulation.

        Its :meth:`value_and_jacobian` evaluates this experiment's (compiled once) and keeps the
        ``channels``, so several views (kinematics, a force plate, one force component) of one
        simulation cost one compilation. ``channels`` are names from :attr:`channels` or integer
        positions; ``noise`` and ``relative`` default to this experiment's (a per-channel
        ``noise`` of the parent is sliced to the view's channels).
        """
        where = f"Experiment.select ({self.name!r})"
        if isinstance(channels, (str, int)):
            channels = [channels]
        channels = list(channels)
        if not channels:
            raise ValueError(f"{where}: channels must name at least one channel")
        if all(isinstance(c, str) for c in channels):
            if self.channels is None:
                raise ValueError(f"{where}: this experiment has no channel names; give channel positions")
            bad = [c for c in channels if c not in self.channels]
            if bad:
                raise ValueError(f"{where}: channels {bad} not among {self.channels}")
            idx = [self.channels.index(c) for c in channels]
            names = tuple(channels)
        elif all(isinstance(c, int) and not isinstance(c, bool) for c in channels):
            idx = channels
            names = None if self.channels is None else tuple(self.channels[i] for i in idx)
        else:
            raise TypeError(f"{where}: channels must be all names or all integer positions, got {channels!r}")
        if len(set(idx)) != len(idx):
            raise ValueError(f"{where}: channels repeat: {channels!r}")
        if noise is None:
            noise = self.noise
            if noise.ndim == 1 and noise.shape[0] > 1:
                noise = noise[np.array(idx)]
        return Experiment(
            _Channels(self.fn, tuple(idx)),
            noise,
            relative=self.relative if relative is None else relative,
            name=name or f"{self.name}[{', '.join(map(str, names or idx))}]",
            param_names=self.param_names,
            theta0=self.theta0,
            channels=names,
            describe_failure=self.describe_failure,
            check_function=self.check_function,
        )

    # ------------------------------------------------------------------ evaluation
    def value_and_jacobian(self, theta: ParamBatch) -> tuple[Float[Array, "..."], Float[Array, "... param"]]:
        """``(y, dy/dtheta)`` by forward-mode AD, jitted (compiled once per experiment and shape),
        batched over leading axes of ``theta``. ``dy/dtheta`` has shape ``y.shape + (p,)``. A view
        (:meth:`select`) evaluates its parent and keeps its channels."""
        return _channels_value_and_jacobian(self.fn, theta)

    def __call__(self, theta: ParamVector) -> Array:
        """The noise-free observations ``fn(theta)``."""
        return self.fn(theta)

    def noise_sd(self, y: Float[ArrayLike, "*obs"]) -> Float[Array, "*obs"]:
        r"""The noise standard deviation for the noise-free observations ``y`` (one record set),
        broadcast to ``y.shape``; traceable (jit, vmap, forward- and reverse-mode AD in ``noise``).

        Absolute noise: :math:`\sigma = \text{noise}`. Relative noise: :math:`\sigma_c =
        \text{noise}_c\,\mathrm{sd}(y_{\cdot c})`, the standard deviation of each channel over
        every axis but the last, held fixed (``stop_gradient``) at the analysed point.
        """
        y = jnp.asarray(y)
        scale = 1.0
        if self.relative:
            yy = y.reshape(-1, 1) if y.ndim < 2 else y.reshape(-1, y.shape[-1])
            sd = jax.lax.stop_gradient(yy.std(axis=0))
            sd = eqx.error_if(
                sd,
                ~(sd > 0),
                f"Experiment {self.name!r}: relative noise needs channels that vary; give an "
                "absolute noise instead",
            )
            scale = sd if y.ndim >= 2 else sd[0]
        try:
            return jnp.broadcast_to(self.noise * scale, y.shape).astype(y.dtype)
        except ValueError:
            raise ValueError(
                f"Experiment {self.name!r}: noise of shape {self.noise.shape} does not broadcast to the "
                f"observations of shape {y.shape}; give a scalar, one value per channel or one per "
                "observation"
            ) from None

    def sigma(self, y: Float[ArrayLike, "*obs"]) -> Float[np.ndarray, "*obs"]:
        """:meth:`noise_sd` on the host: a NumPy array, and a relative noise on a constant channel
        refused with a ``ValueError`` naming the channel."""
        y = np.asarray(y, dtype=float)
        if self.relative:
            yy = y.reshape(-1, 1) if y.ndim < 2 else y.reshape(-1, y.shape[-1])
            sd = yy.std(axis=0)
            if not np.all(sd > 0):
                raise ValueError(
                    f"Experiment {self.name!r}: relative noise needs channels that vary, but channel(s) "
                    f"{np.flatnonzero(~(sd > 0)).tolist()} are constant; give an absolute noise instead"
                )
        return np.asarray(self.noise_sd(y), dtype=float)


class _Channels(eqx.Module):
    """``fn`` observed on some of its channels (the last axis): the function of a view."""

    fn: Callable
    idx: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, theta):
        return jnp.asarray(self.fn(theta))[..., np.asarray(self.idx)]


def _channels_value_and_jacobian(fn, theta):
    """:func:`value_and_jacobian` of ``fn``; for a view's ``_Channels``, its parent function's pass
    (compiled once for every view of it) cut to the view's channels."""
    if isinstance(fn, _Channels):
        idx = np.asarray(fn.idx)
        y, jac = _channels_value_and_jacobian(fn.fn, theta)
        return y[..., idx], jac[..., idx, :]
    return value_and_jacobian(fn, jnp.asarray(theta))


def _value_and_jacfwd(fn):
    def value_and_jac(theta):
        basis = jnp.eye(theta.shape[-1], dtype=theta.dtype)
        y, jac = jax.vmap(lambda v: jax.jvp(fn, (theta,), (v,)), out_axes=(None, -1))(basis)
        return y, jac

    return value_and_jac


def _value_and_jacfwd_batched(fn):
    single = _value_and_jacfwd(fn)

    def run(theta):
        if theta.ndim == 1:
            return single(theta)
        flat = theta.reshape(-1, theta.shape[-1])
        y, jac = jax.vmap(single)(flat)
        return (
            y.reshape(theta.shape[:-1] + y.shape[1:]),
            jac.reshape(theta.shape[:-1] + jac.shape[1:]),
        )

    return run


@eqx.filter_jit
def value_and_jacobian(
    fn: Callable[[ParamVector], Array], theta: ParamBatch
) -> tuple[Float[Array, "..."], Float[Array, "... param"]]:
    r"""``(fn(theta), dfn/dtheta)`` in one forward-mode pass, batched over leading axes of ``theta``.

    The Jacobian :math:`J_{\ldots j} = \partial\, \mathrm{fn}(\theta)_{\ldots} / \partial \theta_j` is
    built column by column from ``p`` Jacobian-vector products :math:`J e_j` (``jax.jvp`` along the
    unit vectors, vmapped), so ``fn`` must be differentiable in forward mode. Compiled once per
    function and shape (``fn`` is static). This is the forward-mode pass shared by
    :mod:`jaxid.identify` and :mod:`jaxid.sensitivity`.

    **Arguments:**

    - ``fn``: a JAX-traceable function from a parameter vector (shape ``(p,)``) to an array.
    - ``theta``: the parameter vector, or a batch of them along leading axes (shape ``(..., p)``).

    **Returns:** ``(y, jac)`` with ``y = fn(theta)`` (shape ``batch + out``) and ``jac`` of shape
    ``batch + out + (p,)``.
    """
    return _value_and_jacfwd_batched(fn)(theta)


def as_experiments(experiments, where: str) -> list[Experiment]:
    """Normalise one experiment or a sequence of them, checking that they agree on parameters."""
    if isinstance(experiments, Experiment):
        experiments = [experiments]
    try:
        experiments = list(experiments)
    except TypeError:
        raise TypeError(
            f"{where}: experiments must be an Experiment or a list of them "
            "(wrap a function as Experiment(fn, noise=...))"
        ) from None
    if not experiments or not all(isinstance(e, Experiment) for e in experiments):
        raise TypeError(f"{where}: experiments must be a non-empty list of Experiment objects")
    names = {e.param_names for e in experiments if e.param_names is not None}
    if len(names) > 1:
        raise ValueError(f"{where}: the experiments name different parameters: {sorted(names)}")
    return experiments
