"""``mpiexec -n 2 gpubp train --distributed`` given flags that no rank can train with: one line
from rank 0 naming the flag, every rank exits 1, no MPI_Abort and no traceback."""
import sys

import pytest

from gpubp._compat import gpu_status
from test_mpi_world import run_mpiexec


def train(tmp_path, *flags, n=2):
    return run_mpiexec(["-n", n, sys.executable, "-m", "gpubp", "train", "--distributed", "--epochs", "1", "--quiet",
                        "--dataset", "xor", *flags], cwd=tmp_path, timeout=90)


def test_cuda_graph_with_distributed_is_one_line(tmp_path):
    """Was: fit refused it on each rank alone, outside any guard, after the data was read, so the
    command aborted every rank (MPI_Abort, its banner, a line per rank)."""
    code, out, err = train(tmp_path, "--cuda-graph", "--device", "cpu")
    lines = [line for line in err.splitlines() if line.startswith("gpubp train: error:")]
    assert code == 1 and "epochs:" not in out, out + err[-2000:]
    words = "--cuda-graph replays one process's whole step as one CUDA graph: not with --distributed"
    assert len(lines) == 1 and words in lines[0], err[-2000:]
    assert "MPI_ABORT" not in err and "Traceback" not in err, err[-2000:]


def test_a_gpu_asked_for_on_ranks_without_one_is_one_line(tmp_path):
    """Was: every rank printed the same error (N lines for N ranks): the ranks agree on it, but
    each raised it as its own."""
    if gpu_status(0)[0]:
        pytest.skip("this machine has a working GPU")
    code, out, err = train(tmp_path, "--device", "gpu")
    lines = [line for line in err.splitlines() if line.startswith("gpubp train: error:")]
    assert code == 1 and "epochs:" not in out, out + err[-2000:]
    assert len(lines) == 1 and "rank 0 of 2 has no usable GPU" in lines[0], err[-2000:]
    assert "MPI_ABORT" not in err and "Traceback" not in err, err[-2000:]
