r"""Estimators: networks from a trajectory ``(time, channel)`` to a parameter vector.

- :class:`MLP`: the gait study's fully connected network on the flattened trajectory
  (default 7 hidden layers of 50 units, ReLU).
- :class:`CNN`: 1-D convolutions over time (stride 2), global average pooling, a linear head.
- :class:`GRU`: a gated recurrent unit run over time; a linear head on its last hidden state,
  :math:`h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t`.

All three take one record (no batch axis; ``jax.vmap`` them) and return ``(out_size,)``.
:func:`make_network` builds one from a name and options, which is how trained estimators are
saved and rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Float

from ..typing import Key

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
}
ARCHITECTURES = ("mlp", "cnn", "gru")


def _activation(name: str, where: str) -> Callable:
    if name not in ACTIVATIONS:
        raise ValueError(f"{where}: unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _positive_int(value, name: str, where: str) -> int:
    if not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return value


class MLP(eqx.Module):
    """Fully connected network on the flattened ``(time, channel)`` input."""

    mlp: eqx.nn.MLP

    def __init__(
        self,
        in_shape: tuple[int, int],
        out_size: int,
        *,
        depth: int = 7,
        width: int = 50,
        activation: str = "relu",
        key: Key,
    ):
        where = "MLP"
        _positive_int(depth, "depth", where)
        _positive_int(width, "width", where)
        self.mlp = eqx.nn.MLP(
            in_size=int(in_shape[0] * in_shape[1]),
            out_size=out_size,
            width_size=width,
            depth=depth,
            activation=_activation(activation, where),
            key=key,
        )

    def __call__(self, x: Float[Array, "time channel"]) -> Float[Array, " out"]:
        return self.mlp(x.reshape(-1))


class CNN(eqx.Module):
    """1-D convolutions over time: ``depth`` layers of ``width`` filters (kernel ``kernel``,
    stride 2), then the mean over time and a linear head."""

    convs: tuple[eqx.nn.Conv1d, ...]
    head: eqx.nn.Linear
    activation: Callable = eqx.field(static=True)

    def __init__(
        self,
        in_shape: tuple[int, int],
        out_size: int,
        *,
        depth: int = 4,
        width: int = 32,
        kernel: int = 5,
        activation: str = "relu",
        key: Key,
    ):
        where = "CNN"
        _positive_int(depth, "depth", where)
        _positive_int(width, "width", where)
        _positive_int(kernel, "kernel", where)
        keys = jax.random.split(key, depth + 1)
        chans = [int(in_shape[1])] + [width] * depth
        self.convs = tuple(
            eqx.nn.Conv1d(chans[i], chans[i + 1], kernel, stride=2, padding=kernel // 2, key=keys[i])
            for i in range(depth)
        )
        self.head = eqx.nn.Linear(width, out_size, key=keys[-1])
        self.activation = _activation(activation, where)

    def __call__(self, x: Float[Array, "time channel"]) -> Float[Array, " out"]:
        h = x.T
        for conv in self.convs:
            h = self.activation(conv(h))
        return self.head(jnp.mean(h, axis=-1))


class GRU(eqx.Module):
    """A GRU cell of ``width`` hidden units scanned over time; a linear head on the last state."""

    cell: eqx.nn.GRUCell
    head: eqx.nn.Linear

    def __init__(
        self,
        in_shape: tuple[int, int],
        out_size: int,
        *,
        width: int = 64,
        key: Key,
    ):
        _positive_int(width, "width", "GRU")
        k1, k2 = jax.random.split(key)
        self.cell = eqx.nn.GRUCell(int(in_shape[1]), width, key=k1)
        self.head = eqx.nn.Linear(width, out_size, key=k2)

    def __call__(self, x: Float[Array, "time channel"]) -> Float[Array, " out"]:
        def step(h, xt):
            return self.cell(xt, h), None

        h, _ = jax.lax.scan(step, jnp.zeros(self.cell.hidden_size, x.dtype), x)
        return self.head(h)


def make_network(
    arch: str,
    in_shape: tuple[int, int],
    out_size: int,
    *,
    key: Key,
    dtype: DTypeLike = jnp.float32,
    **options,
) -> eqx.Module:
    """Build ``"mlp"``, ``"cnn"`` or ``"gru"`` for inputs of shape ``in_shape = (time, channel)``.

    ``options`` go to the class: ``depth``, ``width``, ``activation`` (MLP, CNN), ``kernel`` (CNN),
    ``width`` (GRU). Weights are ``dtype`` (float32 by default, also under ``jax_enable_x64``).
    """
    classes = {"mlp": MLP, "cnn": CNN, "gru": GRU}
    if arch not in classes:
        raise ValueError(f"make_network: unknown arch {arch!r}; choose one of {list(ARCHITECTURES)}")
    if len(in_shape) != 2:
        raise ValueError(f"make_network: in_shape must be (time, channel), got {in_shape}")
    try:
        net = classes[arch](tuple(int(s) for s in in_shape), int(out_size), key=key, **options)
    except TypeError as err:
        raise ValueError(f"make_network: bad options for {arch!r}: {err}") from None
    # float32 weights whatever jax_enable_x64 says: training speed, and inputs are float32.
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, net)
