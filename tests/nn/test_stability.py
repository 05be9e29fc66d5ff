"""Stability at extremes: logits up to +-1e4 in float32 and float64 give finite, correct
losses and gradients with no overflow warnings; deep sigmoid nets underflow to zeros, not NaN."""
import warnings

import numpy as np
import pytest

import gpubp

LOGITS = np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [88.0, -89.0, 710.0]])


@pytest.fixture
def strict():
    """Overflow, invalid and divide-by-zero become errors (underflow to 0 is fine)."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        yield


def test_softmax_cross_entropy_at_extremes(strict, backend):
    Z = backend.asarray(LOGITS)
    labels = backend.asarray(np.array([2, 0, 1, 2]))
    loss = gpubp.SoftmaxCrossEntropy()
    value = float(loss.forward(Z, labels))
    dZ = backend.to_numpy(loss.backward())
    # exact: row 0 picks the max (loss 0); row 1 ties two maxima (log 2); row 2 is uniform (log 3);
    # row 3 picks the max, 710 (loss ~ 0)
    assert value == pytest.approx((0 + np.log(2) + np.log(3) + 0) / 4, rel=1e-6)
    assert np.all(np.isfinite(dZ)) and np.allclose(dZ.sum(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(dZ[1], [0.5 / 4 - 0.25, 0.5 / 4, 0], atol=1e-7)


def test_bce_from_logits_at_extremes(strict, backend):
    Z = backend.asarray(LOGITS)
    T = backend.asarray((LOGITS > 0).astype(float))  # all confidently right: loss ~ 0 except the 0 logit
    loss = gpubp.BinaryCrossEntropy()
    value = float(loss.forward(Z, T))
    assert value == pytest.approx(np.log(2) / LOGITS.size, rel=1e-5)
    dZ = backend.to_numpy(loss.backward())
    assert np.all(np.isfinite(dZ)) and np.abs(dZ).max() <= 1 / LOGITS.size
    wrong = float(loss.forward(Z, backend.asarray((LOGITS <= 0).astype(float))))  # all confidently wrong
    assert np.isfinite(wrong) and wrong > 1e3


def test_mse_is_finite_for_large_values(strict, backend):
    big = 1e4 if backend.dtype == np.float32 else 1e100
    value = float(gpubp.MSE().forward(backend.asarray([[big]]), backend.asarray([[0.0]])))
    assert value == pytest.approx(big * big, rel=1e-6)


def test_deep_sigmoid_net_gradients_underflow_to_zero_not_nan(strict, backend):
    layers = []
    for _ in range(150):
        layers += [gpubp.Dense(8, 8, init="xavier_normal"), gpubp.Sigmoid()]
    model = gpubp.Sequential(layers + [gpubp.Dense(8, 2)], backend=backend, seed=0)
    for name, p in model.parameters().items():
        if name.endswith("W"):
            p *= 30  # saturate every sigmoid: f'(z) ~ 0 at each layer
    X, T = backend.asarray(np.random.default_rng(0).normal(size=(4, 8))), backend.asarray(np.zeros((4, 2)))
    loss = gpubp.MSE()
    loss.forward(model.forward(X), T)
    model.zero_grad()
    model.backward(loss.backward())
    first = backend.to_numpy(model.gradients()["0.W"])
    last = backend.to_numpy(model.gradients()[f"{len(layers)}.W"])
    assert np.all(np.isfinite(first)) and np.abs(last).max() > 0
    # vanished: exactly zero in float32, below any meaningful size in float64
    assert np.all(first == 0) if backend.dtype == np.float32 else np.abs(first).max() < 1e-90


def test_saturated_sigmoids_warn_of_nothing_eager_or_planned(strict, backend):
    """exp(-z) = inf is the sigmoid's expected overflow (s = 0): silenced by the eager launch and,
    once per step, by a step plan (its bound kernels hold no errstate of their own)."""
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Sigmoid(), gpubp.Dense(4, 2)], backend=backend, seed=0)
    model.layers[0].params["W"][...] = backend.asarray(np.full((3, 4), 1e4))
    X = backend.asarray(np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))  # z = -3e4 and 3e4
    T = backend.asarray(np.zeros((2, 2)))
    model.forward(X)
    hidden = backend.to_numpy(model.layers[1].Y)
    assert np.array_equal(hidden, [[0.0] * 4, [1.0] * 4])
    plan = gpubp.plan.StepPlan(model, "mse", "sgd", X.shape)
    model.zero_grad()
    plan.run(X, T)
    assert np.array_equal(backend.to_numpy(plan.outputs[1]), hidden)  # valid until the update
    plan.update()
