"""`gpubp check`, `gpubp info` and `gpubp parity` from the command line."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gpubp
from gpubp import _compat, cli
from gpubp.backend import KERNELS
from helpers import ROOT



def gpubp_cmd(*args):
    env = {k: v for k, v in os.environ.items() if k != "GPUBP_DEVICE"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "gpubp", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_check_passes_here_and_prints_every_item():
    done = gpubp_cmd("check")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("versions", "nvrtc", "kernel cache", "tf32", "kernels", "gradients", "parity"):
        assert f"] {name}:" in done.stdout
    assert "0 failure(s)" in done.stdout


def test_check_json(capsys):
    assert cli.main(["check", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert {i["status"] for i in items} <= {"ok", "warning"}
    assert any(i["name"] == "gradients" for i in items)


def test_broken_kernel_makes_check_fail(monkeypatch, capsys):
    relu = KERNELS["relu_backward"]
    broken = dataclasses.replace(relu, numpy=lambda g, z, delta: np.multiply(g, z >= -0.5, out=delta))
    monkeypatch.setitem(KERNELS, "relu_backward", broken)
    assert cli.main(["check", "--cpu-only"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] kernels:" in out and "relu_backward" in out and "fix:" in out


def test_info_names_the_auto_choice_and_reason():
    done = gpubp_cmd("info")
    assert done.returncode == 0, done.stderr
    device, reason = gpubp.auto_choice()
    assert f"auto -> {device}: {reason}" in done.stdout
    assert f"gpubp {gpubp.__version__}" in done.stdout and f"NumPy {np.__version__}" in done.stdout


def test_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["auto"]["device"] == gpubp.auto_choice()[0]
    assert info["versions"]["numpy"] == np.__version__
    assert info["cpu_threads"] >= 1


def test_info_says_whether_a_steps_host_arrays_lie_on_huge_pages(monkeypatch, capsys, tmp_path):
    setting = tmp_path / "enabled"
    setting.write_text("always madvise [never]\n")
    monkeypatch.setattr(gpubp.backend.huge_pages, "SETTING", setting)
    assert cli.main(["info"]) == 0
    assert "a step's host arrays on 2 MiB pages: no (transparent huge pages: never)" in capsys.readouterr().out


def test_info_says_how_many_threads_cpu_kernels_use(monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cli.main(["info"]) == 0
    assert "3 thread(s) (OMP_NUM_THREADS=3)" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["junk", "0", "-2"])
def test_info_says_when_omp_num_threads_is_not_used(value, monkeypatch, capsys):
    """Before: OMP_NUM_THREADS=junk ran on every core while info said "(OMP_NUM_THREADS=junk)", and
    0 or -2 ran one thread; a value that is not a whole number >= 1 now means every core, said so."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = gpubp.backend.threads()
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert gpubp.backend.threads() == cores and gpubp.backend.omp_threads() is None
    assert cli.main(["info"]) == 0
    assert (f"{cores} thread(s) (all usable cores: OMP_NUM_THREADS='{value}' is not a whole number >= 1)"
            in capsys.readouterr().out)


def test_a_cupy_whose_import_fails_is_not_called_missing(tmp_path):
    """Before: CuPy installed but failing at import (CUPY_CACHE_DIR it cannot create) was reported as
    "not installed ... pip install gpubp[cuda12]"; now the import error is named, with what to mend.
    A CuPy that is truly missing still says pip install."""
    blocked = tmp_path / "file"
    blocked.write_text("")
    code = ("import sys\nif sys.argv[1] == 'missing': sys.modules['cupy'] = None\n"
            "from gpubp import _compat; from gpubp.cli import main; print(_compat.cupy_problem()); main(['info'])")
    env = {**os.environ, "GPUBP_FAKE_CUPY": "", "CUPY_CACHE_DIR": str(blocked / "cache")}
    missing = subprocess.run([sys.executable, "-c", code, "missing"], capture_output=True, text=True, env=env)
    assert "CuPy is not installed" in missing.stdout and "pip install 'gpubp[cuda12]'" in missing.stdout
    assert "CuPy: not installed (NumPy only)" in missing.stdout
    if not _compat.has_cupy and not _compat.cupy_import_failed:
        return  # no CuPy here to break
    broken = subprocess.run([sys.executable, "-c", code, "broken"], capture_output=True, text=True, env=env)
    if "CuPy is installed, but importing it failed" not in broken.stdout:
        pytest.skip(f"this CuPy imports with an unusable CUPY_CACHE_DIR: {broken.stdout[:200]}")
    assert "mend what the import error names" in broken.stdout and "pip install" not in broken.stdout
    assert "CuPy: installed, but importing it failed (" in broken.stdout


def test_parity_command_within_tolerance():
    done = gpubp_cmd("parity", "cpu/float32", "cpu/float64", "--steps", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "within tolerance everywhere" in done.stdout and "0 Dense(8, 16)" in done.stdout


def test_parity_command_localises_a_fault(capsys):
    assert cli.main(["parity", "cpu", "cpu", "--steps", "3", "--widths", "4,6,5,2", "--perturb", "2:1",
                     "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    first = report["first_failure"]
    assert (first["layer"], first["step"], first["quantity"]) == (2, 1, "dX")


def test_parity_command_bad_input(capsys):
    assert cli.main(["parity", "cpu"]) == 1
    assert "give two backends" in capsys.readouterr().err
    assert cli.main(["parity", "cpu", "cpu/float16"]) == 1
    assert "float16" in capsys.readouterr().err


def test_parity_command_on_a_builtin_dataset(capsys):
    assert cli.main(["parity", "cpu/float32", "cpu/float64", "--dataset", "xor", "--widths", "1,6,1",
                     "--steps", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] == ["Dense(2, 6)", "Tanh()", "Dense(6, 2)"] and report["ok"]


def test_info_prints_a_checkpoints_provenance(tmp_path, capsys):
    from gpubp import checkpoint
    from gpubp.optim import get_optimizer
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Sigmoid(), gpubp.Dense(4, 2)], dtype="float64", seed=1)
    path = checkpoint.save(tmp_path / "model.npz", model, get_optimizer("sgd", lr=0.1),
                           extra={"seed": 11, "epochs_done": 4})
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "saved from: cpu (numpy backend), dtype float64" in out
    assert "seed: 11, epochs done: 4" in out
    assert "Dense(3, 4) -> Sigmoid() -> Dense(4, 2)" in out and "optimizer: SGD(lr=0.1" in out
    assert f"gpubp: {gpubp.__version__}\n" in out and f"numpy: {np.__version__}\n" in out
    assert cli.main(["info", str(path), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["created"] in out and meta["dtype"] == "float64"


def test_info_refuses_what_is_not_a_checkpoint(tmp_path, capsys):
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    assert cli.main(["info", str(tmp_path / "other.npz")]) == 1
    assert "not a gpubp checkpoint" in capsys.readouterr().err
    assert cli.main(["info", str(tmp_path / "missing.npz")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
