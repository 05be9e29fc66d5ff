"""Property-based tests (hypothesis): random layer stacks, shapes and dtypes."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import gpubp
from gpubp.errors import GpubpError

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,  # the same examples on every run
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
# Smooth activations only: ReLU's and LeakyReLU's kink at 0 defeats finite differences at
# random points (tests/nn/test_gradients.py checks both with inputs kept away from the kink).
ACTS = ["sigmoid", "tanh", "identity"]


@st.composite
def stacks(draw):
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    acts = draw(st.lists(st.sampled_from(ACTS), min_size=len(widths) - 2, max_size=len(widths) - 2))
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(gpubp.Dense(a, b, bias=draw(st.booleans())))
        if i < len(acts):
            layers.append(gpubp.nn.ACTIVATIONS[acts[i]]())
    return widths, layers


@SETTINGS
@given(stack=stacks(), batch=st.integers(1, 5), seed=st.integers(0, 2**16), dtype=st.sampled_from(["float32", "float64"]),
       loss=st.sampled_from(["mse", "bce"]))
def test_backward_matches_finite_differences(stack, batch, seed, dtype, loss):
    widths, layers = stack
    model = gpubp.Sequential(layers, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, widths[0]))
    T = rng.normal(size=(batch, widths[-1])) if loss == "mse" else rng.integers(0, 2, (batch, widths[-1])).astype(float)
    report = gpubp.gradcheck(model, loss, X, T, atol=1e-7, rtol=1e-5)
    assert report.ok


@SETTINGS
@given(stack=stacks(), seed=st.integers(0, 2**16), dtype=st.sampled_from(["float32", "float64"]))
def test_save_load_round_trips_exactly(tmp_path, stack, seed, dtype):
    widths, layers = stack
    model = gpubp.Sequential(layers, dtype=dtype, seed=seed)
    opt = gpubp.Adam(lr=0.01)
    X = model.backend.asarray(np.random.default_rng(seed).normal(size=(3, widths[0])))
    loss = gpubp.MSE()
    loss.forward(model.forward(X), model.backend.zeros((3, widths[-1])))
    model.zero_grad()
    model.backward(loss.backward())
    opt.step(model)
    path = gpubp.checkpoint.save(tmp_path / "m.npz", model, opt)
    ck = gpubp.checkpoint.load(path)
    assert ck.model.config() == model.config() and ck.model.backend.dtype == np.dtype(dtype)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(ck.model.parameters()[k], v)
    np.testing.assert_array_equal(ck.model.forward(X), model.forward(X))
    for name, slots in opt.state.items():
        for slot, a in slots.items():
            np.testing.assert_array_equal(ck.optimizer.state[name][slot], a)


@SETTINGS
@given(n_in=st.integers(1, 6), n_out=st.integers(1, 6), rows=st.integers(0, 4),
       width=st.integers(0, 8), ndim=st.sampled_from([1, 2, 3]))
def test_invalid_shapes_are_always_rejected_with_gpubp_errors(n_in, n_out, rows, width, ndim):
    layer = gpubp.Dense(n_in, n_out, backend="cpu")
    shape = {1: (width,), 2: (rows, width), 3: (rows, width, 2)}[ndim]
    X = np.zeros(shape, dtype=np.float32)
    if ndim == 2 and width == n_in:
        assert layer.forward(X).shape == (rows, n_out)  # valid (an empty batch included)
        return
    with pytest.raises(GpubpError):
        layer.forward(X)


@SETTINGS
@given(rows=st.integers(1, 5), classes=st.integers(2, 5), bad=st.integers(-3, 8))
def test_labels_are_checked_for_every_value(rows, classes, bad):
    labels = np.zeros(rows, dtype=np.int64)
    labels[-1] = bad
    loss = gpubp.SoftmaxCrossEntropy()
    Z = np.zeros((rows, classes))
    if 0 <= bad < classes:
        assert np.isfinite(float(loss.forward(Z, labels)))
    else:
        with pytest.raises(GpubpError, match="labels must be in"):
            loss.forward(Z, labels)
