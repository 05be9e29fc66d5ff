"""The distributed benchmark's counts are whole numbers >= 1, refused by name. Was: repeat=0 a
ZeroDivisionError, rounds=0 NumPy's ValueError from the median of nothing."""
import subprocess
import sys

import pytest

from helpers import ROOT

PROBE = """
from gpubp.bench.allreduce import allreduce
from gpubp.distributed.mpi import world
for kwargs in ({"repeat": 0}, {"rounds": 0}):
    try:
        allreduce(world(), **kwargs)
    except Exception as exc:
        print(type(exc).__name__, exc)
"""


def test_allreduce_counts_are_refused_by_name():
    pytest.importorskip("mpi4py")
    # its own process: importing the benchmark starts MPI (a world of one rank), which stays for the process
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT).stdout
    assert "InvalidValueError allreduce: repeat must be" in out and "InvalidValueError allreduce: rounds must be" in out, out
