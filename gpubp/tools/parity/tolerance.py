"""Numerical precision policy: parity tolerances by dtype, and TF32 in CuPy matmuls.

Two runs of the same computation agree "within tolerance" when, for every
compared array (reference ``a``, other ``b``, both taken to float64 on the host)::

    max|a - b|  <=  atol + rtol * max|a|

a norm-wise test: an element that cancels to ~0 on one side cannot make a
healthy run fail, while a wrong layer moves the whole array and does. Sums
(Y = X W + b, dW = X^T delta, db = sum delta, dX = delta W^T) are judged against
the size of their terms where known (``scale``, from :mod:`.terms`: e.g. max of |X|^T S
with S the elementwise size of delta's own terms), the classic error bound of a dot product:
near a minimum a gradient shrinks while its rounding error does not. S starts at
the loss, whose gradient c (a - t) cancels there while a and t are still rounded
(:func:`loss_gradient_terms`), and an activation passes on |f'| S. An activation's
forward output inherits the scale of its input. The coarser dtype of the two
runs sets ``rtol``/``atol``:

* float64: rtol 1e-10 (BLAS libraries sum in different orders; ~1e6 ulps of room)
* float32: rtol 1e-5 (float32 vs float64 over a few layers and steps stays near
  1e-7 - 1e-6; TF32 matmuls, with 10-bit mantissas, land near 1e-3 and fail)

TF32: CuPy runs float32 GEMMs with TF32 tensor cores when the environment
variable ``CUPY_TF32=1`` was set at the first float32 matmul (it is read once,
lazily, then kept in ``cupy._core.get_compute_type``; the default is off).
:func:`true_float32` switches the compute type back to plain float32 for a
block and restores it after; CuPy has no public switch, so this is the one place
that touches ``cupy._core``. ``NVIDIA_TF32_OVERRIDE=0`` also disables TF32
process-wide inside cuBLAS.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from ..._compat import cupy, has_cupy
from ...backend import as_float_dtype
from ...backend.kernels import activations
from ...losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy


@dataclass(frozen=True)
class Tolerance:
    """Allowed difference ``atol + rtol * scale`` for arrays of magnitude ``scale``."""

    rtol: float
    atol: float

    def allowed(self, scale: float) -> float:
        return self.atol + self.rtol * scale


POLICY = {np.dtype(np.float64): Tolerance(rtol=1e-10, atol=1e-14),
          np.dtype(np.float32): Tolerance(rtol=1e-5, atol=1e-9)}


def tolerance_for(*dtypes) -> Tolerance:
    """The tolerance for comparing runs in ``dtypes`` (float32, float64): the loosest of their policies."""
    return max((POLICY[as_float_dtype(d)] for d in dtypes), key=lambda t: t.rtol)


@dataclass(frozen=True)
class Difference:
    """How far ``b`` is from the reference ``a``: max abs, norm-wise relative, tolerance ratio."""

    max_abs: float
    max_rel: float
    ratio: float  # max_abs / allowed: <= 1 means within tolerance

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0


def compare(a, b, tol: Tolerance, scale: float | None = None) -> Difference:
    """Compare two NumPy arrays of one shape under ``tol`` (any non-finite value fails).

    ``scale`` is the magnitude the error is relative to; max|a| by default.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return Difference(np.inf, np.inf, np.inf)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return Difference(np.inf, np.inf, np.inf)
    if a.size == 0:
        return Difference(0.0, 0.0, 0.0)
    max_abs = float(np.max(np.abs(a - b)))
    size = float(np.max(np.abs(a)))
    max_rel = max_abs / size if size > 0 else (0.0 if max_abs == 0 else np.inf)
    return Difference(max_abs, max_rel, max_abs / tol.allowed(max(size, scale or 0.0)))


def loss_gradient_terms(loss):
    """Elementwise size of the terms dL/dY is the difference of: c (|a| + |t|) for
    dL/dY = c (a - t), from what ``loss`` saved in its last forward.

    Near a minimum a - t cancels and dL/dY shrinks while its rounding, relative to
    these terms, does not (parity judges it so)::

        MSE:                  a = Y = diff + T,  c = 2 / N
        BinaryCrossEntropy:   a = sigmoid(Z),    c = 1 / N
        SoftmaxCrossEntropy:  a = softmax(Z),    c = 1 / N (rows)

    None for a loss this does not know (a user's loss): parity then uses |dL/dY|.
    """
    if isinstance(loss, MSE):
        diff, T = loss._saved("diff"), loss.T
        xp = loss.backend.xp
        return (xp.abs(diff + T) + xp.abs(T)) * (2.0 / diff.size)
    if isinstance(loss, BinaryCrossEntropy):
        Z, T = loss._saved("Z"), loss.T
        return (loss.backend.apply(activations.sigmoid, Z) + loss.backend.xp.abs(T)) * (1.0 / Z.size)
    if isinstance(loss, SoftmaxCrossEntropy):
        log_probs, T = loss._saved("log_probs"), loss.T
        xp = loss.backend.xp
        return (xp.exp(log_probs) + xp.abs(T)) * (1.0 / log_probs.shape[0])
    return None


# -- TF32 ------------------------------------------------------------------------

def _linalg():
    """CuPy's matmul module holding the compute-type switch, or None when absent."""
    if not has_cupy:
        return None
    module = getattr(getattr(cupy, "_core", None), "_routines_linalg", None)
    if all(hasattr(module, n) for n in ("get_compute_type", "set_compute_type", "COMPUTE_TYPE_TF32")):
        return module
    return None


def tf32_state() -> tuple[bool | None, str]:
    """``(enabled, detail)`` for CuPy float32 matmuls; ``enabled`` is None when unknown."""
    if not has_cupy:
        return False, "CuPy not installed: matmuls run in NumPy, always true float32"
    if os.environ.get("NVIDIA_TF32_OVERRIDE") == "0":
        return False, "NVIDIA_TF32_OVERRIDE=0 disables TF32 in cuBLAS"
    linalg = _linalg()
    env = os.environ.get("CUPY_TF32", "0")
    if linalg is None:
        on = env.strip() not in ("", "0")
        return on, f"CUPY_TF32={env} (this CuPy has no readable compute-type switch)"
    try:
        mode = linalg.get_compute_type(np.float32)
    except Exception as exc:  # TF32 requested but no device to check it against
        return env.strip() not in ("", "0"), f"CUPY_TF32={env} ({type(exc).__name__}: {exc})"
    on = mode == linalg.COMPUTE_TYPE_TF32
    return on, f"float32 matmul compute type {linalg.compute_type_to_str(mode)} (CUPY_TF32={env})"


@contextlib.contextmanager
def true_float32():
    """Block in which CuPy float32 matmuls do not use TF32; the previous mode is restored after."""
    linalg = _linalg()
    saved = None
    if linalg is not None:
        try:
            current = linalg.get_compute_type(np.float32)
        except Exception:  # no device: no CuPy matmul can run here either
            current = None
        if current == linalg.COMPUTE_TYPE_TF32:
            saved = current
            linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_DEFAULT)
    try:
        yield
    finally:
        if saved is not None:
            linalg.set_compute_type(np.float32, saved)
