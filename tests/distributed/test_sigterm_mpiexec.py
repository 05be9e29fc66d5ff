"""SIGTERM sent to mpiexec (``docker stop`` of a container whose process 1 is mpiexec, a scheduler's
notice, ``kill``): Open MPI passes it to every rank, which ``gpubp train`` takes as Ctrl-C, so every
rank stops at the end of the same step and rank 0 saves the epochs done. mpiexec then stops
forwarding the ranks' output, so their last lines are not shown; the saved model and the ``--log``
file are what says what was kept."""
import os
import signal
import subprocess
import sys
import time

from helpers import ROOT
from test_mpi_world import mpiexec

from gpubp import checkpoint


def test_sigterm_to_mpiexec_saves_the_whole_epochs_done(tmp_path):
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "log.csv"
    proc = subprocess.Popen([*mpiexec(), "-n", "2", sys.executable, "-m", "gpubp", "train", "--distributed",
                             "--device", "cpu", "--epochs", "100000", "--quiet", "--save", "m.npz", "--log",
                             "log.csv"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 3:  # the header and two epochs
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode != 0  # stopped, not finished
    assert "Traceback" not in output, output[-3000:]
    epochs = len(log.read_text().splitlines()) - 1
    assert epochs >= 2
    assert checkpoint.read_metadata(tmp_path / "m.npz")["extra"]["epochs_done"] == epochs, output[-3000:]
    assert checkpoint.load(tmp_path / "m.npz", "cpu").model.layers  # whole: it loads
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "m.npz"]  # no temp file left
