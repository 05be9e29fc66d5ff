"""scripts/bench_distributed.py started with other arguments on one rank (a wrapper passing them
per rank): one line from rank 0 naming the rank and the argument, before any measurement.

Was: the ranks timed other numbers of collectives, and rank 0 died in a raw mpi4py traceback
(MPI_ERR_TRUNCATE, from gpubp/bench/allreduce.py), then MPI_Abort."""
import sys

from helpers import ROOT
from test_mpi_world import run_mpiexec


def test_other_arguments_on_one_rank_are_refused_in_one_line(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "bench_distributed.py")]
    code, out, err = run_mpiexec(["-n", "1", *script, "--quick", ":", "-n", "1", *script], cwd=tmp_path, timeout=120)
    lines = [line for line in err.splitlines() if line.startswith("bench_distributed: error:")]
    assert code != 0 and "all-reduce of" not in out, out + err[-2000:]
    assert len(lines) == 1 and "rank 1 of 2" in lines[0] and "--quick: True on rank 0, False on rank 1" in lines[0], \
        err[-2000:]
    assert "Traceback" not in err and "MPI_ABORT" not in err, err[-2000:]
