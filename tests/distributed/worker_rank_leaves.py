"""Run under ``mpiexec -n 2 python worker_rank_leaves.py <case>``: one rank ends its program while
the other waits for it in fit's first collective. ``skip``: rank 1 never calls fit (a script with
``if comm.is_root: fit(...)``); ``skip0``: rank 0 never does; ``finalize``: rank 1 never does and
ends with its own ``MPI.Finalize()``. The rank that ends prints
``rank <r> ended``; the one left in fit prints what it raised, if anything reaches it."""
import sys

import numpy as np

import gpubp
from gpubp.distributed.mpi import MPI, world

X = np.random.default_rng(0).standard_normal((32, 4))
y = (X[:, 0] > 0).astype(np.int64)


def main():
    case = sys.argv[1]
    comm = world()
    leaving = comm.rank == (0 if case == "skip0" else 1)
    if leaving:
        print(f"rank {comm.rank} ended", flush=True)
        if case == "finalize":
            MPI.Finalize()
        return 0
    model = gpubp.mlp(4, [3], 2, "tanh", backend="cpu", dtype="float64", seed=0)
    gpubp.fit(model, X, y, optimizer="sgd", lr=0.1, epochs=2, batch_size=8, comm=comm, progress=False)
    print(f"rank {comm.rank} trained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
