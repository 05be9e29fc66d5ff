"""Where a name is asked for (a loss, an optimizer, an initialiser) and an array comes instead (the
data given where the loss goes: gradcheck(model, X, y, "mse") for gradcheck(model, "mse", X, y)),
the error names the array by its shape, not by its values. Was: 'unknown loss array([[ 0.12573022,
-0.13210486, ...' over several lines, the data's values where the name should have been."""
import numpy as np
import pytest

import gpubp
from gpubp._checks import named
from gpubp.errors import InvalidValueError
from gpubp.initializers import get_initializer
from gpubp.losses import get_loss
from gpubp.optim import get_optimizer

X = np.random.default_rng(0).standard_normal((6, 3))


@pytest.mark.parametrize("get, what", [(get_loss, "loss"), (get_optimizer, "optimizer"),
                                       (get_initializer, "initialiser")])
def test_an_array_given_for_a_name_is_named_by_its_shape(get, what):
    with pytest.raises(InvalidValueError, match=rf"unknown {what} an array of shape \(6, 3\); choose one of") as err:
        get(X)
    assert "0.1257" not in str(err.value) and "\n" not in str(err.value)


def test_gradcheck_with_its_arguments_out_of_order_names_the_array():
    model = gpubp.mlp(3, [4], 2, "tanh", "cpu", "float64", seed=0)
    with pytest.raises(InvalidValueError, match=r"unknown loss an array of shape \(6, 3\)"):
        gpubp.gradcheck(model, X, X[:, :2], "mse")


@pytest.mark.parametrize("value, said", [("msee", "'msee'"), (None, "None"), (3, "3"), ([1, 2], "a list [1, 2]"),
                                         (gpubp.MSE(), "MSE()"), (np.ones((2, 2)), "an array of shape (2, 2)"),
                                         (np.array(1.5), "a 0-d array of float64")])
def test_named(value, said):
    assert named(value) == said
