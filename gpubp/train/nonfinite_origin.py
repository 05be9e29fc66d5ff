"""Where an epoch's loss first was NaN/Inf: its step, and under data parallelism its ranks.

Once one rank's loss is not finite, so is its gradient, and the summed gradient carries it into
every rank's parameters: from the next step on every rank's loss is NaN, and the epoch's loss
alone cannot tell where it began. Each rank's ``LossRecord`` keeps every step's loss on its device
(loss_record.py); read, and shared over the ranks, only when the epoch's loss is not finite.
"""
from __future__ import annotations


def nonfinite_origin(record, comm, epoch: int) -> str:
    """Words for the error's message saying where the loss in ``record`` (this rank's
    ``LossRecord`` of epoch ``epoch``) first was not finite; with ``comm`` every rank calls this
    alike (one small all-reduce). Empty where no step's loss was."""
    first = record.first_nonfinite()
    if comm is None:
        return "" if first is None else f"; it was first not finite at epoch {epoch + 1}, step {first}"
    mine = 0 if first is None else first + 1  # 1 + the step; 0: finite throughout
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
