"""PyTorch's ways of making a schedule: Cosine takes T_max and eta_min (CosineAnnealingLR's names) for
total_epochs and min_lr, and a schedule given the optimizer first (PyTorch's first argument) says what
to give instead. Was: a TypeError "unexpected keyword argument 'T_max'", and "lr must be a finite
number >= 0, got Adam(...)"."""
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.schedules import Cosine, StepDecay


def test_cosine_takes_pytorch_s_names():
    assert Cosine(0.1, T_max=10, eta_min=0.01)(5) == Cosine(0.1, 10, 0.01)(5)
    assert repr(Cosine(0.1, T_max=4)) == "Cosine(lr=0.1, total_epochs=4, min_lr=0.0)"


@pytest.mark.parametrize("kw", [{}, {"total_epochs": 10, "T_max": 10}, {"total_epochs": 10, "min_lr": 0.01,
                                                                        "eta_min": 0.02}])
def test_cosine_refuses_one_setting_given_twice_or_none(kw):
    with pytest.raises(InvalidValueError, match=r"Cosine takes total_epochs \(PyTorch's T_max\) once"):
        Cosine(0.1, **kw)


@pytest.mark.parametrize("make", [lambda opt: Cosine(opt, 10), lambda opt: StepDecay(opt, 2)])
def test_a_schedule_given_the_optimizer_first_says_what_to_give(make):
    with pytest.raises(InvalidValueError, match=r"takes the learning rate of epoch 0 first, not the optimizer"):
        make(gpubp.Adam(0.01))
