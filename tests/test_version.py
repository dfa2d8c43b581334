"""``jaxid.__version__`` has one source: the ``version`` field of ``pyproject.toml``."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import jaxid

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_one_in_pyproject():
    # Read from the installed metadata; a mismatch means the install is stale (pip install -e . again).
    with open(ROOT / "pyproject.toml", "rb") as f:
        expected = tomllib.load(f)["project"]["version"]
    assert jaxid.__version__ == expected


def test_no_module_writes_its_own_version_string():
    # Only jaxid/_version.py assigns __version__ (from the metadata); every other module imports it.
    assigning = []
    for path in (ROOT / "jaxid").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets):
                assigning.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(assigning)) == ["jaxid/_version.py"]
