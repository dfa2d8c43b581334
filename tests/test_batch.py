"""simulate_batch(): chunking, padding, broadcasting, failure reporting and sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxid import ForcedDampedPendulum, Pendulum, simulate, simulate_batch

TS = jnp.arange(20) * 0.05


@pytest.fixture(scope="module")
def batch():
    model = ForcedDampedPendulum.sample(jax.random.PRNGKey(3), 11)
    y0 = jnp.stack([jnp.linspace(-1.5, 1.5, 11), jnp.zeros(11)], -1)
    reference = jax.vmap(lambda m, y: simulate(m, y, TS))(model, y0)
    return model, y0, reference


def test_chunks_and_padding_match_one_vmap(batch):
    model, y0, reference = batch
    out = simulate_batch(model, y0, TS, chunk_size=4, progress=False)  # 3 chunks, the last padded
    assert isinstance(out.obs, np.ndarray) and out.obs.shape == (11, 20, 1)
    np.testing.assert_allclose(out.obs, reference.obs, rtol=0, atol=1e-12)
    assert out.success.all()


def test_scalar_parameters_and_state_broadcast():
    model = Pendulum(m=jnp.array([1.0, 2.0, 3.0]), L=1.0)
    out = simulate_batch(model, jnp.array([0.5, 0.0]), TS, progress=False)
    assert out.obs.shape == (3, 20, 1)
    # the angle does not depend on m when b = 0
    np.testing.assert_allclose(out.obs[0], out.obs[2], atol=1e-12)


def test_failed_records_are_counted():
    model = ForcedDampedPendulum.sample(jax.random.PRNGKey(0), 4)
    with pytest.warns(UserWarning, match="4 of 4 records failed"):
        out = simulate_batch(model, jnp.array([1.0, 0.0]), TS, max_steps=2, progress=False)
    assert not out.success.any()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda m, y: simulate_batch(m, y[:3], TS), "model has 11 records but y0 has 3"),
        (lambda m, y: simulate_batch(m, y[:, :1], TS), r"y0 must have shape \(N, 2\)"),
        (lambda m, y: simulate_batch(m, y, TS, chunk_size=0), "chunk_size must be a positive int"),
        (lambda m, y: simulate_batch(m, y, TS, throw=True), "throw is not supported"),
        (lambda m, y: simulate_batch(m, y, TS[::-1]), "ts must be strictly increasing"),
        (
            lambda m, y: simulate_batch(ForcedDampedPendulum(omega=1.0), y[0], TS),
            "nothing to batch over",
        ),
    ],
)
def test_bad_input_raises(batch, call, match):
    model, y0, _ = batch
    with pytest.raises(ValueError, match=match):
        call(model, y0)


SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jaxid import ForcedDampedPendulum, simulate_batch
    assert jax.local_device_count() == 2, jax.local_devices()
    model = ForcedDampedPendulum.sample(jax.random.PRNGKey(5), 9)
    y0 = jnp.stack([jnp.linspace(-1, 1, 9), jnp.zeros(9)], -1)
    ts = jnp.arange(20) * 0.05
    both = simulate_batch(model, y0, ts, chunk_size=3, progress=False)  # chunk rounded up to 4
    one = simulate_batch(model, y0, ts, devices=jax.local_devices()[:1], progress=False)
    assert both.obs.shape == (9, 20, 1)
    assert np.abs(both.obs - one.obs).max() < 1e-12
    # The gait data set: each device's records in blocks sorted by period (320 per device, blocks
    # of 160) give the same records, bit for bit, as one device (blocks of 160 of 640).
    from jaxid import generate_gait_dataset
    kw = dict(seed=3, duration=1.0, chunk_size=640, progress=False)
    two = generate_gait_dataset(640, **kw)
    single = generate_gait_dataset(640, devices=jax.local_devices()[:1], **kw)
    for name in ("params", "obs", "initial_states", "gait_eigenvalue", "gait_step_time", "gait_step_length"):
        np.testing.assert_array_equal(getattr(two, name), getattr(single, name), err_msg=name)
    print("SHARDED-OK")
    """
)


def test_sharded_across_two_host_devices():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SHARDED-OK" in proc.stdout
