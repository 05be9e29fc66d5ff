"""Optimizers misused: stepping something that is not a model, steps counted or state set to
junk, saved state with list slots or loaded onto a spec naming another dtype. Each refused
by gpubp naming what was wrong, or done as asked, never a raw error from inside a step."""
import warnings

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.optim import SGD, Adam, RMSprop, optimizer_from_state


def stepped(opt):
    model = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0)
    Y = model.forward(np.ones((4, 3), np.float32))
    model.backward(np.ones_like(Y))
    opt.step(model)
    return model, opt


@pytest.mark.parametrize("thing", ["model", None, gpubp.Dense(3, 2)], ids=["str", "None", "layer"])
def test_stepping_something_that_is_not_a_model_is_named(thing):
    with pytest.raises(InvalidValueError, match=f"optimizer steps a model.*got a {type(thing).__name__}"):
        Adam().step(thing)


@pytest.mark.parametrize("t", [-1, "5", 2.0, None])
def test_the_step_count_is_a_whole_number(t):
    opt = Adam()
    with pytest.raises(InvalidValueError, match=f"t \\(steps taken\\) must be a whole number >= 0, got {t!r}"):
        opt.t = t
    assert opt.t == 0


@pytest.mark.parametrize("state", [None, {"0.W": None}, [1, 2]])
def test_the_state_must_be_a_dict_of_slot_dicts(state):
    opt = Adam()
    with pytest.raises(InvalidValueError, match="state must be {parameter name: {slot: array}}"):
        opt.state = state


@pytest.mark.parametrize("make", [Adam, lambda: SGD(momentum=0.9), RMSprop])
def test_saved_slots_given_as_lists_are_loaded_as_arrays(make):
    model, opt = stepped(make())
    saved = opt.state_dict()
    for st in saved["state"].values():
        for slot in st:
            st[slot] = st[slot].tolist()
    for restored in (make(), None):
        if restored is None:
            restored = optimizer_from_state(saved, "cpu")
        else:
            restored.load_state_dict(saved, "cpu")
        for name, st in opt.state.items():
            for slot, a in st.items():
                np.testing.assert_array_equal(restored.state[name][slot], a)


def test_a_spec_naming_a_dtype_decides_the_dtype_of_loaded_state():
    _, opt = stepped(Adam())  # float32 slots
    restored = Adam()
    restored.load_state_dict(opt.state_dict(), "cpu/float64")
    assert restored.state["0.W"]["m"].dtype == np.float64
    restored.load_state_dict(opt.state_dict(), "cpu")  # no dtype named: the saved slots' own
    assert restored.state["0.W"]["m"].dtype == np.float32


@pytest.mark.parametrize("kind", [["Adam"], {"a": 1}, None, "Nadam"])
def test_saved_state_of_an_unknown_type_is_named(kind):
    _, opt = stepped(Adam())
    with pytest.raises(InvalidValueError, match="unknown optimizer type .* in saved state"):
        optimizer_from_state({**opt.state_dict(), "type": kind}, "cpu")


def test_stepping_a_model_without_parameters_warns_once():
    model = gpubp.Sequential([gpubp.ReLU(), gpubp.Sigmoid()])
    opt = SGD()
    with pytest.warns(gpubp.GpubpWarning, match="SGD: the model has no parameters, so its steps change nothing"):
        opt.step(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(model)  # the prepared update is kept: said once


@pytest.mark.parametrize("make", [Adam, lambda: SGD(0.1, momentum=0.9), RMSprop])
def test_one_optimizer_does_not_carry_one_model_s_slots_into_another(make):
    """Was: a second model with the same parameter names and shapes silently took the first one's
    momentum and moving averages."""
    first, opt = stepped(make())
    second, _ = stepped(SGD(0.1))
    before = {k: np.array(v) for k, v in second.parameters().items()}
    with pytest.raises(gpubp.StateError, match="holds the slots .* of another model.*create a new optimizer"):
        opt.step(second)
    assert all(np.array_equal(v, before[k]) for k, v in second.parameters().items())
    opt.step(first)  # its own model goes on
    opt.state = {}
    opt.step(second)  # afresh, as the message says


def test_loaded_state_and_slotless_sgd_follow_the_model_they_step():
    """Saved state belongs to whichever model steps it first (a checkpoint's new model); plain
    SGD holds no slots, so one instance may step several models."""
    _, adam = stepped(Adam())
    stepped(optimizer_from_state(adam.state_dict(), "cpu"))
    _, sgd = stepped(SGD(0.1))
    stepped(sgd)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_a_copied_model_and_optimizer_train_as_the_originals(name):
    """Was: deepcopy((model, optimizer)) gave an optimizer still bound to the original model
    (StateError on the copy's first step), and pickling an optimizer that had stepped failed on
    its bound kernels; a copy now carries hyperparameters, t and slots, nothing bound."""
    import copy
    import pickle
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
    model = gpubp.mlp(3, [5], 2, "tanh", "cpu", "float64", seed=0)
    opt = gpubp.optim.get_optimizer(name, lr=0.01)
    gpubp.fit(model, X, y, loss="mse", optimizer=opt, epochs=1, batch_size=4, progress=False)
    twin, twin_opt = copy.deepcopy((model, opt))
    unpickled = pickle.loads(pickle.dumps(opt))
    assert (unpickled.t, twin_opt.t) == (opt.t, opt.t) == (4, 4)
    for m, o in ((model, opt), (twin, twin_opt)):
        gpubp.fit(m, X, y, loss="mse", optimizer=o, epochs=2, batch_size=4, progress=False)
    for name_, p in model.parameters().items():
        np.testing.assert_array_equal(twin.parameters()[name_], p)


def _replace_one(state, how):
    """Replace the slot arrays of parameter 0.W in ``state`` (an optimizer's) by ``how``."""
    name = "0.W"
    new = {s: np.full_like(a, 0.25) for s, a in state[name].items()}
    if how == "slot":
        for s, a in new.items():
            state[name][s] = a
    elif how == "parameter":
        state[name] = new
    elif how == "update":
        state.update({name: new})
    elif how == "pop then setdefault":
        state.pop(name)
        state.setdefault(name, new)
    return new


@pytest.mark.parametrize("how", ["slot", "parameter", "update", "pop then setdefault"])
@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1, momentum=0.9), lambda: Adam(lr=0.1),
                                  lambda: RMSprop(lr=0.01, momentum=0.5)], ids=["momentum", "adam", "rmsprop"])
def test_a_slot_replaced_by_hand_is_the_one_the_next_step_uses(make, how):
    """An optimizer binds its update to the slot arrays once: a slot array replaced in
    ``optimizer.state`` (rather than written in place) was ignored, the old one stepped. The next
    step must use and update the new array, as an optimizer given that whole state does."""
    def step(m, o):  # as fit steps: zero_grad first (the model's arrays stay the same ones)
        m.zero_grad()
        m.backward(np.ones_like(m.forward(np.ones((4, 3), np.float32))), input_grad=False)
        o.step(m)
    model, opt, twin, twin_opt = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0), make(), \
        gpubp.Sequential([gpubp.Dense(3, 2)], seed=0), make()
    for m, o in ((model, opt), (twin, twin_opt)):
        step(m, o)
    new = _replace_one(opt.state, how)
    twin_opt.state = {n: {s: (new[s] if n == "0.W" else a).copy() for s, a in st.items()}
                      for n, st in twin_opt.state.items()}
    for m, o in ((model, opt), (twin, twin_opt)):
        step(m, o)
    for n in model.parameters():
        np.testing.assert_array_equal(model.parameters()[n], twin.parameters()[n])
    for s, a in opt.state["0.W"].items():
        np.testing.assert_array_equal(a, twin_opt.state["0.W"][s])
        assert not np.all(a == 0.25), "the new slot was not updated"


def test_a_parameter_s_state_set_to_junk_is_refused_when_set():
    _, opt = stepped(Adam())
    with pytest.raises(InvalidValueError, match=r"a parameter's state must be \{slot: array\}, got None"):
        opt.state["0.W"] = None


@pytest.mark.parametrize("key, value, match", [
    ("beta1", 1.5, r"Adam.hyper: beta1 must be a finite number >= 0 and < 1, got 1.5"),
    ("eps", float("nan"), r"Adam.hyper: eps must be a finite number > 0, got nan"),
    ("weight_decay", "x", r"Adam.hyper: weight_decay must be a finite number >= 0, got 'x'"),
    ("betas", (0.5, 0.9), r"Adam.hyper has no \['betas'\]; its hyperparameters are \['amsgrad', 'beta1', 'beta2'"),
    ("lr", 0.5, r"Adam.hyper has no \['lr'\]; .* \(and lr: optimizer.lr\)")])
def test_a_hyperparameter_set_later_is_checked_as_at_construction(key, value, match):
    """Was: ``optimizer.hyper[...] = junk`` taken as it was: beta1 = 1.5 trained on, eps = NaN ended
    in 'lower the learning rate', a string in a raw TypeError from inside the step."""
    _, opt = stepped(Adam())
    before = dict(opt.hyper)
    with pytest.raises(InvalidValueError, match=match):
        opt.hyper[key] = value
    assert dict(opt.hyper) == before
    with pytest.raises(InvalidValueError, match="cannot be removed"):
        opt.hyper.pop("eps")


def test_a_hyperparameter_set_between_steps_is_the_one_the_next_step_uses():
    import copy
    import pickle

    def step(m, o):
        m.zero_grad()
        m.backward(np.ones_like(m.forward(np.ones((4, 3), np.float32))), input_grad=False)
        o.step(m)
    model, opt = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0), Adam(lr=0.1)
    step(model, opt)
    twin = copy.deepcopy(model)
    twin_opt = Adam(lr=0.1, betas=(0.5, 0.99), eps=1e-3)
    twin_opt.t, twin_opt.state = opt.t, {n: {s: a.copy() for s, a in st.items()} for n, st in opt.state.items()}
    opt.hyper.update(beta1=0.5, beta2=0.99)
    opt.hyper["eps"] = 1e-3
    for copied in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):  # copies check too
        with pytest.raises(InvalidValueError, match="beta2 must be"):
            copied.hyper["beta2"] = -1
    step(model, opt)
    step(twin, twin_opt)
    for n in model.parameters():
        np.testing.assert_array_equal(model.parameters()[n], twin.parameters()[n])
