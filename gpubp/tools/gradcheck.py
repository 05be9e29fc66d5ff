"""Gradient checking: backprop against central finite differences, in float64.

    numerical dL/dp_i = (L(p + eps e_i) - L(p - eps e_i)) / (2 eps)

``gradcheck`` checks every parameter of a model (a seeded sample of entries for
large ones), ``gradcheck_layer`` one layer (its parameters and dX), and
``gradcheck_loss`` a loss alone. Each works on a float64 copy (``dtype``) on the
caller's device (the caller's objects are never changed; inputs on another device
are refused), returns a per-array report,
and raises :class:`GradcheckError` carrying it when an entry is out of tolerance
(``|analytic - numeric| <= atol + rtol * |numeric|``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from .._compat import is_cupy_array, to_host
from ..backend import backend_of, get_backend
from ..errors import DeviceError, GradcheckError
from ..losses import get_loss


@dataclass
class Row:
    name: str
    shape: tuple
    checked: int
    max_abs: float
    max_rel: float
    worst_index: tuple
    ok: bool


@dataclass
class GradcheckReport:
    rows: list = field(default_factory=list)
    eps: float = 1e-6
    atol: float = 1e-6
    rtol: float = 1e-4

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def __str__(self):
        head = f"{'array':14}{'shape':>14}{'checked':>9}{'max abs err':>13}{'max rel err':>13}  worst index  result"
        lines = [f"gradient check (eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})", head]
        for r in self.rows:
            lines.append(f"{r.name:14}{str(r.shape):>14}{r.checked:9}{r.max_abs:13.3e}{r.max_rel:13.3e}  "
                         f"{str(r.worst_index):11}  {'ok' if r.ok else 'FAIL'}")
        return "\n".join(lines)


def gradcheck(model, loss, X, y, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
              seed=0, raise_on_fail=True):
    """Check dL/dp for every parameter p of a Sequential ``model`` under ``loss`` (instance or name) on (X, y).

    Parameters with more than ``max_samples_per_param`` entries are checked at that many
    indices drawn with ``seed``; the report's rows are named like ``model.parameters()``.
    """
    _check_args("gradcheck", eps, atol, rtol, max_samples_per_param, seed)
    m, backend = _copy(model, model.backend, dtype)
    loss = copy.copy(get_loss(loss))
    X, y = _inputs(backend, model.backend, X, y)
    start = _frozen(m.buffers())

    def f():  # every evaluation from the same buffers: the same Dropout mask, BatchNorm state
        m.load_buffers(start)
        return float(loss.forward(m.forward(X), y))
    f()
    m.zero_grad()
    m.backward(loss.backward())
    analytic = {k: backend.to_numpy(g) for k, g in m.gradients().items()}
    return _finish(_compare(f, m.parameters(), analytic, eps, atol, rtol, max_samples_per_param, seed),
                   raise_on_fail)


def gradcheck_layer(layer, X, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
                    seed=0, raise_on_fail=True):
    """Check a single layer's dX and parameter gradients for L = sum(w * layer(X)), w random
    (so dL/dY = w: every output's gradient path is exercised with a different weight)."""
    _check_args("gradcheck_layer", eps, atol, rtol, max_samples_per_param, seed)
    lay, backend = _copy(layer, layer.backend, dtype)
    (X,) = _inputs(backend, layer.backend, X)
    start = _frozen(lay.buffers)
    lay.load_buffers(start)
    w = backend.asarray(np.random.default_rng(seed).normal(size=lay.forward(X).shape))

    def f():  # every evaluation from the same buffers: the same Dropout mask, BatchNorm state
        lay.load_buffers(start)
        return float((lay.forward(X) * w).sum())
    f()
    lay.zero_grad()
    analytic = {"dX": backend.to_numpy(lay.backward(w))}
    analytic.update({k: backend.to_numpy(g) for k, g in lay.grads.items()})
    arrays = {"dX": X, **lay.params}
    return _finish(_compare(f, arrays, analytic, eps, atol, rtol, max_samples_per_param, seed), raise_on_fail)


def gradcheck_loss(loss, Y, T, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
                   seed=0, raise_on_fail=True):
    """Check a loss's dL/dY at predictions Y and targets T (float targets are cast, labels kept)."""
    _check_args("gradcheck_loss", eps, atol, rtol, max_samples_per_param, seed)
    origin = backend_of(Y)
    backend = get_backend(origin.device, dtype)
    loss = copy.copy(get_loss(loss))
    Y, T = _inputs(backend, origin, Y, T)

    def f():
        return float(loss.forward(Y, T))
    f()
    analytic = {"dY": backend.to_numpy(loss.backward())}
    return _finish(_compare(f, {"dY": Y}, analytic, eps, atol, rtol, max_samples_per_param, seed),
                   raise_on_fail)


def _check_args(fn, eps, atol, rtol, max_samples, seed):
    """One InvalidValueError naming the argument: a zero or negative eps divides by zero or
    differentiates backwards; tolerances are >= 0; at least one entry is sampled."""
    _checks.number(f"{fn}: eps", eps, low=0, low_open=True)
    _checks.number(f"{fn}: atol", atol, low=0)
    _checks.number(f"{fn}: rtol", rtol, low=0)
    _checks.integer(f"{fn}: max_samples_per_param", max_samples, minimum=1)
    _checks.integer(f"{fn}: seed", seed, minimum=0)


def _frozen(buffers) -> dict:
    """Host copies of a model's or layer's buffers, to start each evaluation from."""
    return {k: np.array(to_host(v)) for k, v in buffers.items()}


def _copy(obj, backend, dtype):
    """A deep copy of a model or layer moved to ``dtype`` on its own device (backends are shared, not copied)."""
    target = get_backend(backend.device, dtype)
    return copy.deepcopy(obj, memo={id(backend): backend}).to(target), target


def _inputs(backend, origin, *arrays):
    """Arrays on the checked device: floats as float64, integer labels unchanged."""
    out = []
    for a in arrays:
        if is_cupy_array(a) and not origin.is_own(a):
            raise DeviceError(f"gradcheck: an input is on cuda:{a.device.id} but the model is on {origin.device}")
        if isinstance(a, np.ndarray) and origin.name == "cupy":
            raise DeviceError("gradcheck: a NumPy input for a CuPy model; move it with model.backend.asarray(x)")
        out.append(backend.asarray(a))
    return out


def _compare(f, arrays, analytic, eps, atol, rtol, max_samples, seed):
    """Central differences of ``f`` at (sampled) entries of each array, against ``analytic``."""
    report, rng = GradcheckReport(eps=eps, atol=atol, rtol=rtol), np.random.default_rng(seed)
    for name, arr in arrays.items():
        size = arr.size
        idx = np.arange(size) if size <= max_samples else np.sort(rng.choice(size, max_samples, replace=False))
        numeric = np.empty(len(idx))
        for j, i in enumerate(idx):
            at = np.unravel_index(int(i), arr.shape)  # works for any memory layout
            orig = float(arr[at])
            arr[at] = orig + eps
            up = f()
            arr[at] = orig - eps
            down = f()
            arr[at] = orig
            numeric[j] = (up - down) / (2 * eps)
        got = analytic[name].reshape(-1)[idx]
        err = np.abs(got - numeric)
        rel = err / np.maximum(np.maximum(np.abs(got), np.abs(numeric)), 1e-300)
        worst = int(np.argmax(err - (atol + rtol * np.abs(numeric))))
        report.rows.append(Row(name, tuple(arr.shape), len(idx), float(err.max()), float(rel.max()),
                               tuple(int(k) for k in np.unravel_index(int(idx[worst]), arr.shape)),
                               bool(np.all(err <= atol + rtol * np.abs(numeric)))))
    return report


def _finish(report, raise_on_fail):
    if raise_on_fail and not report.ok:
        raise GradcheckError(report)
    return report
