"""A layer of one's own that draws parameters without stating their shapes (``drawn_parameters`` alone) is
loaded and checkpointed with them. Was: parameters() listed them, but load_parameters refused them ("missing
[], unexpected ['1.s']") and a checkpoint saved with them did not load back ("unexpected array(s)
'param/1.s' ... the file is damaged"): the trained values were lost."""
import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import ShapeError


class Unstated(gpubp.nn.Layer):
    """Y = X * s, its parameter drawn but not stated (no parameter_shapes)."""

    def drawn_parameters(self, rng, prefix=""):
        return {"s": np.ones(4)}

    def forward(self, X):
        self.X = X
        return X * self.params["s"]

    def backward(self, dY):
        self.grads["s"][...] = (dY * self.X).sum(axis=0)
        return dY * self.params["s"]


def model(seed):
    return gpubp.Sequential([gpubp.Dense(4, 4), Unstated()], seed=seed)


def test_its_parameters_load_as_they_are_listed():
    a, b = model(0), model(1)
    a.layers[1].params["s"][...] = 3
    b.load_parameters({k: v.copy() for k, v in a.parameters().items()})
    np.testing.assert_array_equal(b.parameters()["1.s"], np.full(4, 3, np.float32))
    assert b.parameter_shapes()["1.s"] == (4,)
    with pytest.raises(ShapeError, match=r"parameter 1.s has shape \(3,\), the architecture says \(4,\)"):
        b.load_parameters({**a.parameters(), "1.s": np.ones(3)})


def test_a_checkpoint_of_it_loads_back(tmp_path):
    a, b = model(0), model(1)
    a.layers[1].params["s"][...] = 3
    checkpoint.save(tmp_path / "ck.npz", a)
    checkpoint.load_into(tmp_path / "ck.npz", b)
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(b.parameters()[k], v)
