"""The study pipeline: the pendulum preset's identifiability map, a user model end to end, the CLI."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from jaxid.cli import main
from jaxid.study import (
    IdentifiabilityOptions,
    config_from_dict,
    identifiability_map,
    load_preset,
    make_observer,
    resolve_model,
    run,
)


def test_pendulum_preset_rank_two_of_four_and_its_monomials():
    config = load_preset("pendulum").replace(identifiability=IdentifiabilityOptions(draws=2, check_points=2))
    idm = identifiability_map(config, sobol=False)
    assert list(idm.ranks) == [2, 2] and idm.rank == 2 and idm.names == ("m", "L", "b", "g")
    assert sorted(idm.monomial_text) == ["b/(L^2*m)", "g/L"]
    assert np.all(np.isinf(idm.crb_relative))  # no raw parameter is identifiable from the angle
    assert np.all(np.isfinite(idm.monomial_crb_relative)) and np.all(idm.monomial_crb_relative < 0.5)
    assert all(v == 0.0 for v in idm.identifiable_fraction.values())
    assert "scaling symmetry" in idm.why("m")
    # Independent check: every reported scaling symmetry leaves the simulated angle unchanged
    # (to the solver's tolerance), and the monomials are invariant under it by their exponents.
    fn = make_observer(config, resolve_model(config))
    theta = idm.thetas[0]
    y = np.asarray(fn(jnp.asarray(theta)))
    for c in idm.scaling:
        moved = theta * np.exp(0.3 * np.asarray(c, float))
        np.testing.assert_allclose(np.asarray(fn(jnp.asarray(moved))), y, atol=1e-6)
        for a in idm.monomials:
            assert np.dot(a, c) == 0


USER = {
    "name": "scaled decay",
    "seed": 1,
    "records": 200,
    "model": "study_user_models:scaled_decay",
    "params": {"a": [1.0, 2.0], "b": [1.0, 2.0], "c": {"log_uniform": [0.5, 2.0]}},
    "observation": {"noise": 0.02},
    "estimators": {
        "depth": 2,
        "width": 32,
        "epochs": 40,
        "batch_size": 32,
        "patience": 40,
        "posterior": True,
        "posterior_samples": 200,
    },
    "identifiability": {"draws": 3, "sobol_samples": 64},
    "bayes": {"records": 12, "warmup": 200, "draws": 200, "thin": 2, "ess_min": 50.0},
}


@pytest.mark.slow
def test_user_function_model_end_to_end(tmp_path):
    from study_user_models import TIMES

    result = run(config_from_dict(USER), out=tmp_path, progress=False)
    idm = result.identifiability
    assert list(idm.ranks) == [2, 2, 2] and sorted(idm.monomial_text) == ["a*b", "c"]
    assert idm.scaling == [[1, -1, 0]]  # a -> s a, b -> b / s
    assert [n for n, _ in result.combinations] == ["a*b"]  # c alone is a raw parameter
    # Sobol: a and b share the output variance symmetrically (same prior, same role).
    st = idm.sobol_total
    assert abs(st["a"] - st["b"]) < 0.1 and st["c"] > 0.1
    # The records: the closed form plus noise of the configured sd.
    saved = np.load(tmp_path / "records.npz")
    a, b, c = saved["params"].T
    clean = (a * b)[:, None] * np.exp(-c[:, None] * np.asarray(TIMES)[None, :])
    np.testing.assert_allclose(saved["clean"][..., 0], clean, rtol=1e-12)
    resid = (saved["obs"] - saved["clean"]).ravel()
    assert abs(resid.std() / 0.02 - 1) < 0.05  # 4200 draws: sd of the ratio about 0.011
    assert result.data["records"] == 200 and result.data["rejected"] == {}
    # The Bayes limit: a*b and c are recovered by the posterior mean, a alone is not.
    bayes = result.bayes
    assert bayes["records_used"] >= 6
    assert bayes["records_misfit"] == 0  # records from the model at its noise: chains fit them
    limit = {r["target"]: r["bayes_r2"] for r in bayes["params"] + bayes["combinations"]}
    assert limit["a*b"] > 0.95 and limit["c"] > 0.9 and limit["a"] < 0.8
    rows = {r["target"]: r for r in result.table}
    assert set(rows) == {"a", "b", "c", "a*b"}
    assert rows["a"]["identifiable"] == "no" and rows["c"]["identifiable"] == "yes"
    assert rows["a*b"]["identifiable"] == "yes" and np.isfinite(rows["a*b"]["crb_relative"])
    kinds = ("recovered", "limited by the data", "limited by learning", "inconclusive")
    assert rows["a*b"]["verdict"].split(":")[0].split(" (")[0] in kinds
    # one scaling symmetry a -> s a, b -> b / s: the scaling ceiling on the test split (c is not
    # moved by it: exact), an upper bound on the Bayes limit's R^2 for a and b
    assert result.estimators["ceiling"]["scaling"] == "a -> s*a, b -> s^(-1)*b"
    assert rows["c"]["ceiling_r2"] == 1.0 and 0.0 < rows["a"]["ceiling_r2"] < 0.9
    # the posterior network: calibrated draws on the test split (coverage of the central 90 %
    # interval within 5 binomial sds of 0.9 over 20 test records, sd 0.067), compared with the
    # reference on its records
    pn = result.estimators["posterior"]
    assert pn["samples"] == 200 and set(pn["metrics"]) == {"a", "b", "c"}
    assert all(abs(v - 0.9) < 0.34 for v in pn["coverage"]["0.9"].values()), pn["coverage"]["0.9"]
    assert pn["metrics"]["c"]["r2"] > 0.8  # c is identified
    assert [r["target"] for r in bayes["posterior_network"]] == ["a", "b", "c"]
    saved_json = json.loads((tmp_path / "results.json").read_text())
    assert saved_json["identifiability"]["rank"] == 2 and len(saved_json["table"]) == 4
    report = (tmp_path / "report.md").read_text()
    assert "| a*b | yes |" in report and "## The Bayes limit" in report and "Posterior network" in report
    for fig in result.figures:
        assert (tmp_path / fig).stat().st_size > 5_000


def test_cli_lists_presets_and_refuses_bad_configs(tmp_path, capsys):
    assert main(["study", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "pendulum" in out and "forced_damped_pendulum" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "pendulum"\n[params]\nm = [0.5, 2.0]\n')
    with pytest.raises(SystemExit, match=r"jaxid study: params\.L: no prior"):
        main(["study", str(bad)])
    with pytest.raises(SystemExit, match="no such file"):
        main(["study", str(tmp_path / "missing.toml")])
