"""Parity report: train one model on two backends in lockstep and find where they part.

``parity(model, X, y, loss, optimizer, steps, backends=("cpu", "gpu"))`` copies
the model onto each backend (same initial weights), feeds both the same
batches, and after every step compares, layer by layer and in the order they
were computed::

    W, b (parameters entering the step)  ->  Y (forward output)  ->  loss
    ->  dY (delta received)  ->  dW, db  ->  dX (delta returned to the layer below)

under the dtype-aware policy of :mod:`gpubp.tools.parity.tolerance`. The report names the
first (step, layer, quantity) out of tolerance and whether the difference then
grows. A backend is a spec (``"cpu"``, ``"cuda:1"``), a spec with a dtype
(``"cpu/float64"`` or ``("cpu", "float64")``) or a Backend, so ``cpu/float32``
vs ``cpu/float64`` runs on any machine. CuPy float32 matmuls run without TF32
for the whole run (see :func:`.tolerance.true_float32`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..._compat import to_host
from ...backend import Backend, get_backend, parse_spec
from ...losses import get_loss
from ...optim import get_optimizer
from .report import Entry, ParityReport
from .tolerance import compare, loss_gradient_terms, tf32_state, tolerance_for, true_float32

FAULT_QUANTITIES = ("Y", "dX", "dW", "db")


@dataclass(frozen=True)
class Perturbation:
    """A deliberate fault, to prove the report localises one: on backend ``side``
    (0 or 1), at ``step``, multiply layer ``layer``'s ``quantity`` (Y, dX, dW or db)
    by ``1 + rel`` in place, right after the layer computed it and before it is used."""

    layer: int
    step: int = 0
    side: int = 1
    quantity: str = "dX"
    rel: float = 1e-3


def resolve_backend(spec, dtype) -> Backend:
    """A Backend from ``"cpu"``, ``"cuda:0/float64"``, ``("cpu", "float64")`` or a Backend;
    ``dtype`` applies when the spec names none."""
    if isinstance(spec, Backend):
        return spec
    device, named = parse_spec(spec)
    return get_backend(device, named or dtype)


def make_optimizer(spec, lr):
    """A fresh optimizer per run: ``gpubp.optim`` by name, or a copy of an instance."""
    return get_optimizer(spec, lr=lr) if isinstance(spec, str) else copy.deepcopy(spec)


def copy_model(model, backend):
    """The same architecture and weights on ``backend``, from ``model.config()``; a deep copy
    when a layer type is not one gpubp can rebuild (a user's own Layer subclass). Either way
    the copy starts with no observers of its own."""
    try:
        twin = type(model).from_config(model.config(), backend, backend.dtype, seed=None)
    except ValueError:
        return copy.deepcopy(model, {id(model.observers): []}).to(backend, backend.dtype)
    for key, p in twin.parameters().items():
        p[...] = backend.asarray(model.backend.to_numpy(model.parameters()[key]))
    return twin


def _max(x):
    return None if x is None or x.size == 0 else x.max()


def _first(*values):
    return next((v for v in values if v is not None), None)


class _Recorder:
    """Observer of one model copy (the hook of :mod:`gpubp.network`): records what each
    layer computed, with the size of its terms, and applies the fault in place."""

    def __init__(self, backend, fault):
        self.backend, self.fault, self.step_no = backend, fault, 0
        self.record, self.scales, self.sizes = {}, {}, {}

    def begin(self):
        """A new step: forget the last one's record."""
        self.record, self.scales, self.sizes = {}, {}, {}

    def loss(self, model, value, Y, terms):
        """Record the loss value; ``terms`` (or None) is the size of dL/dY's terms."""
        # the loss averages terms as large as the outputs (log-sum-exp of logits, squared
        # errors): judge it against them, not against its own size, tiny near convergence
        self._keep((None, "loss"), value, abs(float(value)) + float(self.backend.xp.abs(Y).max()))
        self.sizes[len(model.layers)] = terms

    def end(self) -> dict:
        self.step_no += 1
        return self.record

    def _keep(self, key, x, scale=None):
        self.record[key] = np.array(self.backend.to_numpy(x), dtype=np.float64)
        if scale is not None:
            self.scales[key] = float(scale)

    def _output_size(self, layer):
        """Size of the terms a Dense output sums, max(|X| |W| + |b|); None for other layers."""
        xp, X, W = self.backend.xp, getattr(layer, "X", None), layer.params.get("W")
        if X is None or W is None or X.ndim != 2 or W.ndim != 2:
            return None
        return (xp.matmul(xp.abs(X), xp.abs(W)) + xp.abs(layer.params.get("b", 0))).max()

    def _gradient_sizes(self, layer, size):
        """Elementwise size of the terms of each gradient, from ``size``, that of dY's::

            Dense: dX: size |W|^T    dW: |X|^T size    db: sum over the batch of size
            parameter-free (f' applied elementwise): dX: |backward(size)|

        Near a minimum the gradients shrink while their rounding, relative to these, does not.
        (Calling ``layer.backward`` directly does not go through the observer hook.)
        """
        xp, X, W = self.backend.xp, getattr(layer, "X", None), layer.params.get("W")
        if not layer.params:
            dX = layer.backward(size)
            return {"dX": xp.abs(dX)} if dX.shape == size.shape else {}
        if X is None or W is None or X.ndim != 2 or W.ndim != 2:
            return {}
        return {"dX": xp.matmul(size, xp.abs(W).T), "dW": xp.matmul(xp.abs(X).T, size), "db": size.sum(axis=0)}

    def _fault(self, i, quantity, x):
        """Multiply ``x`` in place by 1 + rel when the fault is layer i's ``quantity`` now."""
        f = self.fault
        if f is not None and (f.layer, f.step, f.quantity) == (i, self.step_no, quantity):
            x *= x.dtype.type(1 + f.rel)

    def forward(self, model, i, layer, X, Y):
        # A layer without a term size of its own (an activation, |f'| <= 1) passes on the
        # error it receives: its Y inherits the scale of its input.
        for k, p in layer.params.items():  # unchanged by the forward: those entering the step
            self._keep((i, k), p)
        self._fault(i, "Y", Y)
        self._keep((i, "Y"), Y, _first(self._output_size(layer), self.scales.get((i - 1, "Y"))))

    def backward(self, model, i, layer, dY, dX):
        size = self.sizes.pop(i + 1, None)  # the size of dY's terms, from the layer above or the loss
        size = self.backend.xp.abs(dY) if size is None or size.shape != dY.shape else size
        self._keep((i, "dY"), dY, size.max())
        sizes = self._gradient_sizes(layer, size)
        for k, g in layer.grads.items():
            self._fault(i, "d" + k, g)
            self._keep((i, "d" + k), g, _max(sizes.get("d" + k)))
        if dX is not None:
            self._fault(i, "dX", dX)
            self._keep((i, "dX"), dX, _max(sizes.get("dX")))
        self.sizes[i] = sizes.get("dX")


class _Run:
    """One backend's copy of the model, watched by a :class:`_Recorder` on its observers."""

    def __init__(self, model, backend, loss, optimizer, lr, fault):
        self.model = copy_model(model, backend)
        self.backend = backend
        self.loss, self.optimizer = get_loss(copy.deepcopy(loss)), make_optimizer(optimizer, lr)
        self.recorder = _Recorder(backend, fault)
        self.model.observers.append(self.recorder)

    @property
    def scales(self):
        return self.recorder.scales

    def step(self, X, T) -> dict:
        """One training step on host batch (X, T); returns {(layer, quantity): float64 array}."""
        model = self.model
        model.zero_grad()
        self.recorder.begin()
        Y = model.forward(self.backend.asarray(X))
        value = self.loss.forward(Y, self.backend.asarray(T))
        self.recorder.loss(model, value, Y, loss_gradient_terms(self.loss))
        model.backward(self.loss.backward())
        self.optimizer.step(model)
        return self.recorder.end()


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
    Xh, yh = to_host(X), to_host(y)
    n = Xh.shape[0]
    size = n if batch_size is None else int(batch_size)
    report = ParityReport(tuple(f"{b.device}/{b.dtype.name}" for b in sides),
                          tolerance_for(*(b.dtype for b in sides)), int(steps),
                          [repr(layer) for layer in model.layers], tf32=tf32_state()[1])
    runs = [_Run(model, b, loss, optimizer, lr, perturb if perturb and perturb.side == k else None)
            for k, b in enumerate(sides)]
    with true_float32(), np.errstate(all="ignore"):  # non-finite values are reported, not warned
        for step in range(report.steps):
            rows = (step * size + np.arange(size)) % n
            a, b = (run.step(Xh[rows], yh[rows]) for run in runs)
            report.entries += _compare_step(step, a, b, runs[0].scales, report)
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
