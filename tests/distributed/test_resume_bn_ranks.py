"""A data-parallel run of a model with BatchNorm (on images, momentum=None with its count, and on
features) and Dropout, resumed from its checkpoint on another number of ranks (3 -> 1, 1 -> 2,
2 -> 3), continues as if never stopped: the parameters within 1e-12 (norm-wise) of an uninterrupted
single process's, the running estimates too, and the counts (BatchNorm's num_batches_tracked,
Dropout's step) and Dropout's seeds exactly. Runs ``worker_resume_bn.py`` under mpiexec."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT
from test_mpi_world import HERE, launch

EPOCHS = 4
EXACT = ("buffer 1.num_batches_tracked", "buffer 3.seed", "buffer 3.step", "buffer 8.seed", "buffer 8.step")


def state(out):
    return json.loads((out / "state.json").read_text())


def train(out, n, epochs, resume=None):
    """``worker_resume_bn.py`` on ``n`` ranks, or in one process without a communicator (``n`` = 1)."""
    args = [out, epochs, *([resume] if resume else [])]
    if n == 1:
        done = subprocess.run([sys.executable, HERE / "worker_resume_bn.py", *map(str, args), "--one"], capture_output=True,
                              text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-3000:]
        return
    code, output, _ = launch("worker_resume_bn.py", *args, n=n, timeout=120)
    assert code == 0, output[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    train(out, 1, EPOCHS)
    return state(out)


def assert_continues(got, want):
    assert got.keys() == want.keys()
    for name in EXACT:
        assert got[name] == want[name], name
    assert want["buffer 3.step"] == EPOCHS * 5  # 5 steps an epoch, idle ranks counted
    for name in set(want) - set(EXACT):
        a, b = np.asarray(got[name]), np.asarray(want[name])
        assert np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b), name


@pytest.mark.parametrize("before, after", [(3, 1), (1, 2), (2, 3)], ids=["3-then-1", "1-then-2", "2-then-3"])
def test_a_run_resumed_on_another_number_of_ranks_is_one_run(tmp_path, uninterrupted, before, after):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    train(first, before, 2)
    train(second, after, EPOCHS, first / "ck.npz")
    assert_continues(state(second), uninterrupted)
