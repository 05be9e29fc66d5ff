"""Every CUDA kernel body compiles with NVRTC for sm_80 and sm_90, in float and double.

This runs on CPU-only machines: NVRTC needs no GPU. CI installs CuPy and the NVRTC
wheel (the `nvrtc` extra), so there a missing compiler is a failure, not a skip.
"""
import os

import pytest

from gpubp.backend import KERNELS, Kernel, cuda_source


def nvrtc_module():
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
        return nvrtc
    except Exception as exc:  # CuPy missing, or libnvrtc not found
        if os.environ.get("CI"):
            pytest.fail(f"NVRTC unavailable in CI ({exc}); the `nvrtc` extra must be installed")
        pytest.skip(f"NVRTC unavailable: {exc}; pip install '.[nvrtc]'")


def compile_ptx(source, arch):
    nvrtc = nvrtc_module()
    prog = nvrtc.createProgram(source, "gpubp_kernel.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [f"--gpu-architecture=compute_{arch}"])
    except Exception as exc:
        raise AssertionError(f"NVRTC failed: {exc}\n{nvrtc.getProgramLog(prog)}\n--- source ---\n{source}")
    return nvrtc.getPTX(prog)


@pytest.mark.parametrize("arch", ["80", "90"])
@pytest.mark.parametrize("ctype", ["float", "double"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_compiles(name, ctype, arch):
    kernel = KERNELS[name]
    ptx = compile_ptx(cuda_source(kernel, ctype), arch)
    text = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert f"{kernel.cuda_name}_{ctype}" in text
    assert f".target sm_{arch}" in text


def test_a_broken_kernel_fails_the_check():
    broken = Kernel("broken", "T x", "T y", "y = x * undefined_thing", None, None)
    with pytest.raises(AssertionError, match="undefined_thing"):
        compile_ptx(cuda_source(broken, "float"), "80")
