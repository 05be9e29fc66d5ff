"""An activation's ``out`` buffer that is (or overlaps) an array its kernel reads, X in forward, dY or the
saved X/Y in backward, is refused. Was: the NumPy kernels' in-place passes read what they had already
written: LeakyReLU.forward(X, out=X) gave slope * X for positive X, and backward(dY, out=dY) of the sigmoid,
tanh, ReLU and LeakyReLU wrong input gradients, silently (the CUDA kernels, elementwise, would not); so
did a 1x1 MaxPool2D's backward(dY, out=dY) (zeros)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError

B = gpubp.get_backend("cpu", "float64")
MAKE = {"Sigmoid": lambda: gpubp.Sigmoid(backend=B), "Tanh": lambda: gpubp.Tanh(backend=B),
        "ReLU": lambda: gpubp.ReLU(backend=B), "LeakyReLU": lambda: gpubp.LeakyReLU(0.1, backend=B)}
X = np.random.default_rng(0).normal(size=(5, 3))
dY = np.random.default_rng(1).normal(size=(5, 3))


@pytest.mark.parametrize("name", list(MAKE))
@pytest.mark.parametrize("view", [lambda a: a, lambda a: a[:, :]], ids=["itself", "a view"])
def test_a_forward_into_its_input_is_refused_leaving_it(name, view):
    layer, Xi = MAKE[name](), X.copy()
    with pytest.raises(InvalidValueError, match=rf"{name}.*forward: out shares memory with X.*buffer of its own"):
        layer.forward(Xi, out=view(Xi))
    np.testing.assert_array_equal(Xi, X)


@pytest.mark.parametrize("name", list(MAKE))
def test_a_backward_into_dY_or_the_saved_array_is_refused(name):
    layer = MAKE[name]()
    Y = layer.forward(X.copy())
    saved = layer.Y if layer.saves == "Y" else layer.X
    dYi = dY.copy()
    with pytest.raises(InvalidValueError, match="backward: out shares memory with dY"):
        layer.backward(dYi, out=dYi)
    with pytest.raises(InvalidValueError, match=f"backward: out shares memory with {layer.saves}"):
        layer.backward(dYi, out=saved)
    np.testing.assert_array_equal(dYi, dY)
    np.testing.assert_array_equal(Y, MAKE[name]().forward(X.copy()))


@pytest.mark.parametrize("name", list(MAKE))
def test_buffers_of_their_own_give_what_fresh_arrays_give(name):
    a, b = MAKE[name](), MAKE[name]()
    Y, dX = a.forward(X.copy()), a.backward(dY.copy())
    outY, outdX = np.empty_like(X), np.empty_like(X)
    assert b.forward(X.copy(), out=outY) is outY and b.backward(dY.copy(), out=outdX) is outdX
    np.testing.assert_array_equal(outY, Y)
    np.testing.assert_array_equal(outdX, dX)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_a_max_pool_s_backward_into_dY_is_refused(ceil_mode):
    """Was: a 1x1 MaxPool2D (dX of dY's shape) zeroed out, that is dY, before reading it: dX = 0, silently."""
    pool = gpubp.MaxPool2D(1, ceil_mode=ceil_mode, backend=B)
    pool.forward(np.ones((2, 3, 4, 4)))
    dYi = np.ones((2, 3, 4, 4))
    with pytest.raises(InvalidValueError, match=r"MaxPool2D.*backward: out shares memory with dY"):
        pool.backward(dYi, out=dYi)
    out = np.empty_like(dYi)
    np.testing.assert_array_equal(pool.backward(dYi, out=out), dYi)
