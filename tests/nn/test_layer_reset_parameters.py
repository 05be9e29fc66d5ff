"""``layer.reset_parameters()`` as PyTorch's is called, with no argument, redraws from the layer's own seed (the
first draw's values again where it has one), and a seed is taken as ``Sequential.reset_parameters`` takes it.
Was: TypeError "reset_parameters() missing 1 required positional argument: 'rng'", and a seed refused."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError


@pytest.mark.parametrize("make", [lambda: gpubp.Dense(4, 3, seed=5), lambda: gpubp.Conv2D(1, 2, 3, seed=5)],
                         ids=["Dense", "Conv2D"])
def test_no_argument_redraws_the_layer_s_first_draw(make):
    layer = make()
    W = layer.params["W"].copy()
    layer.params["W"][...] = 0
    layer.reset_parameters()
    np.testing.assert_array_equal(layer.params["W"], W)


def test_a_seed_draws_what_its_generator_draws():
    a, b = gpubp.Dense(4, 3), gpubp.Dense(4, 3)
    a.reset_parameters(7)
    b.reset_parameters(np.random.default_rng(7))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])


@pytest.mark.parametrize("make", [gpubp.ReLU, lambda: gpubp.BatchNorm(3), lambda: gpubp.Dropout(0.5),
                                  lambda: gpubp.Dense(4, 3)], ids=["ReLU", "BatchNorm", "Dropout", "unseeded Dense"])
def test_every_layer_takes_no_argument(make):
    make().reset_parameters()


@pytest.mark.parametrize("rng", [-1, 1.5, True, "x"])
def test_a_seed_that_is_no_whole_number_is_refused(rng):
    with pytest.raises(InvalidValueError, match=r"Dense\(4, 3\).reset_parameters: rng must be a NumPy Generator.*or "
                                                r"a seed \(a whole number >= 0\)"):
        gpubp.Dense(4, 3).reset_parameters(rng)
