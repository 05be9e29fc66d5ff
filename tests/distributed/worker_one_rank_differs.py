"""Run under ``mpiexec -n N`` (2 or 3): data-parallel fits that one rank alone makes go wrong,
one after another on the same communicator, for tests/distributed/test_one_rank_differs.py.

``cases <out>``: for each case every rank calls fit (the last rank with another setting, or a
file, or a callback that fails) and writes ``{case: [error type, message, parameter digest,
epochs]}`` to ``<out>/rank<r>.json``; a last fit that every rank gives alike, on the same
communicator, records its parameters next to one process's (``parameters``).
``noinit`` / ``finalized`` (one process, no mpiexec): a communicator made with MPI not
initialised, or fit given one after ``MPI.Finalize()``; prints ``ErrorType|message``.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

import gpubp


def problem(n=10):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = gpubp.mlp(4, [5], 2, "tanh", "cpu", dtype="float64", seed=0)
    return model, X, y, {"optimizer": "sgd", "lr": 0.1, "epochs": 2, "batch_size": 4, "seed": 1, "progress": False}


def flat(model):
    return np.concatenate([p.ravel() for p in model.parameters().values()])


def digest(model) -> str:
    return hashlib.sha256(b"".join(p.tobytes() for p in model.parameters().values())).hexdigest()[:16]


class FailsOn:
    """A callback whose ``hook`` raises on rank ``rank`` alone (a file only it cannot write)."""

    def __init__(self, hook, rank, me):
        fail = me == rank

        def raiser(*args):
            if fail:
                raise OSError(f"rank {me}'s callback cannot write its file")
        setattr(self, hook, raiser)


def cases(comm, out):
    last, me = comm.size - 1, comm.rank
    other = me == last  # the rank given something else
    X = problem()[1]
    vary = {  # fit's keyword arguments on the last rank
        "seed": {"seed": 2}, "epochs": {"epochs": 3}, "batch_size": {"batch_size": 3}, "shuffle": {"shuffle": False},
        "schedule": {"schedule": "cosine"}, "patience": {"patience": 1}, "loss": {"loss": "mse"},
        "validation on one rank": {"validation_data": (X, (X[:, 0] > 0).astype(np.int64))},
    }
    here = out / f"here{me}"  # this rank's own disk: what rank 0 has there, the others lack (and the reverse)
    (here / ("sub" if me == 0 else "other")).mkdir(parents=True, exist_ok=True)
    if me == 0:  # a checkpoint on rank 0's disk alone
        model, X, y, kw = problem()
        gpubp.fit(model, X, y, **{**kw, "epochs": 1}, checkpoint_path=str(here / "r.npz"), checkpoint_every=1)
    results = {}
    for case, kwargs in vary.items():
        model, X, y, kw = problem()
        if case == "loss":
            y = np.eye(2)[y]  # one-hot: fits both losses
        results[case] = run(lambda: gpubp.fit(model, X, y, comm=comm, **{**kw, **(kwargs if other else {})}), model)
    for case, kwargs in {"resume file on rank 0 only": {"resume_from": str(here / "r.npz")},
                         "checkpoint folder on rank 0 only": {"checkpoint_path": str(here / "sub" / "c.npz"),
                                                              "checkpoint_every": 1},
                         "checkpoint folder on the other ranks only": {"checkpoint_path": str(here / "other" / "c.npz"),
                                                                       "checkpoint_every": 1}}.items():
        model, X, y, kw = problem()
        results[case] = run(lambda: gpubp.fit(model, X, y, comm=comm, **kw, **kwargs), model)
    for hook in ("on_epoch_begin", "on_epoch_end"):
        model, X, y, kw = problem()
        results[f"{hook} fails on one rank"] = run(
            lambda: gpubp.fit(model, X, y, comm=comm, callbacks=[FailsOn(hook, last, me)], **kw), model)
    model, X, y, kw = problem()  # a user's guard around fit: fit's own error passes it unchanged
    results["a guard around fit"] = run(lambda: _guarded(comm, model, X, y, kw), model)
    model, X, y, kw = problem()  # the communicator after every failure above: still in step
    results["after the failures"] = run(lambda: gpubp.fit(model, X, y, comm=comm, **kw), model)
    single, X, y, kw = problem()
    gpubp.fit(single, X, y, **kw)
    results["parameters"] = [flat(model).tolist(), flat(single).tolist()]  # N ranks, one process
    (out / f"rank{me}.json").write_text(json.dumps(results))


def _guarded(comm, model, X, y, kw):
    with comm.guard("the user's training"):
        gpubp.fit(model, X, y, comm=comm, callbacks=[FailsOn("on_epoch_end", comm.size - 1, comm.rank)], **kw)


def run(fn, model):
    try:
        history = fn()
        return [None, None, digest(model), history.epochs]
    except Exception as exc:
        return [type(exc).__name__, str(exc), digest(model), getattr(getattr(exc, "history", None), "epochs", None)]


def one_process(mode):
    import mpi4py
    if mode == "noinit":
        mpi4py.rc.initialize = mpi4py.rc.finalize = False
    from gpubp.distributed.mpi import MPI, world
    try:
        comm = world()
        if mode == "finalized":
            MPI.Finalize()
            model, X, y, kw = problem()
            gpubp.fit(model, X, y, comm=comm, **kw)
        print("ok|")
    except Exception as exc:
        print(f"{type(exc).__name__}|{exc}")


def main():
    mode = sys.argv[1]
    if mode in ("noinit", "finalized"):
        return one_process(mode)
    from gpubp.distributed.mpi import world
    comm = world()
    cases(comm, Path(sys.argv[2]))
    comm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
