"""The study configuration: TOML reading, priors, and every bad-input error naming its key."""

import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxid.priors import LogNormal, LogUniform, Normal, Prior, Uniform
from jaxid.study import (
    StudyConfig,
    config_from_dict,
    load_config,
    load_preset,
    preset_names,
    resolve_model,
)

PENDULUM = """
name = "p"
records = 100
[model]
name = "pendulum"
[params]
m = [0.5, 2.0]
L = [0.5, 2.0]
b = { log_uniform = [0.05, 0.5] }
g = { normal = [9.81, 0.3], low = 9.0, high = 10.6 }
[initial_state]
theta = 0.5
omega = 0.0
[observation]
times = { start = 0.0, stop = 4.0, num = 41 }
channels = ["theta"]
noise = 0.01
[estimators]
batch_size = 16
"""


def write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_load_config_reads_every_table(tmp_path):
    c = load_config(write(tmp_path, PENDULUM))
    assert isinstance(c, StudyConfig) and c.param_names == ("m", "L", "b", "g")
    assert c.params["m"] == Uniform(0.5, 2.0) and isinstance(c.params["b"], LogUniform)
    g = c.params["g"]
    assert isinstance(g, Normal) and (g.mean, g.sd, g.low, g.high) == (9.81, 0.3, 9.0, 10.6)
    assert c.times == tuple(np.linspace(0.0, 4.0, 41)) and c.channels == ("theta",)
    assert c.initial_state == {"theta": 0.5, "omega": 0.0} and c.estimators.batch_size == 16
    r = resolve_model(c)
    assert r.kind == "model" and r.channel_index == (0,) and r.obs_shape == (41, 1)
    assert r.param_index == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="records"):
        c.replace(records=3)
    assert c.replace(records=500, seed=3).records == 500


def test_presets_load_and_resolve():
    assert {"pendulum", "forced_damped_pendulum"} <= set(preset_names())
    for name in preset_names():
        c = load_preset(name)
        assert resolve_model(c).kind == "model"
    fdp = load_preset("forced_damped_pendulum").bayes
    assert (fdp.starts, fdp.fits) == (256, 16)  # its likelihood oscillates in f (the preset says why)


def test_user_model_class_and_function_by_module_path():
    base = dict(params={"k": [0.1, 1.0], "V": [1.0, 10.0]}, initial_state={"x": 1.0})
    base["observation"] = {"times": [0.0, 1.0, 2.0], "channels": ["conc"]}
    c = config_from_dict({"model": "study_user_models:Elimination", **base, "estimators": {"batch_size": 8}})
    r = resolve_model(c)
    assert r.kind == "model" and type(r.model).__name__ == "Elimination" and r.channels == ("conc",)
    f = config_from_dict(
        {
            "model": {"name": "study_user_models:scaled_decay"},
            "params": {"a": [1, 2], "b": [1, 2], "c": [1, 2]},
        }
    )
    assert resolve_model(f).kind == "function" and resolve_model(f).obs_shape == (21, 1)


def test_prior_quantile_matches_scipy():
    u = np.linspace(0.01, 0.99, 11)
    cases = [
        (Uniform(1.0, 3.0), stats.uniform(1.0, 2.0)),
        (LogUniform(0.1, 10.0), stats.loguniform(0.1, 10.0)),
        (Normal(1.0, 2.0, low=0.0, high=5.0), stats.truncnorm(-0.5, 2.0, loc=1.0, scale=2.0)),
        (LogNormal(0.2, 0.5), stats.lognorm(0.5, scale=np.exp(0.2))),
    ]
    for dist, ref in cases:  # float64 inverse CDFs: agreement to rounding
        np.testing.assert_allclose(np.asarray(dist.quantile(jnp.asarray(u))), ref.ppf(u), rtol=1e-10)
    prior = Prior({"a": Uniform(0.0, 1.0), "b": LogUniform(1.0, 100.0)})
    np.testing.assert_allclose(np.asarray(prior.quantile(jnp.array([[0.5, 0.5]]))), [[0.5, 10.0]], rtol=1e-12)


def _edit(text, old, new):
    assert old in text
    return text.replace(old, new)


BAD = [
    (
        "unknown top key",
        ("records = 100", "recrods = 100"),
        ValueError,
        r"^recrods: unknown key; did you mean 'records'",
    ),
    (
        "unknown table key",
        ("batch_size = 16", "batch_sise = 16"),
        ValueError,
        r"estimators\.batch_sise: .*'batch_size'",
    ),
    (
        "unknown observation key",
        ("noise = 0.01", "noize = 0.01"),
        ValueError,
        r"observation\.noize: .*'noise'",
    ),
    (
        "missing prior",
        ("g = { normal = [9.81, 0.3], low = 9.0, high = 10.6 }", ""),
        ValueError,
        r"params\.g: no prior",
    ),
    (
        "prior excludes fixed value",
        ("g = { normal = [9.81, 0.3], low = 9.0, high = 10.6 }", "g = [9.0, 9.5]\n[fixed]\ng = 9.81"),
        ValueError,
        r"fixed\.g: .*prior \[9, 9.5\] excludes 9.81",
    ),
    (
        "prior outside the model's range",
        ("m = [0.5, 2.0]", "m = [-0.5, 2.0]"),
        ValueError,
        r"params\.m: .*m must be > 0",
    ),
    (
        "unknown parameter",
        ("m = [0.5, 2.0]", "mass = [0.5, 2.0]"),
        ValueError,
        r"params\.mass: .*no parameter",
    ),
    (
        "model import",
        ('name = "pendulum"', 'name = "no_such_pkg.models:Thing"'),
        ValueError,
        r"model\.name: cannot import",
    ),
    (
        "model attribute",
        ('name = "pendulum"', 'name = "study_user_models:Nope"'),
        ValueError,
        r"model\.name: .*no attribute",
    ),
    (
        "not a model",
        ('name = "pendulum"', 'name = "study_user_models:not_a_model"'),
        TypeError,
        r"model\.name: ",
    ),
    (
        "built-in typo",
        ('name = "pendulum"', 'name = "pendulm"'),
        ValueError,
        r"model\.name: .*did you mean 'pendulum'",
    ),
    (
        "channel",
        ('channels = ["theta"]', 'channels = ["angle"]'),
        ValueError,
        r"observation\.channels: .*\['angle'\]",
    ),
    ("initial state", ("omega = 0.0", ""), ValueError, r"initial_state\.omega: no value"),
    (
        "initial state key",
        ("omega = 0.0", "omega = 0.0\nphi = 1.0"),
        ValueError,
        r"initial_state\.phi: unknown key",
    ),
    (
        "prior kind",
        ("m = [0.5, 2.0]", "m = { uniformm = [0.5, 2.0] }"),
        ValueError,
        r"params\.m\.uniformm: .*'uniform'",
    ),
    ("prior values", ("m = [0.5, 2.0]", "m = [2.0, 0.5]"), ValueError, r"params\.m: .*low < high"),
    ("noise", ("noise = 0.01", "noise = 0.0"), ValueError, r"observation\.noise: must be > 0"),
    ("times", ("num = 41", "num = 1"), ValueError, r"observation\.times\.num"),
    (
        "batch too large",
        ("batch_size = 16", "batch_size = 500"),
        ValueError,
        r"estimators\.batch_size: 500 is larger",
    ),
    ("seed type", ("records = 100", "records = 100\nseed = 1.5"), TypeError, r"seed: must be an int"),
    (
        "bayes fits",
        ("batch_size = 16", "batch_size = 16\n[bayes]\nfits = 0"),
        ValueError,
        r"bayes\.fits: ",
    ),
]


@pytest.mark.parametrize("edit, error, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_configuration_names_the_key(tmp_path, edit, error, match):
    with pytest.raises(error, match=match):
        load_config(write(tmp_path, _edit(PENDULUM, *edit)))


def test_function_model_refuses_model_only_tables():
    with pytest.raises(ValueError, match=r"^fixed: .*is a function"):
        config_from_dict(
            {"model": "study_user_models:scaled_decay", "params": {"a": [1, 2], "b": [1, 2], "c": [1, 2]},
             "fixed": {"d": 1.0}}
        )  # fmt: skip


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ValueError, match="config: no such file"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(write(tmp_path, "model = [1,"))
