r"""The Markov chains behind :func:`jaxid.inference.sample_posterior`, in whitened coordinates.

Both run one chain from ``w_init`` on a log-density ``logdensity(w)`` whose identifiable
directions have about unit scale (the Fisher preconditioning of the caller), and both are pure
functions of their key, so they ``vmap`` over chains and records.

- :func:`rwm_chain`: random-walk Metropolis with a Gaussian proposal
  :math:`w' = w + s\,L\,\xi`, :math:`\xi \sim N(0, I)`. Warm-up in two halves: the first adapts
  the scale :math:`s` (Robbins-Monro on :math:`\log s`, gain :math:`(t + 10)^{-0.6}`) towards the
  acceptance rate ``target_accept`` with :math:`L = I`; the second sets :math:`L L^T` to the
  covariance of the draws of the first half's second half (Welford's running sums; Haario et
  al. 2001) and adapts :math:`s` again from :math:`2.38/\sqrt{p}`. The kept draws run with both
  fixed, so the chain is a reversible Metropolis chain with the posterior as its invariant
  distribution; a proposal outside the prior's support has density 0 and is rejected. Every
  ``thin``-th state is kept. One log-density evaluation per step, no gradient, and all of it one
  ``lax.scan``, so the model is compiled once.
- :func:`nuts_chain`: the no-U-turn sampler with Stan's window adaptation of the step size and a
  dense mass matrix (blackjax). Gradients come from ``p`` forward-mode passes
  (:func:`forward_value_and_grad`), which every jaxid model supports, events included.

Which to use: on the problems identifiability produces (a few parameters, a posterior made
Gaussian-like by the preconditioning, ridges bounded by the prior) the random walk gives far more
effective samples per second on a CPU than NUTS, whose nested tree-building loops cost more per
step than a small model's log-density: measured 1.9e3 effective draws in 0.07 s against 1.4e3 in
100 s on a two-parameter linear-Gaussian model (``benchmarks/posterior.py`` has the current
figures). NUTS scales better with the number of parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import blackjax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..typing import Key

__all__ = ["forward_value_and_grad", "nuts_chain", "rwm_chain"]

LogDensity = Callable[[Float[Array, " param"]], Float[Array, ""]]
"""A log-density of one point ``w`` ``(param,)``, a scalar (``-inf`` outside the support)."""


def forward_value_and_grad(f: LogDensity) -> LogDensity:
    """``f: R^p -> R`` with a custom VJP whose gradient comes from ``p`` forward-mode passes
    (simulations are differentiable in forward mode, events included; reverse mode through a
    ``ForwardMode`` adjoint is not)."""

    def value_and_grad(z):
        basis = jnp.eye(z.shape[-1], dtype=z.dtype)
        vals, grads = jax.vmap(lambda v: jax.jvp(f, (z,), (v,)))(basis)
        return vals[0], grads

    @jax.custom_vjp
    def g(z):
        return f(z)

    def g_bwd(grad, ct):
        return (ct * grad,)

    g.defvjp(value_and_grad, g_bwd)
    return g


def rwm_chain(
    key: Key,
    w_init: Float[Array, " param"],
    logdensity: LogDensity,
    *,
    warmup: int,
    draws: int,
    thin: int = 5,
    target_accept: float = 0.3,
) -> tuple[Float[Array, "draw param"], Float[Array, ""], Float[Array, ""]]:
    """A random-walk Metropolis chain (see the module docstring), as one ``lax.scan`` so that the
    log-density is compiled once.

    **Returns:** ``(draws, p)`` kept states, the acceptance rate of the kept part, and the final
    proposal scale."""
    p = w_init.shape[-1]
    dtype = w_init.dtype
    half = max(warmup // 2, 2)
    total = warmup + draws * thin
    ls0 = jnp.log(2.38 / jnp.sqrt(p)).astype(dtype)
    eye = jnp.eye(p, dtype=dtype)

    def step(carry, inp):
        w, lp, ls, chol, n, mean, m2 = carry
        k, t = inp
        k1, k2 = jax.random.split(k)
        prop = w + jnp.exp(ls) * (chol @ jax.random.normal(k1, (p,), dtype=dtype))
        lpp = logdensity(prop)
        acc = jnp.exp(jnp.minimum(jnp.where(jnp.isnan(lpp), -jnp.inf, lpp) - lp, 0.0))
        accept = jax.random.uniform(k2, dtype=dtype) < acc
        w = jnp.where(accept, prop, w)
        lp = jnp.where(accept, lpp, lp)
        # Welford's running covariance of the second quarter of warm-up
        collect = (t >= half // 2) & (t < half)
        n_new = n + collect
        delta = jnp.where(collect, w - mean, 0.0)
        mean = mean + delta / jnp.maximum(n_new, 1)
        m2 = m2 + jnp.where(collect, jnp.outer(delta, w - mean), 0.0)
        n = n_new
        # at the half: the proposal covariance from those draws, the scale restarts
        switch = t == half - 1
        cov = m2 / jnp.maximum(n - 1, 1) + 1e-10 * eye
        new_chol = jnp.linalg.cholesky(cov)
        new_chol = jnp.where(jnp.all(jnp.isfinite(new_chol)), new_chol, eye)  # a stuck chain keeps I
        chol = jnp.where(switch, new_chol, chol)
        # Robbins-Monro on log scale during warm-up (gain restarts with the new covariance)
        tt = jnp.where(t < half, t, t - half)
        adapted = ls + (acc - target_accept) / (tt + 10.0) ** 0.6
        ls = jnp.where(switch, ls0, jnp.where(t < warmup, adapted, ls))
        return (w, lp, ls, chol, n, mean, m2), (w, accept)

    init = (
        w_init,
        logdensity(w_init),
        ls0,
        eye,
        jnp.zeros((), dtype),
        jnp.zeros(p, dtype),
        jnp.zeros((p, p), dtype),
    )
    ts = jnp.arange(total)
    (_, _, ls, _, _, _, _), (ws, accepted) = jax.lax.scan(step, init, (jax.random.split(key, total), ts))
    kept = ws[warmup:][thin - 1 :: thin]
    return kept, accepted[warmup:].mean(), jnp.exp(ls)


def nuts_chain(
    key: Key,
    w_init: Float[Array, " param"],
    logdensity: LogDensity,
    *,
    warmup: int,
    draws: int,
    target_accept: float = 0.8,
    max_doublings: int = 6,
) -> tuple[Float[Array, "draw param"], Int[Array, ""], Float[Array, ""]]:
    """A NUTS chain after window adaptation (blackjax).

    **Returns:** ``(draws, p)`` states, the number of divergent transitions, the step size."""
    grad_density = forward_value_and_grad(logdensity)
    kw, kd = jax.random.split(key)
    adapt = blackjax.window_adaptation(
        blackjax.nuts,
        grad_density,
        is_mass_matrix_diagonal=False,
        initial_inverse_mass_matrix=jnp.eye(w_init.shape[-1], dtype=w_init.dtype),
        target_acceptance_rate=target_accept,
        max_num_doublings=max_doublings,
    )
    (state, params), _ = adapt.run(kw, w_init, num_steps=warmup)
    kernel = blackjax.nuts(grad_density, **params)

    def step(st, k):
        st, info = kernel.step(k, st)
        return st, (st.position, info.is_divergent)

    _, (ws, divergent) = jax.lax.scan(step, state, jax.random.split(kd, draws))
    return ws, divergent.sum(), params["step_size"]
