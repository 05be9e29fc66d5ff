"""The report of a gradient check: a row per array (its worst error, where, whether in
tolerance, its entries at a kink), printed as a table; ``finish`` raises or warns."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ...errors import GpubpWarning, GradcheckError

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


def row(name, arr, idx, got, numeric, kinks, atol, rtol):
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


def finish(report, raise_on_fail):
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
