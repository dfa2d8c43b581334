"""The figures draw the numbers they are given: jaxid.plots and jaxid.identify.plots."""

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from jaxid.identify import Experiment, analyze
from jaxid.identify.plots import plot_null_vectors, plot_report, plot_spectrum
from jaxid.plots import agg_pyplot, plot_trajectories

matplotlib.use("Agg")


class _Sim:
    """What plot_trajectories reads from a batched Simulation."""

    def __init__(self, ts, obs, success):
        self.ts, self.obs, self.success = ts, obs, success


def test_trajectories_draw_each_record_and_dash_the_failed_ones():
    rng = np.random.default_rng(0)
    ts = np.tile(np.linspace(0.0, 1.0, 11), (3, 1))
    obs = rng.normal(size=(3, 11, 2))
    fig = plot_trajectories(_Sim(ts, obs, np.array([True, False, True])), ["x", "v"], title="t")
    axes = fig.axes
    assert [a.get_ylabel() for a in axes] == ["x", "v"] and axes[0].get_title() == "t"
    for c, ax in enumerate(axes):
        lines = ax.get_lines()
        assert len(lines) == 3
        for r, line in enumerate(lines):
            np.testing.assert_array_equal(line.get_xdata(), ts[r])
            np.testing.assert_array_equal(line.get_ydata(), obs[r, :, c])
        assert [line.get_linestyle() for line in lines] == ["-", "--", "-"]
    one = plot_trajectories(_Sim(ts[0], obs[0], np.array(True)), ["x", "v"], max_records=1)
    np.testing.assert_array_equal(one.axes[1].get_lines()[0].get_ydata(), obs[0, :, 1])
    agg_pyplot().close("all")


@pytest.fixture(scope="module")
def sum_report():
    """y = (a + b) t + c t^2: a + b is identifiable, a - b is not (rank 2 of 3)."""
    ts = jnp.linspace(0.0, 1.0, 8)
    e = Experiment(lambda th: (th[0] + th[1]) * ts + th[2] * ts**2, 0.1, param_names=("a", "b", "c"))
    return analyze(e, np.array([1.0, 2.0, 0.5]), scale="natural", check_points=1)


def test_spectrum_plots_the_relative_singular_values_and_threshold(sum_report):
    s = sum_report.spectrum
    assert s.rank == 2
    ax = plot_spectrum(sum_report).axes[0]
    kept, null, threshold = ax.get_lines()[:3]
    rel = np.maximum(s.singular_values / s.singular_values[0], np.finfo(float).eps)
    np.testing.assert_allclose(kept.get_ydata(), rel[:2])
    np.testing.assert_allclose(null.get_ydata(), rel[2:])
    np.testing.assert_allclose(threshold.get_ydata()[0], s.threshold / s.singular_values[0])
    assert "rank 2 of 3" in ax.get_title()
    agg_pyplot().close("all")


def test_null_vectors_are_the_bars(sum_report):
    ax = plot_null_vectors(sum_report).axes[0]
    heights = np.array([p.get_height() for p in ax.patches])
    v = sum_report.spectrum.null_space[:, 0]
    # the null direction of a + b is (1, -1, 0) / sqrt(2), up to sign
    np.testing.assert_allclose(np.abs(heights), [2**-0.5, 2**-0.5, 0.0], atol=1e-8)
    np.testing.assert_allclose(heights, v, atol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    fig = plot_report(sum_report)
    assert len(fig.axes) == 2  # no profiles: spectrum and null vectors
    agg_pyplot().close("all")
