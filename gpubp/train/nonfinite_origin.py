"""Where a data-parallel epoch's loss first was NaN/Inf, and on which ranks.

Once one rank's loss is not finite, so is its gradient, and the summed gradient carries it into
every rank's parameters: from the next step on every rank's loss is NaN, and the epoch's loss
alone cannot tell where it began. Each rank therefore keeps one flag per step on its device (its
loss was finite), written with no host sync and read, and shared over the ranks, only when the
epoch's loss is not finite.
"""
from __future__ import annotations

import numpy as np

from .._compat import to_host


class FiniteSteps:
    """``flags[s]``: whether this rank's loss at step ``s`` of the epoch was finite (True where the
    rank held no sample of the step)."""

    def __init__(self, backend, steps: int):
        with backend.activate():
            self.flags = backend.xp.ones(steps, dtype=bool)
        self.xp = backend.xp

    def mark(self, step: int, value) -> None:
        """Flag step ``step`` by its loss ``value`` (a 0-d array on the device): one launch, no sync."""
        self.xp.isfinite(value, out=self.flags[step, ...])

    def origin(self, comm, epoch: int) -> str:
        """Where the loss was first not finite, for the error's message: the step and the ranks
        (every rank calls this, alike: one small all-reduce). Empty where no rank's loss was."""
        bad = np.flatnonzero(~to_host(self.flags))
        mine = int(bad[0]) + 1 if bad.size else 0  # 1 + the step; 0: finite throughout
        firsts = [int(f) - 1 for f in comm.allreduce_scalars(*(mine if r == comm.rank else 0
                                                                for r in range(comm.size)))]
        return origin_words(firsts, epoch)


def origin_words(firsts: list, epoch: int) -> str:
    """The words for ``firsts``, each rank's first step with a non-finite loss (-1: none)."""
    seen = [s for s in firsts if s >= 0]
    if not seen:
        return ""
    step = min(seen)
    ranks = [r for r, s in enumerate(firsts) if s == step]
    where = f"epoch {epoch + 1}, step {step}"
    if len(ranks) == len(firsts):
        return f"; it was first not finite at {where} on every rank at once"
    named = f"rank {ranks[0]}" if len(ranks) == 1 else "ranks " + ", ".join(map(str, ranks))
    return (f"; it was first not finite at {where} on {named} of {len(firsts)} alone (the other ranks' "
            f"losses followed through the summed gradients): look at {named}'s samples of that step "
            f"(values that overflow the model) or at what its callbacks do")
