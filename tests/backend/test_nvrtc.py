"""Every CUDA kernel body compiles with NVRTC for sm_80 and sm_90, in float and double.

This runs on CPU-only machines: NVRTC needs no GPU. CI installs CuPy and the NVRTC
wheel (the `nvrtc` extra), so there a missing compiler is a failure, not a skip.
"""
import os

import pytest

from gpubp.backend.kernels import KERNELS, Kernel, cuda_source
from gpubp.tools.doctor import nvrtc_compile


def require_nvrtc():
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
    except Exception as exc:  # CuPy missing, or libnvrtc not found
        if os.environ.get("CI"):
            pytest.fail(f"NVRTC unavailable in CI ({exc}); the `nvrtc` extra must be installed")
        pytest.skip(f"NVRTC unavailable: {exc}; pip install '.[nvrtc]'")


def compile_ok(source, arch):
    require_nvrtc()
    log = nvrtc_compile(source, int(arch))
    assert not log, f"NVRTC failed:\n{log}\n--- source ---\n{source}"


@pytest.mark.parametrize("arch", ["80", "90"])
@pytest.mark.parametrize("ctype", ["float", "double"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_compiles(name, ctype, arch):
    compile_ok(cuda_source(KERNELS[name], ctype), arch)


def test_a_broken_kernel_fails_the_check():
    broken = Kernel("broken", "T x", "T y", "y = x * undefined_thing", None, None)
    with pytest.raises(AssertionError, match="undefined_thing"):
        compile_ok(cuda_source(broken, "float"), "80")


@pytest.mark.parametrize("ci, outcome", [("1", pytest.fail.Exception), (None, pytest.skip.Exception)])
def test_missing_nvrtc_skips_here_but_fails_in_ci(ci, outcome, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name.startswith("cupy"):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    with pytest.raises(outcome, match="NVRTC unavailable"):
        require_nvrtc()
