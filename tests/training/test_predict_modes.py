"""predict and evaluate run the model in eval mode whatever mode it was left in (fit leaves it in
training), from the first check of X's shape to the last batch."""
import numpy as np
import pytest

import gpubp


def _trained(first_layers, X, y):
    model = gpubp.Sequential([*first_layers, gpubp.BatchNorm(4), gpubp.Dense(4, 3)], dtype="float64", seed=0)
    gpubp.fit(model, X, y, epochs=1, batch_size=4, progress=False)
    return model


@pytest.mark.parametrize("images", [False, True])
def test_one_sample_after_fit_is_predicted_with_running_statistics(images):
    """Was: predict(model, X[:1]) and evaluate on one sample, right after fit (the model in training
    mode), were refused by the shape check ('BatchNorm in training ... needs more than one value per
    channel ... use eval mode'), which walked X's shape through the layers in the model's own mode
    before predict switched to eval."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 1, 3, 3) if images else (16, 9))
    y = rng.integers(0, 3, 16)
    model = _trained([gpubp.Flatten(), gpubp.Dense(9, 4)] if images else [gpubp.Dense(9, 4)], X, y)
    assert model.training
    one = gpubp.predict(model, X[:1])
    assert model.training  # put back as it was
    model.eval()
    np.testing.assert_array_equal(one, model.forward(X[:1]))
    np.testing.assert_array_equal(one, gpubp.predict(model, X)[:1])  # one sample: the running statistics
    log_softmax = one[0] - one[0].max() - np.log(np.exp(one[0] - one[0].max()).sum())
    assert gpubp.evaluate(model, X[:1], y[:1])["loss"] == pytest.approx(-log_softmax[y[0]], rel=1e-12)
