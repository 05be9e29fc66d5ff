"""The size of a loss gradient's terms lives with parity's tolerance policy, not on the losses."""
import numpy as np
import pytest

import gpubp
from gpubp.losses import LOSSES, Loss, get_loss
from gpubp.tools.parity.tolerance import loss_gradient_terms


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("loss_class", sorted(set(LOSSES.values()) | {Loss}, key=lambda c: c.__name__))
def test_losses_carry_no_parity_only_method(loss_class):
    assert not hasattr(loss_class, "gradient_terms")
    assert not hasattr(loss_class(), "gradient_terms")


def hand_terms(name, Z, T, labels):
    """c (|a| + |t|) for dL/dY = c (a - t), computed from the definitions of each loss."""
    if name == "mse":    # dL/dY = 2 (Y - T) / N, N = all elements
        return 2.0 * (np.abs(Z) + np.abs(T)) / Z.size
    if name == "bce":    # dL/dZ = (sigmoid(Z) - T) / N, N = all elements
        return (sigmoid(Z) + np.abs(T)) / Z.size
    onehot = np.eye(Z.shape[1])[labels]  # dL/dZ = (softmax(Z) - onehot) / rows
    return (softmax(Z) + onehot) / Z.shape[0]


@pytest.mark.parametrize("name", ["mse", "bce", "softmax_cross_entropy"])
def test_loss_gradient_terms_match_a_hand_computation(name, device):
    backend = gpubp.get_backend(device, "float64")
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(6, 4)) * 3
    labels = rng.integers(0, 4, size=6)
    T = rng.normal(size=(6, 4)) if name == "mse" else rng.uniform(size=(6, 4))
    loss = get_loss(name)
    loss.forward(backend.asarray(Z), backend.asarray(labels if name == "softmax_cross_entropy" else T))
    terms = backend.to_numpy(loss_gradient_terms(loss))
    np.testing.assert_allclose(terms, hand_terms(name, Z, T, labels), rtol=1e-12)
    # and they bound the gradient itself: |c (a - t)| <= c (|a| + |t|)
    assert np.all(np.abs(backend.to_numpy(loss.backward())) <= terms * (1 + 1e-12))


def test_an_unknown_loss_says_nothing():
    class Half(Loss):  # a user's own loss: parity falls back to |dL/dY|
        def forward(self, Y, T):
            self.d = Y - T
            return (self.d ** 2).sum() / 2

        def backward(self):
            return self.d

    loss = Half()
    loss.forward(np.ones((2, 2)), np.zeros((2, 2)))
    assert loss_gradient_terms(loss) is None


def test_before_any_forward_is_a_state_error():
    from gpubp.errors import StateError
    with pytest.raises(StateError, match="before forward"):
        loss_gradient_terms(gpubp.MSE())


def test_a_dtype_without_a_policy_is_named():
    """Before: KeyError: dtype('float16') from the policy table."""
    from gpubp.errors import DTypeError
    from gpubp.tools.parity.tolerance import POLICY, tolerance_for
    assert tolerance_for("float32", np.float64) == POLICY[np.dtype(np.float32)]
    with pytest.raises(DTypeError, match="dtype must be float32 or float64, got 'float16'"):
        tolerance_for("float64", "float16")
