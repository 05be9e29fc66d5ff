"""What the tests share: the repository root, the GPU probe, its marker and skip reason
(defined here once), the device list the fixtures run over, the tolerances, and the command
line run in-process."""
import struct
from pathlib import Path

import numpy as np
import pytest

from gpubp._compat import gpu_status
from gpubp.tools.parity.tolerance import POLICY

ROOT = Path(__file__).resolve().parent.parent

GPU_OK, GPU_REASON = gpu_status(0)


GPU_MARKS = [pytest.mark.gpu, pytest.mark.skipif(not GPU_OK, reason=f"no usable GPU: {GPU_REASON}")]


def needs_gpu(test):
    """A test that runs only where a CUDA device works: marked ``gpu``, and reported as skipped elsewhere."""
    for mark in GPU_MARKS:
        test = mark(test)
    return test


def needs_no_gpu(test):
    """A test of the CPU-only fallback (what a machine without a GPU says and does)."""
    return pytest.mark.skipif(GPU_OK, reason="needs a machine without a usable GPU")(test)


DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda:0", id="gpu", marks=GPU_MARKS)]

# Elementwise tolerances for tests, by dtype, from gpubp's one precision policy
# (gpubp/tools/parity/tolerance.py): float64 agrees to ~1e-10 relative (BLAS libraries
# sum in different orders), float32 to ~1e-5; atol covers entries that cancel to ~0.
TOL = {dt: dict(rtol=p.rtol, atol=p.rtol / 10) for dt, p in POLICY.items()}


def assert_png(path, min_side=100, max_bytes=2_000_000):
    """PNG signature, an IHDR chunk with width and height > min_side, a sensible size."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    assert raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width > min_side and height > min_side
    assert 1_000 < len(raw) < max_bytes
    return width, height


def torch_reference(module, X, seed):
    """PyTorch's ``module`` at ``X`` (float64) and its input gradient for a random dY drawn from
    ``seed``: ``(Y, dX, dY)`` as NumPy arrays (the independent implementation layers are checked against)."""
    import torch
    tX = torch.from_numpy(X).requires_grad_()
    tY = module(tX)
    dY = np.random.default_rng(seed).normal(size=tuple(tY.shape))
    tY.backward(torch.from_numpy(dY))
    return tY.detach().numpy(), tX.grad.numpy(), dY


def run_cli(argv, capsys):
    """(exit code, stdout, the last stderr line) of ``gpubp argv`` in this process; never a traceback."""
    from gpubp.cli import main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, (err.strip().splitlines() or [""])[-1]
