"""Summarise a ``JAXID_TEST_PROFILE`` file: the slowest tests and modules, and how much of their
time JAX spent tracing, lowering and compiling (see tests/conftest.py).

    JAXID_TEST_PROFILE=/tmp/profile.jsonl python -m pytest
    python tests/profile_summary.py /tmp/profile.jsonl [top]
"""

import json
import sys
from collections import defaultdict


def main(path: str, top: int = 30) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    keys = ("wall", "trace", "lower", "compile")
    total = {k: sum(r[k] for r in rows) for k in keys}
    print(f"{len(rows)} tests: " + ", ".join(f"{k} {v:.0f} s" for k, v in total.items()))
    print(f"\n{'wall':>7s} {'trace':>7s} {'lower':>7s} {'compile':>7s}  test")
    for r in sorted(rows, key=lambda r: -r["wall"])[:top]:
        print(" ".join(f"{r[k]:7.1f}" for k in keys) + "  " + r["test"])
    modules = defaultdict(lambda: dict.fromkeys(keys, 0.0))
    for r in rows:
        m = modules[r["test"].split("::")[0]]
        for k in keys:
            m[k] += r[k]
    print(f"\n{'wall':>7s} {'trace':>7s} {'lower':>7s} {'compile':>7s}  module")
    for name, m in sorted(modules.items(), key=lambda kv: -kv[1]["wall"]):
        print(" ".join(f"{m[k]:7.1f}" for k in keys) + "  " + name)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
