"""Parity report: train one model on two backends in lockstep and find where they part.

``parity(model, X, y, loss, optimizer, steps, backends=("cpu", "gpu"))`` copies
the model onto each backend (same initial weights), feeds both the same
batches, and after every step compares, layer by layer and in the order they
were computed::

    W, b (parameters entering the step)  ->  Y (forward output)  ->  loss
    ->  dY (delta received)  ->  dW, db  ->  dX (delta returned to the layer below)

under the dtype-aware policy of :mod:`gpubp.tolerance`. The report names the
first (step, layer, quantity) out of tolerance and whether the difference then
grows. A backend is a spec (``"cpu"``, ``"cuda:1"``), a spec with a dtype
(``"cpu/float64"`` or ``("cpu", "float64")``) or a Backend, so ``cpu/float32``
vs ``cpu/float64`` runs on any machine. CuPy float32 matmuls run without TF32
for the whole run (see :func:`gpubp.tolerance.true_float32`).
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .backend import Backend, get_backend
from .losses import get_loss
from .optim import get_optimizer
from .tolerance import Tolerance, compare, tf32_state, tolerance_for, true_float32

FAULT_QUANTITIES = ("Y", "dX", "dW", "db")


@dataclass(frozen=True)
class Perturbation:
    """A deliberate fault, to prove the report localises one: on backend ``side``
    (0 or 1), at ``step``, multiply layer ``layer``'s ``quantity`` (Y, dX, dW or db)
    by ``1 + rel`` before it is used."""

    layer: int
    step: int = 0
    side: int = 1
    quantity: str = "dX"
    rel: float = 1e-3


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
                 f"tolerance: max|a-b| <= {t.atol:g} + {t.rtol:g} * max|a| (Dense Y, dX, dW, db: * the size of "
                 f"their summed terms); cells: max|a-b| / max|a|, '!' = out of tolerance",
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


def resolve_backend(spec, dtype) -> Backend:
    """A Backend from ``"cpu"``, ``"cuda:0/float64"``, ``("cpu", "float64")`` or a Backend;
    ``dtype`` applies when the spec names none."""
    if isinstance(spec, Backend):
        return spec
    if isinstance(spec, (tuple, list)):
        device, dtype = spec
    else:
        device, _, named = str(spec).partition("/")
        dtype = named or dtype
    return get_backend(device, dtype)


def make_optimizer(spec, lr):
    """A fresh optimizer per run: ``gpubp.optim`` by name, or a copy of an instance."""
    return get_optimizer(spec, lr=lr) if isinstance(spec, str) else copy.deepcopy(spec)


def copy_model(model, backend):
    """The same architecture and weights on ``backend``, from ``model.config()``; a deep copy
    when a layer type is not one gpubp can rebuild (a user's own Layer subclass)."""
    try:
        twin = type(model).from_config(model.config(), backend, backend.dtype, seed=None)
    except ValueError:
        return copy.deepcopy(model).to(backend, backend.dtype)
    for key, p in twin.parameters().items():
        p[...] = backend.asarray(model.backend.to_numpy(model.parameters()[key]))
    return twin


def _first(*values):
    return next((v for v in values if v is not None), None)


def _host(x) -> np.ndarray:
    return x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else np.asarray(x)


class _Run:
    """One backend's copy of the model, with its layers recording what they compute."""

    def __init__(self, model, backend, loss, optimizer, lr, fault):
        self.model = copy_model(model, backend)
        self.backend, self.fault, self.step_no = backend, fault, 0
        self.loss, self.optimizer = get_loss(copy.deepcopy(loss)), make_optimizer(optimizer, lr)
        self.record, self.scales = {}, {}
        for i, layer in enumerate(self.model.layers):
            self._wrap(i, layer)

    def _keep(self, key, x, scale=None):
        self.record[key] = np.array(self.backend.to_numpy(x), dtype=np.float64)
        if scale is not None:
            self.scales[key] = float(scale)

    def _term_size(self, layer, quantity, dY=None):
        """Size of the terms an affine layer's output or gradient sums (None elsewhere)::

            Y: |X| |W| + |b|    dX: |dY| |W|^T    dW: |X|^T |dY|    db: sum over the batch of |dY|
        """
        xp, X, W = self.backend.xp, getattr(layer, "X", None), layer.params.get("W")
        if X is None or W is None or X.ndim != 2 or W.ndim != 2:
            return None
        terms = {"Y": lambda: xp.matmul(xp.abs(X), xp.abs(W)) + xp.abs(layer.params.get("b", 0)),
                 "dX": lambda: xp.matmul(xp.abs(dY), xp.abs(W).T),
                 "dW": lambda: xp.matmul(xp.abs(X).T, xp.abs(dY)),
                 "db": lambda: xp.abs(dY).sum(axis=0)}
        return terms[quantity]().max() if quantity in terms else None

    def _faulty(self, i, quantity, x, in_place=False):
        f = self.fault
        if f is None or (f.layer, f.step, f.quantity) != (i, self.step_no, quantity):
            return x
        if in_place:
            x *= x.dtype.type(1 + f.rel)
            return x
        return x * x.dtype.type(1 + f.rel)

    def _wrap(self, i, layer):
        forward, backward = layer.forward, layer.backward

        # A layer without a term size of its own (an activation, |f'| <= 1) passes on the
        # error it receives: its Y inherits the scale of its input, its dX that of its dY.
        def recording_forward(X):
            for k, p in layer.params.items():
                self._keep((i, k), p)
            Y = self._faulty(i, "Y", forward(X))
            self._keep((i, "Y"), Y, _first(self._term_size(layer, "Y"), self.scales.get((i - 1, "Y"))))
            return Y

        def recording_backward(dY):
            received = self.scales.get((i + 1, "dX"))
            self._keep((i, "dY"), dY, received)
            dX = backward(dY)
            for k, g in layer.grads.items():
                g = self._faulty(i, "d" + k, g, in_place=True)
                self._keep((i, "d" + k), g, self._term_size(layer, "d" + k, dY))
            dX = self._faulty(i, "dX", dX)
            self._keep((i, "dX"), dX, _first(self._term_size(layer, "dX", dY), received))
            return dX

        layer.forward, layer.backward = recording_forward, recording_backward

    def step(self, X, T) -> dict:
        """One training step on host batch (X, T); returns {(layer, quantity): float64 array}."""
        self.record, self.scales = {}, {}
        model = self.model
        model.zero_grad()
        Y = model.forward(self.backend.asarray(X))
        value = self.loss.forward(Y, self.backend.asarray(T))
        # the loss averages terms as large as the outputs (log-sum-exp of logits, squared
        # errors): judge it against them, not against its own size, tiny near convergence
        self._keep((None, "loss"), value, abs(float(value)) + float(self.backend.xp.abs(Y).max()))
        model.backward(self.loss.backward())
        self.optimizer.step(model)
        self.step_no += 1
        return self.record

    def close(self):
        for layer in self.model.layers:  # drop the instance wrappers
            del layer.forward, layer.backward


def parity(model, X, y, loss="mse", optimizer="sgd", steps=5, backends=("cpu", "gpu"),
           lr=0.01, batch_size=None, perturb: Perturbation | None = None) -> ParityReport:
    """Train copies of ``model`` on two backends for ``steps`` steps and compare them.

    ``model`` is left untouched. Batches are rows of (X, y) taken in order
    (wrapping), ``batch_size`` rows per step (all rows by default). ``loss`` is
    a name or Loss; ``optimizer`` a gpubp.optim name or optimizer instance.
    """
    if len(backends) != 2:
        raise ValueError(f"parity compares two backends, got {len(backends)}")
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    sides = [resolve_backend(b, model.backend.dtype) for b in backends]
    _check_perturbation(perturb, len(model.layers))
    Xh, yh = _host(X), _host(y)
    n = Xh.shape[0]
    size = n if batch_size is None else int(batch_size)
    report = ParityReport(tuple(f"{b.device}/{b.dtype.name}" for b in sides),
                          tolerance_for(*(b.dtype for b in sides)), int(steps),
                          [repr(layer) for layer in model.layers], tf32=tf32_state()[1])
    runs = [_Run(model, b, loss, optimizer, lr, perturb if perturb and perturb.side == k else None)
            for k, b in enumerate(sides)]
    try:
        with true_float32(), np.errstate(all="ignore"):  # non-finite values are reported, not warned
            for step in range(report.steps):
                rows = (step * size + np.arange(size)) % n
                a, b = (run.step(Xh[rows], yh[rows]) for run in runs)
                report.entries += _compare_step(step, a, b, runs[0].scales, report)
    finally:
        for run in runs:
            run.close()
    return report


def _compare_step(step, a, b, scales, report) -> list[Entry]:
    entries = []
    for (layer, quantity), ref in a.items():
        d = compare(ref, b[(layer, quantity)], report.tolerance, scales.get((layer, quantity)))
        name = "loss" if layer is None else report.layers[layer]
        entries.append(Entry(step, layer, name, quantity, d.max_abs, d.max_rel, d.ratio))
    return entries


def _check_perturbation(p, n_layers):
    if p is None:
        return
    if not 0 <= p.layer < n_layers or p.side not in (0, 1) or p.quantity not in FAULT_QUANTITIES:
        raise ValueError(f"bad perturbation {p}: layer in [0, {n_layers - 1}], side 0 or 1, "
                         f"quantity one of {FAULT_QUANTITIES}")
