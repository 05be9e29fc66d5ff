"""A subclass of a gpubp layer (a Dense of one's own with another forward) names its own class in its config,
so a model rebuilt from the config (Sequential.from_config, a checkpoint's architecture) is refused pointing
at load_into, not silently made of gpubp's layer. Was: Dense, Conv2D, BatchNorm, Dropout, Flatten and
LeakyReLU wrote their own names whatever the class, so from_config rebuilt the plain layer: another model."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError

SUBCLASSED = {
    "Dense": lambda cls: cls(4, 3), "Conv2D": lambda cls: cls(1, 2, 3), "BatchNorm": lambda cls: cls(3),
    "Dropout": lambda cls: cls(0.5), "Flatten": lambda cls: cls(), "LeakyReLU": lambda cls: cls(0.2),
    "MaxPool2D": lambda cls: cls(2), "Sigmoid": lambda cls: cls(),
}


@pytest.mark.parametrize("name", list(SUBCLASSED))
def test_a_subclass_names_its_own_class_and_is_not_rebuilt_as_gpubp_s(name):
    own = type(f"My{name}", (gpubp.nn.LAYERS[name],), {"forward": lambda self, X, out=None: X})
    layer = SUBCLASSED[name](own)
    assert layer.config()["type"] == f"My{name}"
    with pytest.raises(InvalidValueError, match=f"unknown layer type 'My{name}'.*load_into"):
        gpubp.Sequential.from_config([layer.config()])


@pytest.mark.parametrize("name", list(SUBCLASSED))
def test_gpubp_s_own_layers_round_trip_as_before(name):
    layer = SUBCLASSED[name](gpubp.nn.LAYERS[name])
    assert layer.config()["type"] == name
    assert gpubp.nn.layer_from_config(layer.config()).config() == layer.config()


def test_a_model_of_gpubp_layers_rebuilds_the_same():
    model = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.BatchNorm(2), gpubp.LeakyReLU(0.2), gpubp.Flatten(),
                              gpubp.Dropout(0.1), gpubp.Dense(8, 2)], seed=0)
    again = gpubp.Sequential.from_config(model.config(), seed=0)
    X = np.random.default_rng(0).normal(size=(3, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
