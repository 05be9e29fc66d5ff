"""Central differences of a loss at the entries of an array, each one that disagrees with
backprop looked at again: a wrong gradient, or a kink.

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

import time
import warnings

import numpy as np

from ...errors import GpubpWarning
from ...progress import Progress
from .report import GradcheckReport, Kink, row

RETRY = (10, 100)  # an entry whose difference at eps is off is differenced again at eps/10, eps/100


def compare(f, arrays, analytic, eps, atol, rtol, max_samples, seed):
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
            report.rows.append(row(name, arr, idx, got, numeric, kinks, atol, rtol))
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
