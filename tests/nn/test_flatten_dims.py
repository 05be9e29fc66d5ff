"""Flatten's start_dim and end_dim in the wrong order: refused where it is made when both count from
the same end (as PyTorch's flatten refuses them at its call), and at the first forward, saying
which comes after which, when only the input's dims tell."""
import numpy as np
import pytest

import gpubp


@pytest.mark.parametrize("dims", [(2, 1), (-1, -2), (3, 0)])
def test_start_after_end_is_refused_where_made(dims):
    """Was: Flatten(2, 1) made, then 'cannot flatten a 4-d input of shape (2, 3, 4, 5)' at the first
    forward, not saying why."""
    with pytest.raises(gpubp.InvalidValueError, match=rf"Flatten start_dim={dims[0]} comes after end_dim={dims[1]}"):
        gpubp.Flatten(*dims)


def test_start_after_end_in_the_input_s_dims_is_named():
    layer = gpubp.Flatten(2, -3)
    assert layer.forward(np.ones((2, 3, 4, 5, 6), np.float32)).shape == (2, 3, 4, 5, 6)  # dims 2..2: as it is
    with pytest.raises(gpubp.ShapeError, match=r"Flatten\(start_dim=2, end_dim=-3\) cannot flatten a 4-d input of "
                                               r"shape \(2, 3, 4, 5\): start_dim 2 is dim 2 there and end_dim -3 dim 1, "
                                               r"before it"):
        layer.forward(np.ones((2, 3, 4, 5), np.float32))
