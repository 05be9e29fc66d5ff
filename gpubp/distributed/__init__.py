"""Data-parallel training across processes: MPI on CPUs, NCCL between GPUs.

Each of N processes (ranks, started by ``mpiexec -n N``) holds a copy of the model, trains on its
share of every global batch, and the ranks sum their gradients, weighted so the result is the
gradient of the mean loss over the global batch: the same step a single process takes.

* ``sharding``: which samples a rank takes (same permutation from ``(seed, epoch)`` everywhere)
  and the gradient weight ``n_r / B``; pure functions.
* ``buckets``: gradients flattened into one preallocated buffer, reduced in buckets of a few MB.
* ``mpi``: the communicator, ``from gpubp.distributed.mpi import world`` (importing that module
  starts MPI, so this package does not import it).
* ``collectives``: the communicator's sums and broadcasts of arrays, in place and bucketed.
* ``transport``: MPI itself and the MPI transport; ``nccl``: the GPU transport used on CUDA devices.
* ``devices``: which GPU (or the CPU) each rank takes, agreed by every rank.
* ``faults``: an exception on one rank raised on every rank (``guard``), or every rank aborted; a
  rank that ends its program tells the others, so none waits for it in a guard for ever.
* ``errors``: ``DistributedError``; ``RankFailure`` and ``MismatchError`` are raised alike on every rank.
* ``consistency``: what every rank must share (versions, device kind, model, the arrays of a
  collective, the weights while training) and how a difference is told.

The core never imports this package, and ``import gpubp`` does not: fit receives a communicator
object and calls its methods.
"""
from .buckets import DEFAULT_BUCKET_BYTES, FlatBuckets
from .errors import DistributedError, MismatchError, RankFailure
from .sharding import epoch_order, grad_scale, local_batches, shard, shard_bounds

__all__ = ["DEFAULT_BUCKET_BYTES", "FlatBuckets", "DistributedError", "MismatchError", "RankFailure",
           "epoch_order", "grad_scale", "local_batches", "shard", "shard_bounds"]
