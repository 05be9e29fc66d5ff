"""FiniteSteps: a flag per step of a data-parallel epoch, written on the device with no sync, read
and shared over the ranks only when the epoch's loss is not finite (train/nonfinite_origin.py)."""
import numpy as np

from gpubp._compat import to_host
from gpubp.train.nonfinite_origin import FiniteSteps


class Ranks:
    """Stands for a communicator of ``size`` ranks, as rank ``rank``: its sums add the other ranks'
    ``given`` values to this rank's."""

    def __init__(self, rank, size, given):
        self.rank, self.size, self.given = rank, size, given

    def allreduce_scalars(self, *values):
        return tuple(float(v + sum(g[i] for g in self.given)) for i, v in enumerate(values))


def test_flags_follow_each_steps_loss_on_the_device(backend):
    finite = FiniteSteps(backend, 5)
    for step, value in enumerate([1.0, np.nan, np.inf, 2.0]):  # step 4: the rank held no sample
        finite.mark(step, backend.asarray(np.array(value)))
    assert to_host(finite.flags).tolist() == [True, False, False, True, True]


def test_the_earliest_step_over_the_ranks_names_its_rank(backend):
    finite = FiniteSteps(backend, 3)
    finite.mark(2, backend.asarray(np.array(np.nan)))
    # the other two ranks: rank 0 first not finite at step 1 (1 + 1), rank 2 finite throughout (0)
    words = finite.origin(Ranks(1, 3, [[2, 0, 0], [0, 0, 0]]), epoch=0)
    assert "at epoch 1, step 1 on rank 0 of 3 alone" in words, words
    assert finite.origin(Ranks(0, 2, [[0, 0]]), epoch=0).endswith("at epoch 1, step 2 on rank 0 of 2 alone (the "
                                                                 "other ranks' losses followed through the summed "
                                                                 "gradients): look at rank 0's samples of that "
                                                                 "step (values that overflow the model) or at what "
                                                                 "its callbacks do")
