"""Arrays that share memory (tied weights, overlapping views, shared gradients): gpubp gives each
name its own arrays, so a model refuses them, naming both, before anything changes, wherever it
would otherwise untie them silently (flatten_, fit, forward, to) or lose values (load_parameters,
keep_gradients_in). Untied models, flat or not, train as before."""
import numpy as np
import pytest

import gpubp
from gpubp import nn
from gpubp.errors import InvalidValueError, ShapeError


def model(seed=0, middle=None):
    return gpubp.Sequential([nn.Dense(4, 4), middle or nn.Sigmoid(), nn.Dense(4, 4)], dtype="float64", seed=seed)


def snapshot(m):
    """Every parameter and gradient: the array object and a copy of its values."""
    return {(kind, name): (a, np.array(a)) for kind, arrays in (("p", m.parameters()), ("g", m.gradients()))
            for name, a in arrays.items()}


def unchanged(m, before):
    now = snapshot(m)
    assert now.keys() == before.keys()
    for key, (a, values) in before.items():
        assert now[key][0] is a, key  # the same arrays: nothing untied or replaced
        np.testing.assert_array_equal(a, values, err_msg=str(key))


TIES = {  # how layer 2's W (or layer 0's b) comes to share layer 0's W
    "same array": lambda m: m.layers[2].params.__setitem__("W", m.layers[0].params["W"]),
    "reversed view": lambda m: m.layers[2].params.__setitem__("W", m.layers[0].params["W"][::-1]),
    "transposed view": lambda m: m.layers[2].params.__setitem__("W", m.layers[0].params["W"].T),
}


@pytest.mark.parametrize("tie", TIES)
def test_flatten_refuses_tied_weights_naming_both_and_changes_nothing(tie):
    m = model()
    TIES[tie](m)
    before, generation = snapshot(m), m.generation
    with pytest.raises(InvalidValueError, match=r"Sequential.flatten_: parameters 0.W and 2.W share memory "
                                                r"\(tied weights\).*untying them.*gives each layer its own"):
        m.flatten_()
    unchanged(m, before)
    assert m.generation == generation and m.flat is None


def test_a_parameter_that_is_a_view_of_another_is_refused():
    m = model()
    m.layers[0].params["b"] = m.layers[0].params["W"][1]  # a row of W as b: same shape and dtype
    before = snapshot(m)
    with pytest.raises(InvalidValueError, match="parameters 0.W and 0.b share memory"):
        m.flatten_()
    unchanged(m, before)


def test_a_gradient_that_is_a_parameter_is_refused():
    m = model()
    m.layers[2].grads["b"] = m.layers[2].params["b"]
    with pytest.raises(InvalidValueError, match="gradient 2.b and parameter 2.b share memory: a backward would "
                                                "write the gradient over the parameter"):
        m.flatten_()


def test_interleaved_views_share_no_memory_and_are_flattened_with_their_values():
    """a[::2] and a[1::2] overlap in address range but share no element: not refused."""
    m = model()
    base = np.arange(32.0).reshape(8, 4)
    m.layers[0].params["W"], m.layers[2].params["W"] = base[::2], base[1::2]
    m.flatten_()
    assert m.flat is not None
    np.testing.assert_array_equal(m.layers[0].params["W"], base[::2])
    np.testing.assert_array_equal(m.layers[2].params["W"], base[1::2])


def test_fit_refuses_a_tied_model_before_any_step():
    m = model()
    TIES["same array"](m)
    before = snapshot(m)
    X, y = np.random.default_rng(0).normal(size=(16, 4)), np.arange(16) % 4
    with pytest.raises(InvalidValueError, match="parameters 0.W and 2.W share memory"):
        gpubp.fit(m, X, y, epochs=1, batch_size=8, progress=False)
    unchanged(m, before)


def test_the_first_forward_refuses_tied_weights_before_any_layer_runs():
    """seed=None: the parameters are drawn on first use and made flat after the first forward,
    which would untie them; refused before BatchNorm's running statistics move."""
    m = model(seed=None, middle=nn.BatchNorm(4))
    TIES["same array"](m)  # draws both Dense layers' parameters
    running = np.array(m.layers[1].buffers["running_mean"])
    with pytest.raises(InvalidValueError, match="Sequential.forward: parameters 0.W and 2.W share memory"):
        m.forward(np.ones((3, 4)))
    np.testing.assert_array_equal(m.layers[1].buffers["running_mean"], running)
    assert m.layers[2].params["W"] is m.layers[0].params["W"]


def test_moving_a_tied_model_is_refused_before_any_layer_moves():
    m = model()
    TIES["same array"](m)
    with pytest.raises(InvalidValueError, match="Sequential.to: parameters 0.W and 2.W share memory"):
        m.to("cpu", "float32")
    assert m.backend.dtype == np.float64 and all(layer.backend.dtype == np.float64 for layer in m.layers)
    assert m.layers[2].params["W"] is m.layers[0].params["W"]


def test_loading_into_tied_weights_is_refused_before_any_value_is_written():
    """One name's values would overwrite the other's."""
    m = model()
    TIES["same array"](m)
    before = snapshot(m)
    new = {k: np.full(a.shape, float(i)) for i, (k, a) in enumerate(m.parameters().items())}
    with pytest.raises(InvalidValueError, match="Sequential.load_parameters: parameters 0.W and 2.W share memory"):
        m.load_parameters(new)
    unchanged(m, before)


def gradient_arrays(m, **replace):
    """Fresh arrays for every gradient, some replaced (by name with the dot as an underscore)."""
    arrays = {k: np.zeros(g.shape) for k, g in m.gradients().items()}
    arrays.update({k.replace("_", "."): a for k, a in replace.items()})
    return arrays


@pytest.mark.parametrize("case", ["same buffer", "overlapping views", "a parameter"])
def test_keep_gradients_in_refuses_arrays_that_share_memory(case):
    """One layer's backward would overwrite another's gradient (or its parameter)."""
    m = model()
    buf = np.zeros(20)
    arrays = {"same buffer": lambda: gradient_arrays(m, **{"0_W": buf[:16].reshape(4, 4),
                                                            "2_W": buf[:16].reshape(4, 4)}),
              "overlapping views": lambda: gradient_arrays(m, **{"0_b": buf[:4], "2_b": buf[2:6]}),
              "a parameter": lambda: gradient_arrays(m, **{"2_W": m.layers[0].params["W"]})}[case]()
    expected = {"same buffer": "gradients 0.W and 2.W share memory: one layer's backward would overwrite",
                "overlapping views": "gradients 0.b and 2.b share memory",
                "a parameter": "gradient 2.W and parameter 0.W share memory"}[case]
    before, generation = snapshot(m), m.generation
    with pytest.raises(InvalidValueError, match=f"Sequential.keep_gradients_in: {expected}"):
        m.keep_gradients_in(arrays)
    unchanged(m, before)
    assert m.generation == generation and m.flat is not None


def test_keep_gradients_in_checks_every_layer_before_any_changes():
    """Was: layer 0 took its new arrays before layer 2's array of the wrong shape was refused."""
    m = model()
    before = snapshot(m)
    with pytest.raises(ShapeError, match="gradient W is float64 \\(4, 4\\), got float64 \\(3, 4\\)"):
        m.keep_gradients_in(gradient_arrays(m, **{"2_W": np.zeros((3, 4))}))
    unchanged(m, before)


def test_keep_gradients_in_refuses_names_the_model_lacks():
    """Was: silently ignored, so a misspelt name kept its gradient elsewhere."""
    m = model()
    before = snapshot(m)
    with pytest.raises(ShapeError, match=r"keep_gradients_in: the model has no gradients \['1.W'\]"):
        m.keep_gradients_in({**gradient_arrays(m), "1.W": np.zeros((4, 4))})
    unchanged(m, before)


def train(m, epochs=3):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 4, 32)
    gpubp.fit(m, X, y, optimizer="adam", lr=0.01, epochs=epochs, batch_size=8, shuffle=False, progress=False)
    return {k: np.array(v) for k, v in m.parameters().items()}


@pytest.mark.parametrize("where", [0, 2])
def test_an_untied_copy_trains_exactly_as_the_model_never_touched(where):
    """``layer.params['W'] = W.copy()`` takes the model out of its flat buffer; fit makes it flat
    again and the training is the same, number for number."""
    reference, untied = model(), model()
    W = untied.layers[where].params["W"]
    untied.layers[where].params["W"] = W.copy()
    assert untied.flat is None
    expected = train(reference)
    got = train(untied)
    assert untied.flat is not None
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k], err_msg=k)
