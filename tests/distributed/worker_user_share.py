"""Run under ``mpiexec -n 3 python worker_user_share.py <case> <out>``: a user's layer that takes a
share of each global batch (``takes_share = True``, nn/share.py) in a data-parallel fit of 10 samples
in batches of 3 (shares of 1, 1, 1; the last batch's 1, 0, 0: two ranks idle at the epoch's last step).
Every rank writes ``<out>/rank<r>.json``: the error fit raised (class and message), its parameters,
the largest difference from a single process's fit (relative to the largest value) and how often
its layer's ``idle_forward`` ran.

Cases: ``centre``: Centre, Y = X - mu with mu the global batch's mean (summed over the shares with
``share.sum_``, idle ranks adding zeros); ``no-idle``: a layer that says ``takes_share = True`` but
has no ``idle_forward``/``idle_backward``; ``idle-fails``: a Centre that raises on rank 1 at its
second training forward, and whose ``idle_forward`` raises too, so rank 1 cannot join the step's
remaining sums, which the other ranks wait in (every rank is then aborted).
"""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world
from gpubp.nn.base import Layer

X = np.random.default_rng(3).standard_normal((10, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
C = 5


class Centre(Layer):
    """Y = X - mu, mu the mean over the batch (the global batch's under a share, in training);
    dX = dY - (sum dY) / m over the same batch."""

    takes_share = True

    def __init__(self, backend=None):
        super().__init__(backend)
        self.share, self.idle = None, 0

    def output_shape(self, shape):
        return tuple(shape)

    def output_form(self, form):
        return tuple(form)

    def config(self):
        return {"type": "Centre"}

    def _summed(self, total):
        """``total`` (1, C) summed over the shares, and the batch size it is over."""
        if self.share is not None and self.share.sum_ is not None and self.training:
            self.share.sum_([total])
            return total, self.share.total
        return total, None

    def forward(self, X, out=None):
        total, m = self._summed(X.sum(axis=0, keepdims=True))
        return X - total / (X.shape[0] if m is None else m)

    def backward(self, dY, out=None):
        total, m = self._summed(dY.sum(axis=0, keepdims=True))
        return dY - total / (dY.shape[0] if m is None else m)

    def idle_forward(self):
        self.idle += 1
        self._summed(self.backend.zeros((1, C)))

    def idle_backward(self):
        self._summed(self.backend.zeros((1, C)))


class NoIdle(Centre):
    """Takes a share, without the methods a rank holding no sample of a step calls."""

    idle_forward = idle_backward = None


class IdleFails(Centre):
    """Raises on rank 1 at its second training forward; its idle_forward raises on any rank."""

    def __init__(self, rank, backend=None):
        super().__init__(backend)
        self.rank, self.calls = rank, 0

    def forward(self, X, out=None):
        self.calls += self.training
        if self.rank == 1 and self.calls == 2:
            raise ValueError("Centre refused rank 1's share")
        return super().forward(X, out)

    def idle_forward(self):
        raise RuntimeError("its idle step broke too")


def model(case, rank=0):
    middle = {"centre": Centre, "no-idle": NoIdle}.get(case, lambda: IdleFails(rank))()
    return gpubp.Sequential([gpubp.Dense(4, C), middle, gpubp.Tanh(), gpubp.Dense(C, 2)], backend="cpu",
                            dtype="float64", seed=0)


def main():
    case, out = sys.argv[1], sys.argv[2]
    comm = world()
    kwargs = dict(optimizer="sgd", lr=0.1, epochs=2, batch_size=3, progress=False, plan=False)
    mine = model(case, comm.rank)
    try:
        gpubp.fit(mine, X, y, comm=comm, **kwargs)
        error = ["none", ""]
    except Exception as exc:
        error = [type(exc).__name__, str(exc)]
    single = model(case)
    if case == "centre":
        gpubp.fit(single, X, y, **kwargs)
    params, ref = (np.concatenate([p.ravel() for p in m.parameters().values()]) for m in (mine, single))
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps({
        "error": error, "params": params.tolist(), "single": float(np.max(np.abs(params - ref)) / np.max(np.abs(ref))),
        "idle": mine.layers[1].idle}))


if __name__ == "__main__":
    main()
