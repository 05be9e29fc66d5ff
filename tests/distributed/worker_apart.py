"""Run under ``mpiexec -n N python worker_apart.py <case> <out>``: a data-parallel fit in which the
ranks' models would come apart. Every rank writes ``<out>/rank<r>.json``: the error fit raised
(class and message), the epochs of its history, its parameters, and the parameters after a fit of
a fresh model on the same communicator (which must still work and agree).

Cases: ``nudge``: the last rank adds 1 to a weight in ``on_batch_end`` of epoch 2; ``lr``: it sets
its optimizer's lr in ``on_epoch_begin`` of epoch 2; ``shard``: each rank passes its own share of
the data (Horovod's way), not the whole set; ``dropout`` / ``batchnorm``: a Dropout(0.5) or a
BatchNorm in batches of 2 (with 3 ranks, one rank has no sample at any step, and must take its part
in each step all the same: Dropout's draw, BatchNorm's sums over the shares), each rank's result
also compared with a single process's fit (``single``: the largest difference, relative to the largest value).
``one-sample``: a BatchNorm in batches of 31 of the 32 samples, a last global batch of one, which
every rank refuses alike before training.
"""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world

X = np.random.default_rng(0).standard_normal((32, 4))
y = (X[:, 0] > 0).astype(np.int64)
BATCH = {"dropout": 2, "batchnorm": 2, "one-sample": 31}  # 8 for the other cases


def fresh(case=""):
    middle = {"batchnorm": [gpubp.BatchNorm(3)], "dropout": [gpubp.Dropout(0.5)],
              "one-sample": [gpubp.BatchNorm(3)]}.get(case, [])
    return gpubp.Sequential([gpubp.Dense(4, 3, bias=case != "batchnorm"), *middle, gpubp.Tanh(), gpubp.Dense(3, 2)],
                            backend="cpu", dtype="float64", seed=0)


class Apart:
    """The last rank alone changes a value of its model or optimizer (``case``)."""

    def __init__(self, comm, case, optimizer):
        self.case, self.last, self.optimizer = case, comm.rank == comm.size - 1, optimizer
        self.epoch = 0

    def on_epoch_begin(self, epoch, model):
        self.epoch = epoch
        if self.last and epoch == 1 and self.case == "lr":
            self.optimizer.lr = 0.5

    def on_batch_end(self, step, model, value):
        if self.last and self.epoch == 1 and step == 1 and self.case == "nudge":
            model.parameters()["0.W"][0, 0] += 1.0


def main():
    case, out = sys.argv[1], sys.argv[2]
    comm = world()
    optimizer = gpubp.SGD(lr=0.1)
    model = fresh(case)
    mine = slice(comm.rank, None, comm.size) if case == "shard" else slice(None)
    try:
        history = gpubp.fit(model, X[mine], y[mine], optimizer=optimizer, epochs=3, batch_size=BATCH.get(case, 8),
                            comm=comm, callbacks=[Apart(comm, case, optimizer)], progress=False)
        error, epochs = ["none", ""], history.epochs
    except Exception as exc:
        error, epochs = [type(exc).__name__, str(exc)], getattr(getattr(exc, "history", None), "epochs", None)
    params = np.concatenate([p.ravel() for p in model.parameters().values()]).tolist()
    buffers = {k: np.asarray(a).tolist() for k, a in model.buffers().items()}
    worst = None
    if case in ("dropout", "batchnorm"):
        single = fresh(case)
        gpubp.fit(single, X, y, optimizer=gpubp.SGD(lr=0.1), epochs=3, batch_size=BATCH[case], progress=False)
        mine = np.concatenate([a.ravel() for a in [*model.parameters().values(), *model.buffers().values()]])
        ref = np.concatenate([a.ravel() for a in [*single.parameters().values(), *single.buffers().values()]])
        worst = float(np.max(np.abs(mine - ref)) / np.max(np.abs(ref)))  # norm-wise
    after = fresh()
    gpubp.fit(after, X, y, optimizer="sgd", lr=0.1, epochs=2, batch_size=8, comm=comm, progress=False)
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({
        "error": error, "epochs": epochs, "params": params, "buffers": buffers, "single": worst,
        "after": np.concatenate([p.ravel() for p in after.parameters().values()]).tolist()}))


if __name__ == "__main__":
    main()
