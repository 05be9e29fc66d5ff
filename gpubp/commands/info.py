"""``gpubp info [PATH]``: versions, devices and the "auto" choice; or a checkpoint's provenance."""
from __future__ import annotations

import json

HELP = "show gpubp/NumPy/CuPy/CUDA versions, devices and what 'auto' picks and why"


def add_arguments(parser):
    parser.add_argument("path", nargs="?", help="a checkpoint (.npz): print where and how it was made")
    parser.add_argument("--json", action="store_true", help="print JSON")


def machine() -> dict:
    """Versions, devices and the auto choice (facts collected by gpubp.doctor)."""
    import os

    from ..backend import auto_choice
    from ..doctor import devices, versions
    device, reason = auto_choice()
    return {"versions": versions(), "devices": devices(), "auto": {"device": device, "reason": reason},
            "GPUBP_DEVICE": os.environ.get("GPUBP_DEVICE")}


def _print_machine(info):
    v = info["versions"]
    print(f"gpubp {v['gpubp']}  Python {v['python']}  NumPy {v['numpy']}")
    if v["cupy"]:
        print(f"CuPy {v['cupy']} ({v['cupy_package']})  CUDA runtime {v['cuda_runtime']}  "
              f"driver {v['cuda_driver']}  NVRTC {v['nvrtc']}")
    else:
        print("CuPy: not installed (NumPy only)")
    for d in info["devices"] or [{"device": "devices", "name": "no CUDA device visible"}]:
        extra = f", {d['memory_gib']} GiB, cc {d['compute_capability']}" if "memory_gib" in d else ""
        print(f"{d['device']}: {d['name']}{extra}")
    print(f"auto -> {info['auto']['device']}: {info['auto']['reason']}")
    if info["GPUBP_DEVICE"]:
        print(f"GPUBP_DEVICE={info['GPUBP_DEVICE']} (the default device spec)")


def run(args) -> int:
    info = machine()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_machine(info)
    return 0
