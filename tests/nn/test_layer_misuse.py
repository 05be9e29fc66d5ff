"""Layers misused: a callable initialiser returning junk, ``out`` buffers of the wrong shape,
dtype or kind, Identity's backward out of order. Each refused by gpubp naming what was wrong,
before any gradient or output is written."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DeviceError, DTypeError, InvalidValueError, NumericalError, ShapeError, StateError


def junk_init(kind):
    def init(rng, fan_in, fan_out, shape=None):
        shape = shape or (fan_in, fan_out)
        return {"shape": np.zeros((5, 5)), "nan": np.full(shape, np.nan), "complex": np.zeros(shape, complex),
                "none": None}[kind]
    return init


@pytest.mark.parametrize("kind, error, words", [
    ("shape", ShapeError, ["returned shape (5, 5)", "expected"]),
    ("nan", NumericalError, ["NaN/Inf"]),
    ("complex", DTypeError, ["complex128"]),
    ("none", DTypeError, ["object"]),
])
@pytest.mark.parametrize("make", [lambda init: gpubp.Dense(2, 3, init=init),
                                  lambda init: gpubp.Conv2D(2, 3, 2, init=init)], ids=["Dense", "Conv2D"])
def test_a_callable_initialiser_returning_junk_is_refused_when_drawn(make, kind, error, words):
    layer = make(junk_init(kind))
    with pytest.raises(error) as err:
        gpubp.Sequential([layer], seed=0)  # the draw happens here, before any training
    for word in [type(layer).__name__, "initialiser", *words]:
        assert word in str(err.value)


def test_a_callable_initialiser_may_return_a_list_or_another_dtype():
    layer = gpubp.Dense(2, 2, init=lambda rng, a, b: [[1, 0], [0, 1]])
    np.testing.assert_array_equal(layer.params["W"], np.eye(2))
    assert layer.params["W"].dtype == np.float32


X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
LAYERS = {"Dense": lambda: gpubp.Dense(3, 3, seed=0), "Sigmoid": gpubp.Sigmoid, "Tanh": gpubp.Tanh,
          "ReLU": gpubp.ReLU, "LeakyReLU": gpubp.LeakyReLU}


def readonly(shape):
    a = np.zeros(shape, np.float32)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("out, error, words", [
    (np.zeros((5, 3), np.float32), ShapeError, ["has shape (5, 3)", "expected (4, 3)"]),
    (np.zeros((4, 3)), DTypeError, ["float64"]),
    (np.zeros((4, 3), np.int64), DTypeError, ["integer"]),
    ([0.0], DeviceError, ["list"]),
    (readonly((4, 3)), InvalidValueError, ["read-only"]),
])
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_out_buffers_are_checked_before_anything_is_written(name, phase, out, error, words):
    layer = LAYERS[name]()
    Y = layer.forward(X)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    call = (lambda: layer.forward(X, out=out)) if phase == "forward" else \
        (lambda: layer.backward(np.ones_like(Y), out=out))
    with pytest.raises(error) as err:
        call()
    for word in [f"{name}.{phase} out", *words]:
        assert word in str(err.value)
    for k, g in layer.grads.items():  # no gradient was added before the refusal
        np.testing.assert_array_equal(g, grads[k])


def test_identity_backward_checks_order_and_shape():
    layer = gpubp.Identity()
    with pytest.raises(StateError, match="Identity.backward called before forward"):
        layer.backward(np.ones((4, 3), np.float32))
    layer.forward(X)
    with pytest.raises(ShapeError, match=r"dY has shape \(4, 7\), expected \(4, 3\)"):
        layer.backward(np.ones((4, 7), np.float32))
    dY = np.ones((4, 3), np.float32)
    assert layer.backward(dY) is dY


def test_a_model_ending_in_identity_refuses_a_delta_of_the_wrong_shape():
    model = gpubp.Sequential([gpubp.Dense(3, 2), gpubp.Identity()], seed=0)
    model.forward(X)
    with pytest.raises(ShapeError, match="Identity.backward"):
        model.backward(np.ones((4, 5), np.float32))


def test_a_layer_moved_to_none_goes_to_the_default_device_as_a_model_does():
    """Was: Dense(...).to(None) refused 'none' as a device, while Sequential.to(None) meant the default."""
    with gpubp.use_backend("cpu/float64"):
        layer = gpubp.Dense(2, 2).to("cpu").to(None)
        model = gpubp.Sequential([gpubp.Dense(2, 2)]).to(None)
    assert layer.backend == model.backend == gpubp.get_backend("cpu", "float64")  # the default's dtype too


CONFIGURED = [(lambda: gpubp.Dense(3, 2), ["n_in", "n_out", "init", "bias"]),
              (lambda: gpubp.Conv2D(1, 2, 3), ["in_channels", "out_channels", "kernel_size", "stride", "padding",
                                               "bias", "init"]),
              (lambda: gpubp.MaxPool2D(2), ["kernel_size", "stride"]),
              (lambda: gpubp.AvgPool2D(2), ["kernel_size", "stride"]),
              (lambda: gpubp.Flatten(), ["start_dim", "end_dim"]),
              (lambda: gpubp.BatchNorm(2), ["num_features"])]


@pytest.mark.parametrize("make, names", CONFIGURED, ids=lambda c: c if isinstance(c, str) else None)
def test_a_layer_s_configuration_is_fixed_when_it_is_made(make, names):
    """Was: set later, taken as it came: Dense.n_in = 5 or a pool's stride = 2 (an int, where a pair
    is kept) ended in raw TypeErrors from the next forward, Dense.init = 5 was used silently at the
    next reset, Conv2D.stride = (2, 2) changed the outputs but not the config a checkpoint keeps."""
    def other(value):  # a value it could have been made with
        if isinstance(value, bool):
            return not value
        if isinstance(value, int):
            return value + 1
        if isinstance(value, tuple):
            return tuple(v + 1 for v in value)
        return "glorot_normal" if value != "glorot_normal" else "he_normal"

    layer = make()
    config = layer.config()
    for name in names:
        with pytest.raises(InvalidValueError, match=f"{type(layer).__name__} {name} is fixed when it is made"):
            setattr(layer, name, other(getattr(layer, name)))
    assert layer.config() == config
