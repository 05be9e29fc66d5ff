"""Run under ``mpiexec -n 2 python worker_epoch_begin_apart.py <case> <plan> <out>``: a data-parallel
fit of a model with BatchNorm (which sums over the ranks inside each step's forward) whose last rank
alone changes its layers in ``on_epoch_begin`` of epoch 2. Every rank writes ``<out>/rank<r>.json``:
the error fit raised (class and message).

Cases: ``remove``: it deletes the BatchNorm; ``insert``: it puts a second BatchNorm after the first;
``plan``: ``plan`` or ``eager`` steps.
"""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world

X = np.random.default_rng(0).standard_normal((12, 4))
y = (X[:, 0] > 0).astype(np.int64)


class Apart:
    """The last rank alone changes its layers at the start of epoch 2."""

    def __init__(self, comm, case):
        self.last, self.case = comm.rank == comm.size - 1, case

    def on_epoch_begin(self, epoch, model):
        if self.last and epoch == 1:
            if self.case == "remove":
                del model.layers[1]
            else:
                model.layers.insert(2, gpubp.BatchNorm(3, backend=model.backend))


def main():
    case, plan, out = sys.argv[1], sys.argv[2] == "plan", sys.argv[3]
    comm = world()
    model = gpubp.Sequential([gpubp.Dense(4, 3, bias=False), gpubp.BatchNorm(3), gpubp.Tanh(), gpubp.Dense(3, 2)],
                             backend="cpu", dtype="float64", seed=0)
    try:
        history = gpubp.fit(model, X, y, optimizer="sgd", lr=0.1, epochs=3, batch_size=4, comm=comm, progress=False,
                            callbacks=[Apart(comm, case)], plan=plan)
        error, epochs = ["none", ""], history.epochs
    except Exception as exc:
        error, epochs = [type(exc).__name__, str(exc)], getattr(getattr(exc, "history", None), "epochs", None)
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({"error": error, "epochs": epochs}))


if __name__ == "__main__":
    main()
