"""record_gradients records on a copy: the model's BatchNorm running statistics, gradients and mode
are as they were, so its predictions do not change and, called in an on_batch_end callback, the step
fit then takes uses the batch's own gradients. Was: one training-mode forward/backward of the model
itself, which moved its running statistics (predictions 0.36 off) and replaced the gradients that
fit's update then applied."""
import numpy as np

import gpubp
from gpubp.tools.diagnostics import record_gradients

X = np.random.default_rng(0).normal(size=(40, 4))
y = np.arange(40) % 3


def net():
    return gpubp.Sequential([gpubp.Dense(4, 8), gpubp.BatchNorm(8), gpubp.ReLU(), gpubp.Dropout(0.3),
                             gpubp.Dense(8, 3)], seed=0)


def test_the_model_predicts_as_before():
    model = net()
    gpubp.fit(model, X, y, epochs=2, batch_size=8, progress=False)
    before, grads = gpubp.predict(model, X), {k: g.copy() for k, g in model.gradients().items()}
    rec = record_gradients(model, X[:5] * 3 + 2, y[:5], "softmax_cross_entropy")
    assert np.array_equal(gpubp.predict(model, X), before) and model.training and model.observers == []
    assert all(np.array_equal(g, grads[k]) for k, g in model.gradients().items())
    assert rec.rows(0)[0][2] > 0  # it did record


def test_in_a_callback_the_step_uses_the_batchs_own_gradients():
    class Record:
        def on_batch_end(self, step, model, loss):
            record_gradients(model, X[:8] + 1, y[:8], "softmax_cross_entropy")

    plain, watched = net(), net()
    gpubp.fit(plain, X, y, epochs=2, batch_size=8, progress=False)
    gpubp.fit(watched, X, y, epochs=2, batch_size=8, progress=False, callbacks=Record())
    for a, b in ((plain.parameters(), watched.parameters()), (plain.buffers(), watched.buffers())):
        assert all(np.array_equal(a[k], b[k]) for k in a)
