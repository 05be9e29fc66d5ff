"""Run under ``mpiexec -n N``: data-parallel fits that write or resume a checkpoint, for
tests/distributed/test_resume_across_ranks.py (which runs the single-process halves itself).

``train <out> <epochs> [resume]``: fit the shared problem for ``epochs`` epochs (continuing
``<out>/resume.npz`` when asked), a checkpoint every epoch to ``<out>/ranks.npz``; rank 0 writes
its parameters to ``<out>/params.json``.
``kill <out>``: as ``train`` for 3 epochs, but rank 0 is killed (SIGKILL) halfway through
writing its second checkpoint.
``last-fails <out>``: 3 epochs, a checkpoint every 2, and rank 0's disk full when fit writes the
last epoch's: every rank writes the error it got to ``<out>/rank<r>.txt``.
"""
import errno
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


def last_checkpoint_fails(comm, out):
    model, X, y, kwargs = problem()
    if comm.rank == 0:
        ending = sys.modules["gpubp.train.ending"]  # the writer of fit's last checkpoint
        save, saves = ending.save_training, []

        def full_disk(path, *args, **kw):
            saves.append(path)
            if len(saves) > 1:
                raise OSError(errno.ENOSPC, "No space left on device", path)
            return save(path, *args, **kw)
        ending.save_training = full_disk
    try:
        gpubp.fit(model, X, y, epochs=3, comm=comm, checkpoint_path=str(out / "ranks.npz"), checkpoint_every=2,
                  **kwargs)
        outcome = "returned"
    except gpubp.errors.GpubpError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    (out / f"rank{comm.rank}.txt").write_text(outcome)


def main():
    from gpubp.distributed.mpi import world  # starts MPI: not when the test imports problem()

    mode, out = sys.argv[1], Path(sys.argv[2])
    comm = world()
    if mode == "train":
        train(comm, out, int(sys.argv[3]), resume=len(sys.argv) > 4)
    elif mode == "kill":
        killed_while_saving(comm, out)
    elif mode == "last-fails":
        last_checkpoint_fails(comm, out)
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
