"""An optimizer whose model is gone (garbage collected) refuses to step another model with that model's
slots, as it does while the first is alive. Was: once the first model was freed (``model = Sequential(...)``
again, in a loop of trials), the next model was stepped with its moments and step count, silently: a
second fit with the same Adam gave other losses than a fresh Adam."""
import copy
import gc

import numpy as np
import pytest

import gpubp
from gpubp.errors import StateError
from gpubp.optim import SGD, Adam

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 3)).astype(np.float32)
Y = X[:, :1] * 2


def make():
    return gpubp.Sequential([gpubp.Dense(3, 1)], seed=0)


@pytest.mark.parametrize("make_opt", [lambda: Adam(0.01), lambda: SGD(0.1, momentum=0.9)])
def test_the_slots_of_a_freed_model_are_not_applied_to_the_next(make_opt):
    opt = make_opt()
    gpubp.fit(make(), X, Y, loss="mse", epochs=2, optimizer=opt)
    gc.collect()  # the first model is gone
    model = make()
    before = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(StateError, match=r"of another model, no longer alive, .*optimizer.state = \{\} and "
                                         r"optimizer.t = 0 to start afresh"):
        gpubp.fit(model, X, Y, loss="mse", epochs=2, optimizer=opt)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, before[k])
    opt.state, opt.t = {}, 0  # afresh: as a new optimizer
    again = gpubp.fit(model, X, Y, loss="mse", epochs=2, optimizer=opt).loss
    assert again == gpubp.fit(make(), X, Y, loss="mse", epochs=2, optimizer=make_opt()).loss


def test_a_copied_optimizer_still_steps_its_copied_model():
    model, opt = make(), Adam(0.01)
    gpubp.fit(model, X, Y, loss="mse", epochs=1, optimizer=opt)
    twin_model, twin_opt = copy.deepcopy((model, opt))
    del model
    gc.collect()
    gpubp.fit(twin_model, X, Y, loss="mse", epochs=1, optimizer=twin_opt)
