"""The README's tour runs as written (in a fresh interpreter, as a newcomer would paste it)."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.slow
def test_readme_tour_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python block"
    code = blocks[0] + "\nassert int(sims.success.sum()) == 10_000\nprint('TOUR-OK')\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TOUR-OK" in proc.stdout


def test_readme_quick_start_has_two_commands():
    text = README.read_text()
    quick = text[text.index("## Quick start") :].split("```bash\n", 1)[1].split("```", 1)[0]
    assert quick.strip().splitlines() == ['pip install -e ".[test]" && jaxid gait', "python -m pytest"]


@pytest.mark.slow
def test_readme_walker_section_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = (
        next(b for b in blocks if "find_gait" in b)
        + "\nassert int(sim.num_events) == 63 and bool(sim.success)"
        + "\nassert abs(float(gait.vx) - 1.0895) < 1e-3 and abs(float(gait.max_abs_eigenvalue) - 1.16) < 0.01"
        + "\nassert len(data) == 200 and data.obs.shape == (200, 151, 2)\nprint('WALKER-OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WALKER-OK" in proc.stdout


@pytest.mark.slow
def test_readme_identifiability_section_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if "analyze(kin" in b).replace(
        "analyze(kin, spread=0.005).rank, analyze([kin, plate], spread=0.005).rank  # 2, 3",
        "ranks = analyze(kin, spread=0.005).rank, analyze([kin, plate], spread=0.005).rank",
    )
    code += (
        "\nassert report.rank == 2 and sorted(report.combinations.monomial_text) == ['b/(L^2*m)', 'g/L']"
        "\nassert ranks == (2, 3)\nprint('IDENTIFY-OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "IDENTIFY-OK" in proc.stdout


@pytest.mark.slow
def test_readme_bayes_limit_section_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if "sample_posterior" in b)
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\n"
        + code
        + (
            # the numbers the block's comments quote (20 records: R^2 has a sampling spread of ~0.1)
            "\nassert post.ok.all() and risk.r2[2] > 0.98 and risk.r2[0] < 0.8 and risk.r2[1] < 0.8"
            "\nassert versus.records == int(post.ok.sum()) and versus.r2[2] > 0.95"
            "\nverdicts = {k: v.split(':')[0] for k, v in versus.verdicts.items()}"
            "\nassert verdicts == {'a': 'limited by the data', 'b': 'limited by the data', "
            "'c': 'inconclusive'}, versus.verdicts"
            "\nprint('BAYES-OK')\n"
        )
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BAYES-OK" in proc.stdout


def test_readme_design_gradient_block_runs(tmp_path):
    """The Fisher-information design block: its values against the closed form of the decay."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = textwrap.dedent(next(b for b in blocks if "jax.jacfwd(log_det)" in b))
    code += textwrap.dedent(
        """
        import numpy as np

        def closed(ts, a=1.5, b=0.7, s=0.1):
            j = np.stack([np.exp(-b * ts), -a * ts * np.exp(-b * ts)], -1)
            return np.linalg.slogdet(j.T @ j / s**2)[1]

        t = np.linspace(0.0, 3.0, 7)
        assert np.allclose(both, [closed(t), closed(2 * t)], rtol=1e-10)
        fd = [(closed(t + 1e-6 * d) - closed(t - 1e-6 * d)) / 2e-6 for d in np.eye(7)]
        assert np.allclose(slope, fd, rtol=1e-5, atol=1e-7)
        print("DESIGN-OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DESIGN-OK" in proc.stdout
