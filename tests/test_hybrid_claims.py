"""``jaxid hybrid --claims``: the bootstrap against independent answers, the verdict logic, and the
whole claims pipeline (intervals, claims, report, figures) with the data, the training and the
scoring replaced by latents of known quality, so that the verdicts are known in advance (the real
data, training and scoring are tested in test_hybrid.py and test_hybrid_study.py)."""

import json
import math
import types

import numpy as np
import pytest
from scipy import stats

from jaxid.cli import main
from jaxid.experiments import hybrid as hybrid_study
from jaxid.experiments import hybrid_claims as hc
from jaxid.experiments import hybrid_claims_report as report_mod
from jaxid.hybrid import HybridData, HybridEvaluation, HybridSplit, get_system


def test_percentile_interval_matches_numpy_linear_quantile_by_hand():
    draws = np.random.default_rng(3).permutation(np.arange(1.0, 101.0))  # 1..100, shuffled
    lo, hi = hc.percentile_interval(draws, 0.95)
    # linear interpolation at position (n - 1) q of the sorted values 1..100
    assert lo == pytest.approx(1 + 99 * 0.025)
    assert hi == pytest.approx(1 + 99 * 0.975)


def test_bootstrap_interval_of_a_mean_matches_normal_theory():
    x = np.random.default_rng(0).normal(2.0, 3.0, 4000)
    lo, hi = hc.bootstrap_interval(x, n_boot=3000, rng=np.random.default_rng(1))
    half = stats.norm.ppf(0.975) * x.std(ddof=1) / math.sqrt(x.size)
    # Monte Carlo error of a 2.5 % quantile from 3000 resamples is about 4 % of the half-width
    assert lo == pytest.approx(x.mean() - half, abs=0.12 * half)
    assert hi == pytest.approx(x.mean() + half, abs=0.12 * half)


def test_two_level_bootstrap_variance_and_pairing_match_closed_forms():
    """f_{s,r}(T) = a_{s,r} + mean(x[T]): the bootstrap mean of R resampled runs and T resampled
    tasks has variance var_pop(a_s) / R + var_pop(x) / T; the difference of two settings, paired on
    the tasks, loses the task term: var_pop(a_1) / R + var_pop(a_2) / R."""
    rng = np.random.default_rng(5)
    n_tasks, n_runs = 12, 4
    x = rng.normal(0, 1.0, n_tasks)
    a1, a2 = rng.normal(0, 2.0, n_runs), rng.normal(3, 0.5, n_runs)
    settings = [[(lambda t, c=c: c + x[t].mean()) for c in a] for a in (a1, a2)]
    draws = hc.run_task_bootstrap(settings, n_tasks, n_boot=6000, rng=np.random.default_rng(6))
    assert draws.shape == (6000, 2)
    var_x = x.var() / n_tasks
    for col, a in ((0, a1), (1, a2)):
        assert draws[:, col].mean() == pytest.approx(a.mean() + x.mean(), abs=0.05)
        assert draws[:, col].var() == pytest.approx(a.var() / n_runs + var_x, rel=0.06)
    diff = draws[:, 1] - draws[:, 0]
    assert diff.var() == pytest.approx(a1.var() / n_runs + a2.var() / n_runs, rel=0.06)


def test_diff_verdicts_and_convergence_flags():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 0.1, 1000), rng.normal(0, 0.1, 1000)
    assert hc._diff(a, b, 1.0, 0.95, +1)["verdict"] == "held"
    assert hc._diff(b, a, -1.0, 0.95, +1)["verdict"] == "did not hold"
    assert hc._diff(a, a[::-1], 0.0, 0.95, +1)["verdict"] == "inconclusive at this size"
    stopped = hc.convergence({"step": [10, 20, 30, 40, 50], "val_recon": [5, 2, 1, 1.5, 1.2]})
    assert stopped["stopped"] and stopped["best_step"] == 30
    assert stopped["late_gain"] == pytest.approx((1 - 1.2) / 1)  # the late call did worse
    late = hc.convergence({"step": [10, 20, 30, 40, 50], "val_recon": [5, 2, 1, 0.9, 0.8]})
    assert not late["stopped"] and late["late_gain"] == pytest.approx((0.9 - 0.8) / 0.9)  # step 50 vs <= 40
    assert stopped["settled"] and not late["settled"]  # an 11 % late gain is not settled
    history = {"step": [10, 20, 30, 40, 50], "val_recon": [5, 2, 1, 1, 0.995]}
    creeping = hc.convergence(history)
    assert not creeping["stopped"] and creeping["settled"]  # 0.5 % late gain < 1 %
    assert not hc.convergence(history, settle_tol=0.004)["settled"]


def test_ivae_condition_counts_latents():
    assert hc.ivae_condition("pendulum")["tasks_needed"] == 2 * (3 + 1) + 1
    assert hc.ivae_condition("advection_diffusion")["tasks_needed"] == 2 * (1 + 1) + 1
    assert "Khemakhem" in hc.ivae_condition("pendulum")["source"]


# ------------------------------------------------------------------------------------------
# the whole pipeline, training replaced: each "model" returns latents of a set quality


def _fake_quality(kind, tasks):
    """Noise sd on the true z_n: Meta-Hybrid-VAE recovers z_n once it has >= 4 tasks, Hybrid-VAE
    and APHYNITY never do."""
    if kind == "meta_hybrid_vae":
        return 0.02 if tasks >= 4 else 3.0
    return 3.0


def _fake_split(rng, n_tasks, per_task):
    z_n = np.repeat(rng.uniform(0, 1, (n_tasks, 1, 3)), per_task, 1)  # shared within a task
    z_p = rng.uniform(0.8, 3.1, (n_tasks, per_task, 1))
    obs = np.zeros((n_tasks, per_task, 2, 1), np.float32)
    return HybridSplit(obs=obs, clean=obs, z_p=z_p, z_n=z_n, x0=np.zeros((n_tasks, per_task, 2)))


def fake_data(system, *, key, tasks, per_task, val_tasks, test_tasks, ood_tasks, ood_width, progress):
    rng = np.random.default_rng(0)
    counts = {"train": tasks, "val": val_tasks, "test": test_tasks, "ood": ood_tasks}
    splits = {k: _fake_split(rng, n, per_task) for k, n in counts.items()}
    config = {"per_task": per_task, "ood_width": ood_width}  # as make_hybrid_data records them
    return HybridData(system=get_system(system), config=config, **splits)


@pytest.fixture(scope="module")
def fake_claims(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    mp = pytest.MonkeyPatch()

    def fake_train(kind, data, config, seed, desc, tasks=None):
        tasks = data.train.n_tasks if tasks is None else tasks
        steps = list(range(config.steps_per_call, config.steps + 1, config.steps_per_call))
        val = [1.0 / (1 + s) for s in steps]
        if seed == 1:  # one run still improving at the end, the others flat after the middle
            pass
        else:
            val = [max(v, val[len(val) // 2]) for v in val]
        model = types.SimpleNamespace(kind=kind, seed=seed, tasks=tasks)
        fit = types.SimpleNamespace(model=model, seconds=0.1, best_step=steps[int(np.argmin(val))])
        fit.history = {"step": steps, "val_recon": val, "train_loss": val, "train_traj": val}
        fit.aux = {}
        return fit, {}

    def fake_evaluate(model, split, *, context_size):
        rng = np.random.default_rng(hash((model.kind, model.seed, model.tasks, split.n_tasks)) % 2**32)
        z_n = split.flat("z_n")
        z_a = z_n / z_n.std(0) + _fake_quality(model.kind, model.tasks) * rng.standard_normal(z_n.shape)
        z_a = z_a[:, ::-1]  # permuted: MCC matches columns
        z_p = split.flat("z_p") + 0.1 * rng.standard_normal(split.flat("z_p").shape)
        return HybridEvaluation(
            z_p_mse=float(np.mean((z_p - split.flat("z_p")) ** 2)),
            mcc=hc.mcc(z_n, z_a),
            recon_mse=0.0,
            pred_mse=0.0,
            z_p=z_p,
            z_a=z_a,
            decoded=np.zeros((len(z_p), 0, 0)),
        )

    mp.setattr(hybrid_study, "make_hybrid_data", fake_data)  # read by the shared _data
    mp.setattr(hc, "zp_bound", lambda system, split: types.SimpleNamespace(mse=1e-4, rms=1e-2))

    def fake_posterior(system, split, *, prior_range, nodes, progress):
        return types.SimpleNamespace(mse=2e-4, posterior_variance=1.5e-4, prior_range=prior_range)

    mp.setattr(hc, "zp_posterior", fake_posterior)
    mp.setattr(hc, "_train", fake_train)
    mp.setattr(hc, "evaluate", fake_evaluate)
    config = hc.HybridClaimsConfig(
        tasks=8,
        per_task=3,
        val_tasks=1,
        test_tasks=12,
        ood_tasks=12,
        context_size=2,
        steps=100,
        steps_per_call=10,
        task_counts=(2, 4),
        n_boot=300,
        progress=False,
        workers=1,  # the fakes are patched into this process
    )
    try:
        results = hc.run_hybrid_claims(config, out)
    finally:
        mp.undo()
    return results, out


def test_claims_report_is_complete_and_intervals_contain_means(fake_claims):
    results, out = fake_claims
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["claims"] == json.loads(json.dumps(results["claims"]))
    entry = on_disk["systems"]["pendulum"]
    summaries = [
        m[split][score]
        for m in entry["models"].values()
        for split in ("id", "ood")
        for score in ("mcc", "z_p_mse")
    ]
    summaries += [row["mcc"] for rows in on_disk["task_sweep"]["pendulum"].values() for row in rows.values()]
    summaries += list(on_disk["seed_agreement"]["pendulum"].values())
    assert len(summaries) == 3 * 4 + 3 + 2 + 3  # models x split x score; Meta 2, 4, 8; control 2, 8; pairs
    for s in summaries:
        assert len(s["values"]) == 3 if "pairs" not in s else len(s["pairs"]) == 3
        assert s["mean"] == pytest.approx(np.mean(s["values"]))
    report = (out / "report.md").read_text()
    # percentile intervals contain their means except where MCC is near chance: there repeated
    # test tasks bias the resampled MCC upwards, so such a mean can only lie below its interval,
    # and the report must list it
    chance = entry["mcc_chance"]["id"]["q975"]
    for label, s in report_mod._summaries(on_disk):
        if s["mean"] > chance + 0.1 or "z_p_mse" in label:
            assert s["lo"] <= s["mean"] <= s["hi"], label
        elif not s["lo"] <= s["mean"]:
            assert label in report
        assert s["mean"] <= s["hi"], label
    for m in entry["models"].values():
        for r in m["runs"]:  # the fake runs' convergence as constructed: seed 1 still improving
            assert r["convergence"]["stopped"] == (r["seed"] != 1)
    for heading in (
        "The condition tested",
        "Claims and verdicts",
        "Diagnosis",
        "z_p against its limit",
        "number of training tasks",
        "between seeds",
        "Convergence of every run",
        "## Figures",
    ):
        assert heading in report
    bayes = entry["z_p_bayes"]
    assert bayes["id"]["prior_range"] == list(get_system("pendulum").physics_ranges[0])
    lo, hi = get_system("pendulum").physics_ranges[0]
    assert bayes["ood"]["prior_range"] == pytest.approx([hi, hi + 0.5 * (hi - lo)])  # ood_width 0.5
    z_p_rows = [line for line in report.splitlines() if line.startswith("| pendulum | ID | 0.0001 |")]
    assert len(z_p_rows) == 3 and all("| 0.00015 (0.0002) |" in row for row in z_p_rows), z_p_rows
    assert on_disk["figures"] == [
        "claims_mcc_vs_tasks.png",
        "claims_mcc_by_model.png",
        "claims_zp_bound.png",
        "claims_val_curves.png",
    ]
    for fig in on_disk["figures"]:
        assert (out / fig).stat().st_size > 5000


def test_claims_verdicts_follow_the_latents_quality(fake_claims):
    """Meta-Hybrid-VAE recovers z_n (sd 0.02 noise) from 4 tasks on, the others do not (sd 3):
    the claims that it beats them, that MCC rises with tasks and that seeds agree must hold; the
    Hybrid-VAE control must not rise."""
    results, _ = fake_claims
    verdicts = {c["claim"]: c["verdict"] for c in results["claims"]}
    assert all(v == "held" for k, v in verdicts.items() if "higher than" in k), verdicts
    assert verdicts["MCC of z_n rises with the number of training tasks (2 -> 8)"] == "held"
    assert verdicts["control: Hybrid-VAE's MCC does not rise with the tasks (2 -> 8)"] == "held"
    agree = [v for k, v in verdicts.items() if "agree" in k]
    assert agree == ["held"]
    assert results["seed_agreement"]["pendulum"]["meta_hybrid_vae"]["mean"] > 0.99


@pytest.mark.parametrize(
    "args, message",
    [
        (["--claims", "--full"], "separate"),
        (["--seeds", "0,1"], "--claims"),
        (["--claims", "--seeds", "1"], "seeds"),
    ],
)
def test_claims_cli_errors_name_the_option(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["hybrid", *args, "--out", str(tmp_path)])
    assert message in f"{exc.value} {capsys.readouterr().err}"
