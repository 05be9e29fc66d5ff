"""The optimizers and schedules as a user changes them: a hyperparameter that changes the slots a rule
keeps (SGD's momentum, RMSprop's centered and momentum, Adam's amsgrad) set between steps is the
one the next step uses, as its docstring says (it was taken, then every step refused, naming a way
out that threw the moments away); a Cosine schedule's settings set later keep min_lr <= lr; a
schedule or an optimizer or loss given by a name in capitals or as a class."""
import copy
import pickle

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.losses import MSE
from gpubp.optim import SGD, Adam, RMSprop, get_optimizer
from gpubp.schedules import Cosine, get_schedule


def model64():
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Sigmoid(), gpubp.Dense(4, 2)], dtype="float64", seed=0)


def train(model, opt, steps, change=None, at=2):
    """``steps`` steps on a fixed batch, ``change(opt)`` before step ``at``; returns the optimizer stepping."""
    rng = np.random.default_rng(0)
    X, T, loss = rng.random((5, 3)), rng.random((5, 2)), MSE()
    for i in range(steps):
        if i == at and change is not None:
            opt = change(opt) or opt
        model.zero_grad()
        loss.forward(model.forward(X), T)
        model.backward(loss.backward())
        opt.step(model)
    return opt


def sgd_by_hand(momentum_from, steps, lr=0.1, momentum=0.9):
    """PyTorch's SGD with its momentum set from 0 before step ``momentum_from`` (its buffer then
    starts at the gradient), written out with NumPy gradients from gpubp's own backward."""
    model = model64()
    rng = np.random.default_rng(0)
    X, T, loss, bufs = rng.random((5, 3)), rng.random((5, 2)), MSE(), {}
    for i in range(steps):
        model.zero_grad()
        loss.forward(model.forward(X), T)
        model.backward(loss.backward())
        for name, p in model.parameters().items():
            g = model.gradients()[name]
            if i >= momentum_from:
                bufs[name] = g.copy() if name not in bufs else momentum * bufs[name] + g
                g = bufs[name]
            p -= lr * g
    return model.parameters()


def test_sgd_momentum_set_from_zero_between_steps_steps_as_pytorch():
    model = model64()
    opt = train(model, SGD(lr=0.1), 5, lambda o: o.hyper.__setitem__("momentum", 0.9))
    assert sorted(opt.state["0.W"]) == ["buf"]
    expected = sgd_by_hand(2, 5)
    for name, p in model.parameters().items():
        np.testing.assert_allclose(p, expected[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make, key, value, slots", [
    (lambda: SGD(momentum=0.9), "momentum", 0.0, []),
    (lambda: RMSprop(), "centered", True, ["avg", "sq"]),
    (lambda: RMSprop(), "momentum", 0.5, ["buf", "sq"]),
    (lambda: RMSprop(centered=True, momentum=0.5), "centered", False, ["buf", "sq"]),
    (lambda: Adam(), "amsgrad", True, ["m", "v", "vmax"]),
    (lambda: Adam(amsgrad=True), "amsgrad", False, ["m", "v"]),
], ids=["sgd-momentum-off", "rms-centered", "rms-momentum", "rms-centered-off", "adam-amsgrad", "adam-amsgrad-off"])
def test_a_hyperparameter_that_changes_the_slots_is_the_one_the_next_step_uses(make, key, value, slots):
    model, opt = model64(), make()
    train(model, opt, 2)
    reference, ref_opt = copy.deepcopy(model), make()  # the new rule from the start, given the moments kept
    ref_opt.hyper[key], ref_opt.t = value, opt.t
    ref_opt.state = {n: {s: np.array(st[s]) if s in st else np.zeros(model.parameters()[n].shape) for s in slots}
                     for n, st in opt.state.items()}
    opt.hyper[key] = value
    train(model, opt, 2, at=-1)  # refused at the first step after the change on the old code
    train(reference, ref_opt, 2, at=-1)
    assert opt.hyper[key] == value and sorted(opt.state["0.W"]) == slots
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(p, reference.parameters()[name])


def test_saved_state_between_the_change_and_the_next_step_loads_and_continues():
    model, opt = model64(), SGD(lr=0.1)
    train(model, opt, 2)
    opt.hyper["momentum"] = 0.9  # no buffer made yet: the saved state has none, loading it makes them
    restored = SGD()
    restored.load_state_dict(opt.state_dict(), model.backend)
    twin = copy.deepcopy(model)
    train(model, opt, 2, at=-1)
    train(twin, restored, 2, at=-1)
    np.testing.assert_array_equal(model.parameters()["0.W"], twin.parameters()["0.W"])

    model, opt = model64(), Adam()
    train(model, opt, 2)
    opt.hyper["amsgrad"] = True
    saved = opt.state_dict()  # vmax not made yet: saved as the zeros the next step would start from
    assert sorted(saved["state"]["0.W"]) == ["m", "v", "vmax"] and not saved["state"]["0.W"]["vmax"].any()
    restored = Adam()
    restored.load_state_dict(saved, model.backend)
    twin = copy.deepcopy(model)
    train(model, opt, 1, at=-1)
    train(twin, restored, 1, at=-1)
    np.testing.assert_array_equal(model.parameters()["0.W"], twin.parameters()["0.W"])


def test_the_whole_hyper_set_and_a_copy_follow_the_slots_too():
    model, opt = model64(), RMSprop()
    train(model, opt, 2)
    opt.hyper = {**opt.hyper, "centered": True}
    copied = pickle.loads(pickle.dumps(opt))  # a copy between the change and the step steps too
    twin = copy.deepcopy(model)
    train(model, opt, 1, at=-1)
    train(twin, copied, 1, at=-1)
    np.testing.assert_array_equal(model.parameters()["0.W"], twin.parameters()["0.W"])


def test_slots_set_by_hand_are_still_checked_whole():
    model, opt = model64(), Adam()
    opt.state = {"0.W": {"m": np.zeros((3, 4))}}  # v missing, no hyperparameter asked for a new slot
    with pytest.raises(InvalidValueError, match=r"state 0.W has slots \['m'\], Adam keeps \['m', 'v'\]"):
        train(model, opt, 1)
    opt = Adam()
    opt.state = {"0.W": {}}  # nothing made yet, as PyTorch's empty state: made at the step
    train(model, opt, 1)
    assert sorted(opt.state["0.W"]) == ["m", "v"]


def test_cosine_settings_set_later_keep_min_lr_at_most_lr():
    c = Cosine(0.1, 10)
    with pytest.raises(InvalidValueError, match=r"Cosine min_lr must be in \[0, lr\] = \[0, 0.1\], got 1.0"):
        c.min_lr = 1.0  # taken on the old code: the rate then rose from 0.1 to 1.0
    assert c.min_lr == 0.0
    c = Cosine(0.1, 10, min_lr=0.05)
    with pytest.raises(InvalidValueError, match=r"Cosine lr must be >= min_lr = 0.05, got 0.01"):
        c.lr = 0.01
    assert c.lr == 0.1 and c(10) == pytest.approx(0.05)
    c.min_lr = 0.001  # lowering both, min_lr first, is allowed
    c.lr = 0.01
    assert c(0) == pytest.approx(0.01) and c(10) == pytest.approx(0.001)


@pytest.mark.parametrize("schedule", [lambda: 0.1, lambda epoch, lr: lr, 0.1], ids=["no-args", "two-args", "number"])
def test_a_schedule_that_cannot_be_called_with_the_epoch_is_refused_before_training(schedule):
    model = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0)
    before = model.parameters()["0.W"].copy()
    X, y = np.ones((8, 3), np.float32), np.ones((8, 2), np.float32)
    with pytest.raises(InvalidValueError, match="schedule must be"):
        gpubp.fit(model, X, y, loss="mse", epochs=2, schedule=schedule, progress=False)
    np.testing.assert_array_equal(model.parameters()["0.W"], before)
    assert get_schedule(lambda epoch, lr=0.1: lr, 0.1, 3)(2) == 0.1  # a default second argument is fine


def test_names_in_capitals_and_classes_for_instances():
    assert isinstance(gpubp.losses.get_loss("MSE"), MSE)  # as get_optimizer("ADAM") and get_schedule("COSINE")
    assert isinstance(get_optimizer("ADAM"), Adam)
    with pytest.raises(InvalidValueError, match=r"the class MSE; pass an instance, MSE\(\)"):
        gpubp.losses.get_loss(MSE)
    with pytest.raises(InvalidValueError, match=r"the class Adam; pass an instance, Adam\(\)"):
        get_optimizer(Adam)


def test_fit_refuses_an_lr_its_schedule_would_ignore_and_keeps_the_optimizer_as_given():
    X, y = np.ones((8, 3), np.float32), np.ones((8, 2), np.float32)
    model, opt = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0), SGD(lr=0.5)
    before = model.parameters()["0.W"].copy()
    with pytest.raises(InvalidValueError, match=r"fit: lr=0.01 but the schedule Cosine\(lr=0.1.* starts at 0.1"):
        gpubp.fit(model, X, y, loss="mse", optimizer=opt, lr=0.01, schedule=Cosine(0.1, 4), epochs=2,
                  progress=False)  # trained at 0.1, ten times the lr asked for, on the old code
    np.testing.assert_array_equal(model.parameters()["0.W"], before)
    assert opt.lr == 0.5  # fit's lr had been set on it by the refused run
    with pytest.raises(InvalidValueError, match="schedule must be"):
        gpubp.fit(model, X, y, loss="mse", optimizer=opt, lr=0.01, schedule=lambda: 0.1, progress=False)
    assert opt.lr == 0.5
    h = gpubp.fit(model, X, y, loss="mse", optimizer=opt, lr=0.1, schedule=Cosine(0.1, 4), epochs=2, progress=False)
    assert h.lr[0] == 0.1  # an lr the schedule starts at is fine, as is one with a named schedule
    h = gpubp.fit(model, X, y, loss="mse", lr=0.01, schedule=lambda e: np.float32(0.01) / (1 + e), epochs=2,
                  progress=False)
    assert h.lr[0] == pytest.approx(0.01)


@pytest.mark.parametrize("width", [2, 5], ids=["same shape", "another shape"])
def test_a_layer_put_in_place_of_another_starts_with_slots_of_its_own(width):
    """``model.layers[2] = Dense(...)`` between steps: Adam kept the replaced layer's moments for the
    new one under the same name (same shape: m = beta1 m_old + (1 - beta1) g, silently) or refused
    the step (another shape); the new layer's slots start at zeros, the other layers' go on."""
    model, opt = model64(), Adam(lr=0.01)
    train(model, opt, 3)
    kept = {k: v.copy() for k, v in opt.state["0.W"].items()}
    model.layers[2] = gpubp.Dense(4, width, seed=7, backend=model.backend)
    rng = np.random.default_rng(1)
    X, T, loss = rng.random((5, 3)), rng.random((5, width)), MSE()
    model.zero_grad()
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    g_new, g_kept = model.gradients()["2.W"].copy(), model.gradients()["0.W"].copy()
    opt.step(model)
    b1, b2, new = opt.hyper["beta1"], opt.hyper["beta2"], opt.state["2.W"]
    np.testing.assert_allclose(new["m"], (1 - b1) * g_new, rtol=1e-15)
    np.testing.assert_allclose(new["v"], (1 - b2) * g_new ** 2, rtol=1e-15)
    np.testing.assert_allclose(opt.state["0.W"]["m"], b1 * kept["m"] + (1 - b1) * g_kept, rtol=1e-14)


def test_loaded_state_of_another_shape_is_still_refused():
    """The slots of a saved state belong to whatever model is stepped next: checked whole, as before."""
    model, opt = model64(), Adam(lr=0.01)
    train(model, opt, 2)
    saved = opt.state_dict()
    model.layers[2] = gpubp.Dense(4, 5, backend=model.backend)
    opt.load_state_dict(saved, model.backend)
    X = np.ones((5, 3))
    model.zero_grad()
    model.backward(model.forward(X))
    with pytest.raises(gpubp.ShapeError, match=r"state 2.W.* has shape \(4, 2\), parameter has \(4, 5\)"):
        opt.step(model)
