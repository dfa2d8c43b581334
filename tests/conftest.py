"""Test configuration.

- float64 everywhere (Fisher ranks and tight references need it).
- One JAX compilation cache per test run, shared by the pytest-xdist workers and by the
  subprocesses the tests start (README blocks, notebooks, the command line): a function compiled
  by one of them is not compiled again by another. The directory is new for each run (set by the
  first process, inherited by the rest), so a run never reads executables from an earlier one.
- Under pytest-xdist (``--dist loadgroup``) each module's tests are marked as one group, so that
  its module-scoped fixtures (compiled simulations, trained networks) are built once, except the
  notebook and README runs, independent subprocesses spread over the workers one by one. The
  marks are added before pytest-xdist's own hook reads them (``tryfirst``), and they need pytest
  < 9.2 (pyproject.toml says why); ``tests/test_conftest.py`` fails if a module's tests lose
  their group.
- XLA's CPU backend compiles at LLVM optimisation level 1 (``--xla_backend_optimization_level=1``
  in ``XLA_FLAGS``, inherited by the subprocesses; XLA's default is 3). Most of the suite's time
  is compiling; level 1 compiles the walker's and the samplers' programs in about half the time
  and runs them as fast, and floating-point semantics are the same (no fast-math at any level).
  A level already in ``XLA_FLAGS`` is kept.
- Run-time type checks: every annotated function and dataclass of jaxid is checked on each call
  (jaxtyping's import hook with the checker of ``tests/jaxid_typecheck.py``: beartype for the
  Python types, jaxtyping for array dtypes and shapes, the shape names consistent within a call).
  The hook is installed here, before anything imports jaxid. Inside ``pytest.raises`` blocks the
  checks are off: those blocks test jaxid's own errors for bad input, which a type violation
  would otherwise pre-empt.
- ``JAXID_TEST_PROFILE=path``: each test appends one JSON line to ``path`` with its wall time and
  the seconds JAX spent tracing, lowering and compiling in this process (module fixtures count
  with the first test that uses them; subprocesses are counted in wall time only). Summarise with
  ``python tests/profile_summary.py path``.
"""

import json
import os
import shutil
import sys
import tempfile
import time

_XLA_LEVEL = "--xla_backend_optimization_level=1"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_LEVEL}".strip()

import jax  # noqa: E402  (XLA_FLAGS first)
import pytest  # noqa: E402
from jaxtyping import install_import_hook  # noqa: E402

if "jaxid" in sys.modules:  # pragma: no cover - the hook would not see the package
    raise RuntimeError("jaxid was imported before tests/conftest.py installed the type checks")
install_import_hook("jaxid", "jaxid_typecheck.typechecker")

jax.config.update("jax_enable_x64", True)

_CACHE_VAR = "JAX_COMPILATION_CACHE_DIR"
if _CACHE_VAR not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxid-test-compile-cache-")
    os.environ[_CACHE_VAR] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
    _OWNED_CACHE = _cache
else:
    _OWNED_CACHE = None
jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_VAR])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")),
)

_PROFILE = os.environ.get("JAXID_TEST_PROFILE")
_EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
_spent = dict.fromkeys(_EVENTS.values(), 0.0)
if _PROFILE:

    def _on_duration(event, duration, **kwargs):
        if event in _EVENTS:
            _spent[_EVENTS[event]] += duration

    jax.monitoring.register_event_duration_secs_listener(_on_duration)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        for k in _spent:
            _spent[k] = 0.0
        start = time.perf_counter()
        yield
        row = dict(test=item.nodeid, wall=time.perf_counter() - start, **_spent)
        with open(_PROFILE, "a") as f:
            f.write(json.dumps(row) + "\n")


# The run-time type checks are off inside pytest.raises blocks (see the module docstring).
_raises = pytest.raises


class _UncheckedRaises:
    def __init__(self, *args, **kwargs):
        self._cm = _raises(*args, **kwargs)

    def __enter__(self):
        import jaxid_typecheck

        self._was = jaxid_typecheck.enabled
        jaxid_typecheck.enabled = False
        return self._cm.__enter__()

    def __exit__(self, *exc):
        import jaxid_typecheck

        jaxid_typecheck.enabled = self._was
        return self._cm.__exit__(*exc)


def _raises_unchecked(*args, **kwargs):
    if len(args) > 1 and callable(args[1]):  # the function form: pytest.raises(E, fn, *args)
        exc, fn, *rest = args
        with _UncheckedRaises(exc, **{k: v for k, v in kwargs.items() if k == "match"}):
            fn(*rest, **{k: v for k, v in kwargs.items() if k != "match"})
        return None
    return _UncheckedRaises(*args, **kwargs)


pytest.raises = _raises_unchecked

# modules whose tests are independent subprocesses: distributed one test at a time
SPREAD = {"test_notebooks", "test_readme"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(module))


def pytest_unconfigure(config):
    if _OWNED_CACHE is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(_OWNED_CACHE, ignore_errors=True)
