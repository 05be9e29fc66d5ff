"""The initialisers and reset_parameters given junk for rng, fans or shape (found by fuzzing the public
API): an InvalidValueError naming the argument, not an AttributeError ('int' object has no attribute
'normal'), a ZeroDivisionError for a fan of 0, or a silent draw for an unknown initialiser name."""
import numpy as np
import pytest

import gpubp
from gpubp import initializers
from gpubp.errors import InvalidValueError
from helpers import stable_id

NAMES = ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal"]
JUNK_RNG = [None, 0, 1.5, "x", [], {}, object(), np.zeros((0, 3)), np.random.RandomState(0)]
JUNK_N = [None, True, "x", -1, 0, 1.5, float("nan"), float("inf"), [], {}, object(), np.array([]), np.array(["a"])]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rng", JUNK_RNG, ids=stable_id)
def test_an_initialiser_refuses_an_rng_that_is_no_generator(name, rng):
    with pytest.raises(InvalidValueError, match=f"{name}: rng must be a NumPy Generator"):
        getattr(initializers, name)(rng, 4, 3)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", JUNK_N, ids=stable_id)
@pytest.mark.parametrize("which", ["n_in", "n_out"])
def test_an_initialiser_names_a_bad_size(name, n, which):
    sizes = {"n_in": 4, "n_out": 3, which: n}
    with pytest.raises(InvalidValueError, match=f"{name}: {which} must be a whole number >= 1"):
        getattr(initializers, name)(np.random.default_rng(0), sizes["n_in"], sizes["n_out"])


@pytest.mark.parametrize("name", [None, "x", "he", "he_", 3, [], {}])
def test_draw_refuses_an_unknown_initialiser(name):
    """Before, draw('x', ...) drew He-uniform weights without a word (and a non-text name was an AttributeError)."""
    with pytest.raises(InvalidValueError, match="unknown initialiser"):
        initializers.draw(name, np.random.default_rng(0), 4, 3, (4, 3))


@pytest.mark.parametrize("shape", [None, 3, "x", (4, -1), (4, 1.5), (4, None), {}])
def test_draw_refuses_a_bad_shape(shape):
    with pytest.raises(InvalidValueError, match="he_normal: shape"):
        initializers.draw("he_normal", np.random.default_rng(0), 4, 3, shape)


@pytest.mark.parametrize("fan", [0, -1, 1.5, None, float("nan")])
def test_draw_refuses_a_bad_fan(fan):
    with pytest.raises(InvalidValueError, match="glorot_normal: fan_in must be a whole number >= 1"):
        initializers.draw("glorot_normal", np.random.default_rng(0), fan, 3, (4, 3))


@pytest.mark.parametrize("layer", [lambda: gpubp.Dense(4, 3), lambda: gpubp.Conv2D(1, 2, 3), lambda: gpubp.Dropout(0.5)],
                         ids=["Dense", "Conv2D", "Dropout"])
@pytest.mark.parametrize("rng", [r for r in JUNK_RNG if r is not None and not isinstance(r, int)], ids=stable_id)
def test_reset_parameters_refuses_an_rng_that_is_no_generator(layer, rng):
    """None (PyTorch's layer.reset_parameters()) and a seed are taken (tests/nn/test_layer_reset_parameters.py)."""
    with pytest.raises(InvalidValueError, match="rng must be a NumPy Generator"):
        layer().reset_parameters(rng)


def test_valid_draws_are_unchanged():
    W = initializers.he_uniform(np.random.default_rng(0), 4, 3)
    assert np.array_equal(W, np.random.default_rng(0).uniform(-np.sqrt(6 / 4), np.sqrt(6 / 4), size=(4, 3)))
    W = initializers.draw("glorot_normal", np.random.default_rng(1), np.int64(4), 3, [4, 3])
    assert np.array_equal(W, np.random.default_rng(1).normal(0.0, np.sqrt(2 / 7), size=(4, 3)))
