"""Smoke test of the benchmark script: tiny sizes, structure and sanity only (no timing targets)."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from gpubp.backend import KERNELS
from gpubp.bench.by_hand import by_hand_step
from gpubp.bench.kernels import bytes_moved
from gpubp.bench.mlp import data, gpubp_step, initial_weights
from gpubp.bench.scaling import theoretical_bytes
from helpers import ROOT



def test_bytes_moved_counts_reads_and_in_place_updates():
    n = 1000
    assert bytes_moved(KERNELS["sigmoid"], n, 4) == 2 * n * 4          # read z, write s
    assert bytes_moved(KERNELS["sigmoid_backward"], n, 4) == 3 * n * 4  # read g, s; write delta
    assert bytes_moved(KERNELS["sgd"], n, 4) == 3 * n * 4               # read grad, param; write param
    assert bytes_moved(KERNELS["adam"], n, 4) == 7 * n * 4              # grad; param, m, v read and written


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_by_hand_peer_trains_exactly_like_gpubp(device, activation):
    # The by-hand floor is only a fair peer if it does the same work: same
    # parameters after three float64 steps, to rounding.
    widths, batch = [5, 7, 6, 3], 4
    step, backend, model = gpubp_step(widths, activation, batch, device, lr=0.1, dtype="float64")
    X, T = (backend.asarray(a) for a in data(widths, batch))
    by_hand, params = by_hand_step(widths, activation, batch, backend, initial_weights(widths), X, T, lr=0.1)
    for _ in range(3):
        step()
        by_hand()
    got = model.parameters()
    assert len(got) == 2 * len(params)
    for i, (W, b) in enumerate(params):
        for name, want in (("W", W), ("b", b)):
            have = backend.to_numpy(got[f"{2 * i}.{name}"])
            assert np.allclose(have, backend.to_numpy(want), rtol=1e-12, atol=1e-14), (i, name)
            assert not np.allclose(have, initial_weights(widths)[i][name == "b"]), "nothing trained"


def test_planned_step_trains_exactly_like_the_eager_step(device):
    widths, batch = [5, 7, 6, 3], 4
    eager, backend, model = gpubp_step(widths, "sigmoid", batch, device, lr=0.1, dtype="float64")
    planned, _, planned_model = gpubp_step(widths, "sigmoid", batch, device, lr=0.1, dtype="float64", planned=True)
    for _ in range(3):
        eager()
        planned()
    for name, param in model.parameters().items():
        assert np.array_equal(backend.to_numpy(param), backend.to_numpy(planned_model.parameters()[name])), name


def test_an_unknown_implementation_is_refused_not_timed_as_gpubp():
    from gpubp.bench.mlp import measure
    with pytest.raises(ValueError, match="unknown implementation 'by_hand'"):
        measure("by_hand", "a", "cpu", 1)


def test_theoretical_bytes():
    # one Dense(2, 3): params 9 (+9 grads), data 4*(2+3), activations 4*3
    assert theoretical_bytes([2, 3], batch=4, itemsize=1) == 18 + 20 + 12


@pytest.mark.slow
def test_bench_script_quick_run(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--json", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr
    assert "[bench] MLP step (c) gpubp" in run.stderr and "[bench] scaling" in run.stderr  # progress
    assert "MLP step" in run.stdout and "kernel" in run.stdout
    result = json.loads(out.read_text())
    assert {r["kernel"] for r in result["kernels"]} == set(KERNELS)
    for r in result["kernels"]:
        assert r["GB_per_s"] > 0 and math.isfinite(r["fraction_of_copy"]) and r["speedup_vs_unfused"] > 0
    assert [r["config"] for r in result["mlp"]] == ["a", "b", "c"]
    for r in result["mlp"]:
        assert r["gpubp"]["ms"] > 0 and r["by-hand"]["ms"] > 0 and r["ratio_gpubp_over_by_hand"] > 0
        if "torch" in r:
            assert r["ratio_gpubp_over_torch"] > 0
    assert {r["vary"] for r in result["scaling"]} == {"batch", "width", "depth"}
    assert all(r["peak_bytes"] > 0 for r in result["scaling"])
    assert result["machine"]["device"] == "cpu"


@pytest.mark.slow
def test_gpu_record_writes_tests_and_benchmarks(tmp_path):
    """scripts/gpu_record.py, run as a GPU session would but on the CPU: test counts, each
    failure by name, the parity summaries, the benchmark figures, the files of the folder,
    and a failing exit code when a test failed."""
    (tmp_path / "test_sample.py").write_text("def test_ok():\n    assert True\n\n"
                                             "def test_bad():\n    assert 1 == 2, 'broken on purpose'\n")
    out = tmp_path / "record"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_record.py"), "--device", "cpu",
                          "--quick", "--tests", f"{tmp_path / 'test_sample.py'} -p no:cacheprovider",
                          "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 1, run.stderr
    assert {p.name for p in out.iterdir()} == {"record.json", "pytest.xml", "pytest.log", "parity.txt", "bench.txt"}
    record = json.loads((out / "record.json").read_text())
    assert "errors" not in record, record.get("errors")
    assert (record["tests"]["passed"], record["tests"]["failed"]) == (1, 1)
    assert [r["dtype"] for r in record["parity"]] == ["float32", "float64"] and all(r["ok"] for r in record["parity"])
    assert "broken on purpose" in (out / "pytest.log").read_text()
    assert record["tests"]["failures"][0]["test"].endswith("test_bad")
    assert "broken on purpose" in record["tests"]["failures"][0]["message"]
    assert record["machine"]["device"] == "cpu" and len(record["mlp"]) == 3 and record["kernels"]
