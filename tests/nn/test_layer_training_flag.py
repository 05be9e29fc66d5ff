"""A layer's ``training`` is checked when set, as the model's is (``model.training = ...`` and
``model.train(mode)``): a string such as "False", a number or None is refused by name. Was: set on
the layer directly, "False" read as True, so a Dropout kept dropping units in what its user meant
for evaluation, and a BatchNorm kept normalising by the batch and moving its running estimates."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError


@pytest.mark.parametrize("layer", [gpubp.Dropout(0.5), gpubp.BatchNorm(3), gpubp.Dense(3, 3), gpubp.ReLU()],
                         ids=lambda layer: type(layer).__name__)
@pytest.mark.parametrize("value", ["False", 0, 1, None])
def test_training_set_to_no_bool_is_refused(layer, value):
    with pytest.raises(InvalidValueError, match=rf"{type(layer).__name__} training must be True or False, "
                                                rf"got {value!r}"):
        layer.training = value
    assert layer.training is True


def test_training_takes_bools_numpy_s_too_and_a_model_sets_every_layer():
    model = gpubp.Sequential([gpubp.Dense(3, 3), gpubp.Dropout(0.5), gpubp.BatchNorm(3)], dtype="float64", seed=0)
    model.layers[1].training = np.bool_(False)
    assert model.layers[1].training is False and model.training is False
    X = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(model.layers[1](X), X)  # eval: Dropout passes X on
    model.train()
    assert all(layer.training is True for layer in model.layers)
    model.eval()
    assert not any(layer.training for layer in model.layers)


def test_a_mode_block_puts_each_layer_s_mode_back_by_layer_not_by_position():
    """``model.mode(...)`` puts back the modes the layers had: a layer inserted inside the block keeps
    its own and the others get theirs, wherever they moved. Was: by position, so the model's last
    layer (moved one down) was left in training after an eval model's training block."""
    model = gpubp.Sequential([gpubp.Dense(3, 3), gpubp.Dropout(0.5)], dtype="float64", seed=0).eval()
    dropout, added = model.layers[1], gpubp.ReLU()
    with model.mode(True):
        model.layers.insert(0, added)
    assert dropout.training is False and model.layers[1].training is False
    assert added.training is True  # new inside the block: its own mode, as the block set it
