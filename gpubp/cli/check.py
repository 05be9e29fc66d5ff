"""``gpubp check``: the doctor. Environment, kernels, a gradient check and a parity run,
each ok / warning / failure with a one-line fix; exits 1 on any failure."""
from __future__ import annotations

import dataclasses
import json

from ..tools import doctor

HELP = ("check this machine: versions, CUDA, NVRTC kernel builds, kernel cache, TF32, "
        "and a self-test (kernels, gradient check, parity); exits non-zero on any failure")


def add_arguments(parser):
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument("--expect-gpu", dest="expect_gpu", action="store_true", default=None,
                     help="missing CUDA pieces are failures (default: when GPUBP_DEVICE asks for a GPU "
                          "or an NVIDIA driver is loaded)")
    gpu.add_argument("--cpu-only", dest="expect_gpu", action="store_false", default=None,
                     help="missing CUDA pieces are only warnings")
    parser.add_argument("--json", action="store_true", help="print the items as JSON")


def run(args) -> int:
    expect, why = (args.expect_gpu, "as asked") if args.expect_gpu is not None else doctor.gpu_expected()
    items = doctor.run_checks(expect)
    if args.json:
        print(json.dumps([dataclasses.asdict(i) for i in items], indent=2))
    else:
        print(f"gpubp check: a GPU is {'expected' if expect else 'not expected'} ({why}); "
              f"missing CUDA pieces are {'failures' if expect else 'warnings'}")
        for item in items:
            print(item.line())
        counts = {s: sum(i.status == s for i in items) for s in (doctor.OK, doctor.WARNING, doctor.FAILURE)}
        print(f"gpubp check: {counts['ok']} ok, {counts['warning']} warning(s), {counts['failure']} failure(s)")
    return doctor.exit_code(items)
