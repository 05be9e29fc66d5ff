"""A keyword argument no gpubp layer takes (a misspelling, another library's) is refused by every layer
class gpubp registers, naming the layer and the argument. Was: Python's bare TypeError
"Flatten.__init__() got an unexpected keyword argument 'device'" (Flatten, Identity)."""
import pytest

import gpubp
from gpubp.errors import InvalidValueError

REQUIRED = {"Dense": (4, 3), "Conv2D": (1, 2, 3), "MaxPool2D": (2,), "AvgPool2D": (2,), "BatchNorm": (3,)}


def test_every_layer_class_is_listed_here():
    """A layer class added later gets its required arguments here, or the next test misses it."""
    plain = {name for name, cls in gpubp.nn.LAYERS.items() if name not in REQUIRED}
    for name in plain:
        gpubp.nn.LAYERS[name]()  # needs no argument


@pytest.mark.parametrize("name", sorted(gpubp.nn.LAYERS))
@pytest.mark.parametrize("keyword", ["bogus", "device_id", "inplce"])
def test_an_unknown_keyword_is_named_by_every_layer(name, keyword):
    with pytest.raises(InvalidValueError, match=f"{name} got an unexpected keyword argument '{keyword}'"):
        gpubp.nn.LAYERS[name](*REQUIRED.get(name, ()), **{keyword: 1})


@pytest.mark.parametrize("name", ["Flatten", "Identity"])
def test_a_layer_config_with_a_key_too_many_is_refused_naming_it(name):
    with pytest.raises(InvalidValueError, match=f"{name} got an unexpected keyword argument 'extra'"):
        gpubp.nn.layer_from_config({**gpubp.nn.LAYERS[name]().config(), "extra": 0})
