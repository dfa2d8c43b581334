"""The test configuration does what tests/conftest.py says it does."""

import os

import jax
import pytest


def test_float64_is_on():
    assert jax.numpy.ones(1).dtype == jax.numpy.float64


def test_a_module_runs_as_one_xdist_group(request):
    """Under ``--dist loadgroup`` this test's node id carries its module's group.

    Without the suffix pytest-xdist spreads a module's tests over the workers and every worker
    builds the module's compiled fixtures again (pytest 9.2 with pytest-xdist 3.8 does this).
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("not running under pytest-xdist")
    if not request.config.getvalue("loadgroup"):
        pytest.skip("pytest-xdist is not distributing by group (--dist loadgroup)")
    assert request.node.nodeid.endswith("@test_conftest"), request.node.nodeid
