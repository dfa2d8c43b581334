"""The study with an initial state that is a function of the parameters: the walker's gait preset."""

from dataclasses import replace

import jax.numpy as jnp
import numpy as np
import pytest

from jaxid import generate_gait_dataset, simulate
from jaxid.study import (
    BayesOptions,
    EstimatorOptions,
    IdentifiabilityOptions,
    config_from_dict,
    identifiability_map,
    load_preset,
    make_observer,
    resolve_model,
    run,
)
from jaxid.study.config import build_start
from jaxid.walker import Walker, find_gait


def test_a_start_is_checked_before_any_work():
    base = {"model": "pendulum", "params": {"L": [0.5, 2.0]}, "fixed": {"m": 1.0, "b": 0.1, "g": 9.81}}
    base["observation"] = {"times": [0.0, 0.1, 0.2]}
    with pytest.raises(ValueError, match=r"initial_state: 'gait' is the walker's periodic gait; Pendulum"):
        config_from_dict({**base, "initial_state": "gait"})
    walker = {
        "model": "walker",
        "params": {"m": [60.0, 75.0]},
        "fixed": {"k": 9000.0, "l0": 0.7, "alpha0": 1.2, "g": 9.81},
        "observation": {"times": [0.0, 0.1, 0.2]},
    }
    with pytest.raises(ValueError, match=r"initial_state: 'giat' .*did you mean 'gait'"):
        config_from_dict({**walker, "initial_state": "giat"})
    with pytest.raises(ValueError, match=r"initial_state: cannot import module 'no_such_module'"):
        config_from_dict({**walker, "initial_state": "no_such_module:start"})
    with pytest.raises(TypeError, match=r"initial_state: must be a table or the name of a start"):
        config_from_dict({**walker, "initial_state": 3})
    design = {"candidates": {"other_start": {"initial_state": {"x": 0.1}}}}
    with pytest.raises(ValueError, match=r"other_start.initial_state: the record starts at 'gait'"):
        config_from_dict({**walker, "initial_state": "gait", "design": design})


@pytest.fixture(scope="module")
def tiny_gait_study(tmp_path_factory):
    c = load_preset("gait")
    times = tuple(float(t) for t in np.linspace(0.0, 3.0, 31))
    candidates = tuple(x for x in c.design.candidates if x.name != "longer")
    design = replace(c.design, draws=2, candidates=candidates)
    c = c.replace(
        records=40,
        times=times,
        estimators=EstimatorOptions(depth=2, width=16, epochs=3, batch_size=8, patience=5),
        identifiability=IdentifiabilityOptions(draws=2, check_points=2, sobol_samples=8),
        bayes=BayesOptions(records=0),
        design=design,
    )
    out = tmp_path_factory.mktemp("gait-study")
    return c, run(c, out=out, progress=False), out


@pytest.mark.slow
def test_gait_preset_records_start_on_their_own_gait(tiny_gait_study):
    config, result, out = tiny_gait_study
    assert result.data["records"] == 40 and result.data["rejected"] == {}
    records = np.load(out / "records.npz")
    theta, y0, clean = records["params"], records["y0"], records["clean"]
    assert y0.shape == (40, 7)
    # the gait data set's own records: jaxid gait and jaxid study with the same settings agree
    assert result.data["records_from"] == "jaxid.generate_gait_dataset"
    box = {n: config.params[n].support for n in ("m", "k", "l0")}
    data = generate_gait_dataset(40, seed=config.seed, priors=box, duration=3.0, save_dt=0.1, progress=False)
    np.testing.assert_array_equal(theta, data.params)
    np.testing.assert_array_equal(clean, np.asarray(data.obs, dtype=np.float64))
    # Independent: find_gait's own speed-grid scan (the study starts Newton from a table of unit
    # walkers' gaits instead) gives the same periodic state, and a simulation from it the records.
    for i in (0, 17):
        m, k, l0 = theta[i]
        walker = Walker(m=m, k=k, l0=l0, alpha0=config.fixed["alpha0"], channels=("x", "y"))
        gait = find_gait(walker, height_ratio=0.94)
        assert bool(gait.converged)
        np.testing.assert_allclose(y0[i], np.asarray(gait.state), atol=1e-8)
        sim = simulate(walker, gait.state, jnp.asarray(config.times))
        np.testing.assert_allclose(clean[i], np.asarray(sim.obs), atol=1e-6)


@pytest.mark.slow
def test_gait_preset_finds_the_scaling_orbit_and_the_force_plate(tiny_gait_study):
    _, result, _ = tiny_gait_study
    idm = result.identifiability
    assert list(idm.ranks) == [2, 2] and idm.names == ("m", "k", "l0")
    assert [list(c) for c in idm.scaling] == [[1, 1, 0]]
    assert sorted(idm.monomial_text) == ["k/m", "l0"]
    assert "scaling symmetry" in idm.why("m")
    # The vertical ground reaction force k (l0 - l) carries k without m: either force channel
    # breaks the scaling; the centre of mass velocity is kinematics again and does not.
    design = result.design
    made = {r.additions: r for r in design.rows}
    assert set(made[("vertical_force",)].identified) == {"m", "k"}
    assert set(made[("horizontal_force",)].identified) == {"m", "k"}
    assert made[("velocity",)].identified == ()
    assert design.smallest_set in (("vertical_force",), ("horizontal_force",))
    rows = {r["target"]: r for r in result.to_dict()["table"]}
    assert rows["k/m"]["kind"] == "combination" and rows["m"]["identifiable"] == "no"
    # one scaling symmetry on uniform boxes: the scaling ceiling on the test split, exact for l0
    # (not moved by the symmetry), and for m and k the posterior mean on each record's orbit
    ceiling = result.estimators["ceiling"]
    assert ceiling["scaling"] == "m -> s*m, k -> s*k" and rows["l0"]["ceiling_r2"] == 1.0
    assert rows["m"]["ceiling_r2"] < 0.95 and rows["k"]["ceiling_r2"] < 0.95  # on 4 test records
    assert rows["l0"]["identifiable"] == "yes" and float(rows["l0"]["crb_relative"]) < 0.01


def test_a_user_start_follows_the_parameters():
    # The one-compartment model from a fixed dose identifies k and V; started at an amount 2 V
    # (a user's start function) the concentration is 2 exp(-k t) whatever V: rank 1, V lost.
    base = {
        "model": "study_user_models:Elimination",
        "params": {"k": [0.2, 0.8], "V": [2.0, 8.0]},
        "observation": {"times": {"start": 0.0, "stop": 4.0, "num": 9}, "noise": 0.01},
        "identifiability": {"draws": 2, "check_points": 2},
    }
    fixed = identifiability_map(config_from_dict({**base, "initial_state": {"x": 5.0}}), sobol=False)
    assert list(fixed.ranks) == [2, 2]
    config = config_from_dict({**base, "initial_state": "study_user_models:concentration_start"})
    resolved = build_start(config, resolve_model(config))
    np.testing.assert_allclose(resolved.y0, [2.0 * 5.0])  # 2 V at the centre of V's box
    fn = make_observer(config, resolved)
    ts = np.asarray(config.times)
    for k, v in ((0.3, 2.5), (0.7, 6.0)):
        np.testing.assert_allclose(np.asarray(fn(jnp.array([k, v])))[:, 0], 2.0 * np.exp(-k * ts), rtol=1e-6)
    idm = identifiability_map(config, sobol=False)
    assert list(idm.ranks) == [1, 1] and np.isinf(idm.crb_relative[:, 1]).all()
    assert np.isfinite(idm.crb_relative[:, 0]).all()


def test_sobol_indices_of_a_model_that_fails_somewhere_are_reported_not_raised():
    config = config_from_dict(
        {
            "model": "study_user_models:decay_with_a_hole",
            "params": {"a": [1.0, 2.0], "c": [0.5, 1.0]},
            "identifiability": {"draws": 2, "check_points": 2, "sobol_samples": 64},
            "seed": 3,
        }
    )
    idm = identifiability_map(config)
    assert idm.sobol_total == {} and "non-finite outputs" in idm.sobol_error
    assert idm.rank == 2  # the Fisher analysis at draws with a < 1.9 still ran
