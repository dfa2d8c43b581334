"""The command line checks every option before any work and reports an unwritable --out in one line."""

import subprocess
import sys

import pytest

from jaxid.cli import build_parser, main


@pytest.mark.parametrize(
    "argv, match",
    [
        (["gait", "--learning-rate", "-1"], "--learning-rate: must be a positive finite number"),
        (["gait", "--records", "0"], "--records: must be a positive integer"),
        (["gait", "--noise", "nan"], "--noise: must be a finite number >= 0"),
        (["hybrid", "--steps", "-3"], "--steps: must be a positive integer"),
        (["demo", "--records", "x"], "--records: expected a positive integer"),
    ],
)
def test_argparse_rejects_bad_numbers(argv, match, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert match in capsys.readouterr().err


def test_study_options_are_checked_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="jaxid gait: GaitStudyConfig: activation must be one of"):
        main(["gait", "--activation", "foo", "--out", str(tmp_path / "g")])
    with pytest.raises(SystemExit, match=r"jaxid hybrid: .*steps \(150\) must be a multiple"):
        main(["hybrid", "--steps", "150", "--out", str(tmp_path / "h")])


def test_unwritable_out_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "jaxid", "demo", "--out", str(blocker / "sub")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "jaxid demo: --out" in lines[0] and "not a writable folder" in lines[0]
