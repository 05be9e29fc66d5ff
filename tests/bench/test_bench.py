"""Smoke test of the benchmark script: tiny sizes, structure and sanity only (no timing targets)."""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from gpubp._compat import gpu_status
from gpubp.backend import KERNELS
from gpubp.bench import run as run_bench, table
from gpubp.bench import conv as lenet
from gpubp.bench.by_hand import by_hand_step
from gpubp.bench.kernels import bytes_moved
from gpubp.bench.mlp import data, gpubp_step, initial_weights, torch_available
from gpubp.bench.memory import peak_bytes
from gpubp.bench.scaling import shape, theoretical_bytes
from helpers import ROOT, needs_gpu



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


def test_conv_part_quick_on_the_cpu_times_gpubp_and_is_in_the_table():
    result = run_bench("cpu", quick=True, kernels=False, mlp=False, scaling=False, conv=True)
    assert set(result) >= {"conv"} and not {"kernels", "mlp", "scaling"} & set(result)
    (row,) = result["conv"]
    assert row["lenet"] == lenet.QUICK_LENET and row["gpubp"]["ms"] > 0
    text = table(result)
    assert "LeNet step" in text and lenet.describe(lenet.QUICK_LENET) in text
    if "torch" in row:
        assert row["torch"]["ms"] > 0 and row["ratio_gpubp_over_torch"] > 0
        assert "torch-cudnn" not in row  # no cuDNN on the CPU
    else:
        assert "PyTorch is not installed" in result["conv_note"] and result["conv_note"] in text


def test_lenet_layers_follow_the_issue():
    # 1x28x28 -> 6@5x5 -> pool -> 16@5x5 -> pool -> 120 -> 84 -> 10, batch 64
    assert lenet.LENET["batch"] == 64
    assert [s for s in lenet.layer_specs(lenet.LENET) if s[0] in ("conv", "dense")] == [
        ("conv", (1, 6, 5)), ("conv", (6, 16, 5)), ("dense", (256, 120)), ("dense", (120, 84)), ("dense", (84, 10))]


@pytest.mark.parametrize("cfg", [lenet.QUICK_LENET, lenet.LENET], ids=["quick", "lenet"])
def test_gpubp_lenet_starts_from_the_host_weights(device, cfg):
    _, backend, model = lenet.gpubp_lenet_step(cfg, device, dtype="float64")
    want = lenet.initial_weights(cfg)
    got = model.parameters()
    assert set(got) == set(want)
    for name, array in got.items():
        assert np.array_equal(backend.to_numpy(array), want[name]), name


def test_torch_lenet_starts_from_the_same_weights_and_computes_the_same_function():
    torch = pytest.importorskip("torch")
    cfg = lenet.QUICK_LENET
    weights, model = lenet.initial_weights(cfg), lenet.torch_model(cfg, "float64")
    mods = {i: m for i, m in enumerate(model) if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    assert {f"{i}.W" for i in mods} | {f"{i}.b" for i in mods} == set(weights)
    for i, m in mods.items():
        W = m.weight.detach().numpy()
        assert np.array_equal(W.T if isinstance(m, torch.nn.Linear) else W, weights[f"{i}.W"]), i
        assert np.array_equal(m.bias.detach().numpy(), weights[f"{i}.b"]), i
    _, backend, gp = lenet.gpubp_lenet_step(cfg, "cpu", dtype="float64")
    X, _ = lenet.data(cfg)
    want = model(torch.from_numpy(X)).detach().numpy()
    assert np.allclose(backend.to_numpy(gp.forward(backend.asarray(X))), want, rtol=1e-10, atol=1e-12)


def _numpy_lenet_step(cfg, lr):
    """One float64 LeNet SGD step written out in NumPy, independently of gpubp's layers
    (convolution by einsum over windows, pooling by reshape): the reference for the test below."""
    P = {k: v.copy() for k, v in lenet.initial_weights(cfg).items()}
    X, labels = lenet.data(cfg)
    specs, acts, saved = lenet.layer_specs(cfg), [X], []
    for i, spec in enumerate(specs):  # forward
        x = acts[-1]
        if spec[0] == "conv":
            k = spec[1][2]
            win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
            y = np.einsum("ncyxij,ocij->noyx", win, P[f"{i}.W"]) + P[f"{i}.b"][:, None, None]
        elif spec[0] == "pool":
            N, C, H, W = x.shape
            OH, OW = H // 2, W // 2
            blocks = x[:, :, :2 * OH, :2 * OW].reshape(N, C, OH, 2, OW, 2).transpose(0, 1, 2, 4, 3, 5)
            arg = blocks.reshape(N, C, OH, OW, 4).argmax(-1)  # first maximum in row-major order
            saved.append(arg)
            y = np.take_along_axis(blocks.reshape(N, C, OH, OW, 4), arg[..., None], -1)[..., 0]
        elif spec[0] == "relu":
            y = np.maximum(x, 0)
        elif spec[0] == "flatten":
            y = x.reshape(len(x), -1)
        else:
            y = x @ P[f"{i}.W"] + P[f"{i}.b"]
        acts.append(y)
    Z = acts[-1]
    prob = np.exp(Z - Z.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    dY = (prob - np.eye(cfg["classes"])[labels]) / len(Z)
    grads = {}
    for i in range(len(specs) - 1, -1, -1):  # backward
        spec, x = specs[i], acts[i]
        if spec[0] == "conv":
            k = spec[1][2]
            win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
            grads[f"{i}.W"] = np.einsum("noyx,ncyxij->ocij", dY, win)
            grads[f"{i}.b"] = dY.sum((0, 2, 3))
            dX = np.zeros_like(x)
            OH, OW = dY.shape[2:]
            for a in range(k):
                for b in range(k):
                    dX[:, :, a:a + OH, b:b + OW] += np.einsum("noyx,oc->ncyx", dY, P[f"{i}.W"][:, :, a, b])
        elif spec[0] == "pool":
            N, C, OH, OW = dY.shape
            routed = (np.arange(4) == saved.pop()[..., None]) * dY[..., None]  # (N, C, OH, OW, 4)
            dX = np.zeros_like(x)
            dX[:, :, :2 * OH, :2 * OW] = routed.reshape(N, C, OH, OW, 2, 2).transpose(0, 1, 2, 4, 3, 5) \
                .reshape(N, C, 2 * OH, 2 * OW)
        elif spec[0] == "relu":
            dX = dY * (x > 0)
        elif spec[0] == "flatten":
            dX = dY.reshape(x.shape)
        else:
            grads[f"{i}.W"], grads[f"{i}.b"] = x.T @ dY, dY.sum(0)
            dX = dY @ P[f"{i}.W"].T
        dY = dX
    return {k: v - lr * grads[k] for k, v in P.items()}


def test_one_gpubp_lenet_step_updates_the_weights_as_numpy_by_hand(device):
    cfg = dict(lenet.QUICK_LENET, image=[2, 13, 11], batch=5)  # two input channels, odd sizes
    step, backend, model = lenet.gpubp_lenet_step(cfg, device, lr=0.5, dtype="float64")
    step()
    want, start = _numpy_lenet_step(cfg, lr=0.5), lenet.initial_weights(cfg)
    for name, param in model.parameters().items():
        have = backend.to_numpy(param)
        assert np.allclose(have, want[name], rtol=1e-10, atol=1e-12), name
        assert not np.allclose(have, start[name]), f"{name} did not train"


@pytest.mark.slow
def test_bench_script_quick_run(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--json", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr
    assert "[bench] MLP step (c) gpubp" in run.stderr and "[bench] scaling" in run.stderr  # progress
    assert "MLP step" in run.stdout and "kernel" in run.stdout and "LeNet step" in run.stdout
    assert "planned, by-hand side by side" in run.stdout
    result = json.loads(out.read_text())
    assert {r["kernel"] for r in result["kernels"]} == set(KERNELS)
    for r in result["kernels"]:
        assert r["GB_per_s"] > 0 and math.isfinite(r["fraction_of_copy"]) and r["speedup_vs_unfused"] > 0
        if torch_available():  # PyTorch's own op for the same bytes, measured in a worker process
            assert r["torch"]["ms"] > 0 and r["ratio_over_torch"] == r["ms"] / r["torch"]["ms"], r
    assert "gpubp/torch" in run.stdout
    assert [r["config"] for r in result["mlp"]] == ["a", "b", "c"]
    assert [r["config"] for r in result["conv"]] == ["quick"] and result["conv"][0]["gpubp"]["ms"] > 0
    for r in result["mlp"]:
        assert r["gpubp"]["ms"] > 0 and r["by-hand"]["ms"] > 0 and r["ratio_gpubp_over_by_hand"] > 0
        paired = r["planned_by_hand_paired"]  # side by side in one process: the planned/by-hand ratio
        assert len(paired["ms"]) == 2 and min(paired["ms"]) > 0
        assert r["ratio_gpubp_planned_over_by_hand"] == paired["ratio"] > 0
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
    assert [(r["model"], r["dtype"]) for r in record["parity"]] == [
        ("mlp", "float32"), ("mlp", "float64"), ("cnn", "float32"), ("cnn", "float64")]
    assert all(r["ok"] for r in record["parity"]) and "Conv2D" in (out / "parity.txt").read_text()
    assert "broken on purpose" in (out / "pytest.log").read_text()
    assert record["tests"]["failures"][0]["test"].endswith("test_bad")
    assert "broken on purpose" in record["tests"]["failures"][0]["message"]
    assert record["machine"]["device"] == "cpu" and len(record["mlp"]) == 3 and record["kernels"]


@pytest.mark.slow
def test_gpu_record_keeps_the_tests_that_ran_when_the_suite_runs_out_of_time(tmp_path):
    # the suite gets 55% of the budget; at its end pytest is interrupted, not killed, so its
    # report still names what ran, and the benchmarks are skipped with the reason
    (tmp_path / "test_sample.py").write_text("import time\n\ndef test_ok():\n    assert True\n\n"
                                             "def test_slow():\n    time.sleep(120)\n")
    out = tmp_path / "record"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_record.py"), "--device", "cpu",
                          "--quick", "--budget", "40", "--out", str(out),
                          "--tests", f"{tmp_path / 'test_sample.py'} -p no:cacheprovider"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 1, run.stderr
    record = json.loads((out / "record.json").read_text())
    tests = record["tests"]
    assert tests["exit_code"] == "timeout" and tests["passed"] == 1 and "stopped after 22 s" in tests["note"]
    assert record["seconds"]["tests"] < 60
    skipped = set(record["benchmarks_skipped"])  # what the budget's last seconds did not allow, by name
    assert skipped  # ~13 s were left for dozens of worker processes
    for r in record["mlp"]:  # each measurement has its figure or is named as skipped, not both
        for impl in ("torch", "gpubp-planned", "gpubp", "by-hand"):
            if impl in r:
                assert ("ms" in r[impl]) != (f"MLP ({r['config']}) {impl}" in skipped), (impl, r[impl])
    for impl in ("gpubp", "gpubp-planned"):
        assert ("ms" in record["conv"][0][impl]) != (f"LeNet {impl}" in skipped)
    assert ("scaling" in record) != ("scaling" in skipped)


def test_gpu_record_reruns_only_the_phases_asked_for(tmp_path):
    """A rerun after fixes: the named tests alone (the benchmarks and parity skipped), their
    result the exit code; an unknown phase is refused before anything runs."""
    (tmp_path / "test_sample.py").write_text("def test_ok():\n    assert True\n")
    out, script = tmp_path / "record", str(ROOT / "scripts" / "gpu_record.py")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, script, "--device", "cpu", "--out", str(out), "--skip",
                          "parity,kernels,mlp,conv,scaling", "--tests", f"{tmp_path / 'test_sample.py'} -p no:cacheprovider"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["tests"]["passed"] == 1 and record["skipped_phases"] == ["conv", "kernels", "mlp", "parity", "scaling"]
    assert "parity" not in record["seconds"] and "mlp" not in record and not (out / "parity.txt").exists()
    bad = subprocess.run([sys.executable, script, "--out", str(tmp_path / "never"), "--skip", "benchmarks"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert bad.returncode == 2 and "--skip: unknown phase(s) ['benchmarks']" in bad.stderr
    assert not (tmp_path / "never").exists()


def test_gpu_record_counts_a_suite_that_wrote_no_report_as_failed(tmp_path):
    """pytest refusing its arguments (or dying before any test) writes no report: the record
    still holds the counts (none ran), says so with pytest's own output, and the run fails."""
    out = tmp_path / "record"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_record.py"), "--device", "cpu", "--out",
                          str(out), "--skip", "parity,kernels,mlp,conv,scaling", "--tests=--no-such-option"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 1, run.stderr
    tests = json.loads((out / "record.json").read_text())["tests"]
    assert (tests["passed"], tests["failed"], tests["skipped"]) == (0, 0, 0)
    assert "pytest wrote no report" in tests["error"] and "--no-such-option" in tests["error"]


def test_a_measurement_that_would_pass_the_deadline_is_stopped_and_named():
    """The benchmarks keep what they measured in time: a worker still running at the deadline
    is killed and reported as out of time, and what would start after it is not started."""
    from gpubp.bench import mlp
    big = [[1024, 4096, 4096, 1024], "relu", 1024]  # (b): seconds a step on a CPU, far past the deadline
    t0 = time.monotonic()
    stopped = mlp.run_isolated("gpubp", big, "cpu", 1, 50, deadline=t0 + 6)
    assert stopped["out_of_time"] and "stopped after" in stopped["error"]
    assert time.monotonic() - t0 < 30
    result = run_bench("cpu", quick=True, kernels=True, mlp=True, conv=True, scaling=True, deadline=t0)
    assert {"kernels", "MLP (a) gpubp", "MLP (c) by-hand", "LeNet gpubp-planned", "scaling"} <= set(result["out_of_time"])
    assert "kernels" not in result and "scaling" not in result
    assert all("ms" not in r[impl] for r in result["mlp"] for impl in ("gpubp", "gpubp-planned", "by-hand"))


def test_each_pytorch_peer_of_a_kernel_computes_that_kernels_op():
    """The kernel benchmark's PyTorch figure is of the same op: each activation's ATen op equals the
    kernel's reference formula, and each update's torch.optim arguments make gpubp's optimizer of
    that name choose that very kernel."""
    torch = pytest.importorskip("torch")
    from gpubp import optim
    from gpubp.bench.torch_kernels import OPTIMIZERS, SLOPE, activation_ops, dropout_ops
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-3, 3, 1001), rng.uniform(-1, 1, 1001)
    out = torch.empty(a.size, dtype=torch.float64)
    ops = activation_ops(torch, torch.from_numpy(a), torch.from_numpy(b), out)
    drops = dropout_ops(torch, torch.from_numpy(a), p=0.5)
    assert set(ops) | set(drops) | set(OPTIMIZERS) == set(KERNELS)
    assert not set(ops) & set(OPTIMIZERS) and not set(drops) & (set(ops) | set(OPTIMIZERS))
    y, keep = (t.numpy() for t in drops["dropout"]())  # gpubp's dropout: y = x [kept] / (1 - p)
    np.testing.assert_array_equal(y, np.where(keep, 2 * a, 0))
    assert abs(keep.mean() - 0.5) < 5 * 0.5 / np.sqrt(a.size)
    for name, op in ops.items():
        kernel, arrays = KERNELS[name], iter([a, b])
        ins = [SLOPE if arg in kernel.scalars else next(arrays) for arg in kernel.input_names]
        want = kernel.reference(*ins, np.empty_like(a))
        op()
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-13, atol=1e-300, err_msg=name)
    for name, (cls, kwargs) in OPTIMIZERS.items():
        assert getattr(optim, cls)(**kwargs).kernel.name == name


@pytest.mark.skipif(gpu_status(0)[0], reason="a usable GPU is here: the record would run")
def test_gpu_record_stops_at_once_without_a_usable_gpu(tmp_path):
    """Where CuPy cannot run a kernel (no driver, no CUDA headers), every GPU test would be skipped
    and every benchmark fail: the record stops before spending the device's time, saying why."""
    out = tmp_path / "record"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_record.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 2 and "no usable GPU" in run.stdout
    record = json.loads((out / "record.json").read_text())
    assert record["gpu_status"] == gpu_status(0)[1] and "tests" not in record


@needs_gpu
def test_peak_bytes_on_a_gpu_leaves_out_what_lives_before():
    """Was: CuPy's pool total of the whole process, earlier measurements' arrays included."""
    import gpubp
    held = gpubp.get_backend("cuda:0").zeros((1 << 22,))  # 16 MiB alive through the measure
    widths, act, batch = shape(64, 128, 4)
    peak = peak_bytes(lambda: gpubp_step(widths, act, batch, "cuda:0", planned=True))
    assert theoretical_bytes(widths, batch) <= peak < held.nbytes
