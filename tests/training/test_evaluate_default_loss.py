"""evaluate without a loss scores with softmax_cross_entropy, whose target rows are then one-hot or
probabilities: a regression's rows are refused, naming the fix. Was: a model trained with MSE on
non-negative targets, evaluated without loss='mse', got a softmax cross-entropy and an 'accuracy'
(0.625) as if it were a classifier, without a word. Given explicitly, weighted rows are still taken."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError

X = np.random.default_rng(0).normal(size=(40, 4))


def test_a_regressions_targets_are_refused_under_the_default_loss():
    Y = np.abs(X[:, :2] * 3 + 5)
    model = gpubp.mlp(4, [8], 2, seed=0)
    gpubp.fit(model, X, Y, loss="mse", epochs=2, progress=False)
    with pytest.raises(InvalidValueError, match=r"^evaluate: y's rows are not one-hot or probabilities .* "
                                                r"loss='mse' for a regression"):
        gpubp.evaluate(model, X, Y)
    assert set(gpubp.evaluate(model, X, Y, loss="mse")) == {"loss"}
    assert set(gpubp.evaluate(model, X, Y, loss="softmax_cross_entropy")) == {"loss", "accuracy"}  # asked for


def test_labels_one_hot_rows_and_probabilities_are_scored_as_before():
    model = gpubp.mlp(4, [8], 3, seed=0)
    labels = np.arange(40) % 3
    probabilities = np.random.default_rng(1).dirichlet(np.ones(3), size=40).astype(np.float32)
    by_labels = gpubp.evaluate(model, X, labels)
    assert gpubp.evaluate(model, X, np.eye(3)[labels]) == pytest.approx(by_labels)
    assert gpubp.evaluate(model, X, np.eye(3, dtype=int)[labels]) == pytest.approx(by_labels)
    assert 0 <= gpubp.evaluate(model, X, probabilities)["accuracy"] <= 1


def test_fit_refuses_a_regressions_targets_under_the_default_loss_before_training():
    """Was: fit trained a softmax classifier on them as class weights, without a word."""
    Y = np.abs(X[:, :2] * 3 + 5)
    model = gpubp.mlp(4, [8], 2, seed=0)
    before = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(InvalidValueError, match=r"^fit: y's rows are not one-hot or probabilities .* loss='mse'"):
        gpubp.fit(model, X, Y, epochs=2, progress=False)
    with pytest.raises(InvalidValueError, match=r"^fit: validation_data y's rows are not one-hot"):
        gpubp.fit(model, X, np.eye(2)[np.arange(40) % 2], epochs=2, progress=False, validation_data=(X, Y))
    assert all(np.array_equal(v, before[k]) for k, v in model.parameters().items())  # nothing trained
    assert len(gpubp.fit(model, X, Y, loss="mse", epochs=2, progress=False).loss) == 2
