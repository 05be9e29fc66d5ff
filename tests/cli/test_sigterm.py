"""SIGTERM (``docker stop``, ``kill``, a scheduler's notice) stops ``gpubp train`` as Ctrl-C does:
at the end of a step, with the model saved. Was: the process ended at once (status -15) and the
run's model was lost; as a container's process 1 it ignored SIGTERM until killed."""
import os
import signal
import subprocess
import sys
import time

from helpers import ROOT


def test_sigterm_stops_training_at_a_step_and_keeps_the_model(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "gpubp", "train", "--device", "cpu", "--epochs", "100000",
                             "--quiet", "--save", "m.npz", "--log", "log.csv"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            log = tmp_path / "log.csv"
            if log.exists() and len(log.read_text().splitlines()) >= 3:  # the header and two epochs
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, out[-2000:], err[-2000:])
    assert "Traceback" not in err
    assert "m.npz (interrupted:" in out and "saved:" in out, out[-2000:]
    epochs = len((tmp_path / "log.csv").read_text().splitlines()) - 1
    assert f"interrupted: {epochs} whole epoch(s)" in out
    from gpubp import checkpoint
    assert checkpoint.read_metadata(tmp_path / "m.npz")["extra"]["epochs_done"] == epochs
