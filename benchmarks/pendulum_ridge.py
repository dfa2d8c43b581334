"""An independent check of the `pendulum` study preset's Bayes limit, without a sampler.

From the angle only ``c1 = b / (L^2 m)`` and ``c2 = g / L`` are identifiable. Given the exact pair,
the posterior of ``(m, L, b, g)`` lies on a plane whose density is the prior times the Jacobian
``g^3 m / c2^4``; its mean by quadrature (``tests/references.py::pendulum_ridge_moments``) is the
best estimate any method could make *knowing the pair exactly*, so its R^2 bounds the Bayes
limit's from above (up to the sampling noise of an R^2 over few records). This script reads the
records and the results of a `jaxid study pendulum` run and writes, for the first 20 test records,
the Bayes reference's records and the whole test split, the quadrature's R^2 next to the study's
network and Bayes reference.

    jaxid study pendulum --out study-pendulum
    python benchmarks/pendulum_ridge.py study-pendulum

writes ``benchmarks/results/pendulum-ridge-cpu.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from jaxid.nn.training import split_indices

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from references import pendulum_ridge_moments

NAMES = ("m", "L", "b", "g")


def r2(truth: np.ndarray, est: np.ndarray) -> dict[str, float]:
    value = 1.0 - ((truth - est) ** 2).mean(0) / truth.var(0)
    return {n: round(float(v), 4) for n, v in zip(NAMES, value, strict=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", type=Path, help="output folder of `jaxid study pendulum`")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pendulum-ridge-cpu.json")
    args = ap.parse_args()
    records = np.load(args.study / "records.npz")
    results = json.loads((args.study / "results.json").read_text())
    config = json.loads(str(records["config"]))
    if config["model"] != "pendulum" or tuple(records["param_names"]) != NAMES:
        raise SystemExit(f"{args.study}: not a study of the pendulum's (m, L, b, g)")
    theta = records["params"]
    test = split_indices(len(theta), config["split"], config["seed"])["test"]
    n_bayes = results["bayes"]["records"]
    quad = np.array([pendulum_ridge_moments(t)[0] for t in theta[test]])
    rows = {
        "first 20 test records": r2(theta[test[:20]], quad[:20]),
        f"the Bayes reference's {n_bayes} records": r2(theta[test[:n_bayes]], quad[:n_bayes]),
        f"the whole test split ({len(test)})": r2(theta[test], quad),
    }
    table = {row["target"]: row for row in results["table"]}
    study = {
        n: dict(
            network_r2_test=table[n]["network_r2"],
            network_r2_bayes_records=table[n]["network_r2_bayes"],
            bayes_r2=table[n]["bayes_r2"],
        )
        for n in NAMES
    }
    out = dict(
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        study=str(args.study),
        records=len(theta),
        bayes_records=n_bayes,
        bayes_records_used=results["bayes"]["records_used"],
        quadrature_r2=rows,
        study_r2=study,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for k, v in rows.items():
        print(f"quadrature R^2, {k}: {v}")
    for n, v in study.items():
        print(n, v)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
