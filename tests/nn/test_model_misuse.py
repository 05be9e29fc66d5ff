"""A model misused: the same layer twice, trained layers redrawn, parameters loaded from
junk, wrong flags. Each refused (or warned about) by gpubp, naming what was wrong, with
nothing changed."""
import warnings

import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, GpubpWarning, InvalidValueError, NumericalError, ShapeError


def test_the_same_layer_object_twice_is_refused():
    # Its backward would read the input saved by its second use for both: wrong gradients.
    dense = gpubp.Dense(3, 3)
    with pytest.raises(InvalidValueError, match=r"item 2 Dense\(3, 3\) is the same layer object as item 0"):
        gpubp.Sequential([dense, gpubp.ReLU(), dense])


def test_a_seeded_model_warns_before_redrawing_trained_parameters():
    trained = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0)
    trained.load_parameters({"0.W": np.full((3, 2), 0.5), "0.b": np.zeros(2)})
    with pytest.warns(GpubpWarning, match=r"redraws the parameters that layers 0 Dense\(3, 2\).*seed=None"):
        gpubp.Sequential(trained.layers, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = gpubp.Sequential(trained.layers, seed=None)  # keeps them, silently
        gpubp.Sequential([gpubp.Dense(3, 2), gpubp.ReLU()], seed=1)  # nothing drawn yet: nothing to lose
    trained.load_parameters({"0.W": np.full((3, 2), 0.5), "0.b": np.zeros(2)})
    assert np.all(kept.parameters()["0.W"] == 0.5)


@pytest.mark.parametrize("bad, error, words", [
    (None, InvalidValueError, ["dict", "NoneType"]),
    ([np.ones((3, 4))], InvalidValueError, ["dict", "list"]),
    ({"2.W": np.full((4, 2), "a")}, DTypeError, ["parameter 2.W", "<U1"]),
    ({"2.W": [[1.0, 2.0], [3.0]]}, ShapeError, ["parameter 2.W", "rectangular"]),
    ({"2.W": np.zeros((2, 4))}, ShapeError, ["parameter 2.W has shape (2, 4)", "(4, 2)"]),
    ({"2.W": np.full((4, 2), np.nan)}, NumericalError, ["parameter 2.W", "NaN"]),
    ({"2.b": np.array([1.0, np.inf])}, NumericalError, ["parameter 2.b", "index (1,)"]),
])
def test_load_parameters_refuses_junk_before_writing_anything(bad, error, words):
    model = gpubp.mlp(3, [4], 2, seed=0)
    before = {k: v.copy() for k, v in model.parameters().items()}
    arrays = {k: np.ones(v.shape) for k, v in model.parameters().items()}
    with pytest.raises(error) as err:
        model.load_parameters(bad if not isinstance(bad, dict) else {**arrays, **bad})
    for word in words:
        assert word in str(err.value)
    for k, v in model.parameters().items():  # layer 0 comes first, yet nothing was written
        np.testing.assert_array_equal(v, before[k])


def test_loaded_integer_and_list_parameters_take_the_models_dtype():
    layer = gpubp.Dense(2, 2)  # not drawn yet: the loaded arrays become its parameters
    layer.load_parameters({"W": np.eye(2, dtype=np.int64), "b": [0, 1]})
    assert all(p.dtype == np.float32 for p in layer.params.values())
    np.testing.assert_array_equal(layer(np.ones((1, 2), np.float32)), [[1.0, 2.0]])


@pytest.mark.parametrize("call", [
    lambda m: m.load_buffers(None), lambda m: m.layers[1].load_buffers(None),
])
def test_load_buffers_refuses_a_non_dict(call):
    model = gpubp.Sequential([gpubp.Dense(3, 3), gpubp.Dropout(0.5)])
    with pytest.raises((InvalidValueError, ShapeError), match="NoneType|None"):
        call(model)


def test_backward_input_grad_is_a_flag_not_any_truthy_value():
    model = gpubp.mlp(3, [4], 2, seed=0)
    Y = model.forward(np.ones((2, 3), np.float32))
    with pytest.raises(InvalidValueError, match="input_grad must be True or False, got 'no'"):
        model.backward(np.ones_like(Y), input_grad="no")


def test_mlp_refuses_an_unhashable_activation_by_name():
    with pytest.raises(InvalidValueError, match=r"unknown activation \['relu'\]"):
        gpubp.mlp(3, [4], 2, activation=["relu"])


def test_predict_converts_integer_data_to_the_models_dtype():
    model = gpubp.mlp(3, [4], 2, seed=0)
    want = model.predict(np.array([[1.0, 2.0, 3.0]], np.float32))
    np.testing.assert_array_equal(model.predict([[1, 2, 3]]), want)
    np.testing.assert_array_equal(model.predict(np.array([[1, 2, 3]], np.uint8)), want)


@pytest.mark.parametrize("layers, error, words", [
    ([], ShapeError, ["at least one layer"]),
    (lambda m: [m.layers[0], "x"], InvalidValueError, ["item 1 is a str"]),
    (lambda m: [m.layers[0], m.layers[0]], InvalidValueError, ["same layer object"]),
], ids=["empty", "junk", "twice"])
def test_layers_replaced_after_construction_are_checked(layers, error, words):
    """A list assigned to ``model.layers`` is checked when it is set (an empty one was an identity
    model); one changed in place, at the next forward, or at ``train()`` (which fit calls first)."""
    model = gpubp.Sequential([gpubp.Dense(3, 3), gpubp.ReLU()], seed=0)
    X = np.ones((2, 3), np.float32)
    model.forward(X)
    new = layers(model) if callable(layers) else layers
    with pytest.raises(error) as err:
        model.layers = new
    assert len(model.layers) == 2
    model.layers[:] = new
    with pytest.raises(error) as later:
        model.forward(X)
    with pytest.raises(error):
        model.train()
    for word in words:
        assert word in str(err.value) and word in str(later.value)


@pytest.mark.parametrize("config", [None, {"type": "Dense", "n_in": 3, "n_out": 2}, "Dense"])
def test_from_config_takes_a_list_of_layer_configs(config):
    with pytest.raises(InvalidValueError, match=f"list of layer configs.*got a {type(config).__name__}"):
        gpubp.Sequential.from_config(config)


def test_a_float64_layer_made_float32_by_a_default_model_is_warned_about():
    with pytest.warns(GpubpWarning, match=r"layers 0 Dense\(3, 2\) were made float64 and are now float32.*dtype='float64'"):
        model = gpubp.Sequential([gpubp.Dense(3, 2, backend="cpu/float64"), gpubp.ReLU()])
    assert model.layers[0].params["W"].dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: no warning
        gpubp.Sequential([gpubp.Dense(3, 2, backend="cpu/float64")], dtype="float32")
        assert gpubp.Sequential([gpubp.Dense(3, 2, backend="cpu/float64")], dtype="float64").backend.dtype == np.float64


@pytest.mark.parametrize("bad, error, words", [
    ({"3.running_var": -np.ones(4)}, InvalidValueError, ["running_var must be >= 0"]),
    ({"3.running_mean": np.full(4, "a")}, DTypeError, ["buffer running_mean", "<U1"]),
    ({"3.running_mean": [0.0, [1.0], 2.0, 3.0]}, ShapeError, ["buffer running_mean", "rectangular"]),
    ({"3.running_mean": np.full(4, np.inf)}, NumericalError, ["buffer running_mean"]),
    ({"5.step": np.array(-1)}, InvalidValueError, ["Dropout step", "-1"]),
])
def test_load_buffers_refuses_junk_before_writing_any_layers_buffers(bad, error, words):
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.BatchNorm(4), gpubp.ReLU(), gpubp.BatchNorm(4),
                              gpubp.Dense(4, 2), gpubp.Dropout(0.5)], seed=0)
    good = {k: np.asarray(v) + 1 for k, v in model.buffers().items()}
    before = {k: np.array(v) for k, v in model.buffers().items()}
    with pytest.raises(error) as err:
        model.load_buffers({**good, **bad})
    for word in words:
        assert word in str(err.value)
    for k, v in model.buffers().items():  # layer 1's statistics come first, yet were not written
        np.testing.assert_array_equal(v, before[k])
    model.load_buffers(good)
    for k, v in model.buffers().items():
        np.testing.assert_array_equal(v, good[k])


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m.to(np.ones(3)), gpubp.DeviceError, ["unknown device"]),
    (lambda m: m.keep_gradients_in(5), InvalidValueError, ["dict", "int"]),
    (lambda m: m.keep_gradients_in({"0.W": 5}), gpubp.DeviceError, ["gradient W", "int"]),
    (lambda m: m.layers[0].keep_parameters_in({"Q": np.ones((3, 4), np.float32)}), InvalidValueError,
     ["no parameter 'Q'"]),
])
def test_moving_and_rehousing_refuse_junk_by_name(call, error, words):
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.ReLU()], seed=0)
    with pytest.raises(error) as err:
        call(model)
    for word in words:
        assert word in str(err.value)


class Counting(gpubp.nn.Layer):
    """A user's layer with a float buffer and no load_buffers of its own."""

    def __init__(self):
        super().__init__()
        self.buffers = {"count": self.backend.zeros((2,))}

    def output_shape(self, shape):
        return tuple(shape)

    def forward(self, X):
        return X

    def backward(self, dY):
        return dY


def test_a_users_layer_with_buffers_loads_them_checked():
    model = gpubp.Sequential([gpubp.Dense(2, 2), Counting()], seed=0)
    model.load_buffers({"1.count": [3, 4]})  # was refused: the base class took no buffers at all
    np.testing.assert_array_equal(model.layers[1].buffers["count"], [3.0, 4.0])
    with pytest.raises(ShapeError, match=r"Counting\(\) buffer count has shape \(3,\), the architecture says \(2,\)"):
        model.load_buffers({"1.count": [3, 4, 5]})


def test_backward_after_predict_is_refused_until_the_next_forward():
    """predict between a training forward and its backward leaves its own inputs in the layers:
    the gradients would be those of the eval pass on other data (silently, for a batch of the same size)."""
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Dropout(0.5), gpubp.Dense(4, 2)], seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    Y = model.forward(X)
    model.predict(X[::-1].copy())
    with pytest.raises(gpubp.StateError, match="backward after predict"):
        model.backward(np.ones_like(Y))
    model.forward(X)
    model.backward(np.ones_like(Y))  # after a forward again: fine


def test_a_layer_moved_away_by_another_model_is_named_at_the_next_forward():
    shared = gpubp.Dense(3, 3)
    first = gpubp.Sequential([shared, gpubp.ReLU()], seed=0)
    gpubp.Sequential([shared], dtype="float64", seed=None)  # moves the shared layer to float64
    X = np.ones((2, 3), np.float32)
    with pytest.raises(gpubp.DeviceError, match=r"layers 0 Dense\(3, 3\) \(cpu/float64\) do not live on this "
                                                r"model's backend \(cpu/float32\)"):
        first.forward(X)  # was: 'Dense input: expected float64 values', from a float32 model
    first.to(first.backend)
    assert first.forward(X).dtype == np.float32


def test_a_batch_of_one_batchnorm_refuses_in_training_moves_nothing():
    """Was: the chain check cached per input shape, not per mode, and BatchNorm's one-value
    refusal came from its own forward, after an earlier Dropout had drawn its mask (step + 1)."""
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Dropout(0.5), gpubp.BatchNorm(4)], seed=0)
    one = np.ones((1, 3), np.float32)
    model.eval()
    model.forward(one)  # eval mode: running statistics, one sample is fine
    model.train()
    with pytest.raises(ShapeError, match=r"BatchNorm\(4, .*\) in training normalises by the batch.s statistics and needs more than one value per channel"):
        model.forward(one)
    assert model.layers[1].step == 0 and np.all(model.layers[2].buffers["running_mean"] == 0)


@pytest.mark.parametrize("name, value, words", [
    ("backend", "cpu", "Sequential backend must be a gpubp Backend, got a str; move a model with model.to(device)"),
    ("observers", None, "Sequential observers must be a list of observers, got a NoneType"),
    ("observers", [5], "Sequential observers[0]: the observer must have a forward(model, i, layer, X, Y)")])
def test_a_model_s_backend_and_observers_set_later_are_checked(name, value, words):
    """Was: taken, then a raw AttributeError or TypeError from the next forward, fit or save."""
    model = gpubp.Sequential([gpubp.Dense(3, 3), gpubp.ReLU()], seed=0)
    with pytest.raises(InvalidValueError) as err:
        setattr(model, name, value)
    assert words in str(err.value)
    with pytest.raises(InvalidValueError, match="Dense backend must be a gpubp Backend, got a str"):
        model.layers[0].backend = "cpu"
    model.forward(np.ones((2, 3), np.float32))


@pytest.mark.parametrize("count", [2, 3, 4])
def test_layers_given_as_separate_arguments_are_named(count):
    """PyTorch's ``nn.Sequential(a, b, ...)``: the second layer landed in ``backend`` and the first
    was refused as "one layer"; now the message says the layers came separately and shows them."""
    layers = [gpubp.Dense(2, 3), gpubp.ReLU(), gpubp.Dense(3, 1), gpubp.Sigmoid()][:count]
    with pytest.raises(InvalidValueError, match="takes its layers as one list, got them as separate arguments; "
                                                r"write Sequential\(\[Dense\(2, 3\), ReLU\(\)"):
        gpubp.Sequential(*layers)
