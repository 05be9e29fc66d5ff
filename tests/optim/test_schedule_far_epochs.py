"""A StepDecay at an epoch past 1e308 decays (gives 0, or lr for gamma 1) as at any other. Was: an
OverflowError from Python's float power (the epoch is any whole number >= 0)."""
import pytest

from gpubp.schedules import Cosine, StepDecay


@pytest.mark.parametrize("epoch", [10 ** 400, 2 ** 64, 2 ** 70])
def test_far_epochs_give_the_decayed_rate(epoch):
    assert StepDecay(0.1, 1, 0.5)(epoch) == 0.0
    assert StepDecay(0.1, 1, 1.0)(epoch) == 0.1
    assert StepDecay(0.1, 1, 1 - 2 ** -53)(epoch) == 0.0  # exp(-2^11) at the cap: 0
    assert Cosine(0.1, 10, 0.01)(epoch) == 0.01
    assert StepDecay(0.1, 2, 0.5)(5) == 0.1 * 0.25
