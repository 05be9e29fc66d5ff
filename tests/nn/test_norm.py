"""BatchNorm: forward and backward against an independent NumPy float64 implementation (the
staged chain rule through mean and variance, not the compact formula the layer uses),
gradients against central differences, running statistics against PyTorch's rule written
out by hand over several steps, eval on the running statistics, train/eval reaching every
layer of a model, CPU/GPU parity on the device fixture, buffers, and errors naming the layer."""
import json
import re

import numpy as np
import pytest

import gpubp
from gpubp.nn import BatchNorm, Conv2D, Dropout, Flatten

from helpers import TOL

SHAPES = {"2d": (6, 3), "4d": (4, 3, 5, 2)}


def data(shape, seed=0):
    """Channels with different means and scales, so normalisation has something to do."""
    C = shape[1]
    loc, scale = np.arange(C) - 1.0, 1.0 + np.arange(C)
    bshape = (1, C) + (1,) * (len(shape) - 2)
    return np.random.default_rng(seed).normal(size=shape) * scale.reshape(bshape) + loc.reshape(bshape)


def axes_of(X):
    return (0,) if X.ndim == 2 else (0, 2, 3)


def bc(v, X):
    return v.reshape((1, -1) + (1,) * (X.ndim - 2))


def reference_train(X, gamma, beta, dY, eps=1e-5):
    """Y and the gradients by the staged chain rule: Y <- x_hat <- (xc, var) <- mu <- X."""
    ax, m = axes_of(X), X.size // X.shape[1]
    mu = X.mean(axis=ax)
    xc = X - bc(mu, X)
    var = (xc ** 2).sum(axis=ax) / m
    std = np.sqrt(var + eps)
    x_hat = xc / bc(std, X)
    Y = bc(gamma, X) * x_hat + bc(beta, X)
    dx_hat = dY * bc(gamma, X)
    dvar = (dx_hat * xc).sum(axis=ax) * -0.5 * (var + eps) ** -1.5
    dmu = -(dx_hat / bc(std, X)).sum(axis=ax) + dvar * (-2.0 / m) * xc.sum(axis=ax)
    dX = dx_hat / bc(std, X) + bc(dvar, X) * 2 * xc / m + bc(dmu, X) / m
    return Y, dX, (dY * x_hat).sum(axis=ax), dY.sum(axis=ax)


def layer_for(backend, C=3, gamma=None, beta=None, **kwargs):
    layer = BatchNorm(C, backend=backend, **kwargs)
    if gamma is not None:
        layer.params["gamma"][...] = backend.asarray(gamma)
        layer.params["beta"][...] = backend.asarray(beta)
    return layer


GAMMA, BETA = np.array([1.5, -0.5, 2.0]), np.array([0.1, 0.2, -0.3])


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_train_forward_backward_match_numpy(kind, device):
    backend = gpubp.get_backend(device, "float64")
    X, dY = data(SHAPES[kind]), np.random.default_rng(1).normal(size=SHAPES[kind])
    layer = layer_for(backend, gamma=GAMMA, beta=BETA)
    Y = backend.to_numpy(layer(backend.asarray(X)))
    dX = backend.to_numpy(layer.backward(backend.asarray(dY)))
    Y_ref, dX_ref, dgamma, dbeta = reference_train(X, GAMMA, BETA, dY)
    np.testing.assert_allclose(Y, Y_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dX, dX_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.grads["gamma"]), dgamma, rtol=0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.grads["beta"]), dbeta, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_eval_uses_running_statistics(kind, device):
    """Eval: Y = gamma (X - running_mean) / sqrt(running_var + eps) + beta; dX = gamma / sigma dY;
    and an eval forward leaves the running statistics alone."""
    backend = gpubp.get_backend(device, "float64")
    X, dY = data(SHAPES[kind]), np.random.default_rng(1).normal(size=SHAPES[kind])
    layer = layer_for(backend, gamma=GAMMA, beta=BETA, eps=1e-3)
    rm, rv = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.5])
    layer.load_buffers({"running_mean": rm, "running_var": rv})
    layer.training = False
    Y = backend.to_numpy(layer(backend.asarray(X)))
    sigma = np.sqrt(rv + 1e-3)
    x_hat = (X - bc(rm, X)) / bc(sigma, X)
    np.testing.assert_allclose(Y, bc(GAMMA, X) * x_hat + bc(BETA, X), rtol=0, atol=1e-12)
    dX = backend.to_numpy(layer.backward(backend.asarray(dY)))
    np.testing.assert_allclose(dX, dY * bc(GAMMA / sigma, X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.grads["gamma"]), (dY * x_hat).sum(axis=axes_of(X)), atol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(layer.buffers["running_mean"]), rm)
    np.testing.assert_array_equal(backend.to_numpy(layer.buffers["running_var"]), rv)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_gradients(kind, training, device):
    backend = gpubp.get_backend(device, "float64")
    layer = layer_for(backend, gamma=GAMMA, beta=BETA)
    layer.load_buffers({"running_mean": np.array([0.5, -1.0, 2.0]), "running_var": np.array([0.25, 4.0, 1.5])})
    layer.training = training
    # L = sum(w Y) is a sum of O(1) terms: rounding in f over eps = 1e-6 is ~1e-8 absolute
    report = gpubp.gradcheck_layer(layer, backend.asarray(data(SHAPES[kind])), atol=1e-7, rtol=1e-6)
    assert report.ok and [r.name for r in report.rows] == ["dX", "gamma", "beta"]


@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_running_statistics_follow_pytorch_rule(kind, momentum, device):
    """Four training steps on different batches: running = (1 - k) running + k stat, with the
    unbiased variance (m / (m - 1)) for the running estimate; starting from 0 and 1."""
    backend = gpubp.get_backend(device, "float64")
    layer = layer_for(backend, momentum=momentum)
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(4):
        X = data(SHAPES[kind], seed=10 + step) * (step + 1)
        layer(backend.asarray(X))
        ax = axes_of(X)
        rm = (1 - momentum) * rm + momentum * X.mean(axis=ax)
        rv = (1 - momentum) * rv + momentum * np.moveaxis(X, 1, 0).reshape(3, -1).var(axis=1, ddof=1)
        np.testing.assert_allclose(backend.to_numpy(layer.buffers["running_mean"]), rm, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(backend.to_numpy(layer.buffers["running_var"]), rv, rtol=1e-12)
    layer.training = False  # then eval normalises by exactly these
    X = data(SHAPES[kind], seed=99)
    expected = (X - bc(rm, X)) / np.sqrt(bc(rv, X) + 1e-5)
    np.testing.assert_allclose(backend.to_numpy(layer(backend.asarray(X))), expected, rtol=1e-11, atol=1e-12)


def test_buffers_are_updated_in_place():
    """Whoever holds the running statistics (a checkpoint writer, a tool) sees them move."""
    layer = layer_for(gpubp.get_backend("cpu", "float64"))
    rm, rv = layer.buffers["running_mean"], layer.buffers["running_var"]
    layer(data(SHAPES["2d"]))
    assert layer.buffers["running_mean"] is rm and layer.buffers["running_var"] is rv
    assert np.all(rm != 0) and set(layer.buffers) == {"running_mean", "running_var"}
    assert set(layer.params) == {"gamma", "beta"}  # never in params: no optimizer touches them


def test_matches_torch():
    torch = pytest.importorskip("torch")
    backend = gpubp.get_backend("cpu", "float64")
    X, dY = data(SHAPES["4d"]), np.random.default_rng(1).normal(size=SHAPES["4d"])
    layer = layer_for(backend, gamma=GAMMA, beta=BETA)
    tbn = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        tbn.weight.copy_(torch.from_numpy(GAMMA))
        tbn.bias.copy_(torch.from_numpy(BETA))
    for seed in range(3):
        Xs = X * (seed + 1)
        tX = torch.from_numpy(Xs).requires_grad_()
        tY = tbn(tX)
        tY.backward(torch.from_numpy(dY))
        np.testing.assert_allclose(layer(Xs), tY.detach().numpy(), rtol=1e-10, atol=1e-12)
        layer.zero_grad()
        np.testing.assert_allclose(layer.backward(dY), tX.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["gamma"], tbn.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        tbn.weight.grad = tbn.bias.grad = None
        np.testing.assert_allclose(layer.buffers["running_mean"], tbn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(layer.buffers["running_var"], tbn.running_var.numpy(), rtol=1e-12)
    tbn.eval()
    layer.training = False
    np.testing.assert_allclose(layer(X), tbn(torch.from_numpy(X)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_parity(device, dtype):
    """Forward, dX, dgamma, dbeta and running statistics on ``device`` in ``dtype`` against the CPU in
    float64 (TOL by dtype); nothing promoted out of float32."""
    layer, ref = layer_for(gpubp.get_backend(device, dtype)), layer_for(gpubp.get_backend("cpu", "float64"))
    X = data(SHAPES["4d"]).astype(dtype).astype(np.float64)
    dY = np.random.default_rng(1).normal(size=X.shape).astype(dtype).astype(np.float64)
    for training in (True, False):
        layer.training = ref.training = training
        assert_steps_alike(layer, ref, X, dY)
    assert set(layer.grads) == {"gamma", "beta"} and set(layer.buffers) == {"running_mean", "running_var"}


def assert_steps_alike(layer, ref, X, dY):
    """One forward and backward of ``layer`` (on its device, in its dtype) and of ``ref`` (the CPU in
    float64) on X and dY: Y, dX, every gradient and buffer alike within TOL of the layer's dtype,
    none promoted out of it (the count ``num_batches_tracked`` an int64), each on the layer's device."""
    be, tol = layer.backend, TOL[layer.backend.dtype]
    Y = be.to_numpy(layer(be.asarray(X)))
    np.testing.assert_allclose(Y, ref(X), **tol)
    layer.zero_grad()
    ref.zero_grad()
    dX = be.to_numpy(layer.backward(be.asarray(dY)))
    np.testing.assert_allclose(dX, ref.backward(dY), **tol)
    assert {a.dtype for a in (Y, dX, *map(be.to_numpy, layer.grads.values()))} == {be.dtype}
    for name, g in layer.grads.items():
        np.testing.assert_allclose(be.to_numpy(g), ref.grads[name], **tol)
    for name, buf in layer.buffers.items():
        assert be.is_own(buf) and buf.dtype == (np.int64 if name == "num_batches_tracked" else be.dtype)
        np.testing.assert_allclose(be.to_numpy(buf), ref.buffers[name], **tol)


def test_model_train_eval_reaches_every_layer():
    model = gpubp.Sequential([Conv2D(1, 3, 3), BatchNorm(3), gpubp.ReLU(), Flatten(), Dropout(0.5),
                              gpubp.Dense(3 * 4 * 4, 2)], dtype="float64")
    assert model.training and all(layer.training for layer in model.layers)
    assert model.eval() is model
    assert model.training is False and not any(layer.training for layer in model.layers)
    X = np.random.default_rng(0).normal(size=(4, 1, 6, 6))
    before = model.layers[1].buffers["running_mean"].copy()
    Y1, Y2 = model(X), model(X)  # eval: deterministic, no statistics updated, no Dropout step taken
    np.testing.assert_array_equal(Y1, Y2)
    np.testing.assert_array_equal(model.layers[1].buffers["running_mean"], before)
    assert model.layers[4].step == 0
    assert model.train() is model and model.training and all(layer.training for layer in model.layers)
    model(X)
    assert model.layers[4].step == 1 and np.any(model.layers[1].buffers["running_mean"] != before)
    model.training = False  # the attribute form, as in PyTorch's model.training
    assert not any(layer.training for layer in model.layers)
    assert model.train(True).training
    with pytest.raises(gpubp.InvalidValueError, match="train mode must be True or False, got 'eval'"):
        model.train("eval")


def test_to_moves_and_retypes_buffers(device):
    layer = layer_for(gpubp.get_backend("cpu", "float64"))
    layer(data(SHAPES["4d"]))
    rm = layer.buffers["running_mean"].copy()
    assert layer.to(gpubp.get_backend(device, "float32")) is layer
    for buf in layer.buffers.values():
        layer.backend.check_array(buf, "buffer")  # on the device, in float32
    np.testing.assert_allclose(layer.backend.to_numpy(layer.buffers["running_mean"]), rm, rtol=1e-7)
    Y = layer(layer.backend.asarray(data(SHAPES["4d"])))
    assert Y.dtype == np.float32


def test_load_buffers_checks_names_and_shapes():
    layer = layer_for(gpubp.get_backend("cpu", "float32"))
    with pytest.raises(gpubp.ShapeError, match=r"BatchNorm\(3, .*\) has buffers \['running_mean', 'running_var'\]"):
        layer.load_buffers({"running_mean": np.zeros(3)})
    with pytest.raises(gpubp.ShapeError, match=r"buffer running_var has shape \(4,\), the architecture says \(3,\)"):
        layer.load_buffers({"running_mean": np.zeros(3), "running_var": np.ones(4)})
    np.testing.assert_array_equal(layer.buffers["running_mean"], 0)  # nothing written by a refused load


def test_config_repr_roundtrip():
    layer = BatchNorm(16, eps=1e-3, momentum=0.2)
    assert repr(layer) == "BatchNorm(16, eps=0.001, momentum=0.2)"
    assert repr(BatchNorm(4)) == "BatchNorm(4, eps=1e-05, momentum=0.1)"
    config = json.loads(json.dumps(layer.config()))
    assert config.pop("type") == "BatchNorm"
    again = BatchNorm(**config)
    assert again.config() == layer.config() and again.parameter_shapes() == {"gamma": (16,), "beta": (16,)}
    np.testing.assert_array_equal(again.params["gamma"], 1)
    np.testing.assert_array_equal(again.params["beta"], 0)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(num_features=0), gpubp.InvalidValueError, "BatchNorm num_features must be a whole number >= 1, got 0"),
    (dict(num_features=2.5), gpubp.InvalidValueError, "BatchNorm num_features"),
    (dict(eps=0), gpubp.InvalidValueError, "BatchNorm eps must be a finite number > 0"),
    (dict(momentum=1.5), gpubp.InvalidValueError, "BatchNorm momentum must be a finite number >= 0 and <= 1"),
    (dict(momentum="0.1"), gpubp.InvalidValueError, "BatchNorm momentum must be a finite number"),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        BatchNorm(**{"num_features": 3, **kwargs})


def test_bad_inputs_name_the_layer():
    layer = layer_for(gpubp.get_backend("cpu", "float64"))
    with pytest.raises(gpubp.ShapeError, match=r"BatchNorm\(3, eps=1e-05, momentum=0.1\) expects inputs of shape "
                                               r"\(N, 3\) or \(N, 3, H, W\), got shape \(4, 5\)"):
        layer(np.zeros((4, 5)))
    with pytest.raises(gpubp.ShapeError, match=r"got shape \(4, 3, 5\)"):
        layer(np.zeros((4, 3, 5)))
    with pytest.raises(gpubp.ShapeError, match=r"more than one value per channel, got input shape \(1, 3\)"):
        layer(np.zeros((1, 3)))
    layer.training = False
    assert layer(np.zeros((1, 3))).shape == (1, 3)  # eval needs no batch statistics
    with pytest.raises(gpubp.DTypeError, match="BatchNorm input"):
        layer(np.zeros((2, 3), np.float32))
    with pytest.raises(gpubp.ShapeError, match=r"dY has shape \(2, 3\), expected \(1, 3\)"):
        layer.backward(np.zeros((2, 3)))
    with pytest.raises(gpubp.StateError, match="BatchNorm.backward called before forward"):
        layer_for(gpubp.get_backend("cpu", "float64")).backward(np.zeros((2, 3)))
    with pytest.raises(gpubp.ShapeError, match=r"layer 1 BatchNorm\(8, .*\) expects inputs \(N, 8\) or "
                                               r"\(N, 8, H, W\), but layer 0 Dense\(4, 5\) outputs width 5"):
        gpubp.Sequential([gpubp.Dense(4, 5), BatchNorm(8)], dtype="float64")  # refused where it is built


def test_model_with_batchnorm_gradients(device):
    """Conv -> BatchNorm -> ReLU -> Flatten -> Dense under softmax cross-entropy: every parameter."""
    backend = gpubp.get_backend(device, "float64")
    model = gpubp.Sequential([Conv2D(2, 3, 3, padding=1), BatchNorm(3), gpubp.ReLU(), Flatten(),
                              gpubp.Dense(3 * 4 * 3, 4), BatchNorm(4)], backend=backend, seed=3)
    X, y = np.random.default_rng(5).normal(size=(5, 2, 4, 3)), np.array([0, 3, 1, 2, 1])
    with pytest.warns(gpubp.GpubpWarning, match="every checked gradient of 0.b, 4.b is within atol"):
        report = gpubp.gradcheck(model, "softmax_cross_entropy", backend.asarray(X), backend.asarray(y),
                                 atol=1e-8, rtol=1e-6)
    assert report.ok and [r.name for r in report.rows] == ["0.W", "0.b", "1.gamma", "1.beta", "4.W", "4.b",
                                                           "5.gamma", "5.beta"]
    assert report.vacuous == ["0.b", "4.b"]  # a bias right before BatchNorm: its mean is removed, dL/db = 0


@pytest.mark.parametrize("scale", [1e20, 1e37])
def test_float32_values_whose_squares_overflow_are_normalised(scale):
    """Was: the variance of float32 values past 1.8e19 overflowed to Inf, 1 / sigma to 0, and every
    output was beta (0), silently. The statistics are now summed in float64: the output is that of
    the same values scaled down (BatchNorm is scale invariant), gradients finite; the running
    statistics, whose variance float32 cannot hold, stay as they were."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(16, 3)).astype(np.float32)
    big, unit = BatchNorm(3), BatchNorm(3)
    Y = big(X * np.float32(scale))
    np.testing.assert_allclose(Y, unit(X), rtol=1e-5, atol=1e-5)
    assert np.isfinite(big.backward(np.ones_like(Y))).all()
    np.testing.assert_array_equal(big.buffers["running_var"], np.ones(3, np.float32))


def test_running_statistics_set_by_name_are_checked_and_copied_in():
    """Was: ``bn.buffers["running_var"] = a`` (a port of another library's statistics) taken as it
    came: a wrong shape or None ended in raw errors at the next forward, a negative variance in NaN
    outputs, a float64 array in a float32 layer stayed float64. Now it is written as load_buffers
    writes it: checked, converted, and copied into the layer's own array (which stays the same)."""
    layer = BatchNorm(3)
    held = layer.buffers["running_var"]
    layer.buffers["running_var"] = np.array([1.0, 2.0, 4.0])  # float64 in, the layer's float32 kept
    assert layer.buffers["running_var"] is held and held.dtype == np.float32
    np.testing.assert_array_equal(held, [1.0, 2.0, 4.0])
    for name, value, error, words in (("running_mean", np.zeros(5), gpubp.ShapeError, "has shape (5,)"),
                                      ("running_var", -np.ones(3), gpubp.InvalidValueError, "must be >= 0"),
                                      ("running_mean", [np.nan] * 3, gpubp.NumericalError, "NaN"),
                                      ("count", np.ones(3), gpubp.ShapeError, "has buffers")):
        with pytest.raises(error, match=re.escape(words)):
            layer.buffers[name] = value
    np.testing.assert_array_equal(held, [1.0, 2.0, 4.0])
    with pytest.raises(gpubp.InvalidValueError, match="buffers cannot be replaced"):
        layer.buffers = {"running_mean": np.zeros(3), "running_var": np.ones(3)}
    with pytest.raises(gpubp.InvalidValueError, match="none can be added or removed"):
        layer.buffers.pop("running_mean")
