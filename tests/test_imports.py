"""The package's import hygiene: ``import jaxid`` stays light (no matplotlib), and no module imports
another subpackage's private names (what two subpackages share is public in the lower one)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxid"
SUBPACKAGES = (
    "identify",
    "nn",
    "inference",
    "sensitivity",
    "hybrid",
    "experiments",
    "models",
    "walker",
    "simulate",
    "data",
)
"""Named here so that a subpackage that disappears fails the test; any other subpackage found on
disk is checked as well."""


def _run(code: str) -> subprocess.CompletedProcess:
    # From the repository root, so that the checked-out package is the one imported.
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=300
    )


def test_import_jaxid_does_not_load_matplotlib():
    out = _run("import jaxid, sys; assert not any(m.startswith('matplotlib') for m in sys.modules)")
    assert out.returncode == 0, out.stderr


def test_no_module_of_the_package_loads_matplotlib_on_import():
    # Every subpackage first (so that a failure names it), then every module, in one interpreter:
    # the first import after which matplotlib is loaded is reported.
    on_disk = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert set(SUBPACKAGES) <= set(on_disk), f"subpackages missing: {set(SUBPACKAGES) - set(on_disk)}"
    code = f"""
import importlib, pkgutil, sys
names = ["jaxid"] + [f"jaxid.{{s}}" for s in {on_disk!r}]
import jaxid
names += [m.name for m in pkgutil.walk_packages(jaxid.__path__, "jaxid.") if m.name != "jaxid.__main__"]
for name in names:
    importlib.import_module(name)
    if any(m == "matplotlib" or m.startswith("matplotlib.") for m in sys.modules):
        sys.exit(f"importing {{name}} loads matplotlib")
print(len(set(names)))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr[-3000:]
    n_modules = len([p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"])
    assert int(out.stdout.split()[-1]) == n_modules  # every module was imported


def _room(module: str, package: Path) -> str:
    """The subpackage a module belongs to (``jaxid.identify``), or ``jaxid`` for the top-level modules."""
    parts = module.split(".")
    if len(parts) >= 2 and (package / parts[1]).is_dir():
        return ".".join(parts[:2])
    return "jaxid"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_cross_imports(package: Path = PACKAGE) -> list[str]:
    """``file:line: name`` for every private name (module, function, class, constant: a leading
    underscore, not a dunder) that a module takes from a module of another subpackage, through
    ``from ... import``, ``import`` or an attribute of an imported module (``identify._helper``)."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        bound = {}  # local name -> the jaxid module it is bound to

        def check(full: str, line: int, module=module, path=path):
            parts = full.split(".")
            prefixes = (".".join(parts[:i]) for i in range(len(parts), 0, -1))
            owner = next(m for m in prefixes if m in modules)  # the module that defines the name
            if _room(owner, package) != _room(module, package) and any(_private(c) for c in parts[1:]):
                found.append(f"{path.relative_to(package.parent)}:{line}: {full}")

        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != "jaxid":
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    check(full, node.lineno)
                    if full in modules:
                        bound[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "jaxid":
                        check(alias.name, node.lineno)
                        bound[alias.asname or "jaxid"] = alias.name if alias.asname else "jaxid"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                chain, value = [node.attr], node.value
                while isinstance(value, ast.Attribute):
                    chain.insert(0, value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id in bound:
                    check(".".join([bound[value.id], *chain]), node.lineno)
    return sorted(found)


def test_no_private_imports_across_subpackages():
    found = private_cross_imports()
    listing = "\n".join(found)
    assert not found, f"private names imported from another subpackage (make them public there):\n{listing}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..identify.experiment import _value_and_jacfwd\n", ["_value_and_jacfwd"]),
        ("from ..identify import experiment\nexperiment._helper(1)\n", ["experiment._helper"]),
        ("import jaxid.identify._core\n", ["identify._core"]),
        ("from .sampling import _private_here\n", []),  # same subpackage: allowed
        ("from ..identify import value_and_jacobian, __version__\n", []),  # public and dunder names
    ],
)
def test_the_private_import_check_finds_what_it_should(tmp_path, source, expected):
    # A small package laid out like jaxid: the scan must flag exactly the cross-subpackage private names.
    pkg = tmp_path / "jaxid"
    for sub in ("identify", "sensitivity"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "identify" / "experiment.py").write_text("")
    (pkg / "identify" / "_core.py").write_text("")
    (pkg / "sensitivity" / "sampling.py").write_text("")
    (pkg / "sensitivity" / "gradient.py").write_text(source)
    found = [f for f in private_cross_imports(pkg) if "gradient.py" in f]
    assert len(found) == len(expected), found
    for hit, name in zip(found, expected, strict=True):
        assert hit.endswith(name), hit


MOVED = {
    "jaxid.models.walking": "jaxid.walker.model",
    "jaxid.gait": "jaxid.walker.gait",
    "jaxid.gait_store": "jaxid.walker.store",
    "jaxid.switching": "jaxid.simulate.events",
    "jaxid.chunking": "jaxid.simulate.chunking",
    "jaxid.store": "jaxid.data.store",
}


def test_moved_modules_keep_their_old_import_paths():
    # Each old path is the new module itself; jaxid.data (now the stores' package) still gives the
    # gait data set's names, jaxid.models the Walker, and jaxid.simulate stays the function.
    code = f"""
import importlib, pickle
import jaxid
for old, new in {MOVED!r}.items():
    assert importlib.import_module(old) is importlib.import_module(new), old
from jaxid.data import GaitDataset, add_noise, generate_gait_dataset, load_dataset
import jaxid.walker.data as wd
assert (GaitDataset, add_noise, generate_gait_dataset, load_dataset) == (
    wd.GaitDataset, wd.add_noise, wd.generate_gait_dataset, wd.load_dataset)
assert pickle.loads(b"cjaxid.data\\nGaitDataset\\n.") is wd.GaitDataset
assert pickle.loads(b"cjaxid.switching\\nHybridSimulation\\n.") is jaxid.HybridSimulation
from jaxid.models import Walker
assert Walker is jaxid.Walker
from jaxid import simulate
from jaxid.simulate import simulate_batch
assert callable(simulate) and simulate is jaxid.simulate and simulate_batch is jaxid.simulate_batch
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr[-3000:]
