"""fit (and evaluate, predict) put each layer's mode back by layer, not by position: a callback that
inserts a layer in the middle of an epoch leaves the model's own layers in the mode they had before
fit. Was: the modes went back to the layers now at those positions, so with a layer inserted at the
front the last layer of a model in eval stayed in training after fit (Dropout dropping, BatchNorm
normalising by the batch, in the user's later forward passes)."""
import numpy as np
import pytest

import gpubp

X = np.random.default_rng(0).normal(size=(40, 4))
y = np.arange(40) % 3


class InsertFirst:
    def __init__(self, hook):
        self.done = False
        setattr(self, hook, self.insert)

    def insert(self, epoch_or_step, model, *rest):
        if not self.done:
            self.done = True
            model.layers = [gpubp.Dense(4, 4, backend=model.backend)] + list(model.layers)


@pytest.mark.parametrize("hook", ["on_batch_end", "on_epoch_begin", "on_epoch_end"])
@pytest.mark.parametrize("plan", [True, False])
def test_a_model_in_eval_keeps_its_layers_in_eval(hook, plan):
    model = gpubp.Sequential([gpubp.Dense(4, 6), gpubp.Dropout(0.5), gpubp.Tanh(), gpubp.Dense(6, 3)], seed=0).eval()
    own = list(model.layers)
    gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False, callbacks=InsertFirst(hook), plan=plan)
    assert model.layers[1:] == own
    assert [layer.training for layer in own] == [False] * 4  # was: the Dense at the end in training
    first = gpubp.predict(model, X)
    assert np.array_equal(model.forward(model.backend.asarray(X[:8])), first[:8])  # no Dropout drawn


def test_a_model_in_training_stays_in_training():
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    gpubp.fit(model, X, y, epochs=1, batch_size=8, progress=False, callbacks=InsertFirst("on_batch_end"))
    assert model.training
