"""Junk given to the layers: ``output_shape`` of a shape that is none, a layer so large no array can
hold its weights, a bound core run on buffers that do not fit, the window helpers given odd
arguments. Each is a gpubp error naming the layer and what it was given, never a TypeError,
IndexError or ValueError from inside Python or NumPy (the cores are looked at only once NumPy
failed, so a working step pays nothing)."""
import re

import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, GpubpError, InvalidValueError, OutOfMemoryError, ShapeError
from gpubp.initializers import checked_weight, draw, he_uniform
from gpubp.nn import windows as W


def f32(*shape):
    return np.ones(shape, np.float32)


LAYERS = {
    "Dense": lambda: gpubp.Dense(3, 2, seed=0),
    "Conv2D": lambda: gpubp.Conv2D(3, 2, 2, seed=0),
    "MaxPool2D": lambda: gpubp.MaxPool2D(2),
    "AvgPool2D": lambda: gpubp.AvgPool2D(2),
    "GlobalAvgPool2D": lambda: gpubp.GlobalAvgPool2D(),
    "BatchNorm": lambda: gpubp.BatchNorm(3),
    "Dropout": lambda: gpubp.Dropout(0.5),
    "Flatten": lambda: gpubp.Flatten(),
    "Sigmoid": lambda: gpubp.Sigmoid(),
    "LeakyReLU": lambda: gpubp.LeakyReLU(0.1),
    "Identity": lambda: gpubp.Identity(),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("shape", [None, np.float32(1.0), 3])
def test_output_shape_of_no_shape_is_a_shape_error_naming_the_layer(name, shape):
    """Before: TypeError ('NoneType' has no len(), is not iterable, is not subscriptable) or
    IndexError from inside each layer's output_shape."""
    layer = LAYERS[name]()
    with pytest.raises(ShapeError, match=f"{type(layer).__name__}.*{re.escape(repr(shape))}"):
        layer.output_shape(shape)


@pytest.mark.parametrize("name,shape,words", [
    ("Dense", np.ones((2, 3), bool), "an input shape is a tuple of whole numbers >= 0"),  # was: truth value ambiguous
    ("BatchNorm", ("a", 3), r"got \('a', 3\)"),                                          # was: TypeError from //
    ("Flatten", (2, None, 4, 4), r"got \(2, None, 4, 4\)"),                              # was: TypeError from *
    ("MaxPool2D", (2, 3, "4", 4), r"shape \(2, 3, '4', 4\)"),
])
def test_output_shape_of_junk_numbers_names_the_layer_and_the_shape(name, shape, words):
    layer = LAYERS[name]()
    with pytest.raises(ShapeError, match=f"{type(layer).__name__}.*{words}"):
        layer.output_shape(shape)


@pytest.mark.parametrize("make,words", [
    (lambda: gpubp.Dense(10**30, 4), r"Dense\(10{30}, 4\) weight W of shape \(10{30}, 4\) would hold 4e\+30 numbers"),
    (lambda: gpubp.Dense(4, 10**19), "would hold 4e\\+19 numbers"),
    (lambda: gpubp.Conv2D(10**20, 8, 3), r"Conv2D\(10{20}, 8\) weight W of shape \(8, 10{20}, 3, 3\)"),
    (lambda: gpubp.Conv2D(3, 8, (10**10, 10**10)), r"weight W of shape \(8, 3, 10{10}, 10{10}\)"),
    (lambda: gpubp.BatchNorm(10**30), r"BatchNorm\(10{30}\) gamma of shape \(10{30},\)"),
])
def test_a_layer_no_array_can_hold_is_refused_when_made(make, words):
    """Before: NumPy's 'Maximum allowed dimension exceeded' at the first forward (BatchNorm: at once)."""
    with pytest.raises(OutOfMemoryError, match=words):
        make()


def test_a_weight_beyond_memory_is_named_by_the_initialiser():
    """NumPy's MemoryError from the host draw comes back naming the shape and the size."""
    class Refusing(np.random.Generator):
        def uniform(self, *args, **kwargs):
            raise MemoryError("Unable to allocate")
    rng = Refusing(np.random.PCG64(0))
    with pytest.raises(OutOfMemoryError, match=r"out of memory \(Unable to allocate\): he_uniform draws a weight of shape "
                                               r"\(1000, 1000\), 0.00745 GiB of float64"):
        he_uniform(rng, 1000, 1000)
    with pytest.raises(OutOfMemoryError, match=r"would hold 1e\+30 numbers"):
        draw("he_normal", rng, 3, 2, (10**30,))  # was: ValueError 'Maximum allowed dimension exceeded'


@pytest.mark.parametrize("shape", [None, "ab", np.ones((3, 2), bool)])
def test_checked_weight_refuses_a_junk_shape(shape):
    """Before: TypeError ('NoneType' is not iterable), NumPy's 'truth value is ambiguous'."""
    with pytest.raises(InvalidValueError, match="checked_weight: shape must be a tuple of whole numbers"):
        checked_weight(np.ones((3, 2)), shape, "layer")


def bound(make, X, Y, dY, dX):
    forward, backward = make().bind(X, Y, dY, dX)
    forward()
    backward()


CORES = [  # a layer's bound forward/backward on buffers that do not fit; before: NumPy's own errors
    ("Dense", lambda: gpubp.Dense(3, 2, seed=0), (f32(2, 5), f32(2, 2), f32(2, 2), f32(2, 3)), ShapeError,
     r"Dense\(3, 2\) forward: cannot take X float32 \(2, 5\), W float32 \(3, 2\), out float32 \(2, 2\)"),
    ("Dense out", lambda: gpubp.Dense(3, 2, seed=0), (f32(2, 3), np.ones((2, 2), bool), f32(2, 2), f32(2, 3)),
     DTypeError, r"Dense\(3, 2\) forward: .*out bool \(2, 2\)"),
    ("Dense dY", lambda: gpubp.Dense(3, 2, seed=0), (f32(2, 3), f32(2, 2), None, f32(2, 3)), DTypeError,
     r"Dense\(3, 2\) backward: dY is a NoneType, not an array"),
    ("Conv2D", lambda: gpubp.Conv2D(3, 2, 2, seed=0), (f32(2, 3, 4), f32(2, 2, 3, 3), f32(2, 2, 3, 3), f32(2, 3, 4, 4)),
     ShapeError, r"Conv2D\(3, 2.* expects NCHW \(4-d\) inputs, got shape \(2, 3, 4\)"),
    ("Conv2D dY", lambda: gpubp.Conv2D(3, 2, 2, seed=0), (f32(2, 3, 4, 4), f32(2, 2, 3, 3), f32(2, 5), f32(2, 3, 4, 4)),
     ShapeError, r"Conv2D\(3, 2.* backward: cannot take dY float32 \(2, 5\)"),
    ("MaxPool2D out", lambda: gpubp.MaxPool2D(2), (f32(2, 3, 4, 4), f32(2, 3, 5, 5), f32(2, 3, 2, 2), f32(2, 3, 4, 4)),
     ShapeError, r"MaxPool2D.* forward: cannot take X float32 \(2, 3, 4, 4\), out float32 \(2, 3, 5, 5\)"),
    ("AvgPool2D dY", lambda: gpubp.AvgPool2D(2), (f32(2, 3, 4, 4), f32(2, 3, 2, 2), "dY", f32(2, 3, 4, 4)),
     DTypeError, r"AvgPool2D.* backward: dY is a str 'dY', not an array"),
    ("GlobalAvgPool2D", lambda: gpubp.GlobalAvgPool2D(), (f32(2, 3, 4, 4), f32(2, 4), f32(2, 3), f32(2, 3, 4, 4)),
     ShapeError, r"GlobalAvgPool2D.* forward: cannot take X float32 \(2, 3, 4, 4\), out float32 \(2, 4\)"),
    ("Flatten", lambda: gpubp.Flatten(), (f32(2, 3, 4, 4), f32(2, 47), f32(2, 48), f32(2, 3, 4, 4)),
     ShapeError, r"Flatten.* forward: cannot take X float32 \(2, 3, 4, 4\), out float32 \(2, 47\)"),
]


@pytest.mark.parametrize("name,make,buffers,error,words", CORES, ids=[c[0] for c in CORES])
def test_a_bound_core_names_the_buffers_that_do_not_fit(name, make, buffers, error, words):
    with pytest.raises(error, match=words):
        bound(make, *buffers)


def test_a_failed_core_leaves_the_saved_input_as_it_was():
    layer = gpubp.Dense(3, 2, seed=0)
    X = f32(4, 3)
    layer.forward(X)
    forward, _ = layer.bind(f32(2, 5), f32(2, 2), f32(2, 2), None)
    with pytest.raises(ShapeError):
        forward()
    assert layer.X is X


def test_a_bound_batchnorm_runs_on_the_buffers_it_was_given():
    """Was: bind returned a forward that failed when run (TypeError 'unexpected keyword argument out'),
    then refused (no out buffers). BatchNorm takes out= now (test_norm_planned.py)."""
    layer = gpubp.BatchNorm(3)
    X, Y, dY, dX = f32(2, 3), f32(2, 3), f32(2, 3), f32(2, 3)
    forward, backward = layer.bind(X, Y, dY, dX)
    forward()
    backward()
    assert layer.X is X and np.isfinite(Y).all() and np.isfinite(dX).all()


@pytest.mark.parametrize("call,words", [
    (lambda: W.output_size("L", None, (2, 2), (1, 1)), r"'L': cannot slide a window \(2, 2\) .* shape None"),
    (lambda: W.output_size("L", (2, 3, 4, 4), (2, 2), {}, (0, 0)), r"with stride \{\}"),          # was: KeyError
    (lambda: W.output_size("L", (2, 3, "4", 4), (2, 2), (1, 1)), r"shape \(2, 3, '4', 4\)"),
    (lambda: W.windows(np, None, (2, 2), (1, 1)), r"windows \(kernel \(2, 2\).*: X is a NoneType, not an array"),
    (lambda: W.windows(np, f32(2, 3, 4, 4), "k", (1, 1)), r"windows \(kernel 'k'.*cannot take X float32"),
    (lambda: W.tap(f32(2, 3), 0, 1, (3, 3), (1, 1)), r"tap \(0, 1\) of \(3, 3\) windows.*Xp float32 \(2, 3\)"),
    (lambda: W.col2im(np, f32(2, 3, 2, 2), (2, 3, 4, 4), (1, 1)), r"col2im to shape \(2, 3, 4, 4\).*dwin float32"),
    (lambda: W.pair(2, "k", minimum="1"), "pair: minimum must be a whole number, got '1'"),       # was: TypeError
])
def test_the_window_helpers_name_what_they_were_given(call, words):
    with pytest.raises(GpubpError, match=words):
        call()
