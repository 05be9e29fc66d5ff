"""What a parity run found: one ``Entry`` per compared array, gathered in a ``ParityReport``
that names the first (step, layer, quantity) out of tolerance, tells whether the
difference then grows, and prints as a table or JSON (see :mod:`gpubp.tools.parity`)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .tolerance import Tolerance


@dataclass(frozen=True)
class Entry:
    """One compared array: where it is and how far apart the two backends are."""

    step: int
    layer: int | None  # None for the loss
    name: str
    quantity: str
    max_abs: float
    max_rel: float
    ratio: float  # max_abs / allowed difference

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0

    def where(self) -> str:
        at = "loss" if self.layer is None else f"layer {self.layer} ({self.name}) {self.quantity}"
        return f"step {self.step}, {at}"


@dataclass
class ParityReport:
    sides: tuple[str, str]
    tolerance: Tolerance
    steps: int
    layers: list[str]
    entries: list[Entry] = field(default_factory=list)
    tf32: str = ""

    @property
    def first_failure(self) -> Entry | None:
        return next((e for e in self.entries if not e.ok), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None

    def worst_by_step(self) -> list[float]:
        """Largest tolerance ratio (difference / allowed) of each step."""
        worst = [0.0] * self.steps
        for e in self.entries:
            worst[e.step] = max(worst[e.step], e.ratio)
        return worst

    @property
    def grows(self) -> bool | None:
        """After the first failure, is the last step's worst ratio larger? None without later steps."""
        first = self.first_failure
        if first is None or first.step == self.steps - 1:
            return None
        worst = self.worst_by_step()
        return worst[-1] > worst[first.step]

    def summary(self) -> str:
        head = f"parity {self.sides[0]} vs {self.sides[1]}, {self.steps} steps"
        first = self.first_failure
        if first is None:
            worst = max(self.worst_by_step(), default=0.0)
            return f"{head}: within tolerance everywhere (worst {worst:.2g} of the allowed difference)"
        if not np.isfinite(first.ratio):
            line = f"{head}: FIRST out of tolerance at {first.where()}: non-finite values (or shapes differ)"
        else:
            line = (f"{head}: FIRST out of tolerance at {first.where()}: max abs {first.max_abs:.3g}"
                    f" > allowed {first.max_abs / first.ratio:.3g} (rel {first.max_rel:.3g})")
        if self.grows is None:
            return line + "; no later step to tell whether it grows"
        worst = self.worst_by_step()
        trend = "grows" if self.grows else "does not grow"
        return line + (f"; it then {trend} ({worst[first.step]:.3g} -> {worst[-1]:.3g} x allowed"
                       f" by step {self.steps - 1})")

    def table(self) -> str:
        """Readable table: one row per step and layer, norm-wise relative difference per quantity."""
        cols = ("W", "b", "Y", "dY", "dW", "db", "dX")
        t = self.tolerance
        lines = [f"parity {self.sides[0]} vs {self.sides[1]}; TF32: {self.tf32}",
                 f"tolerance: max|a-b| <= {t.atol:g} + {t.rtol:g} * max|a| (gradients, Dense/Conv2D/BatchNorm Y: "
                 f"* the size of their terms); cells: max|a-b| / max|a|, '!' = out of tolerance",
                 f"{'step':>4}  {'layer':<18}" + "".join(f"{c:>10}" for c in cols)]
        cells: dict = {}
        for e in self.entries:
            cells[(e.step, e.layer, e.quantity)] = f"{e.max_rel:.1e}{' ' if e.ok else '!'}"
        for step in range(self.steps):
            for i, name in enumerate(self.layers):
                row = "".join(f"{cells.get((step, i, c), '-'):>10}" for c in cols)
                lines.append(f"{step:>4}  {f'{i} {name}':<18}{row}")
            lines.append(f"{step:>4}  loss {cells.get((step, None, 'loss'), '-')}")
        lines.append(self.summary())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        first = self.first_failure
        return {"sides": list(self.sides), "steps": self.steps, "layers": self.layers,
                "tolerance": asdict(self.tolerance), "tf32": self.tf32, "ok": self.ok,
                "first_failure": None if first is None else _entry_dict(first),
                "grows": self.grows, "worst_by_step": self.worst_by_step(),
                "entries": [_entry_dict(e) for e in self.entries]}

    def to_json(self, indent=None) -> str:
        return json.dumps(_finite(self.to_dict()), indent=indent)


def _entry_dict(e: Entry) -> dict:
    return dict(asdict(e), ok=e.ok)


def _finite(obj):
    """Inf/NaN as strings, so the JSON stays standard."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
