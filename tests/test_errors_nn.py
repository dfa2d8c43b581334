"""Bad input to jaxid.nn."""

import numpy as np
import pytest

from jaxid import nn


def test_train_config_must_be_a_train_config():
    x, y = np.zeros((10, 4, 1)), np.zeros((10, 1))
    with pytest.raises(TypeError, match=r"train: config must be a jaxid.nn.TrainConfig, got dict"):
        nn.train(x, y, ["a"], config={"epochs": 3})
