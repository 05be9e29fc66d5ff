"""Conv2D: forward against a direct nested-loop convolution, gradients against central
differences (float64), CPU/GPU parity on the device fixture, errors, and a small CNN
that learns the digits as 1x8x8 images."""
import json

import numpy as np
import pytest

import gpubp
from gpubp.nn import Conv2D, Flatten, MaxPool2D

from helpers import TOL, torch_reference

# (kernel_size, stride, padding, (H, W)): square and not, strides that skip input
# (floor mode), padding wider than needed, a kernel as large as the padded input.
CASES = {
    "k3": (3, 1, 0, (5, 5)),
    "k3_s2_p1": (3, 2, 1, (7, 6)),
    "k3x2_s2x1_p1x0": ((3, 2), (2, 1), (1, 0), (7, 6)),
    "k1": (1, 1, 0, (4, 3)),
    "k5_s3_p2_floor": (5, 3, 2, (9, 8)),
    "k2_s2_odd": (2, 2, 0, (5, 7)),
    "k4_fills_padded": (4, 1, 1, (2, 2)),
    "k2x3_s3x2_p2x1": ((2, 3), (3, 2), (2, 1), (6, 5)),
}


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def naive_conv(X, W, b, stride, padding):
    """Y[n,o,y,x] = b[o] + sum_{c,i,j} W[o,c,i,j] Xp[n,c,y*sh+i,x*sw+j], one product at a time."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    N, C, H, Wd = X.shape
    O, _, kh, kw = W.shape
    Xp = np.zeros((N, C, H + 2 * ph, Wd + 2 * pw))
    Xp[:, :, ph:ph + H, pw:pw + Wd] = X
    OH, OW = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    Y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            for y in range(OH):
                for x in range(OW):
                    acc = 0.0 if b is None else float(b[o])
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                acc += W[o, c, i, j] * Xp[n, c, y * sh + i, x * sw + j]
                    Y[n, o, y, x] = acc
    return Y


def conv(backend, case, bias=True, C=3, O=4, seed=1):
    k, s, p, _ = CASES[case]
    return Conv2D(C, O, k, stride=s, padding=p, bias=bias, seed=seed, backend=backend)


def image(case, N=2, C=3, seed=0):
    return np.random.default_rng(seed).normal(size=(N, C, *CASES[case][3]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_nested_loops(case, device):
    backend = gpubp.get_backend(device, "float64")
    layer, X = conv(backend, case), image(case)
    layer.params["b"][...] = backend.asarray(np.arange(4.0) - 1.5)  # a nonzero bias is added too
    W, b = backend.to_numpy(layer.params["W"]), backend.to_numpy(layer.params["b"])
    got = backend.to_numpy(layer(backend.asarray(X)))
    np.testing.assert_allclose(got, naive_conv(X, W, b, CASES[case][1], CASES[case][2]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients(case, bias, device):
    backend = gpubp.get_backend(device, "float64")
    report = gpubp.gradcheck_layer(conv(backend, case, bias), backend.asarray(image(case)), atol=1e-8, rtol=1e-6)
    assert report.ok and [r.name for r in report.rows] == ["dX", "W", *(["b"] if bias else [])]


def test_cnn_gradients(device):
    """Conv -> ReLU -> MaxPool -> Flatten -> Dense under softmax cross-entropy, every parameter."""
    backend = gpubp.get_backend(device, "float64")
    model = gpubp.Sequential([Conv2D(2, 3, 3, padding=1), gpubp.ReLU(), MaxPool2D(2), Flatten(),
                              gpubp.Dense(3 * 3 * 2, 4)], backend=backend, seed=3)
    X, y = np.random.default_rng(5).normal(size=(3, 2, 6, 5)), np.array([0, 3, 1])
    report = gpubp.gradcheck(model, "softmax_cross_entropy", backend.asarray(X), backend.asarray(y),
                             atol=1e-8, rtol=1e-6)
    assert report.ok and [r.name for r in report.rows] == ["0.W", "0.b", "4.W", "4.b"]


def test_parity(device, dtype):
    """Forward, dX, dW and db on ``device`` in ``dtype`` against the CPU in float64 (TOL by dtype)."""
    case, rng = "k3x2_s2x1_p1x0", np.random.default_rng(7)
    X, dY = image(case), rng.normal(size=(2, 4, 4, 5))
    ref, layer = conv(gpubp.get_backend("cpu", "float64"), case), conv(gpubp.get_backend(device, dtype), case)
    ref.params["b"][...] = layer.params["b"][...] = 0.25
    be, tol = layer.backend, TOL[np.dtype(dtype)]
    np.testing.assert_array_equal(be.to_numpy(layer.params["W"]), ref.params["W"].astype(dtype))  # same draw
    X = X.astype(dtype).astype(np.float64)  # both see the same input values
    Y = be.to_numpy(layer(be.asarray(X)))
    np.testing.assert_allclose(Y, ref(X), **tol)
    dX, dX_ref = be.to_numpy(layer.backward(be.asarray(dY))), ref.backward(dY)
    np.testing.assert_allclose(dX, dX_ref, **tol)
    assert Y.dtype == dX.dtype == layer.grads["W"].dtype == np.dtype(dtype)  # nothing promoted to float64
    for name in ("W", "b"):
        np.testing.assert_allclose(be.to_numpy(layer.grads[name]), ref.grads[name], **tol)


def test_first_layer_skips_dX():
    model = gpubp.Sequential([Conv2D(1, 2, 3), Flatten(), gpubp.Dense(2 * 4 * 4, 3)], dtype="float64")
    model.forward(np.random.default_rng(0).normal(size=(2, 1, 6, 6)))
    assert model.backward(np.ones((2, 3)), input_grad=False) is None
    assert float(np.abs(model.gradients()["0.W"]).sum()) > 0


@pytest.mark.parametrize("init,fan", [("he_uniform", 27), ("xavier_uniform", 27 + 36),
                                      ("glorot_normal", 27 + 36), ("he_normal", 27)])
def test_init_scaled_by_fans(init, fan):
    """fan_in = in_channels kh kw = 27, fan_out = out_channels kh kw = 36; variance 2 / fan_in (He)
    or 2 / (fan_in + fan_out) (Glorot, as PyTorch's xavier_ and Dense). Glorot had twice that."""
    W = Conv2D(3, 4, 3, init=init, seed=0, backend="cpu").params["W"]
    draws = np.concatenate([Conv2D(3, 4, 3, init=init, seed=s, backend="cpu").params["W"].ravel()
                            for s in range(40)])
    assert W.shape == (4, 3, 3, 3) and W.dtype == np.float32
    assert abs(draws.var() / (2 / fan) - 1) < 0.1
    if init.endswith("uniform"):
        assert np.abs(draws).max() <= np.sqrt(6 / fan)


def test_callable_init_and_seed():
    init = lambda rng, fan_in, fan_out, shape: np.full(shape, fan_in + fan_out / 1000)  # noqa: E731
    W = Conv2D(2, 5, (3, 2), init=init, backend="cpu").params["W"]
    np.testing.assert_array_equal(W, np.full((5, 2, 3, 2), 12.03, dtype=np.float32))
    a, b = (Conv2D(2, 5, 3, seed=9, backend="cpu").params["W"] for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_config_repr_roundtrip():
    layer = Conv2D(3, 8, (3, 2), stride=2, padding=(1, 0), bias=False, init="xavier_normal")
    assert repr(layer) == "Conv2D(3, 8, kernel_size=(3, 2), stride=(2, 2), padding=(1, 0), bias=False)"
    assert repr(Conv2D(1, 6, 5)) == "Conv2D(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    config = json.loads(json.dumps(layer.config()))
    assert config.pop("type") == "Conv2D"
    again = Conv2D(**config)
    assert again.config() == layer.config() and again.parameter_shapes() == {"W": (8, 3, 3, 2)}


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(in_channels=0), gpubp.ShapeError, "in_channels"),
    (dict(out_channels=-2), gpubp.ShapeError, "out_channels"),
    (dict(in_channels=2.5), gpubp.InvalidValueError, "Conv2D in_channels must be a whole number, got 2.5"),
    (dict(kernel_size=0), gpubp.InvalidValueError, "kernel_size must be >= 1"),
    (dict(kernel_size=(3, 0)), gpubp.InvalidValueError, "kernel_size"),
    (dict(kernel_size=2.5), gpubp.InvalidValueError, "kernel_size must be an int"),
    (dict(kernel_size=(1, 2, 3)), gpubp.InvalidValueError, "pair of ints"),
    (dict(stride=0), gpubp.InvalidValueError, "Conv2D stride"),
    (dict(padding=-1), gpubp.InvalidValueError, "Conv2D padding must be >= 0"),
    (dict(init="lecun"), gpubp.InvalidValueError, "unknown conv initialiser"),
    (dict(bias=1), gpubp.InvalidValueError, "Conv2D bias must be True or False .PyTorch.s Conv2d takes dilation.*got 1"),
    (dict(seed=-1), gpubp.InvalidValueError, "Conv2D seed must be a whole number >= 0"),
])
def test_bad_arguments(kwargs, error, words):
    args = {**dict(in_channels=3, out_channels=4, kernel_size=3), **kwargs}
    with pytest.raises(error, match=words):
        Conv2D(**args)


def test_bad_inputs_name_the_layer():
    layer = Conv2D(3, 4, 3, padding=1, backend=gpubp.get_backend("cpu", "float64"))
    with pytest.raises(gpubp.ShapeError, match=r"Conv2D\(3, 4, .*\) expects NCHW \(4-d\) inputs, got shape \(2, 27\): "
                                               r"rows of C H W pixels each\? X.reshape\(len\(X\), C, H, W\)"):
        layer(np.zeros((2, 27)))
    with pytest.raises(gpubp.ShapeError, match=r"Conv2D\(3, 4, .*\) expects 3 input channels .*\(2, 1, 5, 5\)"):
        layer(np.zeros((2, 1, 5, 5)))
    with pytest.raises(gpubp.ShapeError, match=r"got shape \(2, 5, 5, 3\) \(channels last\? NumPy's "
                                               r"X.transpose\(0, 3, 1, 2\) makes NHWC images NCHW\)"):
        layer(np.zeros((2, 5, 5, 3)))
    with pytest.raises(gpubp.ShapeError, match=r"the 3x3 window is larger than the padded input 3x2"):
        Conv2D(3, 4, 3, padding=(1, 0), backend="cpu")(np.zeros((1, 3, 1, 2), np.float32))
    with pytest.raises(gpubp.StateError, match="Conv2D.backward called before forward"):
        layer.backward(np.zeros((2, 4, 5, 5)))
    layer(np.zeros((2, 3, 5, 5)))
    with pytest.raises(gpubp.ShapeError, match=r"dY has shape \(2, 4, 4, 4\), expected \(2, 4, 5, 5\)"):
        layer.backward(np.zeros((2, 4, 4, 4)))
    with pytest.raises(gpubp.DTypeError, match="Conv2D input"):
        layer(np.zeros((2, 3, 5, 5), np.float32))


def test_output_shape_without_data():
    """``output_shape`` says each layer's output shape from its input shape alone (what a chain
    check needs), and agrees with a real forward pass."""
    stack = [Conv2D(1, 6, 5, padding=2), MaxPool2D(2), Conv2D(6, 16, 5), MaxPool2D(2), Flatten(),
             gpubp.Dense(16 * 5 * 5, 10)]
    model, shape = gpubp.Sequential(stack, dtype="float64"), (2, 1, 28, 28)
    X = np.zeros(shape)
    for layer in stack[:-1]:
        shape, X = layer.output_shape(shape), layer(X)
        assert X.shape == shape
    assert shape == (2, 400) and model(np.zeros((2, 1, 28, 28))).shape == (2, 10)
    with pytest.raises(gpubp.ShapeError, match=r"Conv2D\(6, 16, .*\) expects 6 input channels"):
        stack[2].output_shape((2, 3, 14, 14))
    with pytest.raises(gpubp.ShapeError, match=r"MaxPool2D\(kernel_size=2, stride=2\) expects NCHW \(4-d\)"):
        stack[1].output_shape((2, 6, 28))


@pytest.mark.parametrize("stride, padding, case", [((2, 1), (1, 2), "k3_s2_p1"), (1, (2, 1), "k3x2_s2x1_p1x0")],
                         ids=["strided", "stride-1"])  # stride 1: Conv2D.backward's whole-row path
def test_matches_torch(stride, padding, case):
    torch = pytest.importorskip("torch")
    layer = Conv2D(3, 4, (3, 2), stride=stride, padding=padding, backend=gpubp.get_backend("cpu", "float64"))
    layer.params["b"][...] = [0.1, -0.2, 0.3, 0.4]
    X = image(case)
    tconv = torch.nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding).double()
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(layer.params["W"]))
        tconv.bias.copy_(torch.from_numpy(layer.params["b"]))
    Y, dX, dY = torch_reference(tconv, X, seed=2)
    np.testing.assert_allclose(layer(X), Y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dY), dX, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tconv.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tconv.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["k3", "k3_s2_p1"])
def test_reused_work_arrays_never_reach_the_caller(case, device):
    """Conv2D keeps its im2col and backward work arrays between calls while shapes repeat: the
    returned Y and dX stay intact across later calls, a new batch size is handled, and each
    backward uses the latest forward."""
    backend = gpubp.get_backend(device, "float64")
    layer, X1, X2 = conv(backend, case), image(case, N=2, seed=3), image(case, N=3, seed=4)
    layer.params["b"][...] = backend.asarray(np.arange(4.0))
    W, b = backend.to_numpy(layer.params["W"]), backend.to_numpy(layer.params["b"])
    Y1 = layer(backend.asarray(X1))
    dY1 = np.random.default_rng(5).normal(size=Y1.shape)
    dX1 = layer.backward(backend.asarray(dY1))
    kept = backend.to_numpy(Y1).copy(), backend.to_numpy(dX1).copy(), backend.to_numpy(layer.grads["W"]).copy()
    for X in (X1, X2, X1):  # the same shape, a new one, the first again; each with another dY
        Y = layer(backend.asarray(X))
        np.testing.assert_allclose(backend.to_numpy(Y), naive_conv(X, W, b, *CASES[case][1:3]), rtol=0, atol=1e-12)
        layer.backward(backend.asarray(np.random.default_rng(6).normal(size=Y.shape)))
    np.testing.assert_array_equal(backend.to_numpy(Y1), kept[0])
    np.testing.assert_array_equal(backend.to_numpy(dX1), kept[1])
    layer.zero_grad()
    np.testing.assert_array_equal(backend.to_numpy(layer.backward(backend.asarray(dY1))), kept[1])
    np.testing.assert_array_equal(backend.to_numpy(layer.grads["W"]), kept[2])


def test_small_cnn_learns_digits():
    """Digits as 1x8x8 images: Conv-ReLU-Pool-Dense trained by a manual loop (``fit`` takes
    only 2-d X so far), at least 95% right on the held-out digits (97.8% with this seed)."""
    Xtr, ytr, Xte, yte = gpubp.datasets.load_digits()
    Xtr, Xte = Xtr.reshape(-1, 1, 8, 8), Xte.reshape(-1, 1, 8, 8)
    model = gpubp.Sequential([Conv2D(1, 8, 3, padding=1), gpubp.ReLU(), MaxPool2D(2), Flatten(),
                              gpubp.Dense(8 * 4 * 4, 10)], backend="cpu", seed=0)
    loss, opt, rng = gpubp.SoftmaxCrossEntropy(), gpubp.Adam(lr=0.01), np.random.default_rng(0)
    X, y = model.backend.asarray(Xtr), model.backend.asarray(ytr)
    for _ in range(10):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 32):
            batch = order[start:start + 32]
            loss.forward(model.forward(X[batch]), y[batch])
            model.zero_grad()
            model.backward(loss.backward(), input_grad=False)
            opt.step(model)
    accuracy = float((model.predict(Xte).argmax(axis=1) == yte).mean())
    assert accuracy >= 0.95, accuracy
