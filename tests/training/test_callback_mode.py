"""fit trains in training mode: a callback that leaves the model (or some layer) in eval mode, a
model.eval() to look at it without the model.train() after, has it put back before the next step,
with a warning naming the layers, not the rest of the epoch trained in eval mode."""
import warnings

import numpy as np
import pytest

import gpubp


def _model():
    return gpubp.Sequential([gpubp.Dense(4, 6), gpubp.BatchNorm(6), gpubp.ReLU(), gpubp.Dropout(0.3),
                             gpubp.Dense(6, 3)], dtype="float64", seed=0)


class LeavesEval:
    def __init__(self, which):
        self.which = which

    def on_batch_end(self, step, model, loss_value):
        if step == 0:
            if self.which is None:
                model.eval()
            else:
                model.layers[self.which].training = False


@pytest.mark.parametrize("plan", [True, False])
@pytest.mark.parametrize("which", [None, 1])
def test_a_callback_s_eval_mode_is_put_back_before_the_next_step(plan, which):
    """Was: the rest of the epoch trained in eval mode (BatchNorm normalising by its running
    statistics, Dropout off) without a word, from the next step to the end of the epoch."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 3, 32)
    plain, touched = _model(), _model()
    gpubp.fit(plain, X, y, epochs=2, batch_size=8, plan=plan, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gpubp.fit(touched, X, y, epochs=2, batch_size=8, plan=plan, progress=False, callbacks=LeavesEval(which))
    messages = [str(w.message) for w in caught if issubclass(w.category, gpubp.GpubpWarning)]
    assert len(messages) == 2  # once per epoch: step 0 of each
    left = "the model" if which is None else "layers 1 BatchNorm"
    assert messages[0].startswith(f"fit: a callback left {left} in eval mode; fit trains in training mode")
    for name, value in plain.parameters().items():
        np.testing.assert_array_equal(touched.parameters()[name], value, err_msg=name)
    for name, value in plain.buffers().items():
        np.testing.assert_array_equal(touched.buffers()[name], value, err_msg=name)
