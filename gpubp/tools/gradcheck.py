"""Gradient checking: backprop against central finite differences, in float64.

    numerical dL/dp_i = (L(p + eps e_i) - L(p - eps e_i)) / (2 eps)

``gradcheck`` checks every parameter of a model (a seeded sample of entries for
large ones), ``gradcheck_layer`` one layer (its parameters and dX), and
``gradcheck_loss`` a loss alone. Each works on a float64 copy (``dtype``) on the
caller's device (the caller's objects are never changed; inputs on another device
are refused), returns a per-array report,
and raises :class:`GradcheckError` carrying it when an entry is out of tolerance
(``|analytic - numeric| <= atol + rtol * |numeric|``).

A check that cannot fail is said so: an array whose checked gradients are all, backprop's
and the differences' alike, within ``atol`` of zero (a deep sigmoid net's first layers, a
softmax over one class) passes any backward as small (zero, its negative), so its
row reads ``ok?`` and a GpubpWarning names it and says which ``atol`` would test it. Inputs
with NaN/Inf, and a loss that is not finite where the check starts, are refused
(NumericalError) before any difference is taken.

A kink is not a wrong gradient. Where the loss is not differentiable within eps of an
entry (a ReLU/LeakyReLU input near 0, two max-pool inputs within eps of each other, more
common in eval mode) the central difference straddles it and is off by about half the jump
in slope. So an entry whose central difference disagrees with backprop is looked at again
through its one-sided differences, from f(p) (no extra evaluation):

    d+ = (f(p + h e_i) - f(p)) / h,   d- = (f(p) - f(p - h e_i)) / h,
    D(h) = |d+ - d-| = |f(p + h e_i) - 2 f(p) + f(p - h e_i)| / h = |f''| h + O(u |f| / h)

for a smooth f (u: the dtype's machine epsilon), but about the jump in slope, whatever h,
across a kink. When D(eps) is within the tolerance the one-sided differences agree: a real
failure. Otherwise the entry is differenced again at eps/10 and eps/100 (steps below
sqrt(u)/10 are skipped; with none left it is a failure): if the central difference there
agrees with backprop, the entry passes (the kink lay between); if D falls within the tolerance,
it fails; if D at the last step is still beyond 3 times the smooth bound scaled from the step
before (D(h') h / h' plus rounding, 32 u max|f| / h), the entry is *at a kink, not compared*:
counted in the row's ``kinks`` column and listed with both one-sided slopes
(``GradcheckReport.kinks``, a GpubpWarning), not a failure -- provided backprop's value lies
between d- and d+ (within the tolerance and rounding), as a correct backward's does at one
kink (ReLU's delta at 0 takes one side). A backprop value outside them fails, and so does
everything else. Not compared means a wrong backward there goes unseen: hence the names.
"""
from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import _checks
from .._compat import is_cupy_array, to_host
from ..backend import as_float_dtype, backend_of, get_backend
from ..errors import (DeviceError, DTypeError, GpubpWarning, GradcheckError, InvalidValueError, NumericalError,
                      ShapeError)
from ..losses import get_loss
from ..network import Sequential
from ..nn import Layer
from ..progress import Progress


RETRY = (10, 100)  # an entry whose difference at eps is off is differenced again at eps/10, eps/100
LISTED = 10  # kinks named in the printed report (GradcheckReport.kinks has all)


@dataclass
class Kink:
    """An entry at a kink, not compared: its one-sided slopes at the smallest step tried, and backprop's value."""
    index: tuple
    left: float
    right: float
    backprop: float


@dataclass
class Row:
    name: str
    shape: tuple
    checked: int
    max_abs: float
    max_rel: float
    worst_index: tuple
    ok: bool
    vacuous: bool = False  # every checked gradient within atol of zero: no backward could fail here
    kinks: tuple = ()  # Kink per entry at a kink, not compared (not counted in ``checked``)


@dataclass
class GradcheckReport:
    rows: list = field(default_factory=list)
    eps: float = 1e-6
    atol: float = 1e-6
    rtol: float = 1e-4

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def vacuous(self) -> list:
        """Names of the arrays whose check could not fail (see the module docstring)."""
        return [r.name for r in self.rows if r.vacuous]

    @property
    def kinks(self) -> list:
        """(array name, index) of every entry at a kink, not compared (see the module docstring)."""
        return [(r.name, k.index) for r in self.rows for k in r.kinks]

    def __str__(self):
        head = (f"{'array':14}{'shape':>14}{'checked':>9}{'kinks':>7}{'max abs err':>13}{'max rel err':>13}"
                f"  worst index  result")
        lines = [f"gradient check (eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})", head]
        for r in self.rows:
            result = "FAIL" if not r.ok else "not compared" if not r.checked else "ok?" if r.vacuous else "ok"
            lines.append(f"{r.name:14}{str(r.shape):>14}{r.checked:9}{len(r.kinks):7}{r.max_abs:13.3e}"
                         f"{r.max_rel:13.3e}  {str(r.worst_index):11}  {result}")
        if self.vacuous:
            lines.append(f"ok?: every checked gradient is within atol={self.atol:g} of zero, so this check "
                         f"cannot tell it from 0 or from its negative")
        kinks = [(r.name, k) for r in self.rows for k in r.kinks]
        if kinks:
            lines += [f"at a kink, not compared ({len(kinks)}): the one-sided differences disagree, so the loss is",
                      "not differentiable within eps of these entries (a ReLU input at 0, a max-pool tie)"]
            lines += [f"  {name}{list(k.index)}: slope {k.left:.6g} from the left, {k.right:.6g} from the right; "
                      f"backprop {k.backprop:.6g}" for name, k in kinks[:LISTED]]
            if len(kinks) > LISTED:
                lines.append(f"  ... and {len(kinks) - LISTED} more (report.kinks lists them all)")
        return "\n".join(lines)


def gradcheck(model, loss, X, y, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
              seed=0, raise_on_fail=True):
    """Check dL/dp for every parameter p of a Sequential ``model`` under ``loss`` (instance or name) on (X, y).

    Parameters with more than ``max_samples_per_param`` entries are checked at that many
    indices drawn with ``seed``; the report's rows are named like ``model.parameters()``.
    Entries where the loss has a kink within ``eps`` (a ReLU input at 0, a max-pool tie) are
    not compared and not failures: ``report.kinks`` names them (see the module docstring).
    """
    raise_on_fail = _check_args("gradcheck", eps, atol, rtol, max_samples_per_param, seed, dtype, raise_on_fail)
    _check_kind("gradcheck", "model", model, Sequential, "a gpubp Sequential (for one layer use gradcheck_layer)")
    if not model.parameters():
        raise InvalidValueError(f"gradcheck: {model!r:.80} has no parameters, so there is no gradient to check "
                                f"(a report of no rows would pass); check its layers' dX with gradcheck_layer")
    m, backend = _copy(model, model.backend, dtype)
    loss = copy.copy(get_loss(loss))
    X, y = _inputs("gradcheck", backend, model.backend, X, y, names=("X", "y"))
    start = _frozen(m.buffers())

    def f():  # every evaluation from the same buffers: the same Dropout mask, BatchNorm state
        m.load_buffers(start)
        return float(loss.forward(m.forward(X), y))
    _finite_start("gradcheck", f(), "the loss")
    m.zero_grad()
    m.backward(loss.backward())
    analytic = {k: backend.to_numpy(g) for k, g in m.gradients().items()}
    return _finish(_compare(f, m.parameters(), analytic, eps, atol, rtol, max_samples_per_param, seed),
                   raise_on_fail)


def gradcheck_layer(layer, X, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
                    seed=0, raise_on_fail=True):
    """Check a single layer's dX and parameter gradients for L = sum(w * layer(X)), w random
    (so dL/dY = w: every output's gradient path is exercised with a different weight)."""
    raise_on_fail = _check_args("gradcheck_layer", eps, atol, rtol, max_samples_per_param, seed, dtype,
                                raise_on_fail)
    _check_kind("gradcheck_layer", "layer", layer, Layer, "a gpubp Layer (for a model use gradcheck)")
    lay, backend = _copy(layer, layer.backend, dtype)
    (X,) = _inputs("gradcheck_layer", backend, layer.backend, X, names=("X",))
    start = _frozen(lay.buffers)
    lay.load_buffers(start)
    w = backend.asarray(np.random.default_rng(seed).normal(size=lay.forward(X).shape))

    def f():  # every evaluation from the same buffers: the same Dropout mask, BatchNorm state
        lay.load_buffers(start)
        return float((lay.forward(X) * w).sum())
    _finite_start("gradcheck_layer", f(), f"the output of {lay!r}")
    lay.zero_grad()
    analytic = {"dX": backend.to_numpy(lay.backward(w))}
    analytic.update({k: backend.to_numpy(g) for k, g in lay.grads.items()})
    arrays = {"dX": X, **lay.params}
    return _finish(_compare(f, arrays, analytic, eps, atol, rtol, max_samples_per_param, seed), raise_on_fail)


def gradcheck_loss(loss, Y, T, eps=1e-6, dtype="float64", atol=1e-6, rtol=1e-4, max_samples_per_param=64,
                   seed=0, raise_on_fail=True):
    """Check a loss's dL/dY at predictions Y and targets T (float targets are cast, labels kept)."""
    raise_on_fail = _check_args("gradcheck_loss", eps, atol, rtol, max_samples_per_param, seed, dtype,
                                raise_on_fail)
    origin = backend_of(Y) if is_cupy_array(Y) else get_backend("cpu", dtype)  # Y may be a list
    backend = get_backend(origin.device, dtype)
    loss = copy.copy(get_loss(loss))
    Y, T = _inputs("gradcheck_loss", backend, origin, Y, T, names=("Y", "T"))

    def f():
        return float(loss.forward(Y, T))
    _finite_start("gradcheck_loss", f(), "the loss")
    analytic = {"dY": backend.to_numpy(loss.backward())}
    return _finish(_compare(f, {"dY": Y}, analytic, eps, atol, rtol, max_samples_per_param, seed),
                   raise_on_fail)


def _check_args(fn, eps, atol, rtol, max_samples, seed, dtype, raise_on_fail) -> bool:
    """One InvalidValueError naming the argument: a zero or negative eps divides by zero or
    differentiates backwards; tolerances are >= 0; at least one entry is sampled; the dtype
    is float32 or float64 (a DTypeError); ``raise_on_fail`` (returned) is True or False. An eps
    so small that rounding swamps the differences (below sqrt of the dtype's machine epsilon:
    float32's default 1e-6) warns: a correct backward would be reported wrong."""
    eps = _checks.number(f"{fn}: eps", eps, low=0, low_open=True)
    _checks.number(f"{fn}: atol", atol, low=0)
    _checks.number(f"{fn}: rtol", rtol, low=0)
    _checks.integer(f"{fn}: max_samples_per_param", max_samples, minimum=1)
    _checks.integer(f"{fn}: seed", seed, minimum=0)
    try:
        name = as_float_dtype(dtype).name  # None refused too: it would keep the model's own dtype
    except DTypeError:
        raise DTypeError(f"{fn}: dtype must be 'float64' (the default) or 'float32', got {dtype!r}") from None
    if eps < np.sqrt(np.finfo(name).eps):
        warnings.warn(f"{fn}: eps={eps:g} is below the square root of {name}'s machine epsilon, so the loss's "
                      f"rounding divided by 2 eps swamps the differences and a correct backward can be reported "
                      f"wrong; use eps near {np.cbrt(np.finfo(name).eps):.0e}"
                      + (" with atol and rtol near 1e-2, or dtype='float64'" if name == "float32" else ""),
                      GpubpWarning, stacklevel=3)
    return _checks.flag(f"{fn}: raise_on_fail", raise_on_fail)


def _check_kind(fn, what, obj, cls, expected):
    if not isinstance(obj, cls):
        raise InvalidValueError(f"{fn}: {what} must be {expected}, got {type(obj).__name__} {obj!r:.60}")


def _finite_start(fn, value, what):
    """Refuse a check that starts where ``what`` is NaN/Inf: every difference would be NaN."""
    if not np.isfinite(value):
        raise NumericalError(f"{fn}: {what} is {value} at the inputs given, so no finite difference "
                             f"can be taken; check the parameters and targets for NaN/Inf or values "
                             f"outside the loss's domain (with gpubp.detect_anomaly() to find the layer)")


def _frozen(buffers) -> dict:
    """Host copies of a model's or layer's buffers, to start each evaluation from."""
    return {k: np.array(to_host(v)) for k, v in buffers.items()}


def _copy(obj, backend, dtype):
    """A deep copy of a model or layer moved to ``dtype`` on its own device (backends are shared, not copied)."""
    target = get_backend(backend.device, dtype)
    try:
        twin = copy.deepcopy(obj, memo={id(backend): backend})
    except Exception as exc:  # a user's layer holding a lock, a file, a generator...
        raise InvalidValueError(f"gradcheck works on a copy, and {obj!r:.80} cannot be copied "
                                f"({type(exc).__name__}: {exc}); give its layers state that copy.deepcopy "
                                f"can copy") from exc
    return twin.to(target), target


def _inputs(fn, backend, origin, *arrays, names):
    """Arrays on the checked device: floats as float64, integer labels unchanged; NaN/Inf refused."""
    out = []
    for name, a in zip(names, arrays):
        if is_cupy_array(a) and not origin.is_own(a):
            raise DeviceError(f"{fn}: an input is on cuda:{a.device.id} but the model is on {origin.device}")
        if isinstance(a, np.ndarray) and origin.name == "cupy":
            raise DeviceError(f"{fn}: a NumPy input for a CuPy model; move it with model.backend.asarray(x)")
        try:
            a = backend.asarray(a)
        except DTypeError as exc:
            raise DTypeError(f"{fn}: the input {name}: {exc}") from None
        if a.size == 0:
            raise ShapeError(f"{fn}: the input {name} is empty (shape {tuple(a.shape)}): no difference can be taken")
        backend.check_finite(a, f"{fn}: the input {name}")
        out.append(a)
    return out


def _compare(f, arrays, analytic, eps, atol, rtol, max_samples, seed):
    """Central differences of ``f`` at (sampled) entries of each array, against ``analytic``,
    with progress shown (on a terminal) when the check is estimated at over 10 s."""
    report, rng = GradcheckReport(eps=eps, atol=atol, rtol=rtol), np.random.default_rng(seed)
    entries = sum(min(a.size, max_samples) for a in arrays.values())
    seconds, f0 = _estimate(f, entries, max_samples)
    bar, done = Progress(entries, None if seconds > 10 else False, unit="entry"), 0
    try:
        for name, arr in arrays.items():
            size = arr.size
            idx = np.arange(size) if size <= max_samples else np.sort(rng.choice(size, max_samples, replace=False))
            got = analytic[name].reshape(-1)[idx]
            numeric, kinks = _differences(f, f0, arr, idx, got, (eps, atol, rtol),
                                          lambda j: bar.update(done + j + 1, name))
            done += len(idx)
            report.rows.append(_row(name, arr, idx, got, numeric, kinks, atol, rtol))
    finally:
        bar.close()
    return report


def _estimate(f, entries, max_samples):
    """Seconds the check of ``entries`` entries takes, from one timed evaluation of ``f``, and
    that evaluation (f at the unperturbed point); over a minute it warns first, with what makes it shorter."""
    start = time.perf_counter()
    f0 = f()
    seconds = 2 * entries * (time.perf_counter() - start)
    if seconds > 60:
        warnings.warn(f"gradcheck: {2 * entries} evaluations of the model, about {seconds / 60:.0f} minute(s); "
                      f"give a smaller max_samples_per_param (now {max_samples}) or fewer samples in X",
                      GpubpWarning, stacklevel=4)
    return seconds, f0


def _differences(f, f0, arr, idx, got, tolerance, tick):
    """(f(p + eps e_i) - f(p - eps e_i)) / (2 eps) at the flat indices ``idx`` of ``arr``, calling
    ``tick(j)`` after the j-th; an entry that disagrees with backprop's ``got`` is settled by
    ``_settle``. Returns the differences and {j: Kink} for the entries at a kink."""
    eps, atol, rtol = tolerance
    numeric, kinks = np.empty(len(idx)), {}
    for j, i in enumerate(idx):
        at = np.unravel_index(int(i), arr.shape)  # works for any memory layout
        up, down = _sides(f, arr, at, eps)
        numeric[j] = (up - down) / (2 * eps)
        if abs(got[j] - numeric[j]) > atol + rtol * abs(numeric[j]):
            numeric[j], kink = _settle(f, f0, arr, at, (up, down), got[j], tolerance)
            if kink is not None:
                kinks[j] = kink
        tick(j)
    return numeric, kinks


def _sides(f, arr, at, h):
    """f(p + h e_i), f(p - h e_i), the entry restored after."""
    orig = float(arr[at])
    try:
        arr[at] = orig + h
        up = f()
        arr[at] = orig - h
        return up, f()
    finally:
        arr[at] = orig


def _settle(f, f0, arr, at, sides, got, tolerance):
    """An entry whose central difference at eps disagrees with backprop: a real failure, or a kink
    within eps (the module docstring has the test). Returns (difference, None) for a pass at a
    smaller step or a failure (then the difference at eps), (difference at eps, Kink) at a kink."""
    eps, atol, rtol = tolerance
    u = float(np.finfo(arr.dtype).eps)
    steps = [eps] + [eps / k for k in RETRY if eps / k >= np.sqrt(u) / 10]
    first, spread = (sides[0] - sides[1]) / (2 * eps), []
    for h in steps:
        up, down = sides if h == eps else _sides(f, arr, at, h)
        central = (up - down) / (2 * h)
        tol = atol + rtol * abs(central)
        if abs(got - central) <= tol:
            return central, None  # the kink (or the curvature) lay between h and eps
        spread.append(abs(up - 2 * f0 + down) / h)
        if spread[-1] <= tol:
            return first, None  # the one-sided differences agree: backprop is wrong here
    noise = 32 * u * max(abs(f0), abs(up), abs(down)) / h
    left, right = (f0 - down) / h, (up - f0) / h
    between = min(left, right) - tol - noise <= got <= max(left, right) + tol + noise
    if len(steps) > 1 and spread[-1] > 3 * spread[-2] * h / steps[-2] + noise and between:
        return first, Kink(tuple(int(k) for k in at), left + 0.0, right + 0.0, float(got) + 0.0)  # no -0
    return first, None


def _row(name, arr, idx, got, numeric, kinks, atol, rtol):
    """The report's row of one array: its worst error over the entries compared (not those at a
    kink), where, and whether all are in tolerance."""
    compared = np.array([j not in kinks for j in range(len(idx))], bool)
    marks = tuple(kinks[j] for j in sorted(kinks))
    if not compared.any():  # every entry at a kink: nothing compared (the kink warning says so)
        return Row(name, tuple(arr.shape), 0, 0.0, 0.0, None, True, kinks=marks)
    idx, got, numeric = idx[compared], got[compared], numeric[compared]
    err = np.abs(got - numeric)
    rel = err / np.maximum(np.maximum(np.abs(got), np.abs(numeric)), 1e-300)
    worst = int(np.argmax(err - (atol + rtol * np.abs(numeric))))
    size = float(max(np.abs(got).max(), np.abs(numeric).max()))
    return Row(name, tuple(arr.shape), len(idx), float(err.max()), float(rel.max()),
               tuple(int(k) for k in np.unravel_index(int(idx[worst]), arr.shape)),
               bool(np.all(err <= atol + rtol * np.abs(numeric))), vacuous=size <= atol, kinks=marks)


def _finish(report, raise_on_fail):
    if raise_on_fail and not report.ok:
        raise GradcheckError(report)
    if report.vacuous:
        warnings.warn(f"gradcheck: every checked gradient of {', '.join(report.vacuous)} is within "
                      f"atol={report.atol:g} of zero, so a wrong backward as small (zero, the negative, "
                      f"half of it) passes as well; give an atol well below their size (float64 differences are good "
                      f"to about 1e-10 of the loss) or inputs where the gradient is not ~0",
                      GpubpWarning, stacklevel=3)
    if report.kinks:
        named = ", ".join(f"{name}{list(index)}" for name, index in report.kinks[:LISTED])
        more = f" and {len(report.kinks) - LISTED} more" if len(report.kinks) > LISTED else ""
        warnings.warn(f"gradcheck: {len(report.kinks)} entr{'y is' if len(report.kinks) == 1 else 'ies are'} at a "
                      f"kink (the loss is not differentiable within eps: a ReLU input at 0, a max-pool tie), so "
                      f"not compared: {named}{more}; a wrong backward there goes unseen, so check them at inputs "
                      f"away from the kink (other data or seed)", GpubpWarning, stacklevel=3)
    return report
