"""fit checks every target against the model's outputs once, before training, and the batches trust
that check; a callback that changes the model's layers (its outputs with them) has the targets checked
again, all of them, before the next step: labels beyond a new last layer's classes are refused, not
trained on as rows of zeros."""
import numpy as np
import pytest

import gpubp


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 4)), rng.integers(0, 3, 32)


class Replaces:
    """Puts ``make(model)`` in place of the model's layers after step 1 of the first epoch."""

    def __init__(self, make):
        self.make, self.done = make, False

    def on_batch_end(self, step, model, loss_value):
        if not self.done and step == 1:
            model.layers = self.make(model)
            self.done = True


@pytest.mark.parametrize("plan", [True, False])
def test_labels_beyond_a_new_last_layer_s_classes_are_refused(plan):
    """Was: trained on; a label of a class the new last layer lacks added a zero row to the loss
    (losses 0.97 planned and 1.17 eager, for the same run), without a word."""
    X, y = _data()
    model = gpubp.Sequential([gpubp.Dense(4, 5), gpubp.ReLU(), gpubp.Dense(5, 3)], seed=0)
    fewer = Replaces(lambda m: [m.layers[0], gpubp.ReLU(), gpubp.Dense(5, 2)])
    with pytest.raises(gpubp.InvalidValueError, match=r"labels must be in \[0, 1\] for 2 classes, got values in "
                                                      r"\[0, 2\].*a callback changed the model's layers: it now "
                                                      r"gives \(2,\) per sample"):
        gpubp.fit(model, X, y, epochs=1, batch_size=8, plan=plan, progress=False, callbacks=fewer)


def test_validation_targets_are_checked_again_too():
    X, y = _data()
    model = gpubp.Sequential([gpubp.Dense(4, 5), gpubp.ReLU(), gpubp.Dense(5, 3)], seed=0)

    class AtTheEnd:
        def on_epoch_end(self, epoch, model, history):
            model.layers = [model.layers[0], gpubp.ReLU(), gpubp.Dense(5, 2)]
    y_train = y % 2
    with pytest.raises(gpubp.InvalidValueError, match=r"validation_data y.*labels must be in \[0, 1\]"):
        gpubp.fit(model, X, y_train, epochs=2, batch_size=8, progress=False, validation_data=(X, y),
                  callbacks=AtTheEnd())


def test_mse_targets_of_another_width_are_named_at_the_next_step():
    X, y = _data()
    model = gpubp.Sequential([gpubp.Dense(4, 3)], seed=0)
    wider = Replaces(lambda m: [gpubp.Dense(4, 2)])
    with pytest.raises(gpubp.ShapeError, match=r"y has shape \(32, 3\) but the model gives \(2,\) per sample"):
        gpubp.fit(model, X, np.eye(3)[y], loss="mse", epochs=1, batch_size=8, progress=False, callbacks=wider)


def test_layers_changed_with_the_same_outputs_train_on():
    X, y = _data()
    model = gpubp.Sequential([gpubp.Dense(4, 5), gpubp.ReLU(), gpubp.Dense(5, 3)], seed=0)
    same = Replaces(lambda m: [m.layers[0], gpubp.Tanh(), m.layers[2]])
    history = gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=same)
    assert same.done and len(history.loss) == 2 and isinstance(model.layers[1], gpubp.Tanh)
