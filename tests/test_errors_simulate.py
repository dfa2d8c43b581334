"""Bad input to simulate, simulate_batch, find_gait and generate_gait_dataset."""

import subprocess
import sys
import textwrap

import jax.numpy as jnp
import pytest

import jaxid


def test_infinite_tolerances_are_refused():
    m = jaxid.Pendulum(m=1.0, L=1.0)
    with pytest.raises(ValueError, match="rtol must be a positive number and finite, got inf"):
        jaxid.simulate(m, jnp.array([0.1, 0.0]), jnp.linspace(0, 1, 3), rtol=float("inf"))
    with pytest.raises(ValueError, match="dt0 must be a positive number and finite"):
        jaxid.simulate(m, jnp.array([0.1, 0.0]), jnp.linspace(0, 1, 3), dt0=-0.1)


def test_empty_batch_is_named():
    with pytest.raises(ValueError, match="simulate_batch: the batch is empty"):
        jaxid.simulate_batch(jaxid.Pendulum(m=jnp.ones(0), L=1.0), jnp.zeros(2), jnp.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="simulate_batch: the batch is empty"):
        jaxid.simulate_batch(jaxid.Pendulum(m=1.0, L=1.0), jnp.zeros((0, 2)), jnp.linspace(0, 1, 3))


def test_tiny_walker_step_is_refused_before_work():
    w = jaxid.Walker(m=70.0, k=9000.0, l0=0.7)
    with pytest.raises(ValueError, match=r"dt0=1e-12 needs about 2e\+12 steps"):
        jaxid.simulate(w, w.initial_state(0.66, 1.0), jnp.linspace(0, 1, 3), dt0=1e-12)


def test_find_gait_batch_shapes():
    w = jaxid.Walker(m=jnp.array([70.0, 72.0]), k=9000.0, l0=0.7)
    with pytest.raises(
        ValueError, match=r"find_gait: height must be a scalar or match .*\(2,\), got shape \(3,\)"
    ):
        jaxid.find_gait(w, jnp.array([0.6, 0.6, 0.6]))
    with pytest.raises(ValueError, match="find_gait: vx_guess must be a scalar or match"):
        jaxid.find_gait(w, height_ratio=0.9, vx_guess=jnp.ones(3))


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(noise=float("inf")), "noise must be finite"),
        (dict(duration=1.0, save_dt=0.3), "save_dt .* must divide duration"),
        (dict(duration=1.0, save_dt=2.0), "save_dt .* exceeds duration"),
    ],
)
def test_gait_dataset_options(options, match):
    with pytest.raises(ValueError, match=f"generate_gait_dataset: {match}"):
        jaxid.generate_gait_dataset(4, progress=False, **options)


def test_float32_is_refused_by_analyze_profile_and_find_gait():
    # tests/conftest.py enables x64 for the test process, so float32 runs in a subprocess
    code = textwrap.dedent(
        """
        import jax.numpy as jnp, numpy as np
        import jaxid
        from jaxid.identify import Experiment, analyze, profile_likelihood
        e = Experiment(lambda p: p[0] * jnp.exp(-p[1] * jnp.linspace(0, 1, 5)), 0.1)
        calls = [lambda: analyze(e, np.array([1.0, 1.0])),
                 lambda: profile_likelihood(e, np.array([1.0, 1.0])),
                 lambda: jaxid.find_gait(jaxid.Walker(m=70.0, k=9000.0, l0=0.7), height_ratio=0.94),
                 lambda: jaxid.generate_gait_dataset(2, progress=False)]
        for call in calls:
            try:
                call()
                print("ANSWERED")
            except RuntimeError as err:
                print(str(err).split(":")[0], "needs float64" in str(err))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = out.stdout.split()
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "analyze True",
        "profile_likelihood True",
        "find_gait True",
        "generate_gait_dataset True",
    ], (lines, out.stderr[-2000:])
