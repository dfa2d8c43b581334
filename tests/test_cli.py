"""The command line at a tiny size."""

import json
import subprocess
import sys

import pytest

from jaxid.cli import main


def test_demo_writes_plot_and_summary(tmp_path):
    assert main(["demo", "--records", "16", "--out", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["records"] == 16 and summary["failed"] == 0
    assert (tmp_path / "trajectories.png").stat().st_size > 10_000


def test_demo_rejects_bad_record_count(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--records", "0", "--out", str(tmp_path)])
    assert "--records: must be a positive integer" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "jaxid", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "demo" in proc.stdout and "gait" in proc.stdout
