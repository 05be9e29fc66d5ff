"""GradientRecorder follows the layers a callback changes: before the epoch's first batch (a callback
after the recorder in fit's list) its sums are of the new layers, and each epoch's rows name that
epoch's own layers; a change within an epoch is refused by name. Was: an InvalidValueError blaming the
observer's arguments ("i a layer index < 3"), or with as many layers, each norm silently put on
another layer; and rows(0) named epoch 0's norms with the last epoch's layers."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import StateError
from gpubp.tools.diagnostics import GradientRecorder

X = np.random.default_rng(0).normal(size=(40, 4))
y = np.arange(40) % 3


class Insert:
    def __init__(self, hook, when):
        self.hook, self.when = hook, when
        setattr(self, hook, self.insert)

    def insert(self, epoch_or_step, model, *rest):
        if epoch_or_step == self.when:
            model.layers = [gpubp.Dense(4, 4, backend=model.backend)] + list(model.layers)


def test_layers_a_callback_inserts_before_the_epoch_are_recorded_as_themselves():
    model, rec = gpubp.mlp(4, [5], 3, "tanh", seed=0), GradientRecorder()
    gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=[rec, Insert("on_epoch_begin", 1)])
    assert [row[1] for row in rec.rows(0)] == ["Dense", "Tanh", "Dense"]
    assert [row[1] for row in rec.rows(1)] == ["Dense", "Dense", "Tanh", "Dense"]
    assert len(rec.dW_norms[0]) == 2 and len(rec.dW_norms[1]) == 3
    assert all(np.isfinite(v) and v > 0 for v in rec.delta_norms[1])  # every layer ran its backward
    (_, _, first, _), (_, _, second, _) = rec.rows(1)[:2]
    assert first is not None and second is not None  # both Dense layers have a norm


def test_layers_changed_within_an_epoch_are_refused_by_name():
    model, rec = gpubp.mlp(4, [5], 3, "tanh", seed=0), GradientRecorder()
    with pytest.raises(StateError, match=r"^GradientRecorder: the model's layers changed during an epoch"):
        gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=[Insert("on_batch_end", 2), rec])


def test_a_recorder_a_stopped_fit_took_off_or_one_attached_by_hand_does_not_stop_a_later_one():
    class Stop:
        def on_batch_end(self, step, model, loss):
            raise KeyboardInterrupt

    model, rec = gpubp.mlp(4, [5], 3, "tanh", seed=0), GradientRecorder()
    gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=[Stop(), rec])  # Ctrl-C: returns
    assert model.observers == []  # fit took off what its callbacks added
    rec.attach(model)
    model.zero_grad()
    model.backward(model.forward(model.backend.asarray(X[:8])))
    assert rec._batch  # a batch it watched, never summed
    h = gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=Insert("on_epoch_begin", 1))
    assert h.epochs == 2 and model.observers == [rec]  # attached by hand before fit: kept
