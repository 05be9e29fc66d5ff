"""A user's layer with parameters, written from the Layer docstring alone: ``parameter_shapes`` says
them, ``drawn_parameters(rng, prefix)`` draws them. Nothing private (``_params = None``, ``seed``) is
needed for them to be drawn, and what ``drawn_parameters`` returns is checked where it is drawn,
naming the layer and parameter: not met later as a NumPy broadcast error in the user's forward."""
import warnings

import numpy as np
import pytest
import torch

import gpubp
from gpubp.errors import DTypeError, InvalidValueError, NumericalError, ShapeError

from helpers import Scale  # a user's layer: no private attribute set


def model(layer, seed=0):
    return gpubp.Sequential([gpubp.Dense(4, 4), layer, gpubp.Dense(4, 3)], dtype="float64", seed=seed)


X = np.random.default_rng(0).normal(size=(6, 4))
y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("seed", [0, None])
def test_parameters_stated_and_drawn_are_drawn_and_trained(seed):
    """Was: with seed=None '1.s' was missing from parameters() (forward: KeyError 's'); with a seed a
    GpubpWarning said the seed 'redraws the parameters that layers 1 Scale() already hold' (none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", gpubp.GpubpWarning)
        m = model(Scale(), seed)
        Y = m.forward(X)
    assert "1.s" in m.parameters() and m.parameters()["1.s"].shape == (4,)
    # the forward is the one written: against torch on the same weights
    W0, b0, s, W2, b2 = (torch.tensor(m.parameters()[k]) for k in ("0.W", "0.b", "1.s", "2.W", "2.b"))
    np.testing.assert_allclose(Y, (((torch.tensor(X) @ W0 + b0) * s) @ W2 + b2).numpy(), rtol=1e-12)
    before = m.parameters()["1.s"].copy()
    gpubp.fit(m, X, y, epochs=2, progress=False)
    assert not np.array_equal(m.parameters()["1.s"], before)


def drawing(fn):
    return type("Drawn", (Scale,), {"drawn_parameters": lambda self, rng, prefix="": fn(self, rng)})


@pytest.mark.parametrize("fn, error, words", [
    (lambda self, rng: {"s": rng.normal(size=5)}, ShapeError, "has shape (5,), parameter_shapes says (4,)"),
    (lambda self, rng: {"t": rng.normal(size=4)}, ShapeError, "drew ['t'], but parameter_shapes says ['s']"),
    (lambda self, rng: {}, ShapeError, "drew [], but parameter_shapes says ['s']"),
    (lambda self, rng: {"s": np.full(4, np.nan)}, NumericalError, "NaN/Inf"),
    (lambda self, rng: [rng.normal(size=4)], InvalidValueError, "must return a dict"),
    (lambda self, rng: {"s": "abcd"}, DTypeError, "parameter 1.s"),
], ids=["shape", "name", "none", "NaN", "not a dict", "text"])
def test_a_wrong_draw_is_refused_when_drawn_naming_the_layer(fn, error, words):
    """Was: a ValueError 'operands could not be broadcast' or KeyError 's' from the user's forward, NaN
    outputs, or "'list' object has no attribute 'shape'"."""
    with pytest.raises(error) as err:
        model(drawing(fn)())
    for word in ("Drawn()", words):
        assert word in str(err.value)


@pytest.mark.parametrize("fn", [lambda self, rng: {"s": list(rng.normal(size=4))},
                                lambda self, rng: {"s": rng.normal(size=4).astype(np.float32)}],
                         ids=["list", "float32"])
def test_a_draw_on_the_host_or_in_another_dtype_is_taken_as_the_layers(fn):
    """Was: AttributeError ('list' has no shape), or 'parameter s is float32 (4,), got float64 (4,)'."""
    m = model(drawing(fn)())
    s = m.parameters()["1.s"]
    assert s.dtype == np.float64 and s.shape == (4,)
    np.testing.assert_allclose(s, np.asarray(fn(None, m.backend.host_rng(0))["s"], np.float64), rtol=1e-7, atol=1)
    assert np.isfinite(m.forward(X)).all()
