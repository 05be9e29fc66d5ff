"""A user's layer in a checkpoint: its ``config()`` is stored as JSON and compared when a run resumes,
so a config JSON cannot hold, or cannot give back as itself, is refused when the model is saved (naming
the layer), never written into a checkpoint that then cannot be loaded or resumed; and a layer class
gpubp cannot rebuild by name is said so with the way that works (``checkpoint.load_into``)."""
import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import CheckpointError, InvalidValueError

import helpers


class Scale(helpers.Scale):
    """Y = X * s; its config is what ``config_fn`` makes of it."""

    config_fn = staticmethod(lambda layer: {"type": "Scale", "n": layer.n})

    def config(self):
        return self.config_fn(self)


def scale(config_fn):
    return type("Scale", (Scale,), {"config_fn": staticmethod(config_fn)})


def model(layer):
    return gpubp.Sequential([gpubp.Dense(4, 4), layer, gpubp.Dense(4, 3)], dtype="float64", seed=0)


X = np.random.default_rng(0).normal(size=(6, 4))
y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("config_fn, words", [
    (lambda layer: {"type": "Scale", "act": np.tanh}, "holds a ufunc"),  # was: "checkpoint extra: a ufunc ..."
    (lambda layer: ["Scale", 4], "must return a dict naming the layer's type"),  # was: saved, then unloadable
    (lambda layer: {"n": 4}, "must return a dict naming the layer's type"),      # was: saved, then unloadable
    (lambda layer: {"type": "Scale", "clip": float("nan")}, "holds NaN"),        # was: saved, never resumable
    (lambda layer: {"type": "Scale", "sizes": {4: "n"}}, "the key 4 is a int"),
], ids=["function", "list", "no type", "NaN", "int key"])
def test_a_config_a_checkpoint_cannot_hold_is_refused_at_save_naming_the_layer(tmp_path, config_fn, words):
    path = tmp_path / "m.npz"
    with pytest.raises(InvalidValueError) as err:
        checkpoint.save(path, model(scale(config_fn)()))
    for word in ("layer 1 Scale()", "config()", words):
        assert word in str(err.value)
    assert not path.exists()


def test_fit_refuses_such_a_config_at_its_first_checkpoint(tmp_path):
    """Was: a NaN config was written every epoch, and resume_from refused each as 'a different architecture'."""
    path = tmp_path / "run.npz"
    with pytest.raises(CheckpointError, match=r"layer 1 Scale\(\)\.config\(\) holds NaN.*holds 1 whole epoch"):
        gpubp.fit(model(scale(lambda layer: {"type": "Scale", "clip": float("nan")})()), X, y, epochs=3,
                  checkpoint_path=path, checkpoint_every=1, progress=False)
    assert not path.exists()


def test_a_config_with_tuples_and_numpy_numbers_resumes(tmp_path):
    """Was: {'shape': (4,), 'k': np.int64(2)} came back from the checkpoint as {'shape': [4], 'k': 2}, so
    every resume_from and load_into refused the run's own checkpoint as 'a different architecture'."""
    tuples = scale(lambda layer: {"type": "Scale", "shape": (layer.n,), "k": np.int64(2)})
    path = tmp_path / "run.npz"
    whole = gpubp.fit(model(tuples()), X, y, epochs=3, progress=False).loss
    gpubp.fit(model(tuples()), X, y, epochs=2, checkpoint_path=path, checkpoint_every=1, progress=False)
    resumed = gpubp.fit(model(tuples()), X, y, epochs=3, resume_from=path, progress=False).loss
    assert resumed == whole
    assert model(tuples()).config()[1] == {"type": "Scale", "shape": [4], "k": 2}


def test_a_layer_of_ones_own_in_a_checkpoint_is_named_with_the_way_to_load_it(tmp_path):
    path = tmp_path / "m.npz"
    saved = model(Scale())
    saved.parameters()["1.s"][...] = [1.0, 2.0, 3.0, 4.0]
    checkpoint.save(path, saved)
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path, "cpu")
    for word in ("layer 1", "unknown layer type 'Scale'", "checkpoint.load_into(path, model)"):
        assert word in str(err.value)
    into = model(Scale())
    checkpoint.load_into(path, into)  # the way the message gives works
    np.testing.assert_array_equal(into.parameters()["1.s"], [1.0, 2.0, 3.0, 4.0])
