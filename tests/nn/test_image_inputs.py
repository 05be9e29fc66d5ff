"""Bad input to the image layers (issue #16): ``out=`` buffers of the wrong shape or dtype,
an empty batch, NaN batches into BatchNorm's running statistics, bad running statistics
loaded: each a gpubp error naming the layer before any work, or the right answer, never a
buffer silently broadcast or truncated nor statistics lost. And the plan binds each layer's
unchecked core, since its own buffers were checked once by the dry forward."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DeviceError, DTypeError, InvalidValueError, NumericalError, ShapeError
from gpubp.nn import AvgPool2D, BatchNorm, Conv2D, Flatten, GlobalAvgPool2D, MaxPool2D

LAYERS = {
    "conv": lambda: Conv2D(3, 4, 3, seed=0),
    "conv_padded": lambda: Conv2D(3, 4, 3, padding=1, seed=0),
    "conv_strided": lambda: Conv2D(3, 4, 3, stride=2, seed=0),
    "maxpool": lambda: MaxPool2D(2),
    "maxpool_overlap": lambda: MaxPool2D(3, 2),
    "avgpool": lambda: AvgPool2D(2),
    "global_avg": GlobalAvgPool2D,
    "flatten": Flatten,
}


def images(shape=(2, 3, 6, 6), dtype=np.float32):
    return np.random.default_rng(0).normal(size=shape).astype(dtype)


def wider(shape):
    return (*shape[:-1], shape[-1] + 1)


BAD_OUT = {  # the buffer, made from the right shape; the error; words in its message
    "wider": (lambda s: np.zeros(wider(s), np.float32), ShapeError, ["out", "expected"]),
    "broadcastable": (lambda s: np.zeros((1, *s), np.float32), ShapeError, ["out", "expected"]),
    "flat": (lambda s: np.zeros(int(np.prod(s)), np.float32), ShapeError, ["out", "expected"]),
    "float64": (lambda s: np.zeros(s, np.float64), DTypeError, ["out", "float32", "float64"]),
    "integer": (lambda s: np.zeros(s, np.int32), DTypeError, ["out", "integer"]),
    "list": (lambda s: np.zeros(s, np.float32).tolist(), DeviceError, ["out", "list"]),
}


@pytest.mark.parametrize("bad", sorted(BAD_OUT))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_wrong_forward_out_buffer_is_refused_before_any_work(kind, bad):
    """Before: broadcast into (1, N, ...), truncated to integers, rounded to float64 or a raw
    NumPy error from deep inside the layer; now a gpubp error naming the layer and its out."""
    layer, X = LAYERS[kind](), images()
    make, error, words = BAD_OUT[bad]
    out = make(layer.output_shape(X.shape))
    with pytest.raises(error) as err:
        layer.forward(X, out=out)
    assert type(layer).__name__ in str(err.value) and all(w in str(err.value) for w in words)
    assert layer.X is None  # nothing of this call was kept for a backward


@pytest.mark.parametrize("bad", sorted(BAD_OUT))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_wrong_backward_out_buffer_is_refused_before_any_gradient_is_added(kind, bad):
    layer, X = LAYERS[kind](), images()
    dY = np.ones(layer.forward(X).shape, np.float32)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    make, error, words = BAD_OUT[bad]
    with pytest.raises(error) as err:
        layer.backward(dY, out=make(X.shape))
    assert type(layer).__name__ in str(err.value) and all(w in str(err.value) for w in words)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, grads[k])


def test_an_out_buffer_for_another_batch_size_is_refused():
    """A plan's buffer for 2 images handed a batch of 1: MaxPool2D used to broadcast the one
    image into both rows of the buffer and return it."""
    layer, X = MaxPool2D(2), images((1, 3, 6, 6))
    with pytest.raises(ShapeError, match=r"MaxPool2D.forward out.*\(2, 3, 3, 3\), expected \(1, 3, 3, 3\)"):
        layer.forward(X, out=np.zeros((2, 3, 3, 3), np.float32))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_right_out_buffers_give_the_same_numbers_contiguous_or_not(kind):
    layer, X = LAYERS[kind](), images()
    Y = layer.forward(X).copy()
    dY = np.random.default_rng(1).normal(size=Y.shape).astype(np.float32)
    dX = layer.backward(dY).copy()
    for order in ("C", "F"):
        out, dout = np.zeros(Y.shape, np.float32, order=order), np.zeros(X.shape, np.float32, order=order)
        assert layer.forward(X, out=out) is out
        assert layer.backward(dY, out=dout) is dout
        np.testing.assert_allclose(out, Y, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dout, dX, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), (2, 1)])
def test_conv_takes_an_empty_batch(stride, padding):
    """Before: a raw 'cannot reshape array of size 0' ValueError; the pools already took one
    (as PyTorch's Conv2d does): the output has no rows, the gradients are zero."""
    layer = Conv2D(3, 4, 3, stride=stride, padding=padding, backend="cpu/float64", seed=0)
    Y = layer.forward(np.zeros((0, 3, 6, 6)))
    assert Y.shape == layer.output_shape((0, 3, 6, 6))
    assert layer.backward(np.zeros(Y.shape)).shape == (0, 3, 6, 6)
    layer.backward_params(np.zeros(Y.shape))
    assert not layer.grads["W"].any() and not layer.grads["b"].any()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nonfinite_batch_leaves_batchnorm_running_statistics_as_they_were(bad):
    """Before: one NaN in one training batch made running_mean and running_var NaN for good
    (eval then gave NaN for every input, and a checkpoint refused to save the model)."""
    layer, X = BatchNorm(3, backend="cpu/float64"), images(dtype=np.float64)
    layer.forward(X)
    before = {k: v.copy() for k, v in layer.buffers.items()}
    poisoned = X.copy()
    poisoned[0, 1, 2, 3] = bad
    assert not np.isfinite(layer.forward(poisoned)).all()  # the output shows it
    for k, v in layer.buffers.items():
        np.testing.assert_array_equal(v, before[k])
    layer.forward(2 * X)  # and a finite batch after it moves them by PyTorch's rule again
    m = X.size // 3
    mu, var = (2 * X).mean(axis=(0, 2, 3)), (2 * X).var(axis=(0, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.9 * before["running_mean"] + 0.1 * mu, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.9 * before["running_var"] + 0.1 * var, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_float32_batch_whose_variance_overflows_leaves_the_running_variance_finite():
    layer = BatchNorm(3)
    layer.forward(images() * np.float32(1e20))
    assert np.isfinite(layer.buffers["running_var"]).all()


@pytest.mark.parametrize("arrays, error, words", [
    ({"running_mean": np.full(3, np.nan), "running_var": np.ones(3)}, NumericalError, ["running_mean", "NaN"]),
    ({"running_mean": np.zeros(3), "running_var": np.array([1.0, np.inf, 1.0])}, NumericalError, ["running_var"]),
    ({"running_mean": np.zeros(3), "running_var": -np.ones(3)}, InvalidValueError, ["running_var", ">= 0"]),
    ({"running_mean": np.zeros(3)}, ShapeError, ["running_var"]),
    ([np.zeros(3), np.ones(3)], ShapeError, ["buffers"]),
])
def test_batchnorm_refuses_running_statistics_it_could_not_use(arrays, error, words):
    """Before: NaN, Inf and a negative variance were loaded as given (eval then returned NaN),
    and a list of arrays failed with a raw AttributeError."""
    layer = BatchNorm(3)
    with pytest.raises(error) as err:
        layer.load_buffers(arrays)
    assert "BatchNorm" in str(err.value) and all(w in str(err.value) for w in words)
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3))  # nothing written


def test_batchnorm_loads_running_statistics_given_as_lists():
    layer = BatchNorm(2)
    layer.load_buffers({"running_mean": [0.5, -1], "running_var": [2, 0]})
    np.testing.assert_array_equal(layer.buffers["running_var"], np.array([2, 0], np.float32))


def test_the_plan_binds_the_unchecked_cores_and_a_subclass_keeps_its_own_forward():
    """The checks run once, in the plan's dry forward; its bound steps skip them. A user's
    subclass that overrides only ``forward`` is bound by that override, not around it."""
    class Logged(Conv2D):
        calls = 0

        def forward(self, X, out=None):
            Logged.calls += 1
            return super().forward(X, out)

    X = images((2, 3, 6, 6))
    for layer, expected in [(Conv2D(3, 4, 3), "_forward"), (MaxPool2D(2), "_forward"), (Flatten(), "_forward"),
                            (Logged(3, 4, 3), "forward")]:
        Y = layer.forward(X)
        forward, backward = layer.bind(X, Y, np.zeros_like(Y), np.zeros_like(X))
        assert forward.func.__name__ == expected
        assert backward.func.__name__ == "_backward"
        first = layer.bind(X, Y, np.zeros_like(Y), None)[1]
        assert first.func.__name__ == ("_backward_params" if isinstance(layer, Conv2D) else "_backward")
    calls = Logged.calls
    forward()
    assert Logged.calls == calls + 1


def test_a_planned_cnn_step_matches_the_eager_one():
    model = gpubp.Sequential([Conv2D(1, 4, 3, padding=1), gpubp.ReLU(), MaxPool2D(2), Flatten(),
                              gpubp.Dense(4 * 3 * 3, 3)], dtype="float64", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 1, 6, 6))
    y = np.random.default_rng(1).integers(0, 3, 5)
    twin = gpubp.Sequential.from_config(model.config(), dtype="float64", seed=0)
    gpubp.fit(model, X, y, epochs=2, batch_size=5, progress=False, plan=True)
    gpubp.fit(twin, X, y, epochs=2, batch_size=5, progress=False, plan=False)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, twin.parameters()[k])


def test_pytorch_positional_pool_arguments_are_pytorch_s():
    """PyTorch's MaxPool2d(3, 2, 1) (padding 1) and AvgPool2d(2, 2, 0, True) (ceil_mode), ported as they
    are, once failed with "unknown device '1'", then were refused by name; now they are what PyTorch makes."""
    assert MaxPool2D(3, 2, 1).padding == (1, 1) and AvgPool2D(2, 2, 0, True).ceil_mode is True


@pytest.mark.parametrize("make, words", [
    (lambda: BatchNorm(3, 1e-5, 0.1, True, True, None), ["BatchNorm", "track_running_stats", "(None,)"]),
    (lambda: GlobalAvgPool2D(1), ["GlobalAvgPool2D", "AdaptiveAvgPool2d(1)"]),
])
def test_pytorch_positional_arguments_are_not_taken_for_a_device(make, words):
    """PyTorch's BatchNorm2d(3, 1e-5, 0.1, True, True, None) (device) and AdaptiveAvgPool2d(1), ported as
    they are, used to fail with "unknown device '1'"."""
    with pytest.raises(InvalidValueError) as err:
        make()
    assert all(w in str(err.value) for w in words) and "device" not in str(err.value)


def test_backend_is_still_taken_by_keyword():
    for layer in (MaxPool2D(2, backend="cpu/float64"), BatchNorm(3, backend="cpu/float64"),
                  GlobalAvgPool2D(backend="cpu/float64")):
        assert layer.backend.dtype == np.float64
