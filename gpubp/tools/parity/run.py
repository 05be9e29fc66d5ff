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
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ... import _checks
from ...backend import Backend, get_backend, parse_spec
from ...errors import GpubpWarning, InvalidValueError
from ...losses import get_loss
from ...network import Sequential
from ...optim import get_optimizer
from ...progress import Progress
from .data import data_named, host_data, on_device
from .report import Entry, ParityReport
from .terms import gradient_terms, output_terms
from .tolerance import compare, loss_gradient_terms, tf32_state, tolerance_for, true_float32

FAULT_QUANTITIES = ("Y", "dX", "dW", "db")
DEFAULT_LR = 0.01  # for an optimizer given by name


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
    """A fresh optimizer per run: ``gpubp.optim`` by name (at ``lr``, 0.01 by default), or a copy
    of an instance (its rate replaced by ``lr`` when one is given)."""
    if isinstance(spec, str):
        return get_optimizer(spec, lr=DEFAULT_LR if lr is None else lr)
    if isinstance(spec, type) or not callable(getattr(spec, "step", None)):
        raise InvalidValueError(f"parity: optimizer must be a gpubp.optim name like 'sgd' or an optimizer "
                                f"instance like SGD(0.1), got {spec!r:.80}")
    twin = copy.deepcopy(spec)
    if lr is not None:
        twin.lr = lr
    return twin


def copy_model(model, backend):
    """The same architecture and weights on ``backend``, from ``model.config()``; a deep copy
    when a layer type is not one gpubp can rebuild (a user's own Layer subclass). Either way
    the copy starts with no observers of its own. ``backend`` may be a spec, as ``resolve_backend`` takes."""
    _checks.instance("copy_model: model", model, Sequential)
    backend = resolve_backend(backend, model.backend.dtype)
    try:
        twin = type(model).from_config(model.config(), backend, backend.dtype, seed=None)
    except ValueError:
        try:
            twin = copy.deepcopy(model, {id(model.observers): []})
        except Exception as exc:  # a user's layer holding a lock, a file, a generator...
            raise InvalidValueError(f"parity trains copies of the model, and {model!r:.80} cannot be copied "
                                    f"({type(exc).__name__}: {exc}); give its layers state that "
                                    f"copy.deepcopy can copy") from exc
        return twin.to(backend, backend.dtype)
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
        self._keep((i, "Y"), Y, _first(output_terms(layer), self.scales.get((i - 1, "Y"))))

    def backward(self, model, i, layer, dY, dX):
        size = self.sizes.pop(i + 1, None)  # the size of dY's terms, from the layer above or the loss
        size = self.backend.xp.abs(dY) if size is None or size.shape != dY.shape else size
        self._keep((i, "dY"), dY, size.max())
        sizes = gradient_terms(layer, size)
        for k, g in layer.grads.items():
            self._fault(i, "d" + k, g)
            self._keep((i, "d" + k), g, _max(sizes.get("d" + k)))
        if dX is not None:
            self._fault(i, "dX", dX)
            self._keep((i, "dX"), dX, _max(sizes.get("dX")))
        self.sizes[i] = sizes.get("dX")


class _Run:
    """One backend's copy of the model, watched by a :class:`_Recorder` on its observers."""

    def __init__(self, model, backend, loss, optimizer, lr, fault, data):
        self.model = copy_model(model, backend)
        self.backend, (self.X, self.T) = backend, on_device(backend, *data)
        self.loss, self.optimizer = get_loss(copy.deepcopy(loss)), make_optimizer(optimizer, lr)
        self.recorder = _Recorder(backend, fault)
        self.model.observers.append(self.recorder)

    @property
    def scales(self):
        return self.recorder.scales

    def step(self, rows) -> dict:
        """One training step on the data's ``rows``; returns {(layer, quantity): float64 array}."""
        model = self.model
        model.zero_grad()
        self.recorder.begin()
        rows = self.backend.asarray(rows)  # on the device: a CuPy array is indexed by a CuPy one
        Y = model.forward(self.X[rows])
        value = self.loss.forward(Y, self.T[rows])
        self.recorder.loss(model, value, Y, loss_gradient_terms(self.loss))
        model.backward(self.loss.backward())
        self.optimizer.step(model)
        return self.recorder.end()


def parity(model, X, y, loss="mse", optimizer="sgd", steps=5, backends=("cpu", "gpu"),
           lr=None, batch_size=None, perturb: Perturbation | None = None) -> ParityReport:
    """Train copies of ``model`` on two backends for ``steps`` steps and compare them.

    ``model`` is left untouched. Batches are rows of (X, y) taken in order
    (wrapping), ``batch_size`` rows per step (all rows by default). ``loss`` is
    a name or Loss; ``optimizer`` a gpubp.optim name or optimizer instance, and ``lr`` its
    rate (an instance keeps its own unless ``lr`` is given; a name gets 0.01 by default).
    Data with NaN/Inf is refused: the report would blame the backends for it. A run whose
    first step says it will take over 10 s shows its progress (on a terminal).
    """
    sides, steps, lr = _check_arguments(model, backends, steps, lr, perturb)
    Xh, yh = host_data(X, y, loss)
    n = Xh.shape[0]
    size = n if batch_size is None else _checks.integer("parity: batch_size", batch_size, minimum=1)
    report = ParityReport(tuple(f"{b.device}/{b.dtype.name}" for b in sides),
                          tolerance_for(*(b.dtype for b in sides)), steps,
                          [repr(layer) for layer in model.layers], tf32=tf32_state()[1])
    runs = [_Run(model, b, loss, optimizer, lr, perturb if perturb and perturb.side == k else None, (Xh, yh))
            for k, b in enumerate(sides)]
    bar = Progress(steps, False, unit="step")  # shown (on a terminal) once the first step says the run is long
    try:
        with true_float32(), np.errstate(all="ignore"):  # non-finite values are reported, not warned
            for step in range(steps):
                start = time.perf_counter()
                rows = (step * size + np.arange(size)) % n
                with data_named(Xh, yh, loss, step):
                    a, b = (run.step(rows) for run in runs)
                report.entries += _compare_step(step, a, b, runs[0].scales, report)
                if step == 0 and (time.perf_counter() - start) * steps > 10:
                    bar = Progress(steps, unit="step")
                first = report.first_failure
                bar.update(step + 1, "in tolerance" if first is None else f"out of tolerance from step {first.step}")
    finally:
        bar.close()
    return report


def _check_arguments(model, backends, steps, lr, perturb):
    """``(sides, steps, lr)``: the two Backends, the step count and the rate (or None) of a parity
    run, each checked, with the fault; a warning when both sides are one backend and no fault
    sets them apart."""
    _checks.instance("parity: model", model, Sequential)
    if isinstance(backends, (str, Backend)) or not isinstance(backends, (tuple, list)) or len(backends) != 2:
        raise InvalidValueError(f"parity compares two backends, like ('cpu', 'gpu') or "
                                f"('cpu/float32', 'cpu/float64'), got {backends!r}")
    steps = _checks.integer("parity: steps", steps, minimum=1)
    lr = None if lr is None else _checks.number("parity: lr", lr, low=0, low_open=True)
    sides = [resolve_backend(b, model.backend.dtype) for b in backends]
    _check_perturbation(perturb, model, steps)
    if sides[0] == sides[1] and perturb is None:
        warnings.warn(f"parity: both sides are {sides[0].device}/{sides[0].dtype.name}, so the report compares "
                      f"a backend with itself (equal by construction on the CPU); name two backends, like "
                      f"cpu gpu or cpu/float32 cpu/float64", GpubpWarning, stacklevel=3)
    return sides, steps, lr


def _compare_step(step, a, b, scales, report) -> list[Entry]:
    entries = []
    for (layer, quantity), ref in a.items():
        d = compare(ref, b[(layer, quantity)], report.tolerance, scales.get((layer, quantity)))
        name = "loss" if layer is None else report.layers[layer]
        entries.append(Entry(step, layer, name, quantity, d.max_abs, d.max_rel, d.ratio))
    return entries


def _check_perturbation(p, model, steps):
    """Refuse a fault that would not be applied (a silent 'within tolerance'): the layer, step,
    side and quantity must exist in this run, and ``rel`` change the numbers."""
    if p is None:
        return
    if not isinstance(p, Perturbation):
        raise InvalidValueError(f"parity: perturb must be a Perturbation(layer, step, side, quantity, rel), got {p!r:.80}")
    n_layers = len(model.layers)
    for name, value, last, why in (("layer", p.layer, n_layers - 1, f"the model has {n_layers} layers"),
                                   ("side", p.side, 1, "the index into backends"),
                                   ("step", p.step, steps - 1, f"the run has {steps} steps")):
        if _checks.integer(f"bad perturbation {p}: {name}", value, minimum=0) > last:
            raise InvalidValueError(f"bad perturbation {p}: {name} must be in [0, {last}] ({why}), got {value}")
    if p.quantity not in FAULT_QUANTITIES:
        raise InvalidValueError(f"bad perturbation {p}: quantity must be one of {FAULT_QUANTITIES}, "
                                f"got {p.quantity!r}")
    layer = model.layers[p.layer]
    names = layer.parameter_shapes() or layer.params  # a user's layer may not state its shapes
    if p.quantity in ("dW", "db") and p.quantity[1:] not in names:
        raise InvalidValueError(f"bad perturbation {p}: layer {p.layer} ({layer!r}) has no {p.quantity[1:]}, so "
                                f"no {p.quantity} to perturb; its quantities are Y, dX"
                                + "".join(f", d{k}" for k in names if f"d{k}" in FAULT_QUANTITIES))
    if _checks.number(f"bad perturbation {p}: rel", p.rel) == 0:
        raise InvalidValueError(f"bad perturbation {p}: rel must be a finite number other than 0, got {p.rel!r}")
