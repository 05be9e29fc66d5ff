"""An optimizer stepping arrays that share memory: tied parameters (stepped once per name, with a
state for each: not a tied weight's update), a gradient that is a parameter, shared gradients, and
slots set by hand that alias one another or a parameter. Each refused by ``prepare`` (once per
generation of the model's arrays, not per step), naming both, before anything changes."""
import numpy as np
import pytest

import gpubp
from gpubp import nn
from gpubp.errors import InvalidValueError, ShapeError
from gpubp.optim import SGD, Adam, RMSprop

OPTIMIZERS = {"sgd": lambda: SGD(0.1), "momentum": lambda: SGD(0.1, momentum=0.9), "adam": Adam, "rmsprop": RMSprop}


def model():
    m = gpubp.Sequential([nn.Dense(4, 4), nn.Sigmoid(), nn.Dense(4, 4)], dtype="float64", seed=0)
    Y = m.forward(np.random.default_rng(0).normal(size=(5, 4)))
    m.backward(np.ones_like(Y))
    return m


def values(m):
    return {k: np.array(v) for k, v in m.parameters().items()}


def refused(opt, m, match, error=InvalidValueError):
    """``opt.step(m)`` refused with ``match``; the parameters, the step count and the state as before."""
    before, t, state = values(m), opt.t, {k: dict(v) for k, v in opt.state.items()}
    with pytest.raises(error, match=match):
        opt.step(m)
    assert opt.t == t and opt.state.keys() == state.keys()  # the same slot arrays, none made or moved
    assert all(opt.state[k].keys() == st.keys() and all(opt.state[k][s] is a for s, a in st.items())
               for k, st in state.items())
    for k, v in values(m).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS)
@pytest.mark.parametrize("tie", ["same array", "view"])
def test_tied_parameters_are_refused_naming_both(make, tie):
    m = model()
    W = m.layers[0].params["W"]
    m.layers[2].params["W"] = W if tie == "same array" else W[:, ::-1]
    opt = make()
    refused(opt, m, rf"{type(opt).__name__}: parameters 0.W and 2.W share memory \(tied weights\): an optimizer "
                    r"would step the shared weight once per name.*gives each layer its own arrays")


def test_a_gradient_that_is_the_parameter_is_refused():
    m = model()
    m.layers[0].grads["b"] = m.layers[0].params["b"]
    refused(Adam(), m, "gradient 0.b and parameter 0.b share memory")


def test_shared_gradients_are_refused():
    m = model()
    m.layers[2].grads["W"] = m.layers[0].grads["W"]
    refused(SGD(0.1), m, "gradients 0.W and 2.W share memory: one layer's backward would overwrite")


def hand_state(m, **slots):
    """Adam state of zeros for every parameter, with ``slots`` ({"name_slot": array}) put in."""
    state = {k: {"m": np.zeros(p.shape), "v": np.zeros(p.shape)} for k, p in m.parameters().items()}
    for key, a in slots.items():
        name, slot = key.rsplit("_", 1)
        state[name.replace("_", ".")][slot] = a
    return state


def test_one_array_for_two_slots_set_by_hand_is_refused():
    """m and v in one array: each step would write the squares' average over the first moment."""
    m, opt = model(), Adam()
    shared = np.zeros((4, 4))
    opt.state = hand_state(m, **{"0_W_m": shared, "0_W_v": shared})
    refused(opt, m, "Adam: Adam states 0.W.m and 0.W.v share memory: an update would write one over the other; "
                    "give each slot its own array")


def test_a_slot_that_is_a_parameter_is_refused():
    m, opt = model(), SGD(0.1, momentum=0.9)
    opt.state = {"2.b": {"buf": m.layers[2].params["b"]}}
    refused(opt, m, "SGD state 2.b.buf and parameter 2.b share memory")


def test_slots_of_one_array_on_another_device_are_copied_apart_not_refused():
    """A float32 array for two float64 slots: each slot becomes its own float64 copy."""
    m, opt = model(), Adam()
    shared = np.zeros((4, 4), np.float32)
    opt.state = hand_state(m, **{"0_W_m": shared, "0_W_v": shared})
    opt.step(m)
    assert not np.shares_memory(opt.state["0.W"]["m"], opt.state["0.W"]["v"])


@pytest.mark.parametrize("slots, match", [({"m": np.zeros((4, 4))}, r"state 0.W has slots \['m'\], Adam keeps \['m', 'v'\]"),
                                          ({"m": np.zeros((4, 4)), "v": np.zeros((4, 4)), "w": np.zeros((4, 4))},
                                           r"state 0.W has slots \['m', 'v', 'w'\]"),
                                          ({"m": np.zeros((4, 4)), "v": [[0.0] * 4] * 4}, "state 0.W.v is a list, not an array")])
def test_hand_set_slots_are_checked_before_any_step(slots, match):
    """Was: KeyError 'v' from inside prepare, an extra slot ignored, AttributeError for a list."""
    m, opt = model(), Adam()
    opt.state = {**hand_state(m), "0.W": slots}
    refused(opt, m, match)


def test_the_check_runs_once_per_generation_not_per_step(monkeypatch):
    import gpubp.optim.slots as slots
    calls = []
    check = slots.refuse_shared_memory
    monkeypatch.setattr(slots, "refuse_shared_memory", lambda *a: calls.append(1) or check(*a))
    m, opt = model(), Adam()
    for _ in range(3):
        opt.step(m)
    assert len(calls) == 1
    m.layers[2].params["W"] = m.layers[0].params["W"]  # a new generation: checked again, and refused
    refused(opt, m, "parameters 0.W and 2.W share memory")
    assert len(calls) == 2


def test_gradients_accumulated_in_place_are_not_a_new_generation(monkeypatch):
    """``grads["W"] += g`` (a backward without zero_grad) puts the same array back under its name:
    was counted as a replacement, so every step without zero_grad checked and bound the update
    anew; the same for an optimizer slot scaled in place through its dict (``state[n][s] *= 0``)."""
    import gpubp.optim.slots as slots
    calls = []
    check = slots.refuse_shared_memory
    monkeypatch.setattr(slots, "refuse_shared_memory", lambda *a: calls.append(1) or check(*a))
    m, opt = model(), Adam()
    X = np.ones((4, m.layers[0].n_in))
    for _ in range(3):
        m.backward(np.ones_like(m.forward(X)))  # no zero_grad: the gradients accumulate
        opt.step(m)
        opt.state["0.W"]["m"] *= 0.5
    generation = m.generation
    m.backward(np.ones_like(m.forward(X)))
    assert m.generation == generation and len(calls) == 1


def test_loaded_state_is_checked_against_the_next_model_after_a_refused_step():
    """Was: a step refused after the loaded state's names were checked counted as its check, so the
    next model, of other names, took that state silently."""
    saved_from = model()
    opt = Adam()
    opt.step(saved_from)
    restored = Adam()
    restored.load_state_dict(opt.state_dict(), "cpu")
    tied = model()
    tied.layers[2].params["W"] = tied.layers[0].params["W"]
    refused(restored, tied, "parameters 0.W and 2.W share memory")
    other = gpubp.Sequential([nn.Dense(4, 4)], dtype="float64", seed=0)  # names 0.W, 0.b only
    refused(restored, other, r"state is not this model's: it has state for \['2.W', '2.b'\]", ShapeError)


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_untied_by_a_copy_steps_as_a_model_never_tied(make):
    """After ``params['W'] = W.copy()`` (no longer flat: one kernel per parameter) the numbers are
    those of the untouched flat model."""
    reference, untied = model(), model()
    untied.layers[2].params["W"] = untied.layers[2].params["W"].copy()
    assert reference.flat is not None and untied.flat is None
    for m in (reference, untied):
        opt = make()
        for _ in range(3):
            opt.step(m)
    for k, v in values(reference).items():
        np.testing.assert_array_equal(untied.parameters()[k], v, err_msg=k)
