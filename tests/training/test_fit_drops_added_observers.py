"""What a callback adds to ``model.observers`` during fit (a GradientRecorder attaches itself in
on_epoch_begin and detaches in on_epoch_end) is taken out however fit ends: a callback's error, a
Ctrl-C, a NaN restore, a stop before the recorder's on_epoch_end. Was: the recorder stayed in the
observers and went on recording every later forward/backward of the model; the observers given to
fit are kept."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import NumericalError, StateError
from gpubp.tools.diagnostics import GradientRecorder

X = np.random.default_rng(0).normal(size=(40, 4))
y = np.arange(40) % 3


class Raise:
    def __init__(self, exc, hook="on_batch_end"):
        self.exc = exc
        setattr(self, hook, self.fire)

    def fire(self, epoch_or_step, model, *rest):
        if epoch_or_step == 1:
            raise self.exc


class WriteNaN:
    def on_batch_end(self, step, model, loss):
        if step == 2:
            model.layers[0].params["W"][...] = np.nan


class Mine:
    def backward(self, model, i, layer, dY, dX):
        pass


@pytest.mark.parametrize("stopper, expected", [
    (Raise(RuntimeError("boom")), RuntimeError),
    (Raise(KeyboardInterrupt()), None),
    (WriteNaN(), NumericalError),
    (Raise(RuntimeError("late"), "on_epoch_end"), RuntimeError),  # before the recorder's on_epoch_end
], ids=["error", "ctrl-c", "nan", "epoch-end-error"])
def test_a_recorder_is_taken_off_however_fit_ends(stopper, expected):
    model, rec, mine = gpubp.mlp(4, [5], 3, "tanh", seed=0), GradientRecorder(), Mine()
    model.observers.append(mine)
    if expected is None:
        assert gpubp.fit(model, X, y, epochs=3, batch_size=8, progress=False, callbacks=[stopper, rec]).interrupted
    else:
        with pytest.raises(expected):
            gpubp.fit(model, X, y, epochs=3, batch_size=8, progress=False, callbacks=[stopper, rec])
    assert model.observers == [mine]  # the recorder is gone, the observer given is kept
    held = dict(rec._batch)  # a batch cut short: its norms, never summed
    model.zero_grad()
    model.backward(model.forward(model.backend.asarray(X[:8])))
    assert rec._batch.keys() == held.keys() and all(rec._batch[i] is v for i, v in held.items())  # not recorded
    with pytest.raises(StateError, match=r"GradientRecorder\.on_batch_end: the recorder is not attached"):
        rec.on_batch_end(0, model, None)


def test_a_whole_run_still_records_every_epoch_and_leaves_no_observer():
    model, rec = gpubp.mlp(4, [5], 3, "tanh", seed=0), GradientRecorder()
    gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=rec)
    assert len(rec.dW_norms) == 2 and model.observers == []
