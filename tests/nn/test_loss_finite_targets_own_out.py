"""MSE refuses NaN/Inf targets as the cross-entropies refuse targets outside their domain (was: a NaN or
inf loss and gradient, silently); a loss's backward(out=...) into an array it reads (the targets, the
predictions BCE saved) is refused, leaving it (was: out=T gave a gradient of 0 for SoftmaxCrossEntropy and
BinaryCrossEntropy, and wrote over the user's targets)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, NumericalError

RNG = np.random.default_rng(0)
Y = RNG.normal(size=(4, 3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_mse_refuses_targets_that_are_not_finite(bad):
    T = RNG.normal(size=(4, 3))
    T[2, 1] = bad
    with pytest.raises(NumericalError, match=r"MSE: targets hold 1 NaN/Inf value\(s\), the first at index \(2, 1\)"):
        gpubp.MSE().forward(Y, T)
    with gpubp.MSE().targets_checked() as loss:  # fit checked them once: no sync per batch
        assert not np.isfinite(loss.forward(Y, T))


@pytest.mark.parametrize("make, T", [
    (gpubp.SoftmaxCrossEntropy, np.full((4, 3), 1 / 3)),
    (gpubp.BinaryCrossEntropy, np.full((4, 3), 0.25)),
    (gpubp.MSE, np.full((4, 3), 0.25)),
])
def test_a_backward_into_the_targets_is_refused_leaving_them(make, T):
    expected = make()
    expected.forward(Y, T)
    expected = expected.backward()
    loss, Ti = make(), T.copy()
    loss.forward(Y, Ti)
    with pytest.raises(InvalidValueError, match=r"backward: out shares memory with the targets.*buffer of its own"):
        loss.backward(out=Ti)
    np.testing.assert_array_equal(Ti, T)
    np.testing.assert_array_equal(loss.backward(out=np.empty_like(Y)), expected)


def test_a_backward_into_the_predictions_bce_reads_is_refused():
    loss, Z = gpubp.BinaryCrossEntropy(), Y.copy()
    loss.forward(Z, np.full((4, 3), 0.25))
    with pytest.raises(InvalidValueError, match="out shares memory with the predictions"):
        loss.backward(out=Z[:, :])
    np.testing.assert_array_equal(Z, Y)
