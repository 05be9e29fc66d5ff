"""The doctor behind ``gpubp check``: is this machine ready, and does gpubp compute right here?

Each check returns :class:`Item` s, ``ok`` / ``warning`` / ``failure`` with a
one-line fix. Environment: versions, duplicate ``cupy-*`` distributions, the GPUBP_DEVICE setting, CUDA
driver/runtime, devices, NVRTC compiling every registry kernel, the CuPy kernel
cache directory, TF32. Self-test on every usable backend: each kernel's fast
path against its reference formula, a float64 finite-difference gradient check
of a small net, and a parity run (CPU vs GPU where one works, else CPU float32
vs float64). Missing CUDA pieces are warnings on a CPU-only machine and
failures where a GPU is expected (``expect_gpu``, ``GPUBP_DEVICE=gpu|cuda:N``,
or an NVIDIA driver node ``/dev/nvidiactl``).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np

from ... import _checks, _compat
from ...backend import KERNELS, get_backend, parse_spec
from ...backend.kernels import cuda_source
from ...errors import GpubpError, InvalidValueError
from ...losses import MSE
from ..gradcheck import gradcheck
from ..parity import parity
from ..parity.tolerance import tf32_state
from .facts import cupy_distributions, devices, gpu_expected, requested_gpu, versions
from .selftest import kernel_mismatches, small_net

OK, WARNING, FAILURE = "ok", "warning", "failure"
NVRTC_ARCHS = (80, 90)  # compiled on CPU-only machines (the device's own arch on a GPU)


@dataclass(frozen=True)
class Item:
    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self):
        if self.status not in (OK, WARNING, FAILURE):
            raise InvalidValueError(f"Item status must be {OK!r}, {WARNING!r} or {FAILURE!r}, got {self.status!r:.40}")

    def line(self) -> str:
        mark = {OK: "[ ok ]", WARNING: "[warn]", FAILURE: "[FAIL]"}[self.status]
        return f"{mark} {self.name}: {self.detail}" + (f"\n       fix: {self.fix}" if self.fix else "")


# -- environment checks ---------------------------------------------------------

def check_versions(expect_gpu):
    v = versions()
    cp = f"CuPy {v['cupy']} ({v['cupy_package']})" if v["cupy"] else "no CuPy"
    yield Item("versions", OK, f"gpubp {v['gpubp']}, Python {v['python']}, NumPy {v['numpy']}, {cp}")
    dists = cupy_distributions()
    if len(dists) > 1:
        names = " ".join(n for n, _ in dists)
        yield Item("cupy packages", FAILURE, f"{len(dists)} CuPy distributions side by side: {names}",
                   f"pip uninstall -y {names}, then install the one matching your CUDA driver")
    elif not _compat.has_cupy:
        why = _compat.cupy_import_error or "not installed"
        yield _missing(expect_gpu, "cupy", f"CuPy cannot be imported ({why})",
                       _compat.MEND_CUPY if dists or _compat.cupy_import_failed else
                       "pip install 'gpubp[cuda12]' or 'gpubp[cuda13]' (match the driver's CUDA)")
    else:
        yield Item("cupy packages", OK, f"one CuPy distribution ({dists[0][0] if dists else 'source build'})")


def check_cuda(expect_gpu):
    if not _compat.has_cupy:
        return
    v = versions()
    runtime, driver = _version(v["cuda_runtime"]), _version(v["cuda_driver"])
    if driver is None:
        yield _missing(expect_gpu, "cuda", f"no CUDA driver (CuPy's runtime is CUDA {v['cuda_runtime']})",
                       "install the NVIDIA driver, or run the container with --gpus all")
    elif runtime is None:
        yield Item("cuda", FAILURE, f"the driver supports CUDA {v['cuda_driver']}, but CuPy's CUDA runtime is "
                                    f"{v['cuda_runtime']}", "reinstall the CuPy wheel matching the driver's CUDA "
                                                            "(pip install --force-reinstall 'cupy-cuda12x[ctk]')")
    else:
        detail = f"driver supports CUDA {v['cuda_driver']}, CuPy's runtime is CUDA {v['cuda_runtime']}"
        if runtime[0] > driver[0]:  # a newer major version cannot run at all
            yield Item("cuda", FAILURE, detail, "upgrade the driver or install the CuPy wheel for an older CUDA")
        elif runtime > driver:  # same major: CUDA minor-version compatibility runs it
            yield Item("cuda", WARNING, detail + " (minor-version compatibility)",
                       "fine for gpubp's kernels; upgrade the driver if a CUDA feature is reported missing")
        else:
            yield Item("cuda", OK, detail)
    found = devices()
    if not found:
        yield _missing(expect_gpu, "devices", f"no usable CUDA device ({_compat.gpu_status(0)[1]})",
                       "check nvidia-smi; in Docker pass --gpus all")
    for d in found:
        detail = f"{d['device']} {d['name']}" + (f", {d['memory_gib']} GiB, compute capability "
                                                  f"{d['compute_capability']}" if d["compute_capability"] else "")
        yield (Item("device", OK, detail) if d["usable"] else
               Item("device", FAILURE, f"{detail}: {_compat.gpu_status(int(d['device'][5:]))[1]}",
                    "check nvidia-smi and that no other process holds the device"))


def nvrtc_compile(source: str, arch: int) -> str:
    """Compile CUDA ``source`` for ``compute_<arch>`` with NVRTC; returns "" or the error log."""
    nvrtc = _compat.cupy.cuda.nvrtc
    prog = nvrtc.createProgram(source, "gpubp_check.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [f"--gpu-architecture=compute_{arch}"])
        return ""
    except nvrtc.NVRTCError:
        return nvrtc.getProgramLog(prog).strip()
    finally:
        nvrtc.destroyProgram(prog)


def check_nvrtc(expect_gpu):
    found = [d for d in devices() if d["usable"]]
    archs = sorted({int(d["compute_capability"].replace(".", "")) for d in found}) or list(NVRTC_ARCHS)
    if not _compat.has_cupy:
        yield _missing(expect_gpu, "nvrtc", "no CuPy, so the kernels' CUDA sources are not compile-checked",
                       "pip install 'gpubp[nvrtc]' to compile-check them on a CPU-only machine")
        return
    try:
        _compat.cupy.cuda.nvrtc.getVersion()
    except Exception as exc:
        yield _missing(expect_gpu, "nvrtc", f"NVRTC unavailable ({type(exc).__name__}: {exc})",
                       "pip install nvidia-cuda-nvrtc-cu12 (or 'cupy-cuda12x[ctk]')")
        return
    errors = [f"{k.name}/{ct}/compute_{a}: {log.splitlines()[0] if log else '?'}"
              for k in KERNELS.values() for ct in ("float", "double") for a in archs
              if (log := nvrtc_compile(cuda_source(k, ct), a))]
    if errors:
        yield Item("nvrtc", FAILURE, f"{len(errors)} kernel build(s) fail: {errors[0]}",
                   "fix the kernel's CUDA body in the registry (gpubp/backend/kernels/)")
    else:
        yield Item("nvrtc", OK, f"{len(KERNELS)} kernels x float/double compile for "
                                f"{', '.join(f'compute_{a}' for a in archs)}")


_CACHE_FIX = "export CUPY_CACHE_DIR=/tmp/cupy_kernel_cache (any writable folder)"


def check_kernel_cache(expect_gpu):
    path = os.path.abspath(os.environ.get("CUPY_CACHE_DIR") or os.path.expanduser("~/.cupy/kernel_cache"))
    if not _compat.has_cupy:
        yield Item("kernel cache", OK, f"{path} (unused without CuPy)")
        return
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)  # CuPy creates the missing folders itself
    if not os.path.isdir(probe):
        yield Item("kernel cache", FAILURE, f"{path} cannot be created: {probe} is a file",
                   _CACHE_FIX)
        return
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
        yield Item("kernel cache", OK, f"{path} is writable")
    except OSError as exc:
        yield Item("kernel cache", FAILURE, f"{path} is not writable ({exc.strerror} in {probe})",
                   _CACHE_FIX)


def check_tf32(expect_gpu):
    on, detail = tf32_state()
    if on is False:
        yield Item("tf32", OK, f"off: {detail}")
    else:
        yield Item("tf32", WARNING, f"{'on' if on else 'unknown'}: {detail}; float32 matmuls keep 10 mantissa bits",
                   "unset CUPY_TF32 for exact float32 (gpubp parity turns TF32 off during its runs)")


def _version(text):
    """``(major, minor)`` from "12.8"; None for "none", "unavailable (...)" or None."""
    try:
        return tuple(map(int, text.split(".")))
    except (AttributeError, ValueError):
        return None


def check_device_setting(expect_gpu):
    """GPUBP_DEVICE, when set, must be a device spec, and a CUDA device it names must work: every gpubp
    call without a device of its own uses it (a failure even where no GPU is expected, ``--cpu-only``)."""
    spec = os.environ.get("GPUBP_DEVICE")
    if spec is None:
        return
    try:
        device, dtype = parse_spec(spec)
    except GpubpError as exc:
        yield Item("GPUBP_DEVICE", FAILURE, f"{spec!r} is not a device: {exc}",
                   "set GPUBP_DEVICE to auto, cpu, gpu or cuda:N (optionally /float32 or /float64), or unset it")
        return
    if device != "cpu":
        usable, reason = _compat.gpu_status(int(device.split(":")[1]))
        if not usable:
            yield Item("GPUBP_DEVICE", FAILURE, f"{spec!r} names {device}, which does not work here: {reason}; "
                                                f"every gpubp command without --device would stop",
                       "unset GPUBP_DEVICE, or set it to cpu (or auto: the GPU where one works, else the CPU)")
            return
    yield Item("GPUBP_DEVICE", OK, f"{spec!r}: {device}" + (f"/{dtype}" if dtype else ""))


def _missing(expect_gpu, name, detail, fix):
    return Item(name, FAILURE if expect_gpu else WARNING, detail, fix)


# -- self-test (selftest.py) -----------------------------------------------------

def _devices_to_test():
    """"cpu", plus the GPU that GPUBP_DEVICE names (cuda:0 by default) when one works."""
    gpu = requested_gpu() or "cuda:0"
    return ["cpu"] + ([gpu] if _compat.gpu_status(int(gpu[5:]))[0] else [])


def check_kernels(expect_gpu):
    tested = _devices_to_test()
    bad = [m for d in tested for t in ("float32", "float64") for m in kernel_mismatches(get_backend(d, t))]
    if bad:
        yield Item("kernels", FAILURE, f"{len(bad)} kernel(s) disagree with their reference: {', '.join(bad[:3])}",
                   "compare the kernel's fast path (and CUDA body) with its reference formula")
    else:
        yield Item("kernels", OK, f"{len(KERNELS)} kernels match their references on {', '.join(tested)} "
                                  "(float32, float64)")


def check_gradients(expect_gpu):
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    for device in _devices_to_test():
        model = small_net(get_backend(device, "float64"))
        b = model.backend
        report = gradcheck(model, MSE(), b.asarray(X), b.asarray(T), raise_on_fail=False)
        bad = [r.name for r in report.rows if not r.ok]
        worst = max(r.max_rel for r in report.rows)
        yield (Item("gradients", OK, f"backprop vs central differences (float64, {device}): {len(report.rows)} "
                                     f"arrays agree, worst relative error {worst:.2g}") if not bad else
               Item("gradients", FAILURE, f"backprop disagrees with central differences on {device} for "
                                          f"{', '.join(bad)}", "a layer's backward disagrees with its forward: "
                                                               "gpubp.gradcheck_layer finds which"))


def check_parity(expect_gpu):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(32, 3)), rng.integers(0, 2, size=32)
    tested = _devices_to_test()
    pairs = ([(f"cpu/{t}", f"{tested[1]}/{t}") for t in ("float32", "float64")]
             if len(tested) > 1 else [("cpu/float32", "cpu/float64")])
    for pair in pairs:
        report = parity(small_net("cpu"), X, y, "softmax_cross_entropy", "sgd", steps=3, backends=pair,
                        lr=0.5, batch_size=16)
        yield Item("parity", OK if report.ok else FAILURE, report.summary(),
                   "" if report.ok else f"gpubp parity {pair[0]} {pair[1]} shows the full table")


CHECKS = (check_versions, check_device_setting, check_cuda, check_nvrtc, check_kernel_cache, check_tf32,
          check_kernels, check_gradients, check_parity)


def run_checks(expect_gpu: bool | None = None, checks=CHECKS) -> list[Item]:
    """Run every check; a check that crashes is itself a failure (the doctor never raises)."""
    expect_gpu = gpu_expected()[0] if expect_gpu is None else _checks.flag("run_checks: expect_gpu", expect_gpu)
    if isinstance(checks, (str, bytes)) or not isinstance(checks, (list, tuple)) or not all(map(callable, checks)):
        raise InvalidValueError(f"run_checks: checks must be a list of functions expect_gpu -> [Item, ...] (such as "
                                f"CHECKS), got {checks!r:.80}")
    items = []
    for check in checks:
        name = getattr(check, "__name__", type(check).__name__).removeprefix("check_")
        try:
            for item in check(expect_gpu):  # those before a crash are kept
                if not isinstance(item, Item):
                    raise InvalidValueError(f"it gave {item!r:.60}, not an Item")
                items.append(item)
        except Exception as exc:
            items.append(Item(name, FAILURE, f"the check crashed: {type(exc).__name__}: {exc}",
                              "report this with the output of `gpubp info`"))
    return items


def exit_code(items) -> int:
    """1 when any item failed, else 0 (warnings pass)."""
    given = list(items) if isinstance(items, (list, tuple)) or hasattr(items, "__next__") else None
    if given is None or not all(isinstance(i, Item) for i in given):
        raise InvalidValueError(f"exit_code takes the Items run_checks returns, got {items!r:.80}")
    return int(any(i.status == FAILURE for i in given))
