"""Data parallelism, measured under ``mpiexec -n N`` (``scripts/bench_distributed.py``).

* all-reduce: the gradient all-reduce of MLP (a) (784-256-256-10, float32) against
  mpi4py's own ``Allreduce`` of one buffer of the same bytes (target: ratio >= 0.9);
* weak scaling: a data-parallel training step of (a) with ``batch`` samples per rank on all
  N ranks against the same step on rank 0 alone (efficiency = t(1 rank) / t(N ranks); 1 is
  perfect: N times the samples in the same time).

Importing this module starts MPI (it imports ``gpubp.distributed.mpi``): only the script does.
Every rank runs the same iterations (a median per rank would let ranks disagree on how
often to call a collective); the time reported is the slowest rank's.
"""
from __future__ import annotations

import time

import numpy as np

from .. import _checks
from ..distributed.mpi import MPI, Communicator
from ..losses import MSE
from ..network import mlp
from ..optim import SGD

WIDTHS = [784, 256, 256, 10]


def timed(comm, fn, repeat) -> float:
    """Seconds per call of ``fn`` on the slowest rank, after two warm-up calls."""
    for _ in range(2):
        fn()
    comm.barrier()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    mine = np.array([(time.perf_counter() - t0) / repeat])
    comm.mpi.Allreduce(MPI.IN_PLACE, mine, op=MPI.MAX)
    return float(mine[0])


def gradient_shapes(widths=WIDTHS) -> list:
    return [s for a, b in zip(widths, widths[1:]) for s in ((a, b), (b,))]


def allreduce(comm, repeat=50, rounds=9, widths=WIDTHS) -> dict:
    """The gradient all-reduce of a training step as ``fit`` runs it (``allreduce_gradients_alike_``
    of gradients already scaled through dL/dY: the buckets of the flat buffer the gradients
    live in, reduced in place) against one ``Allreduce`` of the same bytes, timed in
    alternating rounds (the median round of each), so a busy machine slows both alike."""
    repeat, rounds = _checks.integer("allreduce: repeat", repeat, 1), _checks.integer("allreduce: rounds", rounds, 1)
    model = mlp(widths[0], widths[1:-1], widths[-1], "sigmoid", "cpu", seed=0)
    flat = np.concatenate([g.ravel() for g in model.gradients().values()])
    times = [(timed(comm, lambda: comm.allreduce_gradients_alike_(model, 1, comm.size, scaled=True), repeat),
              timed(comm, lambda: comm.mpi.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM), repeat))
             for _ in range(rounds)]
    bucketed, single = (float(np.median(t)) for t in zip(*times))
    return {"ranks": comm.size, "bytes": int(flat.nbytes), "buckets": -(-flat.nbytes // comm.bucket_bytes),
            "bucketed_ms": bucketed * 1e3, "single_allreduce_ms": single * 1e3,
            "ratio_single_over_bucketed": single / bucketed}


def training_step(comm, batch, repeat, widths=WIDTHS) -> float:
    """Seconds of one data-parallel step (forward, backward, all-reduce, SGD) with ``batch`` per rank."""
    model = mlp(widths[0], widths[1:-1], widths[-1], "sigmoid", "cpu", seed=0)
    rng = np.random.default_rng(comm.rank)
    X, T = rng.standard_normal((batch, widths[0])), rng.standard_normal((batch, widths[-1]))
    X, T = model.backend.asarray(X), model.backend.asarray(T)
    loss, opt = MSE(), SGD(lr=0.01)

    def step():
        model.zero_grad()
        loss.forward(model.forward(X), T)
        dY = loss.backward()
        dY *= model.backend.dtype.type(1 / comm.size)  # this rank's share, as fit scales it
        model.backward(dY, input_grad=False)
        comm.allreduce_gradients_alike_(model, batch, batch * comm.size, scaled=True)
        opt.step(model)
    return timed(comm, step, repeat)


def weak_scaling(comm, batch=256, repeat=20) -> dict:
    """The step on all ranks against the same step on rank 0 alone (the others wait)."""
    batch, repeat = _checks.integer("weak_scaling: batch", batch, 1), _checks.integer("weak_scaling: repeat", repeat, 1)
    alone = comm.mpi.Split(0 if comm.rank == 0 else MPI.UNDEFINED, comm.rank)
    one = training_step(Communicator(alone), batch, repeat) if comm.rank == 0 else 0.0
    if comm.rank == 0:
        alone.Free()
    one = comm.mpi.bcast(one, root=0)
    many = training_step(comm, batch, repeat)
    return {"ranks": comm.size, "batch_per_rank": batch, "one_rank_ms": one * 1e3, "all_ranks_ms": many * 1e3,
            "efficiency": one / many}
