"""Bad input to jaxid.hybrid: caught before any network is built or step taken."""

import jax
import pytest

from jaxid.hybrid import HybridSplit, HybridTrainConfig, evaluate, fit, get_system, make_model

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(width=0), ValueError, "width must be an int >= 1, got 0"),
        (dict(depth=-1), ValueError, "depth must be an int >= 1"),
        (dict(kl=float("nan")), ValueError, "kl must be finite"),
        (dict(unmix=-1.0), ValueError, "unmix must be >= 0"),
        (dict(kl="1"), TypeError, "kl must be a real number"),
    ],
)
def test_make_model_options(options, error, match):
    with pytest.raises(error, match=rf"make_model\('hybrid_vae'\): {match}"):
        make_model("hybrid_vae", get_system("pendulum"), None, key=KEY, **options)


def test_steps_must_be_whole_calls():
    with pytest.raises(ValueError, match=r"steps \(3\) must be a multiple of steps_per_call \(2\)"):
        HybridTrainConfig(steps=3, steps_per_call=2).validate()
    HybridTrainConfig(steps=4, steps_per_call=2).validate()


def test_fit_config_and_data_types():
    with pytest.raises(TypeError, match=r"fit: config must be a jaxid.hybrid.HybridTrainConfig, got dict"):
        fit(None, None, {"steps": 10})
    split = object.__new__(HybridSplit)
    with pytest.raises(TypeError, match=r"fit: data must be .*HybridData.*got a split"):
        fit(None, split, HybridTrainConfig())


@pytest.mark.parametrize("k", [-1, 0, 2.5])
def test_evaluate_context_size(k):
    with pytest.raises(ValueError, match="evaluate: context_size must be an int >= 1"):
        evaluate(None, None, context_size=k)
