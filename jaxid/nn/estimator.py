"""A trained parameter estimator: networks (a deep ensemble) plus the standardisation of inputs
and targets, with prediction, saving and loading."""

from __future__ import annotations

import os
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .. import io as jio
from ..typing import Key
from .networks import make_network

FORMAT_VERSION = 2  # 2: a checksummed framed file (jaxid.io); 1 had no checksum
KIND = "estimator"


def check_init(
    where: str, members, names: Sequence[str], in_shape
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The checks of an estimator's ``init`` (:class:`Estimator`, ``PosteriorEstimator``):
    ``members`` a positive int, at least one name; returns ``names`` and ``in_shape`` as tuples."""
    if not (isinstance(members, int) and members >= 1):
        raise ValueError(f"{where}: members must be a positive int, got {members!r}")
    names = tuple(str(n) for n in names)
    if not names:
        raise ValueError(f"{where}: names must name at least one parameter")
    return names, tuple(int(s) for s in in_shape)


def standardisation(in_shape, p: int, x_mean, x_scale, mean, scale) -> tuple[jax.Array, ...]:
    """The four standardisation arrays of an estimator as float32 (``None``: no standardisation,
    zeros for the means and ones for the scales)."""

    def f32(a, default):
        return default if a is None else jnp.asarray(a, jnp.float32)

    return (
        f32(x_mean, jnp.zeros(in_shape, jnp.float32)),
        f32(x_scale, jnp.ones(in_shape, jnp.float32)),
        f32(mean, jnp.zeros(p, jnp.float32)),
        f32(scale, jnp.ones(p, jnp.float32)),
    )


def check_inputs(x, in_shape: tuple[int, ...], where: str) -> np.ndarray:
    """``x`` as float32 after checking it is a finite, non-empty ``(records, *in_shape)`` batch."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or tuple(x.shape[1:]) != in_shape:
        raise ValueError(f"{where}: x must have shape (records, {in_shape[0]}, {in_shape[1]}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: x is empty (0 records)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: x contains NaN or inf")
    return x


class Estimator(eqx.Module):
    r"""Networks that map a trajectory ``(time, channel)`` to parameters ``names``.

    ``network`` holds ``members`` networks stacked along a leading axis (a deep ensemble, trained
    together under ``vmap``). Inputs are standardised feature by feature,
    :math:`\tilde x = (x - \mu_x)/\sigma_x`; the networks predict standardised targets
    :math:`\tilde y = (y - \mu_y)/\sigma_y`, which :meth:`predict` maps back to natural units.
    """

    network: eqx.Module
    x_mean: Float[Array, "time channel"]
    x_scale: Float[Array, "time channel"]
    y_mean: Float[Array, " param"]
    y_scale: Float[Array, " param"]
    arch: str = eqx.field(static=True)
    options: tuple = eqx.field(static=True)
    in_shape: tuple[int, int] = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    members: int = eqx.field(static=True)

    @classmethod
    def init(
        cls,
        arch: str,
        in_shape: tuple[int, int],
        names: Sequence[str],
        *,
        key: Key,
        members: int = 1,
        x_mean: Float[ArrayLike, "time channel"] | None = None,
        x_scale: Float[ArrayLike, "time channel"] | None = None,
        y_mean: Float[ArrayLike, " param"] | None = None,
        y_scale: Float[ArrayLike, " param"] | None = None,
        **options,
    ) -> Estimator:
        """Fresh networks (``members`` of them, from ``key``) with the given standardisation
        (default: none)."""
        names, in_shape = check_init("Estimator.init", members, names, in_shape)
        keys = jax.random.split(key, members)
        network = eqx.filter_vmap(lambda k: make_network(arch, in_shape, len(names), key=k, **options))(keys)
        x_mean, x_scale, y_mean, y_scale = standardisation(
            in_shape, len(names), x_mean, x_scale, y_mean, y_scale
        )
        return cls(
            network=network,
            x_mean=x_mean,
            x_scale=x_scale,
            y_mean=y_mean,
            y_scale=y_scale,
            arch=arch,
            options=tuple(sorted(options.items())),
            in_shape=in_shape,
            names=names,
            members=members,
        )

    def _check_inputs(self, x, where: str) -> np.ndarray:
        return check_inputs(x, self.in_shape, where)

    def predict_members(
        self, x: Float[ArrayLike, "records time channel"], *, batch_size: int = 4096
    ) -> Float[np.ndarray, "member records param"]:
        """Each member's predictions, ``(members, records, param)``, in natural units."""
        x = self._check_inputs(x, "Estimator.predict")
        return np.asarray(_predict_members(self, jnp.asarray(x), batch_size))

    def predict(
        self, x: Float[ArrayLike, "records time channel"], *, batch_size: int = 4096, return_std: bool = False
    ) -> (
        Float[np.ndarray, "records param"]
        | tuple[Float[np.ndarray, "records param"], Float[np.ndarray, "records param"]]
    ):
        """The ensemble mean ``(records, param)``; with ``return_std``, also the members' standard
        deviation (the ensemble's predictive spread; zeros for one member)."""
        preds = self.predict_members(x, batch_size=batch_size)
        mean = preds.mean(0)
        return (mean, preds.std(0)) if return_std else mean

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write to ``path`` atomically (:mod:`jaxid.io`): a JSON header line (architecture, names,
        ``metadata``, the payload's length and SHA-256) then the arrays
        (``equinox.tree_serialise_leaves``). Read back with :func:`load_estimator`."""
        header = dict(
            arch=self.arch,
            options=dict(self.options),
            in_shape=list(self.in_shape),
            names=list(self.names),
            members=self.members,
            metadata=metadata or {},
        )
        jio.write_framed(path, header, jio.tree_to_bytes(self), kind=KIND, format=FORMAT_VERSION)


def load_estimator(path: str | os.PathLike) -> tuple[Estimator, dict]:
    """Read an estimator written by :meth:`Estimator.save`; returns ``(estimator, metadata)``.

    Raises :class:`jaxid.io.CorruptFileError` naming the file if it is empty, truncated, not an
    estimator file, or its bytes do not match their checksum."""

    def build(header):
        return Estimator.init(
            header["arch"],
            tuple(header["in_shape"]),
            header["names"],
            key=jax.random.key(0),
            members=header["members"],
            **header["options"],
        )

    est, header = jio.read_module(path, build, kind=KIND, what="an estimator", formats=(FORMAT_VERSION,))
    return est, header["metadata"]


@eqx.filter_jit
def _predict_members(est: Estimator, x, batch_size: int):
    xs = (x - est.x_mean) / est.x_scale

    def member(net):
        return jax.lax.map(net, xs, batch_size=min(batch_size, xs.shape[0]))

    ys = eqx.filter_vmap(member)(est.network)
    return ys * est.y_scale + est.y_mean
