"""What the tests share: the repository root, the GPU probe, its marker and skip reason
(defined here once), the device list the fixtures run over, the tolerances, the command
line run in-process, an allocation measure, the planned-equals-eager fit, and a user's own layer."""
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import gpubp
from gpubp._compat import gpu_status
from gpubp.bench.memory import traced_allocation
from gpubp.tools.parity.tolerance import POLICY

ROOT = Path(__file__).resolve().parent.parent

GPU_OK, GPU_REASON = gpu_status(0)


GPU_MARKS = [pytest.mark.gpu, pytest.mark.skipif(not GPU_OK, reason=f"no usable GPU: {GPU_REASON}")]


def stable_id(value) -> str:
    """A test id for ``value`` that is the same in every process: its repr without memory addresses
    (pytest-xdist refuses a run whose workers collect different ids)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


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


def allocation_peak(step, steps=8):
    """``(peak, left)``: bytes allocated on top of what is live during ``steps`` calls of ``step``
    after three warm-up calls, at their peak and after the last."""
    for _ in range(3):
        step()
    return traced_allocation(step, steps)


def assert_eager_steps_match(planned, eager, optimizer, X, y, steps=2):
    """``steps`` eager MSE training steps of ``eager`` (zero_grad, forward, loss, backward,
    ``optimizer``'s update) leave its parameters equal bit for bit to those of ``planned``, a model
    of the same config that a step plan trained ``steps`` steps on the same batch."""
    loss = gpubp.losses.MSE()
    for _ in range(steps):
        eager.zero_grad()
        loss.forward(eager.forward(X), y)
        eager.backward(loss.backward(), input_grad=False)
        optimizer.step(eager)
    for (name, a), b in zip(planned.parameters().items(), eager.parameters().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def assert_planned_fit_is_eager(model, X, y, **fit_args):
    """``fit`` with and without a step plan, each from ``model``'s config with seed 0, trains alike bit
    for bit (losses and parameters), in batches of 8 over two epochs (a short last batch where
    ``len(X)`` is not a multiple of 8)."""
    runs = []
    for plan in (True, False):
        m = gpubp.Sequential.from_config(model.config(), dtype=model.backend.dtype, seed=0)
        history = gpubp.fit(m, X, y, optimizer=gpubp.SGD(lr=0.1), epochs=2, batch_size=8, progress=False,
                            plan=plan, **fit_args)
        runs.append((history.loss, {k: v.copy() for k, v in m.parameters().items()}))
    assert runs[0][0] == runs[1][0]
    for k, v in runs[0][1].items():
        np.testing.assert_array_equal(v, runs[1][1][k], err_msg=k)


class Scale(gpubp.nn.Layer):
    """A user's own layer, written from the Layer docstring alone: Y = X * s (s per column), its
    parameter stated by ``parameter_shapes`` and drawn by ``drawn_parameters``, nothing private set;
    dX = dY * s and dL/ds = sum over the batch of dY * X, written into ``layer.grads``."""

    def __init__(self, n=4, backend=None):
        super().__init__(backend)
        self.n = n

    def parameter_shapes(self):
        return {"s": (self.n,)}

    def drawn_parameters(self, rng, prefix=""):
        return {"s": self.backend.asarray(rng.normal(size=self.n))}

    def forward(self, X):
        self.X = X
        return X * self.params["s"]

    def backward(self, dY):
        self.grads["s"][...] = (dY * self.X).sum(axis=0)
        return dY * self.params["s"]
