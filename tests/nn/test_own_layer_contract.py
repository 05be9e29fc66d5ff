"""A user's own Layer subclass breaking the contract: forward must return Y and backward dX, arrays
of the model's dtype on its device, dX of the input's shape, with the parameters' gradients written
into ``layer.grads``. Each slip is refused naming the layer, its index and what was wrong, at the
step where it happens (the first), never passed on for the layer below to misname or silently used."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DeviceError, DTypeError, ShapeError, StateError

from helpers import Scale  # Y = X * s, written as the Layer docstring suggests


def backward_returning(fn):
    class Slip(Scale):
        def backward(self, dY):
            dX = super().backward(dY)
            return fn(dX)
    return Slip


def forward_returning(fn):
    class Slip(Scale):
        def forward(self, X):
            return fn(super().forward(X))
    return Slip


BAD_DX = {
    "fewer columns": (lambda dX: dX[:, :2], ShapeError, "shape (6, 2)"),
    "transposed": (lambda dX: dX.T.copy(), ShapeError, "shape (4, 6)"),
    "summed over the batch": (lambda dX: dX.sum(axis=0), ShapeError, "shape (4,)"),
    "float32": (lambda dX: dX.astype(np.float32), DTypeError, "float32"),
    "a list": (lambda dX: dX.tolist(), DeviceError, "list"),
    "None": (lambda dX: None, DeviceError, "NoneType"),
}


def model(layer, first=False):
    layers = [layer, gpubp.Dense(4, 3)] if first else [gpubp.Dense(4, 4), layer, gpubp.Dense(4, 3)]
    return gpubp.Sequential(layers, dtype="float64", seed=0)


X = np.random.default_rng(0).normal(size=(6, 4))
y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("kind", list(BAD_DX))
@pytest.mark.parametrize("first", [False, True], ids=["middle", "first"])
def test_a_wrong_dX_is_refused_naming_the_layer_that_returned_it(kind, first):
    """Was: in the middle the Dense below refused its dY ("Dense.backward: dY has shape (6, 2)"),
    naming itself; as the first layer the junk came back from model.backward as dL/dX, silently."""
    fn, error, words = BAD_DX[kind]
    m = model(backward_returning(fn)(), first)
    m.forward(X)
    i = 0 if first else 1
    with pytest.raises(error) as err:
        m.backward(np.ones((6, 3)))
    for word in (f"layer {i}", "Slip()", "backward", "dX", words):
        assert word in str(err.value)


def test_a_first_layer_may_return_no_dX_when_none_is_wanted():
    m = model(backward_returning(lambda dX: None)(), first=True)
    m.forward(X)
    assert m.backward(np.ones((6, 3)), input_grad=False) is None
    history = gpubp.fit(model(backward_returning(lambda dX: None)(), first=True), X, y, epochs=1, progress=False)
    assert np.isfinite(history.loss[0])


BAD_Y = {
    "a list": (lambda Y: Y.tolist(), DeviceError, "list"),
    "None": (lambda Y: None, DeviceError, "NoneType"),
    "integers": (lambda Y: Y.astype(np.int64), DTypeError, "integer"),
    "float32": (lambda Y: Y.astype(np.float32), DTypeError, "float32"),
}


@pytest.mark.parametrize("kind", list(BAD_Y))
@pytest.mark.parametrize("last", [False, True], ids=["middle", "last"])
def test_a_wrong_Y_is_refused_naming_the_layer_that_returned_it(kind, last):
    """Was: the Dense after it refused its input ("Dense input: expected an array"), naming
    itself; as the last layer model.forward returned the list (or None) to the loss."""
    fn, error, words = BAD_Y[kind]
    layers = [gpubp.Dense(4, 4), forward_returning(fn)()] + ([] if last else [gpubp.Dense(4, 3)])
    m = gpubp.Sequential(layers, dtype="float64", seed=0)
    with pytest.raises(error) as err:
        m.forward(X)
    for word in ("layer 1", "Slip()", "forward", "Y", words):
        assert word in str(err.value)


def test_a_Y_not_of_the_shape_the_layer_states_is_refused():
    class Stated(forward_returning(lambda Y: Y[:, :3])):
        def output_shape(self, shape):
            return tuple(shape)
    m = gpubp.Sequential([gpubp.Dense(4, 4), Stated()], dtype="float64", seed=0)
    with pytest.raises(ShapeError, match=r"layer 1 Stated\(\)\.forward returned Y of shape \(6, 3\).*\(6, 4\)"):
        m.forward(X)


class NoGradient(Scale):
    """Forgets dL/ds: the optimizer would step s by 0 for ever."""

    def backward(self, dY):
        return dY * self.params["s"]


class PrivateGradient(Scale):
    """Writes into the private store, which the next read of ``grads`` after zero_grad fills with zeros."""

    def backward(self, dY):
        self._grads["s"][...] = (dY * self.X).sum(axis=0)
        return dY * self.params["s"]


@pytest.mark.parametrize("cls", [NoGradient, PrivateGradient])
def test_a_backward_that_writes_no_gradient_is_refused_at_the_first_step(cls):
    """Was: gradients() read zeros, and fit trained the other layers with s frozen, silently."""
    m = model(cls())
    m.forward(X)
    m.zero_grad()
    with pytest.raises(StateError) as err:
        m.backward(np.ones((6, 3)))
    for word in ("layer 1", f"{cls.__name__}()", "grads", "'s'"):
        assert word in str(err.value)
    with pytest.raises(StateError, match=f"layer 1 {cls.__name__}"):
        gpubp.fit(model(cls()), X, y, epochs=3, progress=False)


def test_a_sound_layer_trains_and_passes_a_gradient_check():
    m = model(Scale())
    before = m.parameters()["1.s"].copy()
    gpubp.fit(m, X, y, epochs=2, progress=False)
    assert not np.array_equal(m.parameters()["1.s"], before)
    assert gpubp.gradcheck(model(Scale()), "softmax_cross_entropy", X, y).ok
    m = model(Scale())  # the grads read as zeros after zero_grad, so += is a sound way to write them too
    m.layers[1].backward = lambda dY, layer=m.layers[1]: _adding(layer, dY)
    m.forward(X)
    m.zero_grad()
    m.backward(np.ones((6, 3)))
    assert np.abs(m.gradients()["1.s"]).sum() > 0


def _adding(layer, dY):
    layer.grads["s"][...] += (dY * layer.X).sum(axis=0)
    return dY * layer.params["s"]


class ToHost(Scale):
    """Hands its dX back as a NumPy array, as code written against NumPy would (backend.to_numpy)."""

    def backward(self, dY):
        return self.backend.to_numpy(super().backward(dY))


def test_a_host_dX_from_a_users_layer_on_a_gpu_model_is_named(device):
    """On a CuPy model a NumPy dX is named as the layer's slip, not met by the layer below as an obscure
    CuPy TypeError; on the CPU a NumPy array is the model's own kind and passes."""
    m = gpubp.Sequential([gpubp.Dense(4, 4), ToHost(), gpubp.Dense(4, 3)], backend=device, dtype="float64", seed=0)
    m.forward(m.backend.asarray(X))
    dY = m.backend.asarray(np.ones((6, 3)))
    if m.backend.name == "numpy":
        assert m.backward(dY).shape == (6, 4)
    else:
        with pytest.raises(DeviceError, match=r"layer 1 ToHost\(\)\.backward returned dX: expected an array on cuda"):
            m.backward(dY)
