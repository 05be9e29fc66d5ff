"""A layer's ``params`` and ``grads`` are changed only as ``params[name] = array`` changes them: update,
``|=`` and setdefault check each array so (all before any is put in), and no name can be removed.
Was: del, pop and clear removed W (the next forward failed with Python's KeyError 'W'), and update,
``|=`` and setdefault put in arrays of any shape, dtype or name unchecked (found, if at all, at the next
step by the matmul)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, InvalidValueError, ShapeError


@pytest.mark.parametrize("store", ["params", "grads"])
@pytest.mark.parametrize("remove", [lambda d: d.__delitem__("W"), lambda d: d.pop("W"), lambda d: d.popitem(),
                                    lambda d: d.clear()], ids=["del", "pop", "popitem", "clear"])
def test_no_name_can_be_removed(store, remove):
    layer = gpubp.Dense(4, 3)
    arrays = getattr(layer, store)
    with pytest.raises(InvalidValueError, match=rf"Dense\(4, 3\) .*s are \['W', 'b'\]: none can be removed.*"
                                                rf"layer.{store}\[name\] = array"):
        remove(arrays)
    assert sorted(getattr(layer, store)) == ["W", "b"]


@pytest.mark.parametrize("put, error, words", [
    (lambda d: d.update({"W": np.ones((2, 2), np.float32)}), ShapeError, r"parameter W is float32 \(4, 3\), got"),
    (lambda d: d.update(W=np.ones((4, 3))), DTypeError, "parameter W: expected float32 values"),
    (lambda d: d.update({"Z": np.ones(3, np.float32)}), InvalidValueError, "has no parameter 'Z'"),
    (lambda d: d.__ior__({"W": np.ones(3, np.float32)}), ShapeError, "parameter W is float32"),
    (lambda d: d.setdefault("Z", np.ones(3)), InvalidValueError, "has no parameter 'Z'"),
    (lambda d: d.update({"b": np.zeros(3, np.float32), "W": np.ones(2, np.float32)}), ShapeError, "parameter W"),
], ids=["shape", "dtype", "name", "ior", "setdefault", "all checked first"])
def test_arrays_put_in_any_way_are_checked_first(put, error, words):
    layer = gpubp.Dense(4, 3, seed=0)
    before = {k: v for k, v in layer.params.items()}
    with pytest.raises(error, match=words):
        put(layer.params)
    assert all(layer.params[k] is v for k, v in before.items())


def test_a_sound_update_replaces_as_setting_does():
    layer = gpubp.Dense(4, 3, seed=0)
    layer.params  # noqa: B018  (drawn now: a draw counts as a replacement too)
    W, generation = np.zeros((4, 3), np.float32), layer.generation
    layer.params.update(W=W)
    assert layer.params["W"] is W and layer.generation == generation + 1
    assert layer.params.setdefault("W") is W
    np.testing.assert_array_equal(layer.forward(np.ones((2, 4), np.float32)), np.zeros((2, 3)))
