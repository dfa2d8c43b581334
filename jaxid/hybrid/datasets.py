r"""Task-structured data sets for the hybrid models, with every latent kept for evaluation.

A *task* is a group of sequences that share the unmodelled factors ``z_n``; each sequence has its
own physics latent ``z_p`` and initial state. Meta-learning draws a context set of ``K``
sequences of the same task. :func:`make_hybrid_data` returns four splits, each made of whole
tasks:

- ``train`` and ``val``: tasks drawn from the in-distribution (ID) priors;
- ``test``: new ID tasks;
- ``ood``: tasks whose ``z_p`` and ``z_n`` are drawn beyond the upper end of each prior range,
  ``[b, b + ood_width (b - a)]`` for a prior ``[a, b]`` (disjoint from the ID ranges).

Sequences are simulated by the truth model with :func:`jaxid.simulate_batch` over the full window
(training window plus prediction window), then get Gaussian noise of the system's sd.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from ..errors import check_positive_int, check_real_number
from ..simulate import simulate_batch
from ..typing import Key
from .systems import System, get_system


@dataclass
class HybridSplit:
    """One split, arrays with leading axes ``(task, sequence)``.

    - ``obs``: noisy observations over the full window, ``(task, seq, n_full, channel)``, float32.
    - ``clean``: the same without noise (float32), for prediction scores.
    - ``z_p``: physics latents ``(task, seq, physics)``; ``z_n``: unmodelled factors
      ``(task, seq, factor)`` (equal along ``seq``); ``x0``: true initial states.
    """

    obs: Float[np.ndarray, "task sequence time channel"]
    clean: Float[np.ndarray, "task sequence time channel"]
    z_p: Float[np.ndarray, "task sequence physics"]
    z_n: Float[np.ndarray, "task sequence factor"]
    x0: Float[np.ndarray, "task sequence state"]

    @property
    def n_tasks(self) -> int:
        return self.obs.shape[0]

    @property
    def per_task(self) -> int:
        return self.obs.shape[1]

    def flat(self, name: str) -> Float[np.ndarray, "sequence ..."]:
        """An array with the task and sequence axes merged."""
        a = getattr(self, name)
        return a.reshape(-1, *a.shape[2:])

    def first(self, per_task: int) -> HybridSplit:
        """The split cut to the first ``per_task`` sequences of every task."""
        return replace(self, **{f.name: getattr(self, f.name)[:, :per_task] for f in fields(self)})


@dataclass
class HybridData:
    """A system's four splits (``train``, ``val``, ``test``, ``ood``) and how they were made."""

    system: System
    train: HybridSplit
    val: HybridSplit
    test: HybridSplit
    ood: HybridSplit
    config: dict[str, Any]

    @property
    def splits(self) -> dict[str, HybridSplit]:
        return {"train": self.train, "val": self.val, "test": self.test, "ood": self.ood}

    def physics_ranges(self, split: str) -> tuple[tuple[float, float], ...]:
        """The ranges the ``z_p`` of ``split`` were drawn from (shifted beyond the system's for
        ``"ood"``): the prior of, e.g., :func:`jaxid.hybrid.zp_posterior` on that split."""
        if split not in self.splits:
            raise ValueError(
                f"HybridData.physics_ranges: split must be one of {list(self.splits)}, got {split!r}"
            )
        return _ranges(self.system, self.config["ood_width"] if split == "ood" else None)[0]

    def scales(
        self,
    ) -> tuple[Float[np.ndarray, " state"], Float[np.ndarray, " state"], Float[np.ndarray, " channel"]]:
        """``(state_scale, rate_scale, obs_scale)`` from the training window of the training
        split's observations (:meth:`System.scales`; ``obs_scale``: their overall sd per channel)."""
        obs = self.train.obs[:, :, : self.system.n_train]
        state, rate = self.system.scales(obs)
        return state, rate, np.full(obs.shape[-1], max(float(obs.std()), 1e-6))


def shifted_ranges(ranges: Sequence[tuple[float, float]], width: float) -> tuple[tuple[float, float], ...]:
    """The out-of-distribution ranges ``[b, b + width (b - a)]`` of priors ``[a, b]``."""
    return tuple((b, b + width * (b - a)) for a, b in ranges)


def _draw(key, ranges, shape):
    lo = jnp.asarray([r[0] for r in ranges])
    hi = jnp.asarray([r[1] for r in ranges])
    return lo + (hi - lo) * jax.random.uniform(key, (*shape, len(ranges)))


def _ranges(system: System, ood_width: float | None):
    """The physics and factor ranges of a split: the system's, or shifted by ``ood_width``."""
    p_ranges, f_ranges = system.physics_ranges, system.factor_ranges
    if ood_width is None:
        return p_ranges, f_ranges
    return shifted_ranges(p_ranges, ood_width), shifted_ranges(f_ranges, ood_width)


def _split(system: System, key, n_tasks: int, per_task: int, ood_width: float | None, progress: bool):
    k_p, k_n, k_x0, k_noise = jax.random.split(key, 4)
    p_ranges, f_ranges = _ranges(system, ood_width)
    z_p = _draw(k_p, p_ranges, (n_tasks, per_task))
    z_n = jnp.broadcast_to(_draw(k_n, f_ranges, (n_tasks, 1)), (n_tasks, per_task, len(f_ranges)))
    n = n_tasks * per_task
    x0 = system.initial_states(k_x0, n)
    model = system.truth(z_p.reshape(n, -1), z_n.reshape(n, -1))
    sim = simulate_batch(model, x0, jnp.asarray(system.ts), progress=progress, max_steps=100_000)
    if not np.all(sim.success):
        raise RuntimeError(f"{system.name}: {int(np.sum(~sim.success))} of {n} truth simulations failed")
    clean = np.asarray(sim.obs)
    rng = np.random.default_rng(int(jax.random.randint(k_noise, (), 0, 2**31 - 1)))
    obs = clean + system.noise * rng.standard_normal(clean.shape)
    shape = (n_tasks, per_task)
    return HybridSplit(
        obs=obs.reshape(*shape, *obs.shape[1:]).astype(np.float32),
        clean=clean.reshape(*shape, *clean.shape[1:]).astype(np.float32),
        z_p=np.asarray(z_p, np.float64),
        z_n=np.asarray(z_n, np.float64),
        x0=np.asarray(x0).reshape(*shape, -1),
    )


def make_hybrid_data(
    system: str | System,
    *,
    key: Key,
    tasks: int = 40,
    per_task: int = 20,
    val_tasks: int = 5,
    test_tasks: int = 10,
    ood_tasks: int = 10,
    ood_width: float = 0.5,
    progress: bool = True,
) -> HybridData:
    """Simulate the four splits of ``system`` (see the module docstring).

    **Arguments:** ``tasks``, ``val_tasks``, ``test_tasks``, ``ood_tasks`` (number of tasks per
    split, each >= 1), ``per_task`` (sequences per task, >= 2), ``ood_width`` (> 0, the width of
    the OOD ranges as a fraction of the ID ranges), ``progress`` (progress bars).
    """
    system = get_system(system)
    for name, value, low in (
        ("tasks", tasks, 1),
        ("per_task", per_task, 2),
        ("val_tasks", val_tasks, 1),
        ("test_tasks", test_tasks, 1),
        ("ood_tasks", ood_tasks, 1),
    ):
        check_positive_int("make_hybrid_data", name, value, minimum=low)
    check_real_number("make_hybrid_data", "ood_width", ood_width, low=0)
    keys = jax.random.split(key, 4)
    counts = {"train": tasks, "val": val_tasks, "test": test_tasks, "ood": ood_tasks}
    splits = {
        name: _split(system, k, count, per_task, ood_width if name == "ood" else None, progress)
        for (name, count), k in zip(counts.items(), keys, strict=True)
    }
    config = dict(
        system=system.name,
        per_task=per_task,
        ood_width=ood_width,
        **{f"{k}_tasks": v for k, v in counts.items()},
    )
    return HybridData(system=system, config=config, **splits)
