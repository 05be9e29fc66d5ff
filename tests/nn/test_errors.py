"""Bad input is refused with gpubp's own error types, and the message names the problem."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import (DeviceError, DTypeError, GpubpError, InvalidValueError, ShapeError,
                          StateError)

from helpers import GPU_REASON, needs_gpu, needs_no_gpu


def model(dtype="float32"):
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Sigmoid(), gpubp.Dense(4, 2)], dtype=dtype)


def x(shape=(5, 3), dtype=np.float32):
    return np.random.default_rng(0).normal(size=shape).astype(dtype)


@pytest.mark.parametrize("bad, error, words", [
    (x((5, 4)), ShapeError, ["Dense(3, 4)", "width 3", "(5, 4)"]),
    (x((3,)), ShapeError, ["2-d", "(3,)"]),
    (x(dtype=np.float64), DTypeError, ["float32", "float64"]),
    (np.ones((5, 3), dtype=np.int64), DTypeError, ["integer", "asarray"]),
    ([[1.0, 2.0, 3.0]], DeviceError, ["list", "asarray"]),
    ("not an array", DeviceError, ["str"]),
])
def test_bad_forward_input(bad, error, words):
    with pytest.raises(error) as err:
        model().forward(bad)
    assert isinstance(err.value, GpubpError)
    for word in words:
        assert word in str(err.value)


def test_float64_model_refuses_float32_input():
    with pytest.raises(DTypeError, match="expected float64 values, got a float32"):
        model("float64").forward(x())


def test_predict_converts_what_forward_refuses():
    m = model()
    want = m.forward(np.array([[1, 2, 3]], np.float32))
    np.testing.assert_array_equal(m.predict([[1.0, 2.0, 3.0]]), want)  # a list
    np.testing.assert_array_equal(m.predict(np.array([[1.0, 2.0, 3.0]])), want)  # float64


@pytest.mark.parametrize("make", [lambda: gpubp.Dense(3, 2), gpubp.Sigmoid, gpubp.ReLU, gpubp.LeakyReLU])
def test_backward_before_forward(make):
    layer = make()  # made in the test, on its default device (the CPU, also on a GPU machine), not at collection
    with pytest.raises(StateError, match="backward called before forward"):
        layer.backward(np.ones((5, 2), np.float32))
    assert issubclass(StateError, RuntimeError)


@pytest.mark.parametrize("loss", [gpubp.MSE(), gpubp.BinaryCrossEntropy(), gpubp.SoftmaxCrossEntropy()])
def test_loss_backward_before_forward(loss):
    with pytest.raises(StateError, match=f"{type(loss).__name__}.backward called before forward"):
        loss.backward()


def test_wrong_dY_shape_and_dtype():
    m = model()
    m.forward(x())
    with pytest.raises(ShapeError, match=r"dY has shape \(5, 3\), expected \(5, 2\)"):
        m.backward(x((5, 3)))
    with pytest.raises(DTypeError, match="backward dY: expected float32"):
        m.backward(x((5, 2), np.float64))


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "gpu:0", "cuda:-1", "nonsense"])
def test_unknown_device_spec(spec):
    with pytest.raises(DeviceError, match=f"unknown device '{spec}'; use 'auto', 'cpu', 'gpu' or 'cuda:N'"):
        gpubp.get_backend(spec)


@needs_no_gpu
@pytest.mark.parametrize("spec", ["gpu", "cuda:0", "cuda:3"])
def test_gpu_without_gpu_names_what_is_missing(spec):
    with pytest.raises(DeviceError) as err:
        gpubp.get_backend(spec)
    message = str(err.value)
    assert "requested but unusable" in message and GPU_REASON in message


def test_bad_dtype():
    with pytest.raises(DTypeError, match="float32 or float64, got 'float16'"):
        gpubp.get_backend("cpu", "float16")
    with pytest.raises(DTypeError):
        model("int32")


@pytest.mark.parametrize("labels, words", [
    ([0, 1, 3, 2, 0], "values in [0, 3]"),
    ([0, -1, 2, 2, 0], "values in [-1, 2]"),
])
def test_labels_out_of_range(labels, words):
    with pytest.raises(InvalidValueError) as err:
        gpubp.SoftmaxCrossEntropy().forward(x((5, 3)), np.array(labels))
    assert "labels must be in [0, 2] for 3 classes" in str(err.value) and words in str(err.value)


def test_bad_targets():
    Y = x((5, 3))
    with pytest.raises(ShapeError, match="5 predictions but labels of shape"):
        gpubp.SoftmaxCrossEntropy().forward(Y, np.array([0, 1, 2]))
    with pytest.raises(DTypeError, match="integer class labels"):
        gpubp.SoftmaxCrossEntropy().forward(Y, np.zeros(5, np.float32))
    with pytest.raises(ShapeError, match="must match"):
        gpubp.MSE().forward(Y, x((5, 2)))
    with pytest.raises(DTypeError, match="targets: expected float32"):
        gpubp.BinaryCrossEntropy().forward(Y, x(dtype=np.float64))
    with pytest.raises(DeviceError, match="expected a NumPy or CuPy array, got a list"):
        gpubp.MSE().forward([[1.0]], np.zeros((1, 1)))


def test_bad_construction():
    with pytest.raises(ShapeError, match="n_in >= 1"):
        gpubp.Dense(0, 3)
    with pytest.raises(InvalidValueError, match="slope must be a finite number >= 0 and <= 1, got 2.0"):
        gpubp.LeakyReLU(2.0)
    layer = gpubp.LeakyReLU(0.2)
    with pytest.raises(InvalidValueError, match="slope must be a finite number >= 0 and <= 1, got nan"):
        layer.slope = float("nan")  # set later: checked as at construction (was taken, and gave NaN outputs)
    assert layer.slope == 0.2
    dropout, norm = gpubp.Dropout(0.2), gpubp.BatchNorm(3)
    for obj, name, value, match in ((dropout, "p", 1.5, "Dropout p must be a finite number >= 0 and < 1, got 1.5"),
                                    (norm, "eps", -1.0, "BatchNorm eps must be a finite number > 0, got -1.0"),
                                    (norm, "momentum", 5, "BatchNorm momentum must be a finite number >= 0 and <= 1")):
        before = getattr(obj, name)
        with pytest.raises(InvalidValueError, match=match):  # was taken: p = 1.5 trained on, silently
            setattr(obj, name, value)
        assert getattr(obj, name) == before
    with pytest.raises(InvalidValueError, match="unknown loss 'hinge'"):
        gpubp.losses.get_loss("hinge")
    with pytest.raises(ShapeError, match="at least one layer"):
        gpubp.Sequential([])


@needs_gpu
def test_numpy_array_into_a_cupy_model():
    m = model().to("cuda:0")
    with pytest.raises(DeviceError, match="expected an array on cuda:0, got a NumPy array"):
        m.forward(x())
    assert m.predict(x()).shape == (5, 2)  # predict moves data for you


LAYERS = lambda: [gpubp.Dense(2, 3), gpubp.ReLU()]  # noqa: E731


@pytest.mark.parametrize("make, error, words", [
    (lambda: gpubp.Dense("a", 3), InvalidValueError, "Dense n_in must be a whole number, got 'a'"),
    (lambda: gpubp.Dense(2.7, 3), InvalidValueError, "Dense n_in must be a whole number, got 2.7"),
    (lambda: gpubp.Dense(2, True), InvalidValueError, "Dense n_out must be a whole number, got True"),
    (lambda: gpubp.Dense(2, 3, init="nope"), InvalidValueError, "unknown initialiser 'nope'"),
    (lambda: gpubp.Dense(2, 3, bias="yes"), InvalidValueError, "bias must be True or False"),
    (lambda: gpubp.Dense(2, 3, seed=-1), InvalidValueError, "Dense seed must be a whole number >= 0"),
    (lambda: gpubp.LeakyReLU("0.1"), InvalidValueError, "slope must be a finite number"),
    (lambda: gpubp.LeakyReLU(float("nan")), InvalidValueError, "got nan"),
    (lambda: gpubp.Sequential([gpubp.Dense(2, 3), "relu"]), InvalidValueError, "item 1 is a str"),
    (lambda: gpubp.Sequential([gpubp.Dense(2, 3), gpubp.ReLU]), InvalidValueError, "item 1 is a type"),
    (lambda: gpubp.Sequential(gpubp.Dense(2, 3)), InvalidValueError, r"write Sequential\(\[Dense\(2, 3\)\]\)"),
    (lambda: gpubp.Sequential(5), InvalidValueError, "a list of layers, got a int"),
    (lambda: gpubp.Sequential([*LAYERS(), gpubp.Dense(4, 1)]), ShapeError,
     r"layer 2 Dense\(4, 1\) expects inputs of width 4, but layer 0 Dense\(2, 3\) outputs width 3"),
    (lambda: gpubp.Sequential(LAYERS(), seed=-1), InvalidValueError, "Sequential seed must be a whole number >= 0"),
    (lambda: gpubp.Sequential(LAYERS(), seed=1.5), InvalidValueError, "got 1.5"),
    (lambda: gpubp.Sequential(LAYERS()).reset_parameters("x"), InvalidValueError, "seed must be"),
    (lambda: gpubp.mlp(2, [4], 2, "swish"), InvalidValueError, "unknown activation 'swish'"),
    (lambda: gpubp.mlp(2, 4, 2), InvalidValueError, "hidden must be a list of widths"),
    (lambda: gpubp.initializers.get_initializer("nope"), InvalidValueError, "unknown initialiser"),
    (lambda: gpubp.schedules.get_schedule("linear", 0.1, 10), InvalidValueError, "unknown schedule 'linear'"),
    (lambda: gpubp.schedules.get_schedule(3, 0.1, 10), InvalidValueError, "or a callable"),
    (lambda: gpubp.schedules.get_schedule("step", 0.1, "ten"), InvalidValueError, "epochs must be a whole number"),
    (lambda: gpubp.schedules.StepDecay(0.1, "2"), InvalidValueError, "step_size must be"),
    (lambda: gpubp.datasets.load_dataset("mnist"), InvalidValueError, "unknown dataset 'mnist'"),
    (lambda: gpubp.datasets.load_dataset("xor", n=3), InvalidValueError, r"dataset 'xor' takes no arguments, got \['n'\]"),
    (lambda: gpubp.datasets.spirals(n=0), InvalidValueError, "spirals: n must be a whole number >= 2"),
    (lambda: gpubp.datasets.load_digits(test_fraction=1.5), InvalidValueError, "test_fraction must be"),
    (lambda: gpubp.nn.layer_from_config({"type": "Dense", "n_in": 2}), InvalidValueError, "n_out"),
    (lambda: gpubp.nn.layer_from_config("Dense"), InvalidValueError, "must be a dict"),
])
def test_bad_construction_is_one_gpubp_error_naming_the_argument(make, error, words):
    with pytest.raises(error, match=words) as err:
        make()
    assert isinstance(err.value, GpubpError)


@pytest.mark.parametrize("kwargs, words", [
    (dict(eps=0), "gradcheck: eps must be a finite number > 0, got 0"),
    (dict(eps=-1e-6), "eps must be"),
    (dict(eps=float("nan")), "eps must be"),
    (dict(atol=-1), "atol must be"),
    (dict(rtol="x"), "rtol must be"),
    (dict(max_samples_per_param=0), "max_samples_per_param must be a whole number >= 1"),
    (dict(seed=-1), "seed must be"),
])
def test_gradcheck_arguments_are_checked(kwargs, words):
    with pytest.raises(InvalidValueError, match=words):
        gpubp.gradcheck(model("float64"), gpubp.SoftmaxCrossEntropy(), x(dtype=np.float64), np.zeros(5, int), **kwargs)
