"""Run under ``mpiexec -n 2 python worker_gradient_agreement.py <out>``: direct calls of
``comm.allreduce_gradients_`` where the ranks pass unlike gradients (rank 1's model or
communicator differs), and alike ones, counting the agreement all-reduces and the bucket sums.
Every rank writes ``<out>/rank<r>.json``: per case the error (class, message) or the result, and
whether its gradients were left as they were."""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed import DEFAULT_BUCKET_BYTES
from gpubp.distributed.mpi import Communicator, world

comm = world()
one = comm.rank == 1


def dense(n_in, n_out, dtype="float64"):
    return gpubp.Sequential([gpubp.Dense(n_in, n_out, backend=f"cpu/{dtype}")], backend=f"cpu/{dtype}", seed=0)


def filled(model):
    for g in model.gradients().values():
        g[...] = comm.rank + 1.0
    return model


def attempt(model, on=None, scaled=False):
    """(error or "none", message, gradients left as they were on this rank)."""
    on = on or comm
    before = {k: g.copy() for k, g in model.gradients().items()}
    try:
        on.allreduce_gradients_(model, 1, 2, scaled=scaled)
        error = ["none", ""]
    except Exception as exc:
        error = [type(exc).__name__, str(exc)]
    kept = all(np.array_equal(g, before[k]) for k, g in model.gradients().items())
    return {"error": error, "kept": kept}


class Counted:
    """Counts the agreement all-reduces of one communicator."""

    def __init__(self, on):
        self.on, self.count, self.original = on, 0, on._agree_gradients
        on._agree_gradients = self

    def __call__(self, *args):
        self.count += 1
        return self.original(*args)


def main():
    out, seen = sys.argv[1], {}
    # 12 gradients on each rank, (5, 2) and (2,) on rank 0, (2, 4) and (4,) on rank 1: one bucket alike
    seen["same size, other shapes"] = attempt(filled(dense(2, 4) if one else dense(5, 2)))
    seen["other sizes"] = attempt(filled(dense(3, 4) if one else dense(4, 3)))
    seen["other dtype"] = attempt(filled(dense(4, 3, "float32" if one else "float64")))
    small = Communicator(bucket_bytes=64 if one else DEFAULT_BUCKET_BYTES)
    seen["other bucket_bytes"] = attempt(filled(dense(4, 3)), small)
    seen["refused on rank 1"] = attempt(filled(dense(4, 3)), scaled="yes" if one else False)

    counted, calls = Counted(comm), comm.transport.calls
    model = filled(dense(4, 3))
    sums = [attempt(model) for _ in range(5)]
    model.flatten_()  # its gradients move to a new flat buffer: the same layout, not agreed again
    sums.append(attempt(model))
    seen["alike"] = {"errors": [s["error"][0] for s in sums], "agreements": counted.count,
                     "bucket sums": comm.transport.calls - calls, "W": float(model.gradients()["0.W"].ravel()[0])}
    # agreed once, then a model whose layout changes alike on both ranks but differently (another width)
    changed = filled(dense(4, 5) if one else dense(4, 6))
    seen["changed later"] = attempt(changed)
    seen["changed later"]["agreements"] = counted.count

    X = np.random.default_rng(0).standard_normal((32, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    before = counted.count
    gpubp.fit(gpubp.mlp(4, [3], 2, "tanh", backend="cpu", dtype="float64", seed=0), X, y, optimizer="sgd",
              lr=0.1, epochs=2, batch_size=8, comm=comm, progress=False)
    seen["fit"] = {"agreements": counted.count - before}
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
