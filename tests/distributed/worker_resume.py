"""Run under ``mpiexec -n N``: data-parallel fits that write or resume a checkpoint, for
tests/distributed/test_resume_across_ranks.py (which runs the single-process halves itself).

``train <out> <epochs> [resume]``: fit the shared problem for ``epochs`` epochs (continuing
``<out>/resume.npz`` when asked), a checkpoint every epoch to ``<out>/ranks.npz``; rank 0 writes
its parameters to ``<out>/params.json``.
``kill <out>``: as ``train`` for 3 epochs, but rank 0 is killed (SIGKILL) halfway through
writing its second checkpoint.
"""
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import gpubp
import gpubp.checkpoint


def problem():
    """The model (float64, drawn from seed 3), data and fit arguments every half shares."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((45, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    model = gpubp.mlp(6, [8], 3, activation="tanh", backend="cpu", dtype="float64", seed=3)
    return model, X, y, {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "seed": 7, "progress": False}


def train(comm, out, epochs, resume):
    model, X, y, kwargs = problem()
    gpubp.fit(model, X, y, epochs=epochs, comm=comm, checkpoint_path=str(out / "ranks.npz"), checkpoint_every=1,
              resume_from=str(out / "resume.npz") if resume else None, **kwargs)
    if comm.is_root:
        (out / "params.json").write_text(json.dumps({k: v.tolist() for k, v in model.parameters().items()}))


def killed_while_saving(comm, out):
    if comm.rank == 0:
        write, saves = gpubp.checkpoint.write_atomically, []

        def dies_halfway(path, fill):
            saves.append(path)
            if len(saves) < 2:
                return write(path, fill)

            def half(f):
                f.write(b"PK\x03\x04" + bytes(1000))  # the start of an archive, then the process dies
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return write(path, half)
        gpubp.checkpoint.write_atomically = dies_halfway
    train(comm, out, 3, resume=False)


def main():
    from gpubp.distributed.mpi import world  # starts MPI: not when the test imports problem()

    mode, out = sys.argv[1], Path(sys.argv[2])
    comm = world()
    if mode == "train":
        train(comm, out, int(sys.argv[3]), resume=len(sys.argv) > 4)
    elif mode == "kill":
        killed_while_saving(comm, out)
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
