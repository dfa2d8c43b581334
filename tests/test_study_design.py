"""Experiment design in the study: the walker's force plate found without being told, the
pendulum's [design] table (a known added mass and a known added length make it identifiable), and
the table's checks."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

import jaxid
from jaxid.cli import main
from jaxid.identify import Experiment, fisher_information
from jaxid.study import config_from_dict, load_preset, rank_designs, run, study_design


# ---------------------------------------------------------------------------- the walker
@pytest.mark.slow
def test_walker_design_finds_the_force_plate():
    walker = jaxid.Walker(m=80.0, k=20000.0, l0=1.0, channels=("x", "y", "grf_x", "grf_y"))
    y0, ts = walker.initial_state(0.9782, 1.090), jnp.arange(0.0, 1.0, 0.1)
    # one simulation of every channel (compiled once); the candidates are views of it
    full = Experiment.from_model(walker, y0, ts, noise=1.0, params=("m", "k"))
    base = full.select(["x", "y"], noise=1e-3, name="kinematics")
    candidates = {
        "second kinematic record": full.select(["x", "y"], noise=1e-3),
        "grf_x": full.select(["grf_x"], noise=1.0),
        "grf_y": full.select(["grf_y"], noise=1.0),
    }
    thetas = np.array([[80.0, 20000.0], [72.0, 21000.0]])
    ranking = rank_designs(base, candidates, thetas, log=True)
    # the kinematics carry only k/m: rank 1 of 2, neither m nor k bounded
    assert ranking.base.min_rank == 1 and not ranking.base.identifiable.any()
    assert set(ranking.smallest_set) <= {"grf_x", "grf_y"} and len(ranking.smallest_set) == 1
    assert {ranking.rows[0].additions[0], ranking.rows[1].additions[0]} == {"grf_x", "grf_y"}
    repeat = ranking.row("second kinematic record")
    assert repeat.identified == () and repeat.criteria.min_rank == 1 and repeat.null_information == 0
    for name in ("grf_x", "grf_y"):
        row = ranking.row(name)
        assert row.identified == ("m", "k") and np.all(np.isinf(row.tightening))
        assert row.null_information > 0
        # independent: sqrt(diag(F^-1)) of the log-parameter Fisher information at each draw
        for d, theta in enumerate(thetas):
            f = fisher_information([base, candidates[name]], theta, log=True)
            np.testing.assert_allclose(row.criteria.crb[d], np.sqrt(np.diag(np.linalg.inv(f))), rtol=1e-6)
    md = ranking.table()
    assert "grf_y" in md and "from inf" in md and "Smallest set of additions" in md


# ---------------------------------------------------------------------------- the pendulum
DESIGN = {
    "targets": ["m", "L", "b", "g"],
    "draws": 2,
    "candidates": {
        "bob_x": {"channels": ["x"]},
        "added_mass": {"added": {"m": 0.5}},
        "added_length": {"added": {"L": 0.5}},
        "second_start": {"initial_state": {"theta": 1.0}},
    },
}


def pendulum_config(**changes):
    data = {
        "name": "pendulum design",
        "model": "pendulum",
        "params": {"m": [0.5, 2.0], "L": [0.5, 2.0], "b": {"log_uniform": [0.05, 0.5]}, "g": [9.0, 10.6]},
        "initial_state": {"theta": 0.5, "omega": 0.0},
        "observation": {
            "times": {"start": 0.0, "stop": 3.0, "num": 31},
            "channels": ["theta"],
            "noise": 0.01,
        },
        "design": DESIGN,
    }
    data.update(changes)
    return config_from_dict(data)


@pytest.fixture(scope="module")
def pendulum_ranking():
    return study_design(pendulum_config())


@pytest.mark.slow  # three compilations of the pendulum for the design, three for the check
def test_pendulum_added_mass_and_length_make_it_identifiable(pendulum_ranking):
    r = pendulum_ranking
    # The angle carries g/L and b/(L^2 m) only, and so does a second start. A known added mass
    # separates m from b/L^2 (rank 3); a known added length, or the bob's position x = L sin(theta),
    # gives L and then g (rank 3); a mass and a length together: rank 4.
    assert r.base.min_rank == 2 and r.log
    assert r.row("second_start").criteria.min_rank == 2 and r.row("second_start").identified == ()
    assert r.row("added_mass").criteria.min_rank == 3 and r.row("added_mass").identified == ("m",)
    for name in ("added_length", "bob_x"):
        assert r.row(name).criteria.min_rank == 3 and r.row(name).identified == ("L", "g")
        assert r.row(name).null_resolved == 1
    assert r.rows[-1].additions == ("second_start",)
    assert "added_mass" in r.smallest_set and len(r.smallest_set) == 2
    assert r.smallest.criteria.full_rank
    # independent: the same experiments built by Experiment.from_model, their Fisher information
    # summed by fisher_information (natural parameters, then D F D for log parameters: a known
    # shift does not change the Jacobian in theta)
    theta = r.thetas[0]
    ts = jnp.linspace(0.0, 3.0, 31)
    y0 = jnp.array([0.5, 0.0])
    spec = {
        "base": (np.zeros(4), "theta"),
        "added_mass": (np.array([0.5, 0, 0, 0]), "theta"),
        "added_length": (np.array([0, 0.5, 0, 0]), "theta"),
        "bob_x": (np.zeros(4), "x"),
    }
    f = np.zeros((4, 4))
    for name in ("base", *r.smallest_set):
        shift, channel = spec[name]
        model = jaxid.Pendulum(*(theta + shift), observe_mode="both")
        e = Experiment.from_model(model, y0, ts, noise=0.01, channels=(channel,))
        f += np.diag(theta) @ fisher_information(e, theta + shift) @ np.diag(theta)
    np.testing.assert_allclose(r.smallest.criteria.crb[0], np.sqrt(np.diag(np.linalg.inv(f))), rtol=1e-5)
    np.testing.assert_allclose(r.smallest.criteria.log_det[0], np.linalg.slogdet(f)[1], rtol=1e-6)


@pytest.mark.slow
def test_pendulum_ranking_in_the_study_report(pendulum_ranking, tmp_path):
    md = pendulum_ranking.table()
    assert "+ added_mass" in md and " + ".join(pendulum_ranking.smallest_set) in pendulum_ranking.summary()
    data = json.loads(json.dumps(pendulum_ranking.to_dict()))
    assert data["smallest_set"] == list(pendulum_ranking.smallest_set)


@pytest.mark.slow
def test_study_run_writes_the_design_ranking(tmp_path):
    config = pendulum_config(
        records=40,
        estimators={"depth": 1, "width": 8, "epochs": 2, "batch_size": 8, "patience": 2},
        identifiability={"draws": 2, "check_points": 1, "sobol_samples": 8},
        bayes={"records": 0},
        # a channel-only candidate: a view of one simulation, one compilation for the design
        design={"draws": 2, "candidates": {"bob_x": {"channels": ["x"]}}, "targets": ["L"]},
    )
    result = run(config, out=tmp_path, progress=False)
    assert result.design is not None and result.design.smallest_set == ("bob_x",)
    report = (tmp_path / "report.md").read_text()
    assert "## What would make it identifiable" in report and "+ bob_x" in report
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["design"]["smallest_set"] == ["bob_x"]
    assert (tmp_path / "design.png").is_file()
    # the ranking alone (jaxid study --design) draws the same prior points as the run
    np.testing.assert_array_equal(study_design(config).thetas, result.design.thetas)


# ---------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    ("design", "match"),
    [
        ({"candidates": {"x": {"channel": ["x"]}}}, r"design.candidates.x.channel: unknown key.*'channels'"),
        ({"candidates": {"x": {"channels": ["grf"]}}}, r"design.candidates.x.channels: .*no channel"),
        ({"candidates": {"x": {"added": {"mass": 1.0}}}}, r"x.added.mass: Pendulum has no parameter 'mass'"),
        ({"candidates": {"x": {"initial_state": {"th": 1.0}}}}, r"design.candidates.x.initial_state.th"),
        ({"candidates": {"x": {"noise": 0}}}, r"design.candidates.x.noise: must be > 0"),
        ({"candidates": {"x": {"times": [-1.0, 1.0]}}}, r"design.candidates.x.times: .*first save time"),
        ({"candidates": {"x": {}}, "targets": ["q"]}, r"design.targets: 'q' is not a studied parameter"),
        ({"candidates": {"x": {}}, "max_size": 2}, r"design.max_size: 2 is more than the 1 candidate"),
        ({"candidates": {}}, r"design.candidates: missing"),
        ({"candidates": {"x": {}}, "draw": 2}, r"design.draw: unknown key; did you mean 'draws'"),
    ],
)
def test_bad_design_table_names_the_key(design, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pendulum_config(design=design)


def test_function_model_refuses_a_design():
    with pytest.raises(ValueError, match=r"design: .* is a function"):
        config_from_dict(
            {
                "model": "study_user_models:scaled_decay",
                "params": {"a": [1.0, 2.0], "b": [1.0, 2.0], "c": [0.5, 2.0]},
                "design": {"candidates": {"x": {}}},
            }
        )


def test_presets_still_load_without_design():
    assert load_preset("pendulum").design is None
    cfg = pendulum_config()
    assert cfg.to_dict()["design"]["candidates"]["added_mass"] == {"added": {"m": 0.5}}


PENDULUM_TOML = """
[model]
name = "pendulum"
[params]
m = [0.5, 2.0]
L = [0.5, 2.0]
b = { log_uniform = [0.05, 0.5] }
g = [9.0, 10.6]
[initial_state]
theta = 0.5
omega = 0.0
[observation]
times = { start = 0.0, stop = 2.0, num = 21 }
channels = ["theta"]
"""


def test_cli_design_needs_a_design_table(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(PENDULUM_TOML)
    with pytest.raises(SystemExit, match=r"jaxid study: --design: the configuration has no \[design\]"):
        main(["study", str(path), "--design"])


@pytest.mark.slow
def test_cli_design_prints_the_ranking(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output folder would be created here
    path = tmp_path / "study.toml"
    design = '[design]\ndraws = 1\ntargets = ["m"]\n[design.candidates.added_mass]\nadded = { m = 0.5 }\n'
    path.write_text(PENDULUM_TOML + design)
    assert main(["study", str(path), "--design"]) == 0
    out = capsys.readouterr().out
    assert "+ added_mass" in out and "Smallest set of additions that identifies m" in out
    assert not (tmp_path / "jaxid-output").exists()  # nothing simulated or written
