"""LossRecord: each step's mean loss kept on the device, one float64 slot per step (one copy a step,
no sync), summed and searched for the first NaN/Inf only at the end (train/loss_record.py), and the
words that name where a loss first was not finite (train/nonfinite_origin.py)."""
import math

import numpy as np
import pytest

import gpubp
from gpubp.errors import NumericalError, ShapeError
from gpubp.losses import MSE, Loss
from gpubp.train.loss_record import LossRecord
from gpubp.train.nonfinite_origin import nonfinite_origin, origin_words


class Ranks:
    """Stands for a communicator of ``size`` ranks, as rank ``rank``: its sums add the other ranks'
    ``given`` values to this rank's."""

    def __init__(self, rank, size, given):
        self.rank, self.size, self.given = rank, size, given

    def allreduce_scalars(self, *values):
        return tuple(float(v + sum(g[i] for g in self.given)) for i, v in enumerate(values))


def test_the_sum_weighs_each_steps_mean_by_its_samples_in_float64(backend):
    losses, counts = [0.1, 1e-9, 7.25, 3.0], [32, 32, 32, 5]
    record = LossRecord(backend, 5, MSE())  # step 4: the rank held no sample
    for step, (value, n) in enumerate(zip(losses, counts)):
        record.add(step, backend.asarray(np.array(value)), n)
    in_dtype = [float(np.array(v, backend.dtype)) for v in losses]  # each L_s as the model computed it
    assert float(record) == pytest.approx(math.fsum(v * n for v, n in zip(in_dtype, counts)), rel=1e-15)
    assert record.first_nonfinite() is None


def test_the_first_step_whose_loss_is_not_finite(backend):
    record = LossRecord(backend, 5, MSE())
    for step, value in enumerate([1.0, 2.0, np.inf, np.nan]):
        record.add(step, backend.asarray(np.array(value)), 8)
    assert record.first_nonfinite() == 2
    assert math.isnan(float(record))
    assert nonfinite_origin(record, None, epoch=4) == "; it was first not finite at epoch 5, step 2"


def test_the_earliest_step_over_the_ranks_names_its_rank(backend):
    record = LossRecord(backend, 3, MSE())
    record.add(2, backend.asarray(np.array(np.nan)), 4)
    # the other two ranks: rank 0 first not finite at step 1 (1 + 1), rank 2 finite throughout (0)
    words = nonfinite_origin(record, Ranks(1, 3, [[2, 0, 0], [0, 0, 0]]), epoch=0)
    assert "at epoch 1, step 1 on rank 0 of 3 alone" in words, words
    assert nonfinite_origin(record, Ranks(0, 2, [[0, 0]]), epoch=0).endswith(
        "at epoch 1, step 2 on rank 0 of 2 alone (the other ranks' losses followed through the summed gradients): "
        "look at rank 0's samples of that step (values that overflow the model) or at what its callbacks do")


@pytest.mark.parametrize("firsts, words", [
    ([-1, -1], ""),
    ([-1, 4, 5], "at epoch 3, step 4 on rank 1 of 3 alone"),
    ([7, 7, 8, -1], "at epoch 3, step 7 on ranks 0, 1 of 4 alone"),
    ([2, 2], "at epoch 3, step 2 on every rank at once"),
])
def test_origin_words(firsts, words):
    """The earliest step wins; ranks whose loss stayed finite (-1) are not at its origin."""
    said = origin_words(firsts, epoch=2)
    assert (words in said) if words else said == ""


@pytest.mark.parametrize("plan", [True, False])
def test_fit_names_the_step_where_the_loss_first_overflowed(plan):
    """Sample 9, in step 2 of 3 (unshuffled batches of 4), overflows the squared error in float32;
    the error names that step (was: only the epoch), and the epoch is undone."""
    X = np.random.default_rng(0).standard_normal((12, 3)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((12, 2)).astype(np.float32)
    X[9, 1] = 1e30
    model = gpubp.mlp(3, [5], 2, "relu", "cpu", "float32", seed=0)
    before = [p.copy() for p in model.parameters().values()]
    with np.errstate(all="ignore"), pytest.raises(NumericalError) as err:
        gpubp.fit(model, X, y, loss="mse", optimizer="sgd", lr=0.01, epochs=1, batch_size=4, shuffle=False,
                  progress=False, plan=plan)
    assert str(err.value).startswith("training loss became inf in epoch 1; it was first not finite at epoch 1, "
                                     "step 2; parameters and optimizer state were restored"), str(err.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters().values()))


class PerSample(Loss):
    """A loss of one's own that forgets the mean: |Y - T| per sample."""

    def forward(self, Y, T):
        self.d = Y - T
        return abs(self.d).mean(axis=1)

    def backward(self, out=None):
        return (self.d > 0) * 2.0 - 1.0


@pytest.mark.parametrize("plan", [True, False])
def test_a_loss_of_ones_own_returning_per_sample_losses_is_refused_by_name(plan):
    """Was: TypeError 'only 0-dimensional arrays can be converted to Python scalars' from fit's
    first-step check, and from evaluate's sum."""
    X = np.random.default_rng(0).standard_normal((12, 3))
    y = np.random.default_rng(1).standard_normal((12, 2))
    model = gpubp.mlp(3, [5], 2, "relu", "cpu", "float64", seed=0)
    before = [p.copy() for p in model.parameters().values()]
    words = r"PerSample.forward returned an array of shape \(4,\), not the batch's mean loss"
    with pytest.raises(ShapeError, match=words):
        gpubp.fit(model, X, y, loss=PerSample(), epochs=1, batch_size=4, progress=False, plan=plan)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters().values()))
    with pytest.raises(ShapeError, match=words.replace("4", "12")):
        gpubp.evaluate(model, X, y, loss=PerSample(), batch_size=12)
