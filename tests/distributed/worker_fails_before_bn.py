"""Run under ``mpiexec -n N python worker_fails_before_bn.py <momentum> <out>``: a data-parallel fit
of 10 samples in batches of 4 (the last batch's 2 samples: one each for ranks 0 and 1) whose rank 0
fails in the forward of the layer before a BatchNorm, at the last step of epoch 1. Rank 0 then joins
the step's sums with an idle step's zeros (``shares.complete``), so the other ranks' BatchNorm sees
a global batch of one sample. Every rank writes ``<out>/rank<r>.json``: the error fit raised (class
and message) and a sum over the ranks after it (the communicator still in step)."""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world
from gpubp.nn.base import Layer

X = np.random.default_rng(0).standard_normal((10, 4))
y = (X[:, 0] > 0).astype(np.int64)


class FailsOnRank0(Layer):
    """Y = X, but rank 0's forward raises at the epoch's last step (the third training forward)."""

    def __init__(self, rank, backend=None):
        super().__init__(backend)
        self.rank, self.forwards = rank, 0

    def output_shape(self, shape):
        return tuple(shape)

    def output_form(self, form):
        return tuple(form)

    def config(self):
        return {"type": "FailsOnRank0"}

    def forward(self, X, out=None):
        self.forwards += self.training
        if self.rank == 0 and self.training and self.forwards == 3:
            raise ValueError("the layer before BatchNorm failed on rank 0")
        return X * 1.0

    def backward(self, dY, out=None):
        return dY * 1.0


def main():
    momentum, out = (None if sys.argv[1] == "None" else float(sys.argv[1])), sys.argv[2]
    comm = world()
    model = gpubp.Sequential([gpubp.Dense(4, 3, bias=False), FailsOnRank0(comm.rank), gpubp.BatchNorm(3, momentum=momentum),
                              gpubp.Tanh(), gpubp.Dense(3, 2)], backend="cpu", dtype="float64", seed=0)
    try:
        gpubp.fit(model, X, y, epochs=2, batch_size=4, comm=comm, progress=False, plan=False)
        error = ["none", ""]
    except Exception as exc:
        error = [type(exc).__name__, str(exc)]
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({"error": error, "after": comm.allreduce_scalars(1.0)}))


if __name__ == "__main__":
    main()
