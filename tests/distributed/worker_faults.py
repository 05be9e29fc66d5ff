"""Run under ``mpiexec -n 2``: one rank fails; every rank must stop, none may hang.

``guard``: rank 1's data holds a NaN, checked inside ``comm.guard``: both ranks raise the same
RankFailure, catch it and write it to ``<out>/data<r>.txt`` (a coordinated error leaves the ranks
in step, so they can go on); then rank 1 raises in step 1 of a guarded training loop: both raise
the same RankFailure again, write it to ``<out>/rank<r>.txt`` and exit 1 with it uncaught.
``abort``: rank 1 raises outside any guard while rank 0 waits in an all-reduce; the abort hook
ends both (MPI_Abort).
``interrupt``: rank 1 alone gets a Ctrl-C (SIGINT) in step 1 of a data-parallel fit: both ranks
stop at the end of that step and write how many steps they ran and their parameters to
``<out>/rank<r>.json``. ``interrupt-twice``: rank 1 gets two, which abort both ranks.
``cli-interrupt``: rank 1's ``gpubp train --distributed`` is interrupted while it reads the data,
which rank 0 waits for in a collective: both ranks end.
``batchnorm-step``: in a data-parallel fit of a model with two BatchNorms, a layer between them
raises on rank 1 in step 2, after the first BatchNorm's sums over the ranks and before the
second's, which rank 0 goes on to: both ranks raise the same RankFailure and write it, with
whether their parameters are those before the epoch, to ``<out>/rank<r>.json``.
"""
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed import RankFailure
from gpubp.distributed.mpi import world


def record(comm, path, fn, reraise):
    try:
        fn()
    except RankFailure as exc:
        Path(path).write_text(str(exc))
        if reraise:
            raise
        return
    Path(path).write_text("no error")


def nan_data(comm):
    X = np.random.default_rng(comm.rank).standard_normal((16, 4))
    if comm.rank == 1:
        X[5, 2] = np.nan
    backend = gpubp.get_backend("cpu", "float64")
    with comm.guard("loading the data"):
        backend.check_finite(backend.asarray(X), f"rank {comm.rank}'s shard of X")


def failing_step(comm):
    model = gpubp.mlp(4, [3], 2, backend="cpu", dtype="float64", seed=0)
    opt, loss = gpubp.SGD(lr=0.1), gpubp.MSE()
    X, y = np.ones((8, 4)), np.zeros((8, 2))
    for step, (local, global_n) in enumerate(comm.local_batches(8, 4, 0, 0)):
        with comm.guard(f"training step {step}"):
            if comm.rank == 1 and step == 1:
                raise ValueError("a callback on rank 1 refused the batch")
            loss.forward(model.forward(X[local]), y[local])
            model.zero_grad()
            model.backward(loss.backward(), input_grad=False)
        comm.allreduce_gradients_(model, len(local), global_n)
        opt.step(model)


def interrupted_fit(comm, out, times):
    """A data-parallel fit whose rank 1 receives ``times`` SIGINTs in step 1 of the first epoch."""
    model = gpubp.mlp(4, [3], 2, backend="cpu", dtype="float64", seed=0)
    X = np.random.default_rng(0).standard_normal((64, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    steps = []

    class Interrupt:
        def on_batch_end(self, step, model, value):
            steps.append(step)
            if comm.rank == 1 and len(steps) == 2:
                for _ in range(times):
                    os.kill(os.getpid(), signal.SIGINT)

    history = gpubp.fit(model, X, y, optimizer="sgd", lr=0.1, epochs=3, batch_size=8, comm=comm,
                        callbacks=[Interrupt()], progress=False)
    params = {name: p.tolist() for name, p in model.parameters().items()}
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps(
        {"interrupted": history.interrupted, "steps": len(steps), "epochs": history.epochs, "params": params}))


class FailsOnRank1(gpubp.nn.Layer):
    """Y = X, dX = dY; raises on rank 1 at its third training forward."""

    def __init__(self, rank):
        super().__init__()
        self.rank, self.calls = rank, 0

    def forward(self, X):
        self.calls += self.training
        if self.rank == 1 and self.calls == 3:
            raise ValueError("a layer on rank 1 refused its share")
        return X

    def backward(self, dY):
        return dY


def batchnorm_step(comm, out):
    model = gpubp.Sequential([gpubp.Dense(4, 6, bias=False), gpubp.BatchNorm(6), gpubp.Tanh(), FailsOnRank1(comm.rank),
                              gpubp.Dense(6, 5, bias=False), gpubp.BatchNorm(5), gpubp.ReLU(), gpubp.Dense(5, 2)],
                             backend="cpu", dtype="float64", seed=0)
    before = {k: p.copy() for k, p in model.parameters().items()}
    X = np.random.default_rng(0).standard_normal((32, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    try:
        gpubp.fit(model, X, y, optimizer="sgd", lr=0.1, epochs=2, batch_size=8, comm=comm, progress=False, plan=False)
        error = "no error"
    except RankFailure as exc:
        error = str(exc)
    undone = all(np.array_equal(p, before[k]) for k, p in model.parameters().items())
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({"error": error, "undone": undone}))


def cli_interrupt(comm, out):
    from gpubp.cli import main as cli_main
    from gpubp.cli import train

    if comm.rank == 1:
        def prepare(*args, **kwargs):
            raise KeyboardInterrupt
        train.prepare = prepare
    code = cli_main(["train", "--distributed", "--device", "cpu", "--epochs", "1", "--quiet"])
    Path(out, f"rank{comm.rank}.txt").write_text(f"rank {comm.rank} returned {code}")


def main():
    mode, out = sys.argv[1], sys.argv[2]
    comm = world()
    if mode == "guard":
        record(comm, Path(out, f"data{comm.rank}.txt"), lambda: nan_data(comm), reraise=False)
        record(comm, Path(out, f"rank{comm.rank}.txt"), lambda: failing_step(comm), reraise=True)
    elif mode == "abort":
        if comm.rank == 1:
            raise RuntimeError("rank 1 crashed outside any guard")
        comm.allreduce_scalars(1.0)  # rank 1 never joins: only the abort ends this
        Path(out, "rank0.txt").write_text("rank 0 returned from a collective rank 1 never entered")
    elif mode in ("interrupt", "interrupt-twice"):
        interrupted_fit(comm, out, 1 if mode == "interrupt" else 2)
    elif mode == "cli-interrupt":
        cli_interrupt(comm, out)
    elif mode == "batchnorm-step":
        batchnorm_step(comm, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
