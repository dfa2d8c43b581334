r"""The Markov chains behind :func:`jaxid.inference.sample_posterior`, in whitened coordinates.

Both run one chain from ``w_init`` on a log-density ``logdensity(w)`` whose identifiable
directions have about unit scale (the Fisher preconditioning of the caller), and both are pure
functions of their key, so they ``vmap`` over chains and records.

- :func:`rwm_chain`: random-walk Metropolis with a Gaussian proposal
  :math:`w' = w + s\,L\,\xi`, :math:`\xi \sim N(0, I)`. Warm-up in two halves: the first adapts
  the scale :math:`s` (Robbins-Monro on :math:`\log s`, gain :math:`(t + 10)^{-0.6}`) towards the
  acceptance rate ``target_accept`` with :math:`L = I`; the second sets :math:`L L^T` to the
  covariance of the last half of the first half's draws (Haario et al. 2001) and adapts :math:`s`
  again from :math:`2.38/\sqrt{p}`. The kept draws run with both fixed, so the chain is a
  reversible Metropolis chain with the posterior as its invariant distribution. Every ``thin``-th
  state is kept. One log-density evaluation per step, no gradient.
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

import blackjax
import jax
import jax.numpy as jnp

__all__ = ["forward_value_and_grad", "nuts_chain", "rwm_chain"]


def forward_value_and_grad(f):
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


def _rwm_phase(key, w, lp, log_scale, chol, n, *, logdensity, target, adapt):
    p = w.shape[-1]

    def step(carry, inp):
        w, lp, ls = carry
        k, t = inp
        k1, k2 = jax.random.split(k)
        prop = w + jnp.exp(ls) * (chol @ jax.random.normal(k1, (p,), dtype=w.dtype))
        lpp = logdensity(prop)
        acc = jnp.exp(jnp.minimum(jnp.where(jnp.isnan(lpp), -jnp.inf, lpp) - lp, 0.0))
        accept = jax.random.uniform(k2, dtype=w.dtype) < acc
        w = jnp.where(accept, prop, w)
        lp = jnp.where(accept, lpp, lp)
        if adapt:
            ls = ls + (acc - target) / (t + 10.0) ** 0.6
        return (w, lp, ls), (w, accept)

    ts = jnp.arange(n, dtype=w.dtype)
    (w, lp, ls), (ws, accepted) = jax.lax.scan(step, (w, lp, log_scale), (jax.random.split(key, n), ts))
    return w, lp, ls, ws, accepted


def rwm_chain(key, w_init, logdensity, *, warmup: int, draws: int, thin: int = 5, target_accept=0.3):
    """A random-walk Metropolis chain (see the module docstring).

    **Returns:** ``(draws, p)`` kept states, the acceptance rate of the kept part, and the final
    proposal scale."""
    p = w_init.shape[-1]
    k1, k2, k3 = jax.random.split(key, 3)
    ls0 = jnp.log(2.38 / jnp.sqrt(p)).astype(w_init.dtype)
    lp0 = logdensity(w_init)
    half = max(warmup // 2, 2)
    eye = jnp.eye(p, dtype=w_init.dtype)
    kw = dict(logdensity=logdensity, target=target_accept)
    w, lp, _, ws, _ = _rwm_phase(k1, w_init, lp0, ls0, eye, half, adapt=True, **kw)
    tail = ws[half // 2 :]
    cov = jnp.atleast_2d(jnp.cov(tail.T)) + 1e-10 * eye
    chol = jnp.linalg.cholesky(cov)
    chol = jnp.where(jnp.all(jnp.isfinite(chol)), chol, eye)  # a chain stuck in warm-up keeps I
    w, lp, ls, _, _ = _rwm_phase(k2, w, lp, ls0, chol, max(warmup - half, 1), adapt=True, **kw)
    _, _, _, ws, accepted = _rwm_phase(k3, w, lp, ls, chol, draws * thin, adapt=False, **kw)
    return ws[thin - 1 :: thin], accepted.mean(), jnp.exp(ls)


def nuts_chain(key, w_init, logdensity, *, warmup: int, draws: int, target_accept=0.8, max_doublings=6):
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
