"""A learning rate or hyperparameter beyond the model's dtype (lr=1e39 in float32) is refused at the
step, the parameters and step count unchanged. Was: the scalar was rounded to inf on its way to the
kernel and every parameter became inf or NaN at once (NumPy warned; CuPy says nothing)."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.optim import SGD, Adam, RMSprop


def model(dtype="float32"):
    m = gpubp.Sequential([gpubp.Dense(3, 2)], dtype=dtype, seed=0)
    for g in m.gradients().values():
        g[...] = 1
    return m


@pytest.mark.parametrize("make, name", [
    (lambda: SGD(lr=1e39), "lr"),
    (lambda: SGD(lr=0.1, momentum=0.9, weight_decay=1e300), "weight_decay"),
    (lambda: RMSprop(lr=1e300), "lr"),
    (lambda: Adam(lr=0.1, eps=1e300), "eps"),
    (lambda: Adam(lr=1e300, weight_decay=0.1), "step_size"),
])
def test_a_scalar_beyond_the_model_dtype_is_refused_leaving_the_model(make, name):
    m, opt = model(), make()
    before = {k: v.copy() for k, v in m.parameters().items()}
    with np.errstate(all="raise"):  # no overflow on the way to the refusal either
        with pytest.raises(InvalidValueError, match=rf"the step's {name} = .* beyond the model's float32"):
            opt.step(m)
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(v, before[k])
    assert opt.t == 0


def test_the_same_rate_steps_a_float64_model_and_a_rate_set_later_is_checked_too():
    m = model("float64")
    SGD(lr=1e39).step(m)
    assert all(np.isfinite(v).all() for v in m.parameters().values())
    m, opt = model(), SGD(lr=0.1)
    opt.step(m)
    opt.lr = 1e39  # a schedule's
    with pytest.raises(InvalidValueError, match="lr = 1e\\+39"):
        opt.step(m)
    assert opt.t == 1 and all(np.isfinite(v).all() for v in m.parameters().values())
