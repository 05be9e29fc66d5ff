"""Run under ``mpiexec -n N python worker_nonfinite_origin.py <case> <plan> <out>``: a data-parallel
float32 fit of 12 samples in global batches of 4, unshuffled, whose loss becomes not finite.
``sample``: sample 6 (in one rank's share of step 1) holds 1e30, which overflows the squared error
there alone (and at step 2 on every rank, its gradient summed into every rank's parameters); ``rate``: a learning rate of 1e30 makes every rank's
loss overflow at step 1 at once. Every rank writes ``<out>/rank<r>.json``: the error fit raised and
whether the parameters are those from before the epoch."""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world

X = np.random.default_rng(0).standard_normal((12, 3)).astype(np.float32)
y = np.random.default_rng(1).standard_normal((12, 2)).astype(np.float32)


def main():
    case, plan, out = sys.argv[1], sys.argv[2] == "plan", sys.argv[3]
    if case == "sample":
        X[6, 1] = 1e30
    comm = world()
    model = gpubp.mlp(3, [5], 2, "relu", "cpu", "float32", seed=0)
    before = [p.copy() for p in model.parameters().values()]
    try:
        gpubp.fit(model, X, y, loss="mse", optimizer="sgd", lr=1e30 if case == "rate" else 0.01, epochs=1,
                  batch_size=4, shuffle=False, comm=comm, progress=False, plan=plan)
        error = ["none", ""]
    except Exception as exc:
        error = [type(exc).__name__, str(exc)]
    kept = all(np.array_equal(a, b) for a, b in zip(before, model.parameters().values()))
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({"error": error, "kept": kept}))


if __name__ == "__main__":
    main()
