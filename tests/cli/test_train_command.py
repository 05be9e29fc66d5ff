"""`gpubp train` run as a user runs it: a subprocess of `python -m gpubp`."""
import subprocess
import sys

import pytest

import gpubp
from helpers import needs_gpu, needs_no_gpu


def gpubp_train(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "gpubp", "train", *args],
                          capture_output=True, text=True, timeout=timeout)


def value_after(text, label):
    return float(text.split(label)[1].split()[0])


def test_defaults_reach_the_digits_target_and_save(tmp_path):
    out = gpubp_train("--quiet", "--device", "cpu", "--save", str(tmp_path / "m.npz"))
    assert out.returncode == 0, out.stderr
    assert value_after(out.stdout, "test accuracy:") >= 0.95
    assert "device: cpu" in out.stdout and "epochs: 30" in out.stdout and "time:" in out.stdout
    assert out.stderr == ""  # --quiet: no progress line
    ck = gpubp.checkpoint.load(tmp_path / "m.npz")
    first = {"type": "Dense", "n_in": 64, "n_out": 128, "init": "he_uniform"}
    assert first.items() <= ck.model.config()[0].items()
    assert ck.metadata["extra"]["seed"] == 0 and ck.metadata["extra"]["epochs_done"] == 30
    assert ck.optimizer.t > 0


def test_auto_device_says_why(monkeypatch):
    monkeypatch.delenv("GPUBP_DEVICE", raising=False)  # auto itself (a GPU machine's tests default to the CPU)
    out = gpubp_train("--epochs", "1", "--quiet", "--hidden", "16")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("device: cuda:0") or first.startswith("device: cpu, float32 (no GPU: ")  # why not the GPU


@pytest.mark.parametrize("args, target", [
    (("--dataset", "xor", "--hidden", "8", "--activation", "tanh", "--lr", "0.05",
      "--epochs", "200", "--batch-size", "4"), 1.0),
    (("--dataset", "spirals", "--hidden", "64,64", "--epochs", "60", "--dtype", "float64"), 0.85),
])
def test_other_datasets_and_options(args, target):
    out = gpubp_train("--quiet", "--device", "cpu", *args)
    assert out.returncode == 0, out.stderr
    assert value_after(out.stdout, "test accuracy:") >= target


@pytest.mark.parametrize("args, message", [
    (("--hidden", "64,x"), "expected widths >= 1"),
    (("--lr", "-1"), "expected a finite number > 0"),
    (("--epochs", "0"), "expected a whole number >= 1"),
    (("--dataset", "mnist"), "invalid choice"),
])
def test_bad_options_are_refused(args, message):
    out = gpubp_train(*args, timeout=60)
    assert out.returncode == 2 and message in out.stderr


@needs_no_gpu
def test_gpu_requested_without_one_is_one_clear_line():
    out = gpubp_train("--device", "gpu", timeout=120)
    assert out.returncode == 1 and "cuda:0 requested but unusable" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_cnn_on_digits_reaches_98_percent_on_the_cpu_in_under_a_minute():
    out = gpubp_train("--model", "cnn", "--quiet", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert value_after(out.stdout, "test accuracy:") >= 0.98 and value_after(out.stdout, "time:") < 60


@needs_no_gpu
def test_first_line_is_short_and_names_a_missing_driver():
    out = gpubp_train("--epochs", "1", "--quiet", "--hidden", "8")
    first = out.stdout.splitlines()[0]
    assert len(first) <= 80, first
    if "InsufficientDriver" in gpubp._compat.gpu_status(0)[1]:
        assert "no NVIDIA driver found" in first or "older than" in first


@needs_gpu
@pytest.mark.parametrize("args", [(), ("--cuda-graph",), ("--model", "cnn")], ids=["mlp", "cuda-graph", "cnn"])
def test_the_readme_command_trains_on_the_gpu(tmp_path, args):
    """The README's first command where a GPU works, shortened to 8 epochs: it trains there
    (auto picks it), and the checkpoint it saves loads on the CPU."""
    out = gpubp_train("--quiet", "--epochs", "8", "--save", str(tmp_path / "m.npz"), *args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("device: cuda:0") and value_after(out.stdout, "test accuracy:") >= 0.9
    assert gpubp.checkpoint.load(tmp_path / "m.npz", "cpu").model.backend.device == "cpu"

