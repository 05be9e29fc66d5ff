"""Run under ``mpiexec -n N python worker_layout.py <case> <out>``: in a data-parallel fit, the
last rank alone changes its model or communicator, or gets a Ctrl-C in fit's argument checks.
Every rank writes ``<out>/rank<r>.json``: the error fit raised (class and message) and then the
parameters after a fit of a fresh model on the same communicator (a new one where the last rank
closed its own), which must still work and agree.

Cases (what the last rank does): ``insert`` a layer in ``on_epoch_begin`` of epoch 2;
``widen`` replaces the first two Dense layers by wider ones in ``on_batch_end`` of step 1;
``retype`` moves the model to float32 in ``on_batch_end`` of step 1; ``move`` does so in
``on_epoch_begin`` of epoch 2; ``interrupt`` gets a SIGINT during fit's argument checks,
``interrupt-start`` while fit makes its step plans, after the ranks were compared; ``close``
closes its communicator before fit; ``close-mid`` closes it in ``on_epoch_end`` of epoch 1.
"""
import importlib
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world

fit_module = importlib.import_module("gpubp.train.fit")  # the module (gpubp.train.fit is the function)

X = np.random.default_rng(0).standard_normal((32, 4))
y = (X[:, 0] > 0).astype(np.int64)


def fresh():
    return gpubp.mlp(4, [3], 2, "tanh", backend="cpu", dtype="float64", seed=0)


class Change:
    """The last rank changes its model (``case``) at the point the case names."""

    def __init__(self, comm, case):
        self.comm, self.case, self.last = comm, case, comm.rank == comm.size - 1

    def on_epoch_begin(self, epoch, model):
        if self.last and epoch == 1 and self.case == "insert":
            model.layers.insert(2, gpubp.Dense(3, 3, backend=model.backend))
        if self.last and epoch == 1 and self.case == "move":
            model.to("cpu", "float32")

    def on_batch_end(self, step, model, value):
        if self.last and step == 1 and self.case == "widen":
            model.layers[0] = gpubp.Dense(4, 5, backend=model.backend)
            model.layers[2] = gpubp.Dense(5, 2, backend=model.backend)
        if self.last and step == 1 and self.case == "retype":
            model.to("cpu", "float32")

    def on_epoch_end(self, epoch, model, history):
        if self.last and epoch == 0 and self.case == "close-mid":
            self.comm.close()


def interrupt_in(name):
    """The last rank gets a SIGINT when fit calls its ``name``: ``_prepare`` (fit's argument checks,
    inside their guard) or ``PlanCache`` (its step plans, after the ranks were compared)."""
    def patch(comm):
        original = getattr(fit_module, name)

        def interrupted(*args, **kwargs):
            if comm.rank == comm.size - 1:
                os.kill(os.getpid(), signal.SIGINT)
            return original(*args, **kwargs)

        setattr(fit_module, name, interrupted)
        return lambda: setattr(fit_module, name, original)
    return patch


def main():
    case, out = sys.argv[1], sys.argv[2]
    comm = world()
    undo = {"interrupt": interrupt_in("_prepare"), "interrupt-start": interrupt_in("PlanCache")}.get(
        case, lambda c: None)(comm)
    if case == "close" and comm.rank == comm.size - 1:
        comm.close()
    try:
        gpubp.fit(fresh(), X, y, optimizer="sgd", lr=0.1, epochs=3, batch_size=8, comm=comm,
                  callbacks=[Change(comm, case)], progress=False)
        error = ["none", ""]
    except (Exception, KeyboardInterrupt) as exc:
        error = [type(exc).__name__, str(exc)]
    if undo is not None:
        undo()
    if case.startswith("close"):  # a new one on every rank (the last rank's is closed)
        comm = world()
    model = fresh()
    gpubp.fit(model, X, y, optimizer="sgd", lr=0.1, epochs=2, batch_size=8, comm=comm, progress=False)
    params = {name: p.tolist() for name, p in model.parameters().items()}
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({"error": error, "after": params}))


if __name__ == "__main__":
    main()
