"""A callback stops the run by setting ``history.stopped`` to why (was: fit overwrote it at the end
of the epoch, so the run went on and said it had not stopped), refused by name when not a string;
and a callback's own error, of any type, is raised as it is with the history of the whole epochs,
the epoch it cut short undone (was: OSError only; a ValueError left the model halfway through an
epoch and the history of the epochs before it was lost)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.train.callbacks import agreed_stop

X = np.random.default_rng(0).normal(size=(40, 4))
y = np.arange(40) % 3


def net():
    return gpubp.mlp(4, [5], 3, "tanh", seed=0)


def trained(epochs):
    model = net()
    gpubp.fit(model, X, y, epochs=epochs, batch_size=8, progress=False)
    return model


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.parameters().values(), b.parameters().values()))


class StopAt:
    def __init__(self, epoch, why):
        self.epoch, self.why = epoch, why

    def on_epoch_end(self, epoch, model, history):
        if epoch == self.epoch:
            history.stopped = self.why


def test_a_callback_stops_the_run_by_saying_why(tmp_path):
    model = net()
    path = tmp_path / "run.npz"
    h = gpubp.fit(model, X, y, epochs=5, batch_size=8, progress=False, callbacks=StopAt(1, "enough"),
                  checkpoint_path=str(path), checkpoint_every=3)
    assert (h.epochs, h.stopped) == (2, "enough") and same(model, trained(2))
    assert gpubp.checkpoint.read_metadata(str(path))["extra"]["history"]["stopped"] == "enough"  # the early end


@pytest.mark.parametrize("why", [True, 1, ""])
def test_a_stop_that_is_not_a_reason_is_refused_by_name(why):
    model = net()
    with pytest.raises(InvalidValueError, match=r"fit: a callback set history.stopped to .*a string saying why") as err:
        gpubp.fit(model, X, y, epochs=5, batch_size=8, progress=False, callbacks=StopAt(1, why))
    assert err.value.history.epochs == 1 and same(model, trained(1))


@pytest.mark.parametrize("exc", [ValueError("mine"), KeyError("mine"), StopIteration("mine"), RuntimeError("mine")])
def test_a_callbacks_own_error_keeps_the_whole_epochs(exc):
    class Raise:
        def on_batch_end(self, step, model, loss):
            self.n = getattr(self, "n", 0) + 1
            if self.n == 7:  # epoch 2, step 2
                raise exc

    model = net()
    with pytest.raises(type(exc), match="mine") as err:
        gpubp.fit(model, X, y, epochs=3, batch_size=8, progress=False, callbacks=Raise())
    assert err.value is exc and err.value.history.epochs == 1 and same(model, trained(1))


class Ranks:
    def __init__(self, others):
        self.others = others

    def allreduce_scalars(self, *values):
        return tuple(v + self.others for v in values)


def test_a_stop_on_one_rank_stops_every_rank():
    h = gpubp.history.History()
    assert agreed_stop(h, Ranks(0.0)) is None and agreed_stop(h) is None
    assert agreed_stop(h, Ranks(1.0)) == "a callback on another rank stopped the run"
    h.stopped = "mine"
    assert agreed_stop(h, Ranks(0.0)) == "mine"
