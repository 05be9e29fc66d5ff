"""NaN/Inf that a callback writes into the model is named as the callback's: fit restores the start of
the epoch and says which hook wrote it, not 'lower the learning rate, or scale the inputs'."""
import numpy as np
import pytest

import gpubp


def _fit(callback, **kw):
    rng = np.random.default_rng(0)
    model = gpubp.Sequential([gpubp.Dense(4, 3)], seed=0)
    start = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(gpubp.NumericalError) as caught:
        gpubp.fit(model, rng.normal(size=(32, 4)), rng.integers(0, 3, 32), epochs=2, batch_size=8,
                  progress=False, callbacks=callback, **kw)
    for k, v in model.parameters().items():  # the first epoch's start: nothing trained is kept
        np.testing.assert_array_equal(v, start[k])
    return str(caught.value)


class Writes:
    def __init__(self, hook, value=np.nan):
        self.value = value
        setattr(self, hook, self.write)

    def write(self, *args):
        model = next(a for a in args if isinstance(a, gpubp.Sequential))
        model.layers[0].params["W"][0, 0] = self.value


def test_on_epoch_end_is_named():
    """Was: 'training produced NaN/Inf in epoch 1 although the loss stayed finite (parameter 0.W);
    ... (lower the learning rate, or scale the inputs)': the epoch's own check had passed."""
    message = _fit(Writes("on_epoch_end"))
    assert "an on_epoch_end callback wrote NaN/Inf into the model in epoch 1 (parameter 0.W)" in message
    assert "learning rate" not in message


def test_on_epoch_begin_is_named_before_any_step():
    """Was: 'the model's output for sample 0 of X's first batch is -inf ...: scale X's first batch'."""
    message = _fit(Writes("on_epoch_begin", np.inf))
    assert "an on_epoch_begin callback wrote NaN/Inf into the model in epoch 1 (parameter 0.W)" in message
    assert "scale" not in message


def test_on_batch_end_is_named_as_a_possible_cause():
    message = _fit(Writes("on_batch_end"))
    assert message.endswith("; or an on_batch_end callback wrote NaN/Inf into the model)")
