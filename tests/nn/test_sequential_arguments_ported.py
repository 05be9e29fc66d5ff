"""Sequential and mlp given arguments they do not take, as ported code writes them (PyTorch's
nn.Sequential(a, b, c, d, e) with five layers or more, a device= keyword), refuse them naming them.
Was: Python's TypeError "Sequential.__init__() takes from 2 to 5 positional arguments but 6 were given"
(layers given separately were named only up to four), "got an unexpected keyword argument 'device'"."""
import pytest

import gpubp
from gpubp.errors import InvalidValueError


@pytest.mark.parametrize("count", [5, 7])
def test_five_layers_or_more_given_separately_are_named(count):
    layers = [gpubp.Dense(2, 2) if i % 2 == 0 else gpubp.ReLU() for i in range(count)]
    with pytest.raises(InvalidValueError, match=r"takes its layers as one list, got them as separate arguments; "
                                                r"write Sequential\(\[Dense\(2, 2\), ReLU\(\), .*Dense\(2, 2\)\]\)"):
        gpubp.Sequential(*layers)


@pytest.mark.parametrize("call, words", [
    (lambda: gpubp.Sequential([gpubp.Dense(2, 3)], device="cpu"), r"got also device='cpu' \(give the device as "
                                                                   r"backend=\)"),
    (lambda: gpubp.Sequential([gpubp.Dense(2, 3)], "cpu", "float32", 0, 5), "got also 5"),
    (lambda: gpubp.network.mlp(2, [3], 1, device="cpu"), r"mlp takes .*got also device='cpu'")])
def test_arguments_it_does_not_take_are_named(call, words):
    with pytest.raises(InvalidValueError, match=words):
        call()
