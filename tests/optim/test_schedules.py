"""Learning-rate schedules against their formulas written out here, validation, and fit()."""
import math

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.schedules import Constant, Cosine, StepDecay, get_schedule


def test_constant():
    assert [Constant(0.1)(e) for e in (0, 1, 7, 1000)] == [0.1] * 4


def test_step_decay_halves_every_two_epochs():
    sched = StepDecay(1.0, step_size=2, gamma=0.5)
    assert [sched(e) for e in range(7)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_cosine_endpoints_midpoint_and_values():
    sched = Cosine(1.0, 10, min_lr=0.1)
    assert sched(0) == pytest.approx(1.0)
    assert sched(5) == pytest.approx(0.55)  # halfway: the mean of lr and min_lr
    assert sched(10) == pytest.approx(0.1)
    assert sched(25) == pytest.approx(0.1)  # stays at min_lr after the run
    # cos(pi/5) = (1 + sqrt 5) / 4, the golden ratio over 2
    assert sched(2) == pytest.approx(0.1 + 0.9 * (1 + (1 + math.sqrt(5)) / 4) / 2)
    rates = [sched(e) for e in range(11)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("name,expected", [
    ("constant", [0.3] * 9),
    (None, [0.3] * 9),
    ("step", [0.3] * 3 + [0.03] * 3 + [0.003] * 3),
    ("COSINE", [0.15 * (1 + math.cos(math.pi * e / 9)) for e in range(9)]),
])
def test_get_schedule_by_name(name, expected):
    sched = get_schedule(name, 0.3, 9)
    np.testing.assert_allclose([sched(e) for e in range(9)], expected, rtol=1e-12)


def test_get_schedule_passes_a_callable_through():
    fn = lambda epoch: 0.1 / (1 + epoch)  # noqa: E731
    assert get_schedule(fn, 1.0, 5) is fn


@pytest.mark.parametrize("make,word", [
    (lambda: Constant(-0.1), "lr"),
    (lambda: Constant(float("nan")), "lr"),
    (lambda: Constant("fast"), "lr"),
    (lambda: StepDecay(0.1, 0), "step_size"),
    (lambda: StepDecay(0.1, 1.5), "step_size"),
    (lambda: StepDecay(0.1, 2, gamma=0.0), "gamma"),
    (lambda: Cosine(0.1, 0), "total_epochs"),
    (lambda: Cosine(0.1, 10, min_lr=0.2), "min_lr"),
    (lambda: Cosine(0.1, 10, min_lr=-1), "min_lr"),
    (lambda: get_schedule("warmup", 0.1, 10), "schedule"),
])
def test_bad_arguments_are_named(make, word):
    with pytest.raises(ValueError, match=word):
        make()


@pytest.mark.parametrize("epoch", [-1, 1.5, True])
def test_bad_epoch(epoch):
    with pytest.raises(ValueError, match="epoch"):
        Cosine(0.1, 10)(epoch)


def test_fit_sets_the_scheduled_rate_each_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 3)), rng.integers(0, 2, 32)
    model = gpubp.Sequential([gpubp.Dense(3, 2)], backend="cpu", seed=0)
    history = gpubp.fit(model, X, y, optimizer="sgd", lr=0.4, epochs=4, batch_size=8,
                        schedule=StepDecay(0.4, 2, 0.5), progress=False)
    np.testing.assert_allclose(history.lr, [0.4, 0.4, 0.2, 0.2])


@pytest.mark.parametrize("make, name, value, match", [
    (lambda: StepDecay(0.1, 2), "step_size", 0, "StepDecay step_size must be a whole number >= 1, got 0"),
    (lambda: StepDecay(0.1, 2), "gamma", 1.5, "StepDecay gamma must be a finite number > 0 and <= 1, got 1.5"),
    (lambda: Cosine(0.1, 3), "total_epochs", "x", "Cosine total_epochs must be a whole number >= 1, got 'x'"),
    (lambda: Cosine(0.1, 3), "min_lr", None, "Cosine min_lr must be a finite number >= 0, got None"),
    (lambda: Constant(0.1), "lr", float("nan"), "Constant lr must be a finite number >= 0, got nan")])
def test_a_schedule_setting_set_later_is_checked_as_when_it_is_made(make, name, value, match):
    """Was: taken as it came; total_epochs = 0 ended in a raw ZeroDivisionError, 'x' in a TypeError
    from inside fit, a NaN lr in fit's message about the epoch's rate."""
    schedule = make()
    before = schedule(1)
    with pytest.raises(InvalidValueError, match=match):
        setattr(schedule, name, value)
    assert schedule(1) == before
