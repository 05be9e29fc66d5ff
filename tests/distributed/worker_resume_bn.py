"""Run under ``mpiexec -n N python worker_resume_bn.py <out> <epochs> [resume]`` (or in one process,
without a communicator, with ``--one``): a fit of a model with BatchNorm on images (the cumulative average, with
its count), BatchNorm on features and two Dropouts, a checkpoint every epoch to ``<out>/ck.npz``,
continuing ``resume`` when given; rank 0 writes its parameters and buffers to ``<out>/state.json``
and the data to ``<out>/data.npz``.
22 samples in batches of 5: the last batch's 2 leave a third rank idle."""
import json
import sys
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world


def problem():
    """The model (float64, drawn from seed 4), data and fit arguments every part shares."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((22, 2, 5, 5)), rng.integers(0, 3, 22)
    model = gpubp.Sequential([gpubp.Conv2D(2, 3, 3, bias=False), gpubp.BatchNorm(3, momentum=None), gpubp.ReLU(),
                              gpubp.Dropout(0.3), gpubp.Flatten(), gpubp.Dense(27, 8, bias=False), gpubp.BatchNorm(8),
                              gpubp.Tanh(), gpubp.Dropout(0.2), gpubp.Dense(8, 3)],
                             backend="cpu", dtype="float64", seed=4)
    return model, X, y, {"optimizer": "sgd", "lr": 0.05, "batch_size": 5, "seed": 7, "progress": False}


def train(out, epochs, resume=None, comm=None):
    model, X, y, kwargs = problem()
    gpubp.fit(model, X, y, epochs=epochs, comm=comm, checkpoint_path=str(Path(out, "ck.npz")), checkpoint_every=1,
              resume_from=resume, **kwargs)
    if comm is None or comm.is_root:  # and the data, for `gpubp train --data`
        np.savez(Path(out, "data.npz"), X=X, y=y)
        state = {**model.parameters(), **{f"buffer {k}": v for k, v in model.buffers().items()}}
        Path(out, "state.json").write_text(json.dumps({k: np.asarray(v).tolist() for k, v in state.items()}))


def main():
    args = [a for a in sys.argv[1:] if a != "--one"]
    train(args[0], int(args[1]), args[2] if len(args) > 2 else None, comm=None if "--one" in sys.argv else world())


if __name__ == "__main__":
    main()
