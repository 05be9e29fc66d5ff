"""A Loss or Schedule of one's own that lacks the method gpubp calls says which and what it returns.
Was: a NotImplementedError with no message at all (fit's first batch ended in a bare traceback)."""
import numpy as np
import pytest

import gpubp
from gpubp.losses import Loss
from gpubp.schedules import Schedule


class NoBackward(Loss):
    def forward(self, Y, T):
        return ((Y - T) ** 2).mean()


class Nothing(Loss):
    pass


class NoRate(Schedule):
    pass


@pytest.mark.parametrize("loss, words", [(NoBackward(), r"NoBackward defines no backward\(\): .* returns dL/dY"),
                                         (Nothing(), r"Nothing defines no forward\(Y, T\): .* mean loss")])
def test_a_loss_of_one_s_own_without_a_method_names_it_in_fit(loss, words):
    X = np.ones((4, 3), np.float32)
    with pytest.raises(NotImplementedError, match=words):
        gpubp.fit(gpubp.Sequential([gpubp.Dense(3, 1)], seed=0), X, X[:, :1], loss=loss, epochs=1)


def test_a_schedule_of_one_s_own_without_rate_names_it():
    with pytest.raises(NotImplementedError, match=r"NoRate defines no rate\(epoch\)"):
        NoRate(0.1)(0)
