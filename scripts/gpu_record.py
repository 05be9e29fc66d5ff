#!/usr/bin/env python
"""One GPU record: the GPU test suite, then the benchmarks, in one JSON file.

    PYTHONPATH=. python scripts/gpu_record.py --out benchmarks/results/<date>-<gpu>.json

writes what DESIGN.md asks of a GPU run (device, CuPy/CUDA versions, tests
passed/failed with each failure, every benchmark figure) and prints the table.
``--device cpu --tests tests/backend/test_kernels.py`` runs the same pipeline on a CPU.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gpubp.bench import print_progress, run, table  # noqa: E402


def test_results(selection: str) -> dict:
    """Run ``pytest selection`` and summarise its JUnit report: counts and each failure."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "junit.xml")
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", *shlex.split(selection), f"--junitxml={report}"],
                              cwd=ROOT, capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        if not os.path.exists(report):
            return {"selection": selection, "exit_code": done.returncode, "error": done.stdout[-2000:] + done.stderr[-2000:]}
        cases = ET.parse(report).getroot().iter("testcase")
        failures, counts = [], {"passed": 0, "failed": 0, "skipped": 0}
        for case in cases:
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            if bad is not None:
                counts["failed"] += 1
                failures.append({"test": f"{case.get('classname')}::{case.get('name')}",
                                 "message": (bad.get("message") or "")[:500]})
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    return {"selection": selection, "exit_code": done.returncode, **counts, "failures": failures}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the JSON file to write")
    p.add_argument("--device", default="gpu")
    p.add_argument("--tests", default="-m gpu", help="what pytest runs (default: -m gpu)")
    p.add_argument("--quick", action="store_true", help="tiny benchmark sizes (a smoke test)")
    args = p.parse_args()
    tests = test_results(args.tests)
    print(f"pytest {args.tests}: " + (tests.get("error") or
          f"{tests['passed']} passed, {tests['failed']} failed, {tests['skipped']} skipped"), flush=True)
    result = run(args.device, quick=args.quick, graph=args.device != "cpu",
                 progress=print_progress)
    result["tests"] = tests
    print(table(result))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwritten: {args.out}")
    return 0 if tests.get("failed") == 0 and "error" not in tests else 1


if __name__ == "__main__":
    sys.exit(main())
