"""``jaxid hybrid`` end to end at a tiny size, and its option errors."""

import json
import re

import jax
import pytest

from jaxid.cli import main
from jaxid.experiments.hybrid import SCORES, HybridStudyConfig
from jaxid.hybrid import MODEL_KINDS, evaluate, load_model, make_hybrid_data, zp_bound

TINY = [
    "hybrid",
    "--systems",
    "advection_diffusion",
    "--tasks",
    "4",
    "--per-task",
    "4",
    "--test-tasks",
    "3",
    "--ood-tasks",
    "3",
    "--context-size",
    "2",
    "--steps",
    "20",
    "--batch-size",
    "8",
    "--width",
    "16",
    "--task-counts",
    "2",
    "--task-sweep",
    "advection_diffusion",
    "--seed-systems",
    "advection_diffusion",
    "--quiet",
]


@pytest.mark.slow
def test_hybrid_cli_tiny_writes_a_complete_report(tmp_path, capsys):
    out = tmp_path / "hybrid"
    assert main([*TINY, "--out", str(out)]) == 0
    assert "report.md" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    entry = results["systems"]["advection_diffusion"]
    assert set(entry["models"]) == set(MODEL_KINDS)
    # every score is the saved model's on the study's splits: rebuild them from the recorded
    # configuration and score each saved model again (same float32 inference: equal to 1e-6)
    cfg = results["config"]
    data = make_hybrid_data(
        "advection_diffusion",
        key=jax.random.PRNGKey(cfg["seed"] * 1000),
        **{k: cfg[k] for k in ("tasks", "per_task", "val_tasks", "test_tasks", "ood_tasks", "ood_width")},
        progress=False,
    )
    for split, name in (("id", "test"), ("ood", "ood")):  # the data's limit on the same sequences
        assert entry["z_p_bound"][split]["mse"] == pytest.approx(
            zp_bound(data.system, getattr(data, name)).mse
        )
    for kind, m in entry["models"].items():
        model, _ = load_model(out / "models" / f"advection_diffusion-{kind}.eqx")
        for split, name in (("id", "test"), ("ood", "ood")):
            assert set(m[split]) == set(SCORES)
            again = evaluate(model, getattr(data, name), context_size=cfg["context_size"])
            for score in SCORES:
                assert m[split][score] == pytest.approx(getattr(again, score), rel=1e-6, abs=1e-9), (
                    kind,
                    split,
                    score,
                )
    assert set(results["task_sweep"]["advection_diffusion"]) == {"2", "4"}
    assert set(results["seed_agreement"]["advection_diffusion"]) == set(MODEL_KINDS)
    report = (out / "report.md").read_text()
    for heading in (
        "## Comparison",
        "limit on z_p",
        "does not beat",
        "number of training tasks",
        "two seeds",
        "## Figures",
    ):
        assert heading in report
    assert report.count("| advection_diffusion |") >= 6 + 2 + 2 + 3  # comparison, bound, sweep, seeds
    for fig in results["figures"]:
        assert (out / fig).stat().st_size > 5000
    assert {"reconstructions.png", "latents.png", "mcc_vs_tasks.png", "seed_agreement.png"} <= set(
        results["figures"]
    )
    model, spec = load_model(out / "models" / "advection_diffusion-meta_hybrid_vae.eqx")
    assert spec["kind"] == "meta_hybrid_vae" and model.meta


@pytest.mark.parametrize(
    "args, message",
    [
        (["--systems", "pendulum,springs"], "systems"),
        (["--models", "vae"], "models"),
        (["--tasks", "0"], "tasks"),
        (["--per-task", "3", "--context-size", "5"], "context_size"),
        (["--task-sweep", "double_pendulum", "--systems", "pendulum"], "task_sweep_systems"),
        (["--task-counts", "0,2"], "task_counts"),
    ],
)
def test_hybrid_cli_errors_name_the_option(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # the study's checks exit with their message,
        main(["hybrid", *args, "--out", str(tmp_path)])  # argparse's print theirs to stderr
    assert re.search(message, f"{exc.value} {capsys.readouterr().err}")


def test_full_setting_is_larger_and_valid():
    full = HybridStudyConfig.full()
    full.validate()
    small = HybridStudyConfig()
    assert full.tasks > small.tasks and full.steps > small.steps
    assert set(full.seed_systems) == set(full.systems)
