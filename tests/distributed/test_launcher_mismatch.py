"""Processes started by an mpiexec that is not the one of the MPI library mpi4py loaded (MPICH's
Hydra with Open MPI's wheel, or the reverse): each one's MPI sees a world of one process.

Was: ``gpubp train --distributed`` under such a launcher ran N whole single-process trainings side
by side, each 'rank 0 of 1', all writing the same --save (all but the first then refused it).
Now every process stops before training with one line naming the launcher's size and MPI's."""
import os
import subprocess
import sys

from helpers import ROOT
from test_mpi_world import mpiexec


def test_a_launcher_of_another_mpi_is_refused(tmp_path):
    mpiexec()  # skips where mpi4py is missing
    env = {**os.environ, "PMI_RANK": "1", "PMI_SIZE": "2",  # what MPICH's Hydra gives its second process
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for name in [k for k in env if k.startswith(("OMPI_", "PMIX_"))]:
        del env[name]
    proc = subprocess.run([sys.executable, "-m", "gpubp", "train", "--distributed", "--dataset", "xor", "--epochs", "1",
                           "--quiet", "--save", "m.npz"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("gpubp train: error:")]
    assert proc.returncode == 1 and "epochs:" not in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert len(lines) == 1 and "started as rank 1 of 2 (PMI_RANK, PMI_SIZE)" in lines[0] and \
        "sees a world of 1 process" in lines[0], proc.stderr[-2000:]
    assert not (tmp_path / "m.npz").exists()
