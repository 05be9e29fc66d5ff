"""Targets whose values the loss refuses (labels beyond the classes, BCE targets outside [0, 1],
negative softmax target rows) are named as the caller's array: 'evaluate: y: ...', 'fit:
validation_data y: ...'. Was: the loss's words alone ('SoftmaxCrossEntropy: labels must be in
[0, 2] ...'), naming neither the function nor the argument."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError

X = np.random.default_rng(0).normal(size=(10, 4))
y = np.arange(10) % 3


@pytest.mark.parametrize("loss, targets, words", [
    ("softmax_cross_entropy", y + 5, r"SoftmaxCrossEntropy: labels must be in \[0, 2\]"),
    ("softmax_cross_entropy", -np.eye(3)[y], r"SoftmaxCrossEntropy: target rows must be finite and >= 0"),
    ("bce", 2 * np.eye(3)[y], r"BinaryCrossEntropy: targets must be in \[0, 1\]"),
])
def test_evaluate_names_its_targets(loss, targets, words):
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    with pytest.raises(InvalidValueError, match=r"^evaluate: y: " + words):
        gpubp.evaluate(model, X, targets, loss=loss)


def test_fit_names_the_validation_targets():
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    with pytest.raises(InvalidValueError, match=r"^fit: validation_data y: SoftmaxCrossEntropy: labels must be"):
        gpubp.fit(model, X, y, epochs=1, progress=False, validation_data=(X, y + 3))
    with pytest.raises(InvalidValueError, match=r"^fit: y: SoftmaxCrossEntropy: labels must be"):
        gpubp.fit(model, X, y + 3, epochs=1, progress=False)
