"""A softmax cross-entropy target row of zeros (weight 0 for the loss: no class) is left out of the
accuracy of evaluate and of fit's history (training and validation), with a warning naming the row;
targets of zeros only are refused, and under the default loss (rows must be one-hot or probabilities)
the row is named in the refusal. Was: argmax of a row of zeros is 0, so the row was scored as class 0
(correct whenever the model predicted class 0), silently."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import GpubpWarning, InvalidValueError

X = np.random.default_rng(0).normal(size=(40, 4))


def setting():
    """A model, its predictions, one-hot targets (right for every other sample) whose row ``r``,
    predicted class 0, is zeros."""
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    pred = gpubp.predict(model, X).argmax(axis=1)
    r = int(np.flatnonzero(pred == 0)[0])
    labels = np.where(np.arange(40) % 2 == 0, pred, (pred + 1) % 3)
    Y = np.eye(3)[labels]
    Y[r] = 0
    others = np.arange(40) != r
    return model, Y, r, float((labels == pred)[others].mean())


def test_evaluate_leaves_a_row_of_zeros_out_and_names_it():
    model, Y, r, expected = setting()
    with pytest.warns(GpubpWarning, match=rf"^evaluate: y row\(s\) {r} \(1 of 40\) are all zeros.*accuracy leaves "
                                          r"them out \(it counts the other 39\)"):
        result = gpubp.evaluate(model, X, Y, loss="softmax_cross_entropy")
    assert result["accuracy"] == pytest.approx(expected)  # was (expected * 39 + 1) / 40


def test_fit_history_leaves_a_row_of_zeros_out_of_both_accuracies():
    model, Y, r, expected = setting()
    with pytest.warns(GpubpWarning) as said:  # the weights barely move: the predictions stay the start's
        h = gpubp.fit(model, X, Y, loss="softmax_cross_entropy", optimizer="sgd", lr=1e-30, epochs=1,
                      batch_size=8, progress=False, validation_data=(X, Y))
    assert h.metric[0] == pytest.approx(expected) and h.val_metric[0] == pytest.approx(expected)
    texts = [str(w.message) for w in said if issubclass(w.category, GpubpWarning)]
    assert any(t.startswith(f"fit: y row(s) {r} (1 of 40)") for t in texts)
    assert any(t.startswith(f"fit: validation_data y row(s) {r} (1 of 40)") for t in texts)


def test_targets_of_zeros_only_are_refused():
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    zeros = np.zeros((40, 3))
    with pytest.raises(InvalidValueError, match=r"^fit: every row of validation_data y is all zeros"):
        gpubp.fit(model, X, np.eye(3)[np.arange(40) % 3], loss="softmax_cross_entropy", epochs=1,
                  progress=False, validation_data=(X, zeros))
    with pytest.raises(InvalidValueError, match=r"^evaluate: every row of y is all zeros"):
        gpubp.evaluate(model, X, zeros, loss="softmax_cross_entropy")


def test_the_default_loss_refuses_the_row_by_its_index():
    model, Y, r, _ = setting()
    for call, what in ((lambda: gpubp.evaluate(model, X, Y), "evaluate"),
                       (lambda: gpubp.fit(model, X, Y, epochs=1, progress=False), "fit")):
        with pytest.raises(InvalidValueError, match=rf"^{what}: y's rows are not one-hot or probabilities \(row {r} "
                                                    r"sums to 0, all zeros: no class"):
            call()


def test_labels_and_full_rows_score_as_before():
    model, Y, r, _ = setting()
    Y[r, 0] = 1
    labels = Y.argmax(axis=1)
    pred = gpubp.predict(model, X).argmax(axis=1)
    for targets in (Y, labels):
        assert gpubp.evaluate(model, X, targets)["accuracy"] == pytest.approx(float((pred == labels).mean()))
