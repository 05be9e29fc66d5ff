"""What ported code reads of a PyTorch module (layer.weight, model.state_dict(), model.cuda()) is an
AttributeError that says where gpubp keeps it. Was: a bare "object has no attribute 'weight'"."""
import copy
import pickle

import numpy as np
import pytest

import gpubp


@pytest.mark.parametrize("make, name, words", [
    (lambda: gpubp.Dense(4, 3), "weight", r"params\['W'\] \(Dense's W is \(n_in, n_out\), PyTorch's Linear weight "
                                          r"transposed"),
    (lambda: gpubp.BatchNorm(3), "running_var", r"buffers\['running_var'\]"),
    (lambda: gpubp.BatchNorm(3), "eval", r"layer.training = False"),
    (lambda: gpubp.Sequential([gpubp.Dense(4, 3)]), "state_dict", r"parameters\(\) and buffers\(\) by name"),
    (lambda: gpubp.Sequential([gpubp.Dense(4, 3)]), "load_state_dict", r"load_parameters"),
    (lambda: gpubp.Sequential([gpubp.Dense(4, 3)]), "cuda", r"to\('cuda'\)"),
    (lambda: gpubp.Sequential([gpubp.Dense(4, 3)]), "double", r"to\('float64'\)")])
def test_a_pytorch_name_says_where_gpubp_keeps_it(make, name, words):
    with pytest.raises(AttributeError, match=rf"object has no attribute '{name}' \(PyTorch's name; in gpubp: {words}"):
        getattr(make(), name)


def test_other_names_are_plain_attribute_errors_and_copies_work():
    model = gpubp.Sequential([gpubp.Dense(4, 3), gpubp.BatchNorm(3)], seed=0)
    with pytest.raises(AttributeError, match=r"object has no attribute 'nothing'$"):
        model.nothing  # noqa: B018
    assert not hasattr(model, "weight") and not hasattr(model.layers[0], "nothing")
    X = np.ones((2, 4), np.float32)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(twin.predict(X), model.predict(X))
