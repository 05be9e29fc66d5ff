"""``optimizer.hyper = {...}`` sets the hyperparameters it names and keeps the others, and refuses lr.
Was: the others went back to their defaults silently (SGD's weight_decay 0.01 to 0 when only momentum was
named; Adam's {"beta1": 0.5} a "beta2 ... got None" error), and an lr in it was dropped silently."""
import pytest

from gpubp.errors import InvalidValueError
from gpubp.optim import SGD, Adam


def test_the_hyperparameters_not_named_keep_their_values():
    opt = SGD(0.1, momentum=0.9, weight_decay=0.01)
    opt.hyper = {"momentum": 0.5}
    assert opt.hyper == {"momentum": 0.5, "dampening": 0.0, "nesterov": False, "weight_decay": 0.01}
    adam = Adam(0.1, betas=(0.8, 0.9), eps=1e-6)
    adam.hyper = {"beta1": 0.5}
    assert (adam.hyper["beta1"], adam.hyper["beta2"], adam.hyper["eps"]) == (0.5, 0.9, 1e-6)
    adam.hyper = {"betas": (0.6, 0.7)}
    assert (adam.hyper["beta1"], adam.hyper["beta2"]) == (0.6, 0.7)
    adam.hyper = {**adam.hyper, "amsgrad": True}  # the whole dict, as before
    assert adam.slots == ("m", "v", "vmax") and adam.hyper["eps"] == 1e-6


def test_an_lr_among_them_is_refused_pointing_to_optimizer_lr():
    opt = SGD(0.1, momentum=0.9)
    with pytest.raises(InvalidValueError, match=r"SGD.hyper holds no lr: set optimizer.lr = 0.5"):
        opt.hyper = {"lr": 0.5, "momentum": 0.5}
    assert opt.lr == 0.1 and opt.hyper["momentum"] == 0.9
