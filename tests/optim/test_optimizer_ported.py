"""An optimizer written as PyTorch's is (its parameters first, its keyword arguments at their
defaults) is met by name: PyTorch's options at their defaults are taken, other values refused by
name, and parameters given first are refused with the gpubp way (an optimizer steps a model)."""
import numpy as np
import pytest

import gpubp

MODEL = gpubp.Sequential([gpubp.Dense(2, 2)], seed=0)
TORCH_DEFAULTS = dict(foreach=None, maximize=False, capturable=False, differentiable=False, fused=None)


@pytest.mark.parametrize("make", [gpubp.SGD, gpubp.RMSprop, gpubp.Adam, gpubp.AdamW])
def test_pytorch_s_options_at_their_defaults_are_taken(make):
    """Was: TypeError "SGD.__init__() got an unexpected keyword argument 'foreach'"."""
    assert repr(make(lr=0.01, **TORCH_DEFAULTS)) == repr(make(lr=0.01))
    assert repr(gpubp.get_optimizer(make.__name__.lower(), lr=0.01, foreach=None)) == repr(make(lr=0.01))


@pytest.mark.parametrize("option, value, words", [
    ("maximize", True, r"Adam does not support maximize=True: it minimises the loss"),
    ("foreach", True, r"Adam does not support foreach=True"),
    ("fused", True, r"Adam does not support fused=True"),
    ("lr_decay", 0.1, r"Adam got an unexpected keyword argument 'lr_decay'")])
def test_other_values_are_refused_by_name(option, value, words):
    with pytest.raises(gpubp.InvalidValueError, match=words):
        gpubp.Adam(lr=0.01, **{option: value})


@pytest.mark.parametrize("make", [gpubp.SGD, gpubp.Adam, gpubp.AdamW, gpubp.RMSprop])
@pytest.mark.parametrize("params", [MODEL.parameters(), list(MODEL.parameters().values()), MODEL,
                                    (p for p in MODEL.parameters().values())], ids=["dict", "list", "model", "gen"])
def test_parameters_given_first_are_told_the_gpubp_way(make, params):
    """Was: "SGD.__init__() got multiple values for argument 'lr'" (TypeError), or 'lr must be a finite
    number > 0, got {'0.W': array(...' for SGD(model.parameters()), as PyTorch's optimizers are called."""
    name = make.__name__
    with pytest.raises(gpubp.InvalidValueError, match=rf"{name} takes no parameters \(PyTorch's first argument\): "
                                                      rf"make it as {name}\(lr=0.01\)"):
        make(params, lr=0.01)
    with pytest.raises(gpubp.InvalidValueError, match=rf"{name} takes no parameters"):
        make(params)


def test_a_learning_rate_given_first_is_still_a_learning_rate():
    assert gpubp.SGD(0.5).lr == 0.5 and gpubp.Adam(np.float32(0.25)).lr == 0.25
