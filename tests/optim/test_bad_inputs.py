"""Optimizers given bad input: each refused by name before any parameter or state changes."""
import copy

import numpy as np
import pytest

import gpubp
from gpubp.optim import SGD, Adam, RMSprop, get_optimizer, optimizer_from_state


def stepped(make_opt, steps=1):
    """A two-layer model and an optimizer that took ``steps`` steps on it."""
    backend = gpubp.get_backend("cpu", "float64")
    model = gpubp.Sequential([gpubp.Dense(3, 2), gpubp.Dense(2, 1)], backend=backend)
    opt = make_opt()
    for _ in range(steps):
        for layer in model.layers:
            for g in layer.grads.values():
                g[...] = 0.5
        opt.step(model)
    return model, opt


@pytest.mark.parametrize("make,word", [
    (lambda: SGD(lr="0.1"), "lr"), (lambda: Adam(lr=True), "lr"),
    (lambda: SGD(momentum=0.9, nesterov="False"), "nesterov"),
    (lambda: Adam(amsgrad="no"), "amsgrad"), (lambda: RMSprop(centered="False"), "centered"),
    (lambda: Adam(decoupled_weight_decay="yes"), "decoupled_weight_decay"),
])
def test_strings_and_bools_are_not_taken_for_numbers_or_flags(make, word):
    # "False" is truthy: nesterov="False" used to turn Nesterov on; lr="0.1" was parsed
    with pytest.raises(gpubp.InvalidValueError, match=word):
        make()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, "0.1", None])
def test_a_learning_rate_set_between_steps_is_checked_when_set(value):
    model, opt = stepped(lambda: SGD(lr=0.1))
    W = model.layers[0].params["W"].copy()
    with pytest.raises(gpubp.InvalidValueError, match="lr"):
        opt.lr = value  # a NaN rate used to write NaN into every parameter at the next step
    assert opt.lr == 0.1
    opt.step(model)
    assert np.isfinite(model.layers[0].params["W"]).all() and not np.array_equal(W, model.layers[0].params["W"])


def test_a_learning_rate_of_zero_may_be_set_by_a_schedule():
    _, opt = stepped(lambda: SGD(lr=0.1))
    opt.lr = 0
    assert opt.lr == 0.0


def test_unknown_keyword_arguments_are_named():
    with pytest.raises(gpubp.InvalidValueError, match="betas"):
        get_optimizer("sgd", betas=(0.9, 0.99))
    with pytest.raises(gpubp.InvalidValueError, match="momentum"):
        get_optimizer("adamw", momentum=0.9)
    assert get_optimizer("nesterov", lr=0.5).lr == 0.5


def damage(saved, how):
    saved = copy.deepcopy(saved)
    how(saved)
    return saved


BAD_STATES = {
    "not a dict": (lambda s: None, [1, 2]),
    "missing keys": (lambda s: s.pop("state"), None),
    "t negative": (lambda s: s.update(t=-3), None),
    "t text": (lambda s: s.update(t="7"), None),
    "t fractional": (lambda s: s.update(t=2.5), None),
    "lr NaN": (lambda s: s["hyper"].update(lr=float("nan")), None),
    "beta out of range": (lambda s: s["hyper"].update(beta1=1.5), None),
    "unknown hyperparameter": (lambda s: s["hyper"].update(bogus=1), None),
    "hyper not a dict": (lambda s: s.update(hyper=3), None),
    "NaN in a slot": (lambda s: s["state"]["0.W"]["m"].fill(np.nan), None),
    "negative second moment": (lambda s: s["state"]["0.W"]["v"].fill(-1.0), None),
    "integer slot": (lambda s: s["state"]["0.W"].update(m=np.zeros((3, 2), np.int64)), None),
}


@pytest.mark.parametrize("case", sorted(BAD_STATES))
@pytest.mark.parametrize("load", ["load_state_dict", "optimizer_from_state"])
def test_a_damaged_state_is_refused_by_name_and_changes_nothing(case, load):
    model, adam = stepped(lambda: Adam(lr=0.01), steps=2)
    how, replacement = BAD_STATES[case]
    saved = replacement if replacement is not None else damage(adam.state_dict(), how)
    opt = Adam(lr=0.5)
    with pytest.raises(gpubp.GpubpError):  # raw KeyError/ValueError/math domain error before
        if load == "load_state_dict":
            opt.load_state_dict(saved, model.backend)
        else:
            optimizer_from_state(saved, model.backend)
    assert opt.lr == 0.5 and opt.t == 0 and opt.state == {}


def test_state_for_parameters_the_model_lacks_or_without_some_it_has_is_refused():
    model, adam = stepped(lambda: Adam(lr=0.01), steps=2)
    W = model.layers[0].params["W"].copy()
    for how in (lambda s: s["state"].pop("0.W"), lambda s: s["state"].update({"7.W": s["state"]["0.W"]})):
        opt = Adam()
        opt.load_state_dict(damage(adam.state_dict(), how), model.backend)
        with pytest.raises(gpubp.ShapeError, match="not this model's"):  # was: fresh zero moments, silently
            opt.step(model)
        np.testing.assert_array_equal(model.layers[0].params["W"], W)
