"""Which samples a rank trains on, and how its gradient is weighted (pure functions, no MPI).

Every rank draws the same host permutation from ``(seed, epoch)`` (fit's own batch order), cuts
it into the same global batches of ``batch_size``, and takes a contiguous share of each:
with ``B`` samples in a global batch and ``N`` ranks, rank ``r`` gets ``B // N`` samples, one
more when ``r < B % N``, in rank order. The shares of one batch are disjoint and their union,
in rank order, is exactly the single-process batch; a short last batch is split the same way,
and a batch smaller than ``N`` leaves some ranks with no sample (they still join the collectives).

Losses are means over the local batch, so a rank's gradient is ``(1 / n_r) sum_{i in r} g_i``.
Multiplied by ``n_r / B`` before the all-reduce sum::

    sum_r (n_r / B) (1 / n_r) sum_{i in r} g_i  =  (1 / B) sum_{i in batch} g_i

which is the single-process gradient of the mean loss over the global batch (only the order
of the additions differs), short last batch included.
"""
from __future__ import annotations

from .. import _checks
from ..errors import GpubpError, InvalidValueError
from ..initializers import addressable
from ..train import epoch_order  # fit's own batch order, the same on every rank


def shard_bounds(batch: int, rank: int, size: int) -> tuple[int, int]:
    """``(lo, hi)``: rank ``rank``'s contiguous share of a batch of ``batch`` samples among ``size`` ranks.

    The first ``batch % size`` ranks take ``batch // size + 1`` samples, the others ``batch // size``.
    """
    rank, size = _check_rank(rank, size)
    base, extra = divmod(_checks.integer("shard_bounds: batch", batch, minimum=0), size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def shard(indices, rank: int, size: int):
    """Rank ``rank``'s contiguous share of ``indices`` (one global batch); may be empty."""
    try:
        lo, hi = shard_bounds(len(indices), rank, size)
        return indices[lo:hi]
    except (TypeError, KeyError) as exc:  # no sequence: None, a number, a dict
        if isinstance(exc, GpubpError):
            raise
        raise InvalidValueError(f"shard: indices must be a sequence (an array of sample indices), got "
                                f"{indices!r:.60}") from None


def local_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, size: int, shuffle: bool = True):
    """Yield ``(local_indices, global_n)`` for each global batch of ``epoch``.

    ``local_indices`` (host int64, possibly empty) is this rank's share of the global batch of
    ``global_n`` samples that a single process with ``batch_size`` would train on at that step.
    """
    _check_rank(rank, size)
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    addressable("local_batches: the sample order", (_checks.integer("local_batches: n", n, minimum=0),))
    order = epoch_order(n, seed, epoch, shuffle)
    for lo in range(0, n, batch_size):
        batch = order[lo:lo + batch_size]
        yield shard(batch, rank, size), len(batch)


def grad_scale(local_n: int, global_n: int) -> float:
    """``local_n / global_n``: the factor that turns a rank's mean-loss gradient into its share of
    the global mean (see the module docstring); 0 for a rank without samples."""
    local_n = _checks.integer("grad_scale: local_n", local_n, minimum=0)
    global_n = _checks.integer("grad_scale: global_n", global_n, minimum=1)
    if local_n > global_n:
        raise InvalidValueError(f"grad_scale: need 0 <= local_n <= global_n and global_n >= 1, "
                                f"got local_n={local_n}, global_n={global_n}")
    return local_n / global_n


def _check_rank(rank, size) -> tuple[int, int]:
    rank, size = _checks.integer("rank", rank, minimum=0), _checks.integer("size", size, minimum=1)
    if rank >= size:
        raise InvalidValueError(f"rank must be in [0, size), got rank={rank}, size={size}")
    return rank, size
