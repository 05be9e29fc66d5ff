"""``gpubp info [PATH]``: versions, devices and the "auto" choice; or a checkpoint's provenance."""
from __future__ import annotations

import json

from .._compat import cupy_import_error, cupy_import_failed
from ..backend import omp_threads, parse_spec
from ..checkpoint import read_metadata
from ..errors import GpubpError
from ..tools.doctor import machine, versions
from .args import file_path

HELP = "show gpubp/NumPy/CuPy/CUDA versions, devices and what 'auto' picks and why"


def add_arguments(parser):
    parser.add_argument("path", nargs="?", metavar="PATH", type=file_path,
                        help="a checkpoint (.npz): print where and how it was made")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _print_machine(info):
    v = info["versions"]
    print(f"gpubp {v['gpubp']}  Python {v['python']}  NumPy {v['numpy']}")
    if v["cupy"]:
        print(f"CuPy {v['cupy']} ({v['cupy_package']})  CUDA runtime {v['cuda_runtime']}  "
              f"driver {v['cuda_driver']}  NVRTC {v['nvrtc']}")
    else:
        why = f"installed, but importing it failed ({cupy_import_error})" if cupy_import_failed else "not installed"
        print(f"CuPy: {why} (NumPy only)")
    for d in info["devices"] or [{"device": "devices", "name": "no CUDA device visible"}]:
        extra = f", {d['memory_gib']} GiB, cc {d['compute_capability']}" if "memory_gib" in d else ""
        print(f"{d['device']}: {d['name']}{extra}")
    print(f"auto -> {info['auto']['device']}: {info['auto']['reason']}")
    omp = info["OMP_NUM_THREADS"]
    source = ("all usable cores" if omp is None else f"OMP_NUM_THREADS={omp}" if omp_threads() else
              f"all usable cores: OMP_NUM_THREADS={omp!r} is not a whole number >= 1")
    print(f"CPU kernels on 2^20+ elements: {info['cpu_threads']} thread(s) ({source})")
    print(f"a step's host arrays on 2 MiB pages: {info['huge_pages']}")
    if info["GPUBP_DEVICE"]:
        try:
            parse_spec(info["GPUBP_DEVICE"])
            print(f"GPUBP_DEVICE={info['GPUBP_DEVICE']} (the default device spec)")
        except GpubpError as exc:
            print(f"GPUBP_DEVICE={info['GPUBP_DEVICE']} is not a device spec, so every call without a device "
                  f"refuses it: {exc}")
    mpi = info["mpi"]
    if mpi:
        transport = "NCCL between GPUs" if info["auto"]["device"] != "cpu" else "MPI"
        print(f"MPI: rank {mpi['rank']} of {mpi['size']} ({mpi['launcher']}); gpubp train --distributed "
              f"would reduce over {transport}")


def _layer(config) -> str:
    args = ", ".join(str(v) if k != "bias" else "bias=False" for k, v in config.items()
                     if k not in ("type", "init") and not (k == "bias" and v))
    return f"{config.get('type', '?')}({args})"  # a config edited by hand is shown as it is


def _print_checkpoint(path, meta):
    """Provenance of a checkpoint, and where this machine differs from the one that saved it."""
    extra, here = meta.get("extra", {}), versions()
    print(f"checkpoint {path}")
    print(f"saved from: {meta.get('device')} ({meta.get('backend')} backend), dtype {meta.get('dtype')}")
    print(f"created: {meta.get('created')}")
    print(f"seed: {extra.get('seed', 'not recorded')}"
          + (f", epochs done: {extra['epochs_done']}" if "epochs_done" in extra else ""))
    print("architecture: " + " -> ".join(_layer(c) for c in meta.get("architecture", [])))
    opt = meta.get("optimizer")
    if opt:  # shown as it is, whatever a hand's edit left (the checkpoint's readers refuse it)
        hyper = opt.get("hyper")
        hyper = ", ".join(f"{k}={v}" for k, v in hyper.items()) if isinstance(hyper, dict) else repr(hyper)
        print(f"optimizer: {opt.get('type')}({hyper}), {opt.get('t')} step(s) taken")
    for lib in ("gpubp", "numpy", "cupy"):
        saved, now = meta.get(lib), here.get(lib)
        note = "" if saved == now else f" (this machine: {now or 'none'})"
        print(f"{lib}: {saved or 'none'}{note}")


def run(args) -> int:
    if args.path:
        meta = read_metadata(args.path)
        if args.json:
            print(json.dumps(meta, indent=2))
        else:
            _print_checkpoint(args.path, meta)
        return 0
    info = machine()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_machine(info)
    return 0
