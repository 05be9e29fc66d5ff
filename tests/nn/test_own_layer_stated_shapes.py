"""What a layer of one's own states in ``parameter_shapes`` is checked where gpubp reads it (a draw, a load,
the model's ``parameter_shapes``), naming the layer and parameter. Was: Python's TypeError "'int' object
is not iterable" for {"w": 4}; a negative size passed through model.parameter_shapes(); a name that is no
string (which a checkpoint cannot hold as itself) was taken."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, ShapeError


def stating(shapes):
    class Stated(gpubp.nn.Layer):
        def parameter_shapes(self):
            return shapes

        def drawn_parameters(self, rng, prefix=""):
            return {k: np.ones(4) for k in shapes} if isinstance(shapes, dict) else {}

        def forward(self, X):
            return X

        def backward(self, dY):
            return dY
    return Stated()


@pytest.mark.parametrize("shapes, error, words", [
    ({"w": 4}, ShapeError, r"parameter (1\.)?w has shape 4; a shape is a tuple of whole numbers >= 0"),
    ({"w": (-1,)}, ShapeError, r"parameter (1\.)?w has shape \(-1,\)"),
    ({"w": (4.0,)}, ShapeError, r"parameter (1\.)?w has shape \(4\.0,\)"),
    ({"w": "4"}, ShapeError, r"parameter (1\.)?w has shape '4'"),
    ([("w", (4,))], InvalidValueError, r"parameter_shapes must return a dict \{name: shape\}.*got list"),
    ({3: (4,)}, InvalidValueError, r"a parameter's name is a non-empty string .*got 3"),
], ids=["int", "negative", "float", "str", "list", "int name"])
@pytest.mark.parametrize("use", [
    lambda layer: gpubp.Sequential([gpubp.Dense(4, 4), layer], seed=0),
    lambda layer: gpubp.Sequential([gpubp.Dense(4, 4), layer], seed=None).parameter_shapes(),
    lambda layer: gpubp.Sequential([gpubp.Dense(4, 4), layer], seed=None).parameters()],
    ids=["seeded", "parameter_shapes", "drawn on first use"])
def test_a_stated_shape_that_is_no_shape_is_named(use, shapes, error, words):
    with pytest.raises(error, match=r"Stated\(\).parameter_shapes.*" + words if "dict" not in words else words):
        use(stating(shapes))


def test_sound_statements_are_taken_as_tuples():
    layer = stating({"w": [4], "s": ()})
    layer.drawn_parameters = lambda rng, prefix="": {"w": np.ones(4), "s": np.array(2.0)}
    model = gpubp.Sequential([gpubp.Dense(4, 4), layer], seed=0)
    assert model.parameter_shapes() == {"0.W": (4, 4), "0.b": (4,), "1.w": (4,), "1.s": ()}
    assert model.parameters()["1.s"] == 2
