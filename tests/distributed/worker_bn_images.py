"""Run under ``mpiexec -n N python worker_bn_images.py <out>``: data-parallel fits of models with
BatchNorm on images (N, C, H, W) and Dropout, each against a single process's fit of the same model
on the same data. Every rank writes ``<out>/rank<r>.json``: per case the errors of both fits (class
and message, or None), the largest difference of the parameters and buffers from the single
process's (relative to the array's largest value), a digest of its parameters and buffers, both
histories, the epoch restore_best put back, and the warnings fit gave.

Cases (``CASES``): BatchNorm2d's options (momentum=None, affine=False, track_running_stats=False),
Dropout after it, float32, a last global batch of one image (its statistics over H W values: the
other ranks idle), validation_data with restore_best where the validation loss rises, and a callback
that puts the model in eval mode in the middle of each epoch.
"""
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

import gpubp
from gpubp.distributed.mpi import world

# name: (BatchNorm options, Dropout p or None, samples, batch size, dtype, fit options)
CASES = {
    "images": ({}, None, 13, 5, "float64", {}),
    "cumulative-no-affine": ({"momentum": None, "affine": False}, None, 13, 5, "float64", {}),
    "no-running-stats": ({"track_running_stats": False}, 0.3, 13, 5, "float64", {"validation_data": 9}),
    "dropout": ({}, 0.3, 14, 4, "float64", {}),
    "float32": ({}, 0.3, 14, 4, "float32", {}),
    "last-image-alone": ({"momentum": None}, 0.3, 11, 5, "float64", {}),
    "restore-best": ({}, 0.3, 14, 4, "float64", {"validation_data": 9, "restore_best": True, "lr": 3.0}),
    "eval-callback": ({}, 0.3, 14, 4, "float64", {"callbacks": "eval"}),
}


def model(bn, p, dtype, seed):
    dropout = [gpubp.Dropout(p)] if p is not None else []
    return gpubp.Sequential([gpubp.Conv2D(2, 3, 3, bias=False), gpubp.BatchNorm(3, **bn), gpubp.ReLU(), *dropout,
                             gpubp.Flatten(), gpubp.Dense(3 * 4 * 4, 3)], backend="cpu", dtype=dtype, seed=seed)


def data(n, seed=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 6, 6)) * 2 + 1, rng.integers(0, 3, n)


class EvalMidEpoch:
    """Puts the model in eval mode after step 1 of each epoch (fit puts it back, with a warning)."""

    def on_batch_end(self, step, model, value):
        if step == 1:
            model.eval()


def arrays(net):
    return {**net.parameters(), **{f"buffer {k}": v for k, v in net.buffers().items()}}


def fit(case, comm, seed):
    bn, p, n, batch_size, dtype, options = CASES[case]
    options = dict(options)
    if "validation_data" in options:
        options["validation_data"] = data(options["validation_data"], seed=8)
    if options.get("callbacks") == "eval":
        options["callbacks"] = [EvalMidEpoch()]
    net = model(bn, p, dtype, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            history = gpubp.fit(net, *data(n), optimizer=gpubp.SGD(lr=options.pop("lr", 0.1), momentum=0.9),
                                epochs=4, batch_size=batch_size, seed=1, progress=False, comm=comm, **options)
            error = None
        except Exception as exc:
            history, error = None, f"{type(exc).__name__}: {exc}"
    return net, history, error, sorted({str(w.message)[:80] for w in caught})


def case_result(case, comm):
    single, single_history, single_error, single_warnings = fit(case, None, 3)
    mine, history, error, warned = fit(case, comm, 3 + comm.rank)  # rank 0's draw is broadcast
    worst, digest = None, hashlib.sha256()
    if error is None and single_error is None:
        ref, got = arrays(single), arrays(mine)
        worst = max(float(np.max(np.abs(got[k].astype(np.float64) - a.astype(np.float64)))
                          / max(float(np.max(np.abs(a))), 1e-300)) for k, a in ref.items())
        for k, a in got.items():
            digest.update(k.encode() + np.ascontiguousarray(a).tobytes())
    return {"single_error": single_error, "error": error, "worst": worst, "digest": digest.hexdigest(),
            "history": None if history is None else [history.loss, history.val_loss],
            "single_history": None if single_history is None else [single_history.loss, single_history.val_loss],
            "best_epoch": getattr(history, "best_epoch", None),
            "single_best_epoch": getattr(single_history, "best_epoch", None),
            "warnings": warned, "single_warnings": single_warnings}


def main():
    out = sys.argv[1]
    comm = world()
    result = {case: case_result(case, comm) for case in CASES}
    Path(out, f"rank{comm.rank}.json").write_text(json.dumps(result, indent=1))
    comm.close()


if __name__ == "__main__":
    main()
