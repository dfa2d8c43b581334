"""Hybrid generative models: MCC, data, the physics parts, the three models' training, the
context encoder's permutation invariance, checkpoints and ``jaxid hybrid`` at a tiny size."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxid import io as jio
from jaxid import simulate
from jaxid.hybrid import (
    MODEL_KINDS,
    SYSTEMS,
    HybridTrainConfig,
    evaluate,
    fit,
    get_system,
    infer,
    load_model,
    make_hybrid_data,
    make_model,
    mcc,
    save_model,
    training,
)
from jaxid.io import CorruptFileError

# ---------------------------------------------------------------- MCC against hand-computed cases


def test_mcc_permuted_and_sign_flipped_latents_give_one():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 3))
    est = np.stack([-2.0 * z[:, 2] + 1.0, 0.5 * z[:, 0], -z[:, 1] + 3.0], -1)
    value, match = mcc(z, est, return_matching=True)
    assert value == pytest.approx(1.0, abs=1e-12)
    assert list(match) == [1, 2, 0]


def test_mcc_independent_latents_give_about_zero():
    rng = np.random.default_rng(1)
    z, est = rng.standard_normal((20_000, 2)), rng.standard_normal((20_000, 2))
    # |corr| of independent samples is about sqrt(2 / (pi N)) = 0.006 for N = 20,000
    assert mcc(z, est) < 0.03


def test_mcc_hand_computed_two_by_two():
    # z = (t, alternating), e = (t, two up two down) with t = 1..4. Centred columns give the
    # |correlation| matrix [[1, 2/sqrt(5)], [1/sqrt(5), 0]]: the identity matching scores
    # (1 + 0)/2, the swapped one (2/sqrt(5) + 1/sqrt(5))/2 = 3/(2 sqrt(5)) = 0.671, the maximum.
    z = np.array([[1.0, 1.0], [2.0, -1.0], [3.0, 1.0], [4.0, -1.0]])
    e = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, -1.0], [4.0, -1.0]])
    value, match = mcc(z, e, return_matching=True)
    assert value == pytest.approx(3 / (2 * np.sqrt(5)), abs=1e-12)
    assert list(match) == [1, 0]


def test_mcc_errors_and_constant_columns():
    z = np.arange(10.0)[:, None]
    assert mcc(z, np.ones((10, 1))) == 0.0  # a constant latent correlates with nothing
    assert mcc(z, np.concatenate([np.ones((10, 1)), 2 * z], 1)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fewer than z_true"):
        mcc(np.ones((10, 2)), np.ones((10, 1)))
    with pytest.raises(ValueError, match="same N"):
        mcc(np.ones((10, 1)), np.ones((9, 1)))
    with pytest.raises(ValueError, match="finite"):
        mcc(np.full((10, 1), np.nan), np.ones((10, 1)))


# ---------------------------------------------------------------- data and physics parts


@pytest.fixture(scope="module")
def pendulum_data():
    return make_hybrid_data(
        "pendulum",
        key=jax.random.PRNGKey(0),
        tasks=8,
        per_task=6,
        val_tasks=2,
        test_tasks=4,
        ood_tasks=3,
        progress=False,
    )


def test_data_tasks_share_factors_and_ood_ranges_are_shifted(pendulum_data):
    d, sys = pendulum_data, pendulum_data.system
    assert d.train.obs.shape == (8, 6, sys.n_full, 1) and d.train.obs.dtype == np.float32
    assert np.all(d.train.z_n == d.train.z_n[:, :1])  # shared within a task
    assert np.unique(d.train.z_n[:, 0, 0]).size == 8  # and different across tasks
    for split, inside in (("test", True), ("ood", False)):
        z_p = getattr(d, split).z_p[..., 0]
        lo, hi = sys.physics_ranges[0]
        assert np.all((z_p >= lo) & (z_p <= hi)) == inside
    lo, hi = sys.physics_ranges[0]
    assert np.all((d.ood.z_p >= hi) & (d.ood.z_p <= hi + 0.5 * (hi - lo)))
    # the ranges the data report for each split are those (the ood width 0.5 written out here)
    assert d.physics_ranges("test") == d.physics_ranges("train") == ((lo, hi),)
    assert d.physics_ranges("ood") == ((hi, hi + 0.5 * (hi - lo)),)
    with pytest.raises(ValueError, match="split must be one of"):
        d.physics_ranges("oood")
    first = d.train.first(2)
    assert first.obs.shape[:2] == (8, 2) and np.array_equal(first.z_p, d.train.z_p[:, :2])
    # the noise has the system's sd
    assert np.std(d.train.obs - d.train.clean) == pytest.approx(sys.noise, rel=0.1)
    again = make_hybrid_data(
        "pendulum",
        key=jax.random.PRNGKey(0),
        tasks=8,
        per_task=6,
        val_tasks=2,
        test_tasks=4,
        ood_tasks=3,
        progress=False,
    )
    np.testing.assert_array_equal(again.train.obs, d.train.obs)


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_physics_part_is_the_truth_without_the_unmodelled_effects(name):
    """The decoders' physics part, run in float32 with its fixed steps, against the truth model
    with the unmodelled factors set to zero (adaptive float64 solve). Tolerance 2e-3: the fixed
    Bogacki-Shampine step (third order) at dt / substeps in float32."""
    sys = get_system(name)
    z_p = np.array([np.mean(sys.physics_ranges[0])])
    x0 = np.asarray(sys.initial_states(jax.random.PRNGKey(3), 1)[0])
    off = np.array([1.0 if n == "f" else 0.0 for n in sys.factor_names])  # no amplitude, any frequency
    truth = simulate(sys.truth(z_p, off), x0, jnp.asarray(sys.ts[: sys.n_train]))
    n_obs = len(sys.observe(np.zeros(sys.state_size)))
    scales = (np.ones(sys.state_size), np.ones(sys.state_size), np.ones(n_obs))
    model = make_model("aphynity", sys, scales, key=jax.random.PRNGKey(0))
    states = model.decoder.solve(
        jnp.asarray(z_p, jnp.float32), None, jnp.asarray(x0, jnp.float32), sys.n_train, hybrid=False
    )
    assert states.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(sys.observe(states)), np.asarray(truth.obs), atol=2e-3)


def test_data_errors():
    with pytest.raises(ValueError, match="per_task"):
        make_hybrid_data("pendulum", key=jax.random.PRNGKey(0), per_task=1)
    with pytest.raises(ValueError, match="ood_width"):
        make_hybrid_data("pendulum", key=jax.random.PRNGKey(0), ood_width=0.0)
    with pytest.raises(ValueError, match="unknown system"):
        make_hybrid_data("pendulumm", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="unknown model kind"):
        make_model(
            "vae", get_system("pendulum"), (np.ones(2), np.ones(2), np.ones(1)), key=jax.random.PRNGKey(0)
        )


# ---------------------------------------------------------------- the three models train

TINY = HybridTrainConfig(
    steps=240, batch_size=16, learning_rate=3e-3, context_size=3, steps_per_call=60, progress=False
)


@pytest.fixture(scope="module")
def trained(pendulum_data):
    out = {}
    for kind in MODEL_KINDS:
        model = make_model(
            kind, pendulum_data.system, pendulum_data.scales(), key=jax.random.PRNGKey(0), width=32
        )
        out[kind] = (model, fit(model, pendulum_data, TINY))
    return out


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_loss_decreases_and_physics_latent_moves_towards_truth(kind, trained, pendulum_data):
    model, result = trained[kind]
    h = result.history
    assert len(h["step"]) == 4 and result.best_step in h["step"]
    # APHYNITY's loss weighs the trajectory error by a growing multiplier; its trajectory error
    # is what must fall, and the validation reconstruction error for every model
    assert h["val_recon"][-1] < 0.5 * h["val_recon"][0] or min(h["val_recon"]) < 0.5 * _initial_val(
        model, pendulum_data
    )
    if kind != "aphynity":
        assert h["train_loss"][-1] < h["train_loss"][0]
    before = evaluate(model, pendulum_data.train, context_size=3)
    after = evaluate(result.model, pendulum_data.train, context_size=3)
    assert after.z_p_mse < 0.7 * before.z_p_mse
    assert after.recon_mse < 0.5 * before.recon_mse
    assert h["train_traj"][-1] < 0.5 * h["train_traj"][0]  # the trajectory error falls for every model
    if kind == "aphynity":
        # lambda_{j+1} = lambda_j + tau L_traj,j after each of the 240 steps: lambda0 plus tau times
        # the sum of the batches' trajectory losses (each call's mean times its 60 steps). Tolerance
        # 1e-4: the multiplier accumulates 240 float32 additions (relative rounding <= 240 * 6e-8).
        total = TINY.steps_per_call * float(np.sum(h["train_traj"]))
        assert result.aux["lambda"] == pytest.approx(model.lambda0 + model.tau * total, rel=1e-4)


def _initial_val(model, data):
    ev = evaluate(model, data.val, context_size=3)
    return ev.recon_mse


def test_context_encoder_is_permutation_invariant(trained, pendulum_data):
    model = trained["meta_hybrid_vae"][1].model
    ctx = jnp.asarray(pendulum_data.train.obs[0, :5, : pendulum_data.system.n_train])
    code = model.context_code(ctx)
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        np.testing.assert_allclose(model.context_code(ctx[jnp.asarray(perm)]), code, rtol=1e-6, atol=1e-6)
        z1 = model.encode(ctx[0], ctx)
        z2 = model.encode(ctx[0], ctx[jnp.asarray(perm)])
        for a, b in zip(z1, z2, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # and the code does depend on the context set
    other = jnp.asarray(pendulum_data.train.obs[1, :5, : pendulum_data.system.n_train])
    assert float(jnp.max(jnp.abs(model.context_code(other) - code))) > 1e-4


def test_validation_decodes_the_training_window_as_evaluate_does(trained, pendulum_data):
    result = trained["meta_hybrid_vae"][1]
    sys = pendulum_data.system
    k = TINY.context_size
    short = infer(result.model, pendulum_data.val, context_size=k, n_steps=sys.n_train)
    full = infer(result.model, pendulum_data.val, context_size=k, chunk_size=7)  # padded last chunk
    assert short.decoded.shape[1] == sys.n_train and full.decoded.shape[1] == sys.n_full
    for name in ("z_p", "z_a", "z_b"):
        np.testing.assert_array_equal(getattr(short, name), getattr(full, name))
    np.testing.assert_allclose(short.decoded, full.decoded[:, : sys.n_train], rtol=1e-6, atol=1e-7)
    best = result.history["val_recon"][result.history["step"].index(result.best_step)]
    scored = evaluate(result.model, pendulum_data.val, context_size=k).recon_mse
    np.testing.assert_allclose(best, scored, rtol=1e-5)
    with pytest.raises(ValueError, match="n_steps must be an int"):
        infer(result.model, pendulum_data.val, n_steps=sys.n_full + 1)
    with pytest.warns(DeprecationWarning, match="chunk_size"):
        old = infer(result.model, pendulum_data.val, context_size=k, chunk=7)
    np.testing.assert_array_equal(old.decoded, full.decoded)


def test_save_load_and_checkpoint_resume(tmp_path, pendulum_data, monkeypatch):
    sys = pendulum_data.system
    scales = pendulum_data.scales()
    model = make_model("hybrid_vae", sys, scales, key=jax.random.PRNGKey(0), width=32)
    spec = dict(
        kind="hybrid_vae", system=sys.name, scales=[s.tolist() for s in scales], options=dict(width=32)
    )
    save_model(tmp_path / "m.eqx", model, spec)
    loaded, spec2 = load_model(tmp_path / "m.eqx")
    assert spec2 == spec
    y = jnp.asarray(pendulum_data.test.obs[0, 0, : sys.n_train])
    for a, b in zip(model.encode(y), loaded.encode(y), strict=True):
        np.testing.assert_array_equal(a, b)
    raw = bytearray((tmp_path / "m.eqx").read_bytes())
    raw[-3] ^= 0xFF  # one flipped byte in the last array
    (tmp_path / "m.eqx").write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"m\.eqx is corrupted: the SHA-256 checksum"):
        load_model(tmp_path / "m.eqx")
    # four calls straight through equal two calls, an interruption while the third checkpoint is
    # being written, and two resumed calls. The checkpoint is one file, replaced atomically, so it
    # may have any name (a ".json" one used to be overwritten by its own header).
    config = HybridTrainConfig(steps=40, batch_size=8, context_size=3, steps_per_call=10, progress=False)
    full = fit(model, pendulum_data, config)
    ckpt = tmp_path / "state.json"
    real = os.replace
    writes = []

    def interrupt_third(*args):
        writes.append(1)
        if len(writes) == 3:
            raise KeyboardInterrupt  # the new checkpoint is written, not yet renamed
        return real(*args)

    monkeypatch.setattr(os, "replace", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        fit(model, pendulum_data, config, checkpoint=ckpt)
    monkeypatch.setattr(os, "replace", real)
    assert jio.read_header(ckpt, kind=training.CHECKPOINT_KIND)["done"] == 2  # the second, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.eqx", "state.json"]  # no temporary left
    with pytest.raises(ValueError, match="another configuration"):
        fit(
            model,
            pendulum_data,
            HybridTrainConfig(**{**config.__dict__, "steps": 20}),
            checkpoint=ckpt,
            resume=True,
        )
    resumed = fit(model, pendulum_data, config, checkpoint=ckpt, resume=True)
    assert resumed.history == full.history
    for a, b in zip(resumed.model.encode(y), full.model.encode(y), strict=True):
        np.testing.assert_array_equal(a, b)  # bit-identical
    raw = bytearray(ckpt.read_bytes())
    raw[len(raw) // 2 + 100] ^= 0x01
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"state\.json is corrupted: the SHA-256 checksum"):
        fit(model, pendulum_data, config, checkpoint=ckpt, resume=True)


def test_fit_errors(pendulum_data):
    model = make_model("aphynity", pendulum_data.system, pendulum_data.scales(), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="context_size"):
        fit(model, pendulum_data, HybridTrainConfig(context_size=7, steps=1))
    with pytest.raises(ValueError, match="steps"):
        fit(model, pendulum_data, HybridTrainConfig(steps=0))
    with pytest.raises(ValueError, match="tasks"):
        fit(model, pendulum_data, HybridTrainConfig(steps=1, context_size=3), tasks=9)
    other = make_hybrid_data(
        "advection_diffusion",
        key=jax.random.PRNGKey(0),
        tasks=1,
        per_task=2,
        val_tasks=1,
        test_tasks=1,
        ood_tasks=1,
        progress=False,
    )
    with pytest.raises(ValueError, match="model is for 'pendulum'"):
        fit(model, other, HybridTrainConfig(steps=1, context_size=2))
