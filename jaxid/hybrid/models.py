r"""APHYNITY, Hybrid-VAE and Meta-Hybrid-VAE: physics + neural generative models of sequences.

All three decode a sequence with the same hybrid ODE, solved with diffrax's Bogacki-Shampine
solver at a constant step ``dt / substeps`` from the state read off the first observation:

.. math::
    \dot x = F_p(x; z_p) + M\,F_a(x, [t], z_a), \qquad y_t = h(x_t) + G(h(x_t), z_b)

``F_p`` is the system's physics part with the physics latent ``z_p`` (on the system's feasible
range, ``z_p = lo + (hi - lo) sigmoid(u)``); ``F_a`` is a network with a neural latent ``z_a``,
masked by ``M`` to the components it may change; ``G`` is an output correction with latent
``z_b`` (the Hybrid-VAEs only). The models differ in how they infer latents and what they
penalise:

- :class:`Aphynity` (Yin et al. 2021) in its per-sample form: an encoder gives ``u`` and ``z_a``
  deterministically; the loss is :math:`\lambda\,\mathcal L_{traj} + \|F_a\|^2` with
  :math:`\mathcal L_{traj}` the trajectory MSE (in units of the observation scale) and
  :math:`\|F_a\|^2` the squared norm of the network term at the save times of the trajectory,
  averaged over them (in units of the state's rate scale); :math:`\lambda` starts at ``lambda0``
  and after every step grows by ``tau`` times the batch's trajectory loss,
  :math:`\lambda_{j+1} = \lambda_j + \tau\,\mathcal L_{traj,j}`.
- :class:`HybridVAE` (Takeishi and Kalousis 2021): Gaussian posteriors; ``(z_a, z_b)`` from an
  encoder of ``y``; an *unmixer* removes the non-physics part of ``y`` and a physics encoder reads
  ``u`` from what is left. Loss: the negative ELBO of one posterior draw (the sequence in units of
  the observation scale, its Gaussian likelihood with a learnt per-channel sd floored at the
  data's noise, standard-normal priors on ``u``, ``z_a``, ``z_b``) plus
  ``unmix`` :math:`\|\tilde y - h(x^P)\|^2` (the unmixed signal matches the physics-only solution
  :math:`x^P` of the same ``z_p``), ``least_action`` :math:`\|y^{hyb} - h(x^P)\|^2` (the hybrid
  solution stays near the physics-only one) and ``augment`` :math:`\|\mu_u(h(x^P(z^*))) - u^*\|^2`
  (physics-based data augmentation: physics-only sequences simulated from prior draws ``u*``,
  with noise of the data's sd, are read back by the physics encoder). Squared norms are in units
  of the observation scale.
- :class:`HybridVAE` with ``meta=True`` (Meta-Hybrid-VAE, Ye et al. 2024): a set encoder
  embeds each of the ``K`` context sequences of the task and averages the codes,
  :math:`c = \frac1K\sum_k e(y_k)`; the prior of ``(z_a, z_b)`` becomes
  :math:`\mathcal N(\mu(c), \mathrm{diag}\,\sigma^2(c))` and the encoder of ``(z_a, z_b)`` also
  reads ``c``. Conditionally independent latents given the context are what makes the neural
  latents identifiable (up to per-dimension transforms) once there are enough tasks.

Every model works on one sequence (``vmap`` it) and exposes ``encode``, ``decode`` and ``loss``
for the shared trainer in :mod:`jaxid.hybrid.training`. Weights are float32. Every loss term is
a pure function of :mod:`jaxid.hybrid.losses`; ``loss`` returns the total and each term (APHYNITY:
``traj``, ``norm``; the Hybrid-VAEs: ``nll``, ``kl``, ``unmix``, ``least_action``, ``augment``
and the trajectory MSE ``traj``), the total being
``lambda traj + norm`` and ``nll + kl_w kl + unmix_w unmix + least_action_w least_action +
augment_w augment`` (``weights``).
"""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..errors import check_positive_int, check_real_number
from ..typing import Key, RealScalar
from .losses import (
    gaussian_kl,
    gaussian_nll,
    multiplier_update,
    network_norm,
    squared_distance,
    trajectory_mse,
)
from .systems import System

F32 = jnp.float32
MODEL_KINDS = ("aphynity", "hybrid_vae", "meta_hybrid_vae")
MODEL_LABELS = {"aphynity": "APHYNITY", "hybrid_vae": "Hybrid-VAE", "meta_hybrid_vae": "Meta-Hybrid-VAE"}

Scales: TypeAlias = tuple[
    Float[ArrayLike, " state"], Float[ArrayLike, " state"], Float[ArrayLike, " channel"]
]
"""``(state_scale, rate_scale, obs_scale)``, as :meth:`jaxid.hybrid.HybridData.scales` returns them."""

Latents: TypeAlias = tuple[Float[Array, " physics"], Float[Array, " latent_a"], Float[Array, " latent_b"]]
"""``(z_p, z_a, z_b)`` of one sequence (``z_b`` is empty for APHYNITY)."""

LatentsLike: TypeAlias = tuple[
    Float[ArrayLike, " physics"], Float[ArrayLike, " latent_a"], Float[ArrayLike, " latent_b"]
]
"""``(z_p, z_a, z_b)`` as the decoders take them: JAX or NumPy arrays."""

Aux: TypeAlias = dict[str, Float[Array, ""]]
"""A model's auxiliary training state (APHYNITY's multiplier ``lambda``; empty for the VAEs)."""

Stats: TypeAlias = dict[str, Float[Array, ""]]
"""A loss's terms by name, each a scalar."""


def _mlp(in_size: int, out_size: int, width: int, depth: int, key, final_scale: float = 1.0) -> eqx.nn.MLP:
    mlp = eqx.nn.MLP(in_size, out_size, width, depth, activation=jax.nn.relu, dtype=F32, key=key)
    if final_scale != 1.0:  # a small last layer: the network term starts near zero
        mlp = eqx.tree_at(lambda m: m.layers[-1].weight, mlp, mlp.layers[-1].weight * final_scale)
    return mlp


def _const(x) -> Array:
    return jnp.asarray(np.asarray(x, np.float32))


class HybridDecoder(eqx.Module):
    """The hybrid ODE ``x' = F_p(x; z_p) + M F_a(x, [t], z_a)`` and the output ``h(x) + G(h(x), z_b)``.

    ``F_a`` sees the state in units of ``state_scale`` (and ``t`` over the training window, when the
    system has a time input); its output is in units of ``rate_scale``, its last layer starts
    small so that training begins near the physics-only model.
    """

    system: System = eqx.field(static=True)
    aug: eqx.nn.MLP
    out: eqx.nn.MLP | None
    state_scale: Array
    rate_scale: Array
    obs_scale: Array
    latent_a: int = eqx.field(static=True)
    latent_b: int = eqx.field(static=True)

    def __init__(
        self,
        system: System,
        latent_a: int,
        latent_b: int,
        width: int,
        depth: int,
        scales: Scales,
        *,
        key: Key,
    ):
        k1, k2 = jax.random.split(key)
        s = system.state_size
        self.system, self.latent_a, self.latent_b = system, latent_a, latent_b
        self.state_scale, self.rate_scale, self.obs_scale = (_const(v) for v in scales)
        self.aug = _mlp(s + int(system.time_input) + latent_a, s, width, depth, k1, final_scale=0.1)
        c = self.obs_scale.shape[0]
        self.out = _mlp(c + latent_b, c, width, 1, k2, final_scale=0.1) if latent_b > 0 else None

    def f_aug(
        self, t: RealScalar, x: Float[ArrayLike, " state"], z_a: Float[ArrayLike, " latent_a"]
    ) -> Float[Array, " state"]:
        """The network term ``M F_a`` (in state units per second)."""
        sys = self.system
        parts = [x / jax.lax.stop_gradient(self.state_scale)]
        if sys.time_input:
            parts.append(jnp.reshape(t / (sys.dt * (sys.n_train - 1)), (1,)).astype(x.dtype))
        parts.append(z_a)
        mask = jnp.asarray(sys.aug_mask, x.dtype)
        return mask * self.aug(jnp.concatenate(parts)) * jax.lax.stop_gradient(self.rate_scale)

    def solve(
        self,
        z_p: Float[ArrayLike, " physics"],
        z_a: Float[ArrayLike, " latent_a"] | None,
        x0: Float[ArrayLike, " state"],
        n_steps: int,
        *,
        hybrid: bool = True,
    ) -> Float[Array, "step state"]:
        """States at the first ``n_steps`` save times (physics only if ``hybrid`` is False, when
        ``z_a`` may be ``None``).

        ``substeps`` fixed steps of diffrax's Bogacki-Shampine solver per save interval, each
        taken by ``solver.step`` inside a :func:`jax.lax.scan`, so reverse mode stores every
        stage instead of recomputing them (the cheapest choice for a few hundred small steps).
        """
        sys = self.system
        h = jnp.asarray(sys.dt / sys.substeps, x0.dtype)

        def field(t, x, args):
            t = jnp.asarray(t, x.dtype)
            dx = sys.physics_field(z_p, t, x).astype(x.dtype)
            return dx + self.f_aug(t, x, z_a) if hybrid else dx

        term, solver = dfx.ODETerm(field), dfx.Bosh3()
        state = solver.init(term, jnp.zeros((), x0.dtype), h, x0, None)

        def interval(carry, i):
            def step(c, j):
                x, st = c
                t = (i * sys.substeps + j) * h
                x, _, _, st, _ = solver.step(term, t, t + h, x, None, st, False)
                return (x, st), None

            carry, _ = jax.lax.scan(step, carry, jnp.arange(sys.substeps, dtype=x0.dtype))
            return carry, carry[0]

        _, xs = jax.lax.scan(interval, (x0, state), jnp.arange(n_steps - 1, dtype=x0.dtype))
        return jnp.concatenate([x0[None], xs])

    def output(
        self, states: Float[ArrayLike, "step state"], z_b: Float[ArrayLike, " latent_b"]
    ) -> Float[ArrayLike, "step channel"]:
        """Observations ``h(x) + G(h(x), z_b)`` of a stack of states (a JAX array, except for NumPy
        states without an output correction: ``h(x)`` as :meth:`System.observe` gives it)."""
        y = self.system.observe(states)
        if self.out is None:
            return y
        scale = jax.lax.stop_gradient(self.obs_scale)
        z = jnp.broadcast_to(z_b, (y.shape[0], z_b.shape[0]))
        return y + jax.vmap(self.out)(jnp.concatenate([y / scale, z], -1)) * scale

    def to_physics(self, u: Float[ArrayLike, " physics"]) -> Float[Array, " physics"]:
        """``z_p = lo + (hi - lo) sigmoid(u)`` on the feasible range."""
        lo = jnp.asarray([r[0] for r in self.system.feasible], u.dtype)
        hi = jnp.asarray([r[1] for r in self.system.feasible], u.dtype)
        return lo + (hi - lo) * jax.nn.sigmoid(u)

    def x0(self, y: Float[ArrayLike, "time channel"]) -> Float[ArrayLike, " state"]:
        """The initial state read off the first observation (:meth:`System.state_from_obs`)."""
        return self.system.state_from_obs(y[0])

    def flat(self, y: Float[ArrayLike, "time channel"]) -> Float[Array, " feature"]:
        """A sequence in units of the observation scale, flattened: the encoders' input."""
        return (y / jax.lax.stop_gradient(self.obs_scale)).ravel()

    def decode(
        self, y: Float[ArrayLike, "time channel"], latents: LatentsLike, n_steps: int
    ) -> Float[Array, "step channel"]:
        """Observations over ``n_steps`` save times from latents ``(z_p, z_a, z_b)``, started at ``y[0]``."""
        z_p, z_a, z_b = latents
        return self.output(self.solve(z_p, z_a, self.x0(y), n_steps), z_b)


class Aphynity(eqx.Module):
    """APHYNITY in per-sample form (see the module docstring). ``lambda0``, ``tau`` static."""

    kind: ClassVar[str] = "aphynity"
    encoder: eqx.nn.MLP
    decoder: HybridDecoder
    lambda0: float = eqx.field(static=True, default=1.0)
    tau: float = eqx.field(static=True, default=1.0)

    def __init__(
        self,
        system: System,
        *,
        latent: int | None = None,
        width: int = 64,
        depth: int = 2,
        scales: Scales,
        lambda0: float = 1.0,
        tau: float = 1.0,
        key: Key,
    ):
        k1, k2 = jax.random.split(key)
        latent = len(system.factor_names) if latent is None else latent
        n_in = system.n_train * len(scales[2])
        self.encoder = _mlp(n_in, len(system.physics_names) + latent, width, depth, k1)
        self.decoder = HybridDecoder(system, latent, 0, width, depth, scales, key=k2)
        self.lambda0, self.tau = lambda0, tau

    @property
    def uses_context(self) -> bool:
        return False

    def encode(
        self,
        y: Float[ArrayLike, "time channel"],
        context: Float[ArrayLike, "context time channel"] | None = None,
    ) -> Latents:
        """``(z_p, z_a, z_b)`` of one sequence ``y`` (training window); ``z_b`` is empty."""
        h = self.encoder(self.decoder.flat(y))
        d_p = len(self.decoder.system.physics_names)
        return self.decoder.to_physics(h[:d_p]), h[d_p:], h[:0]

    def decode(
        self, y: Float[ArrayLike, "time channel"], latents: LatentsLike, n_steps: int
    ) -> Float[Array, "step channel"]:
        return self.decoder.decode(y, latents, n_steps)

    def init_aux(self) -> Aux:
        return {"lambda": jnp.asarray(self.lambda0, F32)}

    def update_aux(self, aux: Aux, stats: Stats) -> Aux:
        return {"lambda": multiplier_update(aux["lambda"], stats["traj"], self.tau)}

    def loss(
        self,
        key: Key,
        y: Float[ArrayLike, "time channel"],
        context: Float[ArrayLike, "context time channel"] | None,
        aux: Aux,
    ) -> tuple[Float[Array, ""], Stats]:
        dec = self.decoder
        z_p, z_a, _ = self.encode(y)
        n = y.shape[0]
        states = dec.solve(z_p, z_a, dec.x0(y), n)
        scale = jax.lax.stop_gradient(dec.obs_scale)
        traj = trajectory_mse(dec.output(states, z_a[:0]) / scale, y / scale)
        ts = jnp.arange(n, dtype=y.dtype) * dec.system.dt
        fa = jax.vmap(dec.f_aug, in_axes=(0, 0, None))(ts, states, z_a) / jax.lax.stop_gradient(
            dec.rate_scale
        )
        norm = network_norm(fa)
        return aux["lambda"] * traj + norm, {"traj": traj, "norm": norm}


class HybridVAE(eqx.Module):
    """Hybrid-VAE, and with ``meta=True`` Meta-Hybrid-VAE (see the module docstring).

    **Arguments:** ``system``; ``latent_a`` (default: the number of unmodelled factors),
    ``latent_b`` (default 1); ``width``, ``depth`` of every network; ``scales`` (state, rate and
    observation scales from :meth:`System.scales` and the data); the regulariser weights ``kl``,
    ``unmix``, ``least_action``, ``augment``; ``meta``; ``code`` (size of the context code).
    """

    aux_encoder: eqx.nn.MLP
    unmixer: eqx.nn.MLP
    phys_encoder: eqx.nn.MLP
    decoder: HybridDecoder
    raw_sigma: Array
    context_encoder: eqx.nn.MLP | None
    prior_net: eqx.nn.MLP | None
    meta: bool = eqx.field(static=True)
    weights: tuple[float, float, float, float] = eqx.field(static=True)

    def __init__(
        self,
        system: System,
        *,
        latent_a: int | None = None,
        latent_b: int = 1,
        width: int = 64,
        depth: int = 2,
        scales: Scales,
        kl: float = 1.0,
        unmix: float = 1.0,
        least_action: float = 0.1,
        augment: float = 1.0,
        meta: bool = False,
        code: int = 16,
        key: Key,
    ):
        keys = jax.random.split(key, 6)
        latent_a = len(system.factor_names) if latent_a is None else latent_a
        n_ch = len(scales[2])
        n_in = system.n_train * n_ch
        d_n = latent_a + latent_b
        self.meta = meta
        extra = code if meta else 0
        self.aux_encoder = _mlp(n_in + extra, 2 * d_n, width, depth, keys[0])
        self.unmixer = _mlp(n_in + d_n, n_in, width, depth, keys[1], final_scale=0.1)
        self.phys_encoder = _mlp(n_in, 2 * len(system.physics_names), width, depth, keys[2])
        self.decoder = HybridDecoder(system, latent_a, latent_b, width, depth, scales, key=keys[3])
        self.raw_sigma = jnp.zeros(n_ch, F32)
        self.context_encoder = _mlp(n_in, code, width, depth, keys[4]) if meta else None
        self.prior_net = _mlp(code, 2 * d_n, width, 1, keys[5], final_scale=0.1) if meta else None
        self.weights = (float(kl), float(unmix), float(least_action), float(augment))

    @property
    def kind(self) -> str:
        return "meta_hybrid_vae" if self.meta else "hybrid_vae"

    @property
    def uses_context(self) -> bool:
        return self.meta

    def context_code(self, context: Float[ArrayLike, "context time channel"]) -> Float[Array, " code"]:
        """The task code: the mean of the context sequences' embeddings (order does not matter)."""
        return jnp.mean(jax.vmap(lambda c: self.context_encoder(self.decoder.flat(c)))(context), 0)

    def _posteriors(self, y, code):
        x = self.decoder.flat(y)
        h = self.aux_encoder(x if code is None else jnp.concatenate([x, code]))
        d_n = h.shape[0] // 2
        return x, h[:d_n], h[d_n:]

    def _physics_posterior(self, unmixed):
        h = self.phys_encoder(unmixed)
        d_p = h.shape[0] // 2
        return h[:d_p], h[d_p:]

    def _unmix(self, x, z_n):
        """The flattened sequence ``x`` with the unmixer's estimate of its non-physics part removed."""
        return x - self.unmixer(jnp.concatenate([x, z_n]))

    def _split_n(self, z_n):
        a = self.decoder.latent_a
        return z_n[:a], z_n[a:]

    def encode(
        self,
        y: Float[ArrayLike, "time channel"],
        context: Float[ArrayLike, "context time channel"] | None = None,
    ) -> Latents:
        """Posterior means ``(z_p, z_a, z_b)`` of one sequence (``context``: ``(K, time, channel)``)."""
        code = self.context_code(context) if self.meta else None
        x, mu_n, _ = self._posteriors(y, code)
        mu_u, _ = self._physics_posterior(self._unmix(x, mu_n))
        return (self.decoder.to_physics(mu_u), *self._split_n(mu_n))

    def decode(
        self, y: Float[ArrayLike, "time channel"], latents: LatentsLike, n_steps: int
    ) -> Float[Array, "step channel"]:
        return self.decoder.decode(y, latents, n_steps)

    def init_aux(self) -> Aux:
        return {}

    def update_aux(self, aux: Aux, stats: Stats) -> Aux:
        return aux

    def loss(
        self,
        key: Key,
        y: Float[ArrayLike, "time channel"],
        context: Float[ArrayLike, "context time channel"] | None,
        aux: Aux,
    ) -> tuple[Float[Array, ""], Stats]:
        dec = self.decoder
        w_kl, w_unmix, w_la, w_aug = self.weights
        k_n, k_u, k_aug, k_noise = jax.random.split(key, 4)
        scale = jax.lax.stop_gradient(dec.obs_scale)
        code = self.context_code(context) if self.meta else None
        x, mu_n, lv_n = self._posteriors(y, code)
        z_n = mu_n + jnp.exp(0.5 * lv_n) * jax.random.normal(k_n, mu_n.shape, mu_n.dtype)
        unmixed = self._unmix(x, z_n)
        mu_u, lv_u = self._physics_posterior(unmixed)
        u = mu_u + jnp.exp(0.5 * lv_u) * jax.random.normal(k_u, mu_u.shape, mu_u.dtype)
        z_p = dec.to_physics(u)
        z_a, z_b = self._split_n(z_n)
        n, x0 = y.shape[0], dec.x0(y)
        y_hyb = dec.output(dec.solve(z_p, z_a, x0, n), z_b)
        y_phys = dec.system.observe(dec.solve(z_p, z_a, x0, n, hybrid=False))
        floor = jnp.asarray(dec.system.noise, y.dtype) / scale
        sigma = floor + jax.nn.softplus(self.raw_sigma + 2.0)  # in units of obs_scale
        resid = (y - y_hyb) / scale
        nll = gaussian_nll(y / scale, y_hyb / scale, sigma)
        if self.meta:
            h = self.prior_net(code)
            mu_prior, lv_prior = h[: mu_n.shape[0]], h[mu_n.shape[0] :]
        else:
            mu_prior = lv_prior = 0.0
        kl = gaussian_kl(mu_n, lv_n, mu_prior, lv_prior) + gaussian_kl(mu_u, lv_u)
        unmix = squared_distance(unmixed, (y_phys / scale).ravel())
        least_action = squared_distance(y_hyb / scale, y_phys / scale)
        # physics-based data augmentation: simulate physics-only data from a prior draw, read it back
        u_star = jax.random.normal(k_aug, mu_u.shape, mu_u.dtype)
        y_star = dec.system.observe(dec.solve(dec.to_physics(u_star), z_a, x0, n, hybrid=False))
        y_star = jax.lax.stop_gradient(y_star + dec.system.noise * jax.random.normal(k_noise, y_star.shape))
        mu_star, _ = self._physics_posterior(self.decoder.flat(y_star))
        augment = squared_distance(mu_star, u_star)
        total = nll + w_kl * kl + w_unmix * unmix + w_la * least_action + w_aug * augment
        traj = jnp.mean(resid**2)
        stats = {"traj": traj, "nll": nll, "kl": kl, "unmix": unmix, "least_action": least_action}
        return total, {**stats, "augment": augment}


HybridModel: TypeAlias = Aphynity | HybridVAE
"""Any of the three models (:func:`make_model`)."""


def make_model(kind: str, system: System, scales: Scales, *, key: Key, **options) -> HybridModel:
    """Build a model by kind: ``aphynity``, ``hybrid_vae`` or ``meta_hybrid_vae``.

    Sizes (``width``, ``depth``, ``latent``, ``latent_a``, ``code``) must be positive ints
    (``latent_b`` may be 0) and weights (``kl``, ``unmix``, ``least_action``, ``augment``,
    ``lambda0``, ``tau``) finite and >= 0: a zero width or a NaN weight would only show as NaN
    losses."""
    where = f"make_model({kind!r})"
    if kind not in MODEL_KINDS:
        raise ValueError(f"make_model: unknown model kind {kind!r}; choose one of {MODEL_KINDS}")
    for name in ("width", "depth", "latent", "latent_a", "code"):
        if options.get(name) is not None:
            check_positive_int(where, name, options[name])
    if "latent_b" in options:
        check_positive_int(where, "latent_b", options["latent_b"], minimum=0)
    for name in ("kl", "unmix", "least_action", "augment", "lambda0", "tau"):
        if name in options:
            check_real_number(where, name, options[name], low=0, low_open=False)
    if kind == "aphynity":
        return Aphynity(system, scales=scales, key=key, **options)
    if kind in ("hybrid_vae", "meta_hybrid_vae"):
        return HybridVAE(system, scales=scales, meta=kind == "meta_hybrid_vae", key=key, **options)
    raise ValueError(f"unknown model kind {kind!r}; choose one of {MODEL_KINDS}")
