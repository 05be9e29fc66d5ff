"""The lecture notes' worked examples (shared/seeds), reproduced through gpubp's public API.

Expected values are computed here, independently, in plain Python floats — never
copied from the notes. One printed figure in the notes is wrong: seed 002 prints
"Prediction: 0.9876, Loss: 0.00015" for its single sigmoid neuron, but
z = 0.5*2 + (-0.3)*(-1) + 1.2*3 + 0.6 = 5.5, so a = sigmoid(5.5) = 0.99593 and the
loss (a - 1)^2 = 1.66e-05 (0.9876 would need z = 4.38). ``test_seed_002_printed_figure_is_wrong``
pins this down. Seed 000's convergence table (epochs 20, 50, 100, 112) is right.
"""
import math

import numpy as np
import pytest

import gpubp


def house_price_losses(epochs, x=2.0, y=100.0, w=1.0, lr=0.01):
    """Seed 000's loop in plain Python: the loss printed at each epoch (before its update)."""
    out = []
    for _ in range(epochs):
        y_hat = w * x
        out.append((y_hat - y) ** 2)
        w -= lr * 2 * x * (y_hat - y)
    return out, w


def test_seed_000_house_price_loop(dtype):
    backend = gpubp.get_backend("cpu", dtype)
    model = gpubp.Sequential([gpubp.Dense(1, 1, bias=False)], backend=backend, seed=None)
    model.layers[0].params["W"][...] = 1.0
    X, y = backend.asarray([[2.0]]), backend.asarray([[100.0]])
    loss, opt = gpubp.MSE(), gpubp.SGD(lr=0.01)
    losses = []
    for _ in range(125):
        losses.append(float(loss.forward(model.forward(X), y)))
        model.zero_grad()
        model.backward(loss.backward())
        opt.step(model)
    expected, w_final = house_price_losses(125)
    # closed form too: the error shrinks by (1 - 2 lr x^2) = 0.92 per epoch
    closed = [(98.0 * 0.92 ** k) ** 2 for k in range(125)]
    np.testing.assert_allclose(expected, closed, rtol=1e-9)
    rtol = 1e-9 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(losses[:60], expected[:60], rtol=rtol)
    np.testing.assert_allclose(losses, expected, rtol=rtol, atol=1e-9 if dtype == "float64" else 1e-5)
    # the notes' table: epoch 20 ~ 404.0, 50 ~ 2.714, 100 ~ 0.0006, 112 ~ 0.00008 (1-based epochs)
    assert round(expected[19], 1) == 404.0 and round(expected[49], 3) == 2.714
    assert round(expected[99], 4) == 0.0006 and 8e-5 <= expected[111] < 9e-5  # printed truncated
    assert float(model.layers[0].params["W"][0, 0]) == pytest.approx(w_final, rel=1e-5)
    assert abs(w_final - 50.0) < 2e-3  # converged: $50k per 1000 sq ft


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def test_seed_001_two_layer_sigmoid_net():
    """x=1, W1=0.5, b1=0.1, W2=1.5, b2=0.2, y=0.8, loss 0.5 (y_hat - y)^2 (the notes' convention)."""
    z1 = 0.5 * 1.0 + 0.1
    a1 = sigmoid(z1)
    z2 = 1.5 * a1 + 0.2
    y_hat = sigmoid(z2)
    d2 = (y_hat - 0.8) * y_hat * (1 - y_hat)
    d1 = 1.5 * d2 * a1 * (1 - a1)
    expected = {"0.W": d1 * 1.0, "0.b": d1, "2.W": d2 * a1, "2.b": d2}

    backend = gpubp.get_backend("cpu", "float64")
    model = gpubp.Sequential([gpubp.Dense(1, 1), gpubp.Sigmoid(), gpubp.Dense(1, 1), gpubp.Sigmoid()],
                             backend=backend)
    for name, value in {"0.W": 0.5, "0.b": 0.1, "2.W": 1.5, "2.b": 0.2}.items():
        model.parameters()[name][...] = value
    loss = gpubp.MSE()  # mean (y_hat - y)^2: twice the notes' 0.5 (y_hat - y)^2, so gradients are twice theirs
    value = loss.forward(model.forward(backend.asarray([[1.0]])), backend.asarray([[0.8]]))
    model.zero_grad()
    model.backward(loss.backward())
    assert float(value) == pytest.approx((y_hat - 0.8) ** 2, rel=1e-12)
    for name, grad in model.gradients().items():
        assert float(grad.ravel()[0]) / 2 == pytest.approx(expected[name], rel=1e-12), name


def test_seed_002_single_sigmoid_neuron():
    x, w, b, target = [2.0, -1.0, 3.0], [0.5, -0.3, 1.2], 0.6, 1.0
    z = sum(wi * xi for wi, xi in zip(w, x)) + b
    a = sigmoid(z)
    dL_dz = 2 * (a - target) * a * (1 - a)

    backend = gpubp.get_backend("cpu", "float64")
    model = gpubp.Sequential([gpubp.Dense(3, 1), gpubp.Sigmoid()], backend=backend)
    model.layers[0].params["W"][...] = np.array(w)[:, None]
    model.layers[0].params["b"][...] = b
    loss = gpubp.MSE()
    value = loss.forward(model.forward(backend.asarray([x])), backend.asarray([[target]]))
    model.zero_grad()
    model.backward(loss.backward())
    assert float(value) == pytest.approx((a - target) ** 2, rel=1e-12)
    np.testing.assert_allclose(model.gradients()["0.W"].ravel(), [dL_dz * xi for xi in x], rtol=1e-12)
    assert float(model.gradients()["0.b"][0]) == pytest.approx(dL_dz, rel=1e-12)
    # one SGD step with lr 0.1, as in the notes
    gpubp.SGD(lr=0.1).step(model)
    np.testing.assert_allclose(model.layers[0].params["W"].ravel(), [wi - 0.1 * dL_dz * xi for wi, xi in zip(w, x)],
                               rtol=1e-12)
    assert float(model.layers[0].params["b"][0]) == pytest.approx(b - 0.1 * dL_dz, rel=1e-12)


def test_seed_002_printed_figure_is_wrong():
    """gpubp's own forward pass gives 0.9959 and 1.66e-05, not the printed 0.9876 and 0.00015."""
    backend = gpubp.get_backend("cpu", "float64")
    model = gpubp.Sequential([gpubp.Dense(3, 1), gpubp.Sigmoid()], backend=backend)
    model.load_parameters({"0.W": np.array([[0.5], [-0.3], [1.2]]), "0.b": np.array([0.6])})
    a = model.forward(backend.asarray([[2.0, -1.0, 3.0]]))
    loss = float(gpubp.MSE().forward(a, backend.asarray([[1.0]])))
    assert round(float(a[0, 0]), 4) == 0.9959 != 0.9876
    assert loss == pytest.approx(1.66e-5, rel=1e-2) and loss != pytest.approx(0.00015, rel=0.5)
