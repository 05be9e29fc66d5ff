"""The step plan, the observers and the epoch log: a stale plan's repr shows the
layers it was made for and says it is stale; an observer that cannot take what a model tells it,
or one added to ``model.observers`` later, is refused where it is given (it was a TypeError at the
first layer of a step, or silently ignored); EpochLog given a History made by hand (NumPy numbers,
missing entries) writes or names the gap (was a raw TypeError or IndexError)."""
import copy
import json

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, StateError
from gpubp.history import EpochLog, History
from gpubp.network import mlp, observing
from gpubp.optim import Adam, SGD
from gpubp.plan import StepPlan


def test_a_stale_plan_s_repr_shows_its_own_layers_and_says_it_is_stale():
    model = mlp(6, [8], 3, seed=0)
    plan = StepPlan(model, "mse", SGD(), (4, 6))
    assert "stale" not in repr(plan)
    model.layers = [model.layers[0], model.layers[1], gpubp.Dense(8, 3)]
    text = repr(plan)
    assert "layer 2 Dense(8, 3) output" in text  # the layer it was made for (the old one: same repr)
    assert text.splitlines()[-1].startswith("  stale: the model's layers changed")
    model = mlp(6, [8], 3, seed=0)
    plan = StepPlan(model, "mse", SGD(), (4, 6))
    model.layers = [gpubp.Dense(6, 8), gpubp.Sigmoid(), model.layers[2]]
    assert "layer 1 ReLU() output" in repr(plan)  # was the new Sigmoid beside the ReLU's buffer
    model = mlp(6, [8], 3, seed=0)
    plan = StepPlan(model, "mse", SGD(), (4, 6))
    model.to("cpu", "float64")
    assert "stale: the model moved to cpu float64" in repr(plan)
    with pytest.raises(StateError, match="the model moved"):
        plan.step(np.zeros((4, 6)), np.zeros((4, 3)))


class NoArgs:
    def forward(self):
        pass


class Recorder:
    def __init__(self):
        self.seen = []

    def forward(self, model, i, layer, X, Y):
        self.seen.append(i)


@pytest.mark.parametrize("observer, words", [
    (NoArgs(), r"observer's forward must be a method taking \(model, i, layer, X, Y\)"),
    (Recorder, r"observer's forward must be a method taking .* \(a class: pass an instance of it\)"),
], ids=["no-arguments", "a-class"])
def test_an_observer_that_cannot_take_what_a_model_tells_is_refused_when_given(observer, words):
    model = mlp(6, [8], 3, seed=0)
    with pytest.raises(InvalidValueError, match=words):
        model.observers = [observer]
    with pytest.raises(InvalidValueError, match=words):
        with observing(observer):
            pass
    before = model.parameters()["0.W"].copy()
    with pytest.raises(InvalidValueError, match=words):  # appended: refused there, not in fit's first step
        model.observers.append(observer)
    with pytest.raises(InvalidValueError, match=r"observers\[0\]: the observer must have"):
        model.observers.append("junk")  # was kept, then silently ignored at every step
    assert model.observers == []
    gpubp.fit(model, np.ones((8, 6)), np.zeros((8, 3)), loss="mse", epochs=1, progress=False)
    assert not np.array_equal(before, model.parameters()["0.W"])


def test_observers_added_in_any_way_are_checked_and_copies_keep_checking():
    model = mlp(6, [8], 3, seed=0)
    good = Recorder()
    model.observers.append(good)
    model.observers.insert(0, Recorder())
    model.observers += [Recorder()]
    model.observers.extend([Recorder()])
    model.observers[1] = good
    for add in (lambda obs: obs.insert(0, 3), lambda obs: obs.extend([None]), lambda obs: obs.__iadd__(["x"]),
                lambda obs: obs.__setitem__(0, object()), lambda obs: obs.__setitem__(slice(0, 1), [1])):
        with pytest.raises(InvalidValueError, match="the observer must have"):
            add(model.observers)
    assert len(model.observers) == 4
    twin = copy.deepcopy(model)
    with pytest.raises(InvalidValueError, match="the observer must have"):
        twin.observers.append(5)
    model.forward(np.zeros((2, 6), np.float32))
    assert good.seen == [0, 1, 2]


def test_epoch_log_takes_numpy_numbers_and_names_missing_entries(tmp_path):
    h = History(loss=[np.float32(1.5)], lr=[np.float64(0.1)], epoch_time=[np.float32(2.0)], samples_per_sec=[10])
    log = EpochLog(tmp_path / "log.jsonl")
    log.on_epoch_end(0, None, h)  # was a TypeError: Object of type float32 is not JSON serializable
    assert json.loads((tmp_path / "log.jsonl").read_text()) == {"epoch": 1, "loss": 1.5, "lr": 0.1, "seconds": 2.0,
                                                               "samples_per_sec": 10.0}
    log = EpochLog(tmp_path / "log.csv")
    with pytest.raises(InvalidValueError, match="the history has no lr, epoch_time, samples_per_sec for epoch 0"):
        log.on_epoch_end(0, None, History(loss=[1.0]))  # was an IndexError
    assert not (tmp_path / "log.csv").exists()


def test_fit_with_a_callback_switching_amsgrad_plans_like_the_eager_step():
    """A hyperparameter that changes the slots, set by a callback, in fit's planned and eager steps."""
    class Switch:
        def on_epoch_begin(self, epoch, model):
            opt.hyper["amsgrad"] = epoch == 1

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    weights = []
    for plan in (True, False):
        model, opt = mlp(6, [8], 3, seed=0, dtype="float64"), Adam(lr=0.01)
        gpubp.fit(model, X, y, loss="mse", optimizer=opt, epochs=3, batch_size=8, callbacks=Switch(), plan=plan,
                  progress=False)  # refused at epoch 2's first step on the old code
        weights.append(model.parameters()["0.W"])
        assert sorted(opt.state["0.W"]) == ["m", "v"]
    np.testing.assert_array_equal(*weights)
