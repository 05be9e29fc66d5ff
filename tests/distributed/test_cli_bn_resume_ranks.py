"""`gpubp train --resume` of a checkpoint whose model has BatchNorm (on images, momentum=None) and
Dropout, under ``mpiexec -n 3 ... --distributed`` (the last batch of each epoch leaves a rank idle):
the same model as the command in one process and as an uninterrupted fit (parameters within 1e-12
norm-wise, running estimates too, BatchNorm's count and Dropout's steps exactly). The checkpoint and
the uninterrupted run come from ``worker_resume_bn.py``. (``--schedule constant`` restates what the
command now takes by itself for a run fit saved at one rate: tests/cli/test_resume_unrecorded_schedule.py.)"""
import os
import subprocess
import sys

import numpy as np

import gpubp.checkpoint
from helpers import ROOT
from test_mpi_world import HERE, mpiexec

ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run(cmd, cwd):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def arrays(path):
    model = gpubp.checkpoint.load(path, "cpu", "float64").model
    return {**model.parameters(), **{f"buffer {k}": np.asarray(v) for k, v in model.buffers().items()}}


def test_the_train_command_resumes_batchnorm_and_dropout_on_three_ranks(tmp_path):
    whole, half = tmp_path / "whole", tmp_path / "half"
    whole.mkdir()
    half.mkdir()
    worker = HERE / "worker_resume_bn.py"
    run([sys.executable, worker, whole, 4, "--one"], tmp_path)
    run([sys.executable, worker, half, 2, "--one"], tmp_path)
    train = ["-m", "gpubp", "train", "--resume", half / "ck.npz", "--data", half / "data.npz", "--val-split", "0",
             "--epochs", 4, "--schedule", "constant", "--device", "cpu", "--quiet", "--save"]
    run([sys.executable, *train, tmp_path / "one.npz"], tmp_path)
    out = run([*mpiexec(), "-n", 3, sys.executable, *train, tmp_path / "three.npz", "--distributed"], tmp_path)
    assert "3 rank(s) over mpi" in out and out.count("saved:") == 1, out
    one, three, want = arrays(tmp_path / "one.npz"), arrays(tmp_path / "three.npz"), arrays(whole / "ck.npz")
    assert one.keys() == three.keys() == want.keys()
    assert int(want["buffer 3.step"]) == 4 * 5 and int(want["buffer 1.num_batches_tracked"]) == 4 * 5
    for name, value in want.items():
        for got in (one[name], three[name]):
            if value.dtype.kind in "iu":
                assert np.array_equal(got, value), name
            else:
                assert np.linalg.norm(got - value) <= 1e-12 * np.linalg.norm(value), name
