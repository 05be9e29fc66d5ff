"""Backprop against finite differences (float64) for every layer, loss and a whole net,
and against an independent hand-written NumPy implementation."""
import numpy as np
import pytest

import gpubp
from gpubp.tools.gradcheck import GradcheckError, gradcheck, gradcheck_layer, gradcheck_loss

from helpers import TOL, needs_gpu

LAYERS = {
    "dense": lambda be: gpubp.Dense(4, 3, backend=be, seed=1),
    "dense_nobias": lambda be: gpubp.Dense(4, 3, backend=be, seed=1, bias=False),
    "sigmoid": lambda be: gpubp.Sigmoid(backend=be),
    "tanh": lambda be: gpubp.Tanh(backend=be),
    "relu": lambda be: gpubp.ReLU(backend=be),
    "leaky_relu": lambda be: gpubp.LeakyReLU(0.2, backend=be),
    "identity": lambda be: gpubp.Identity(backend=be),
}


def inputs(shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape)
    return np.where(np.abs(x) < 0.05, 0.3, x)  # keep ReLU kinks away from +-eps


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients(name, device):
    backend = gpubp.get_backend(device, "float64")
    report = gradcheck_layer(LAYERS[name](backend), backend.asarray(inputs((5, 4))), atol=1e-8, rtol=1e-6)
    assert report.ok and report.rows[0].name == "dX"
    assert all(r.max_abs < 1e-7 for r in report.rows)


LOSSES = {
    "mse": (gpubp.MSE, lambda rng: rng.normal(size=(6, 3))),
    "bce": (gpubp.BinaryCrossEntropy, lambda rng: rng.integers(0, 2, (6, 3)).astype(float)),
    "bce_soft": (gpubp.BinaryCrossEntropy, lambda rng: rng.uniform(0, 1, (6, 3))),
    "softmax_labels": (gpubp.SoftmaxCrossEntropy, lambda rng: rng.integers(0, 3, 6)),
    "softmax_onehot": (gpubp.SoftmaxCrossEntropy, lambda rng: np.eye(3)[rng.integers(0, 3, 6)]),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients(name, device):
    backend = gpubp.get_backend(device, "float64")
    cls, targets = LOSSES[name]
    rng = np.random.default_rng(3)
    Y, T = backend.asarray(rng.normal(size=(6, 3)) * 3), backend.asarray(targets(rng))
    assert gradcheck_loss(cls(), Y, T, atol=1e-8, rtol=1e-6).ok


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_whole_network(act, device, dtype):
    """A float32 model is checked on a float64 copy; the model itself is left untouched."""
    backend = gpubp.get_backend(device, dtype)
    A = gpubp.nn.ACTIVATIONS[act]
    model = gpubp.Sequential([gpubp.Dense(4, 7), A(), gpubp.Dense(7, 5), A(), gpubp.Dense(5, 3)],
                             backend=backend, seed=2)
    before = {k: backend.to_numpy(v).copy() for k, v in model.parameters().items()}
    X, y = inputs((8, 4)), np.random.default_rng(1).integers(0, 3, 8)
    report = gradcheck(model, gpubp.SoftmaxCrossEntropy(), backend.asarray(X), backend.asarray(y))
    assert report.ok and [r.name for r in report.rows] == list(model.parameters())
    assert model.backend.dtype == np.dtype(dtype)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(backend.to_numpy(v), before[k])


def test_gradcheck_catches_a_wrong_gradient():
    class BadSigmoid(gpubp.Sigmoid):
        def backward(self, dY):
            return super().backward(dY) * 1.01  # 1% off
    model = gpubp.Sequential([gpubp.Dense(3, 4), BadSigmoid(), gpubp.Dense(4, 2)], dtype="float64")
    with pytest.raises(GradcheckError) as err:
        gradcheck(model, gpubp.MSE(), inputs((5, 3)), inputs((5, 2), seed=4))
    report = err.value.report
    assert not report.ok
    assert [r.name for r in report.rows if not r.ok] == ["0.W", "0.b"]  # below the bad layer only
    assert "FAIL" in str(report)


def test_gradcheck_samples_large_parameters():
    model = gpubp.Sequential([gpubp.Dense(40, 30), gpubp.Tanh(), gpubp.Dense(30, 2)], dtype="float64")
    report = gradcheck(model, gpubp.MSE(), inputs((4, 40)), inputs((4, 2)), max_samples_per_param=20)
    assert [r.checked for r in report.rows] == [20, 20, 20, 2]


def numpy_backprop(X, T, W1, b1, W2, b2, W3, b3):
    """Independent reference: tanh -> sigmoid -> linear, MSE; returns loss and gradients."""
    z1 = X @ W1 + b1; a1 = np.tanh(z1)
    z2 = a1 @ W2 + b2; a2 = 1 / (1 + np.exp(-z2))
    y = a2 @ W3 + b3
    loss = np.mean((y - T) ** 2)
    d3 = 2 * (y - T) / y.size
    d2 = (d3 @ W3.T) * a2 * (1 - a2)
    d1 = (d2 @ W2.T) * (1 - a1 ** 2)
    return loss, y, {"0.W": X.T @ d1, "0.b": d1.sum(0), "2.W": a1.T @ d2, "2.b": d2.sum(0),
                     "4.W": a2.T @ d3, "4.b": d3.sum(0)}, d1 @ W1.T


def three_layer(backend):
    return gpubp.Sequential([gpubp.Dense(5, 8), gpubp.Tanh(), gpubp.Dense(8, 6), gpubp.Sigmoid(),
                             gpubp.Dense(6, 2)], backend=backend, seed=7)


def test_matches_independent_numpy_implementation(device, dtype):
    """CPU half always runs; on a GPU the same comparison runs on CuPy."""
    backend = gpubp.get_backend(device, dtype)
    model = three_layer(backend)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(16, 5)), rng.normal(size=(16, 2))
    params = [backend.to_numpy(p).astype(np.float64) for p in model.parameters().values()]
    X_cast, T_cast = X.astype(dtype).astype(np.float64), T.astype(dtype).astype(np.float64)
    want_loss, want_y, want_grads, want_dX = numpy_backprop(X_cast, T_cast, *params)
    loss = gpubp.MSE()
    y = model.forward(backend.asarray(X))
    value = loss.forward(y, backend.asarray(T))
    model.zero_grad()
    dX = model.backward(loss.backward())
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(float(value), want_loss, **tol)
    np.testing.assert_allclose(backend.to_numpy(y), want_y, **tol)
    np.testing.assert_allclose(backend.to_numpy(dX), want_dX, **tol)
    for name, g in model.gradients().items():
        np.testing.assert_allclose(backend.to_numpy(g), want_grads[name], **tol, err_msg=name)


def test_gradients_accumulate_until_zero_grad():
    model = three_layer("cpu").to("cpu", "float64")
    X, T = inputs((4, 5)), inputs((4, 2), seed=1)
    loss = gpubp.MSE()
    model.zero_grad()
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    once = {k: v.copy() for k, v in model.gradients().items()}
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    for k, v in model.gradients().items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-12)
    model.zero_grad()
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    for k, v in model.gradients().items():
        np.testing.assert_allclose(v, once[k], rtol=1e-12)


def test_training_backward_skips_only_the_input_gradient():
    model = three_layer("cpu").to("cpu", "float64")
    X, T = inputs((4, 5)), inputs((4, 2), seed=1)
    loss = gpubp.MSE()
    loss.forward(model.forward(X), T)
    model.zero_grad()
    assert model.backward(loss.backward()) is not None
    full = {k: v.copy() for k, v in model.gradients().items()}
    loss.forward(model.forward(X), T)
    model.zero_grad()
    assert model.backward(loss.backward(), input_grad=False) is None
    for k, v in model.gradients().items():
        np.testing.assert_array_equal(v, full[k])


def test_report_table_and_error_type():
    model = gpubp.Sequential([gpubp.Dense(3, 2)], dtype="float64")
    report = gradcheck(model, gpubp.MSE(), inputs((4, 3)), inputs((4, 2), seed=1))
    text = str(report).splitlines()
    assert "eps=1e-06" in text[0] and text[1].split()[:3] == ["array", "shape", "checked"]
    assert text[2].split()[0] == "0.W" and text[2].endswith("ok") and len(text) == 4
    assert issubclass(GradcheckError, gpubp.GpubpError)


def test_any_memory_layout_and_caller_arrays_untouched():
    """A Fortran-ordered input is perturbed correctly, and the caller's array is not changed."""
    layer = gpubp.Dense(3, 4, seed=0).to(gpubp.get_backend("cpu", "float64"))
    X = np.asfortranarray(inputs((5, 3)))
    X_before = X.copy()
    report = gradcheck_layer(layer, X, atol=1e-8, rtol=1e-6)
    assert report.ok and report.rows[0].max_abs < 1e-7
    np.testing.assert_array_equal(X, X_before)


def test_float32_models_checked_in_float64_or_as_asked():
    model = gpubp.Sequential([gpubp.Dense(3, 2), gpubp.Tanh()], dtype="float32", seed=0)
    X, T = inputs((4, 3)).astype(np.float32), inputs((4, 2), seed=1).astype(np.float32)
    assert gradcheck(model, gpubp.MSE(), X, T, atol=1e-9, rtol=1e-6).ok  # float64 copy: tight
    # in float32 itself, central differences are only good to ~sqrt(float32 eps)
    with pytest.raises(GradcheckError):
        gradcheck(model, gpubp.MSE(), X, T, dtype="float32", eps=1e-3, atol=1e-9, rtol=1e-6)
    assert gradcheck(model, gpubp.MSE(), X, T, dtype="float32", eps=1e-2, atol=1e-2, rtol=1e-2).ok


def test_gradcheck_loss_leaves_its_inputs_alone():
    Y, T = inputs((4, 3)), np.array([0, 2, 1, 1])
    Y_before = Y.copy()
    report = gradcheck_loss(gpubp.SoftmaxCrossEntropy(), Y, T)
    assert report.ok and report.rows[0].name == "dY" and report.rows[0].checked == 12
    assert str(gradcheck_loss("cross_entropy", Y, T)) == str(report)  # a loss by name
    np.testing.assert_array_equal(Y, Y_before)


@needs_gpu
def test_gradcheck_refuses_mixed_devices():
    model = gpubp.Sequential([gpubp.Dense(3, 2)], backend="cuda:0", dtype="float64")
    with pytest.raises(gpubp.DeviceError, match="NumPy input for a CuPy model"):
        gradcheck(model, gpubp.MSE(), inputs((4, 3)), model.backend.asarray(inputs((4, 2))))
    cpu = gpubp.Sequential([gpubp.Dense(3, 2)], backend="cpu", dtype="float64")
    with pytest.raises(gpubp.DeviceError, match="is on cuda:0 but the model is on cpu"):
        gradcheck(cpu, gpubp.MSE(), model.backend.asarray(inputs((4, 3))), inputs((4, 2)))


@pytest.mark.parametrize("argv", [["--layers", "3,5,2"], ["--layers", "4,6,6,3", "--activation", "tanh",
                                                           "--loss", "bce", "--seed", "3"],
                                  ["--activation", "leaky_relu", "--loss", "mse", "--device", "cpu"]])
def test_gradcheck_command(argv, capsys):
    from gpubp.cli import main
    assert main(["gradcheck", *argv]) == 0
    out = capsys.readouterr().out
    assert "gradient check (eps=1e-06" in out and "FAIL" not in out
    assert out.count(" ok") == 2 * (len((argv[1] if argv[0] == "--layers" else "4,16,3").split(",")) - 1)


def test_gradcheck_command_fails_with_exit_code_1(monkeypatch, capsys):
    from gpubp.cli import main
    real = gpubp.Tanh.backward
    monkeypatch.setattr(gpubp.Tanh, "backward", lambda self, dY: real(self, dY) * 1.001)
    assert main(["gradcheck", "--activation", "tanh"]) == 1
    assert "FAIL" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["gradcheck", "--layers", "4,x"])
    assert exit_.value.code == 2 and "expected widths >= 1" in capsys.readouterr().err
