"""The step plan: one training step run into buffers allocated once.

For a model, a loss, an optimizer and a batch shape, :class:`StepPlan` allocates every
array a step writes (each layer's output, the deltas, the loss's intermediates, the
batch itself), checks shapes and dtypes once by a dry forward pass, and binds each
layer's forward and backward to those buffers once (``Layer.bind``: the layer's own math
without its per-call checks). A step then only calls them: the same math as the eager
step, in the same order, so the same numbers bit for bit, with no array allocated per
step (the parameters, their gradients and the optimizer's slots persist already)::

    plan = StepPlan(model, "mse", opt, (64, 784))
    value = plan.step(X_batch, y_batch)   # zero_grad, forward, loss, backward, update

Its buffers are laid out by ``buffers.PlanBuffers``: the deltas lie in layer outputs nothing
reads any more by then, all in one arena that ``update`` lends to the optimizer as scratch.
The model's observers (``model.observers``, ``gpubp.network.observing`` blocks, anomaly mode)
are told after each layer exactly as ``Sequential.forward/backward`` tell them; since the
plan reuses its buffers, an observer must copy what it keeps beyond its call (the
anomaly watch, the gradient recorder and the parity recorder do).

A plan is bound to the model's layer objects and backend as they were when it was made: a
step after a layer was replaced, inserted or removed, or after ``model.to(...)``, is refused
with a StateError (make a new plan; ``PlanCache`` does so itself), never run on the old
layers. Parameters written or loaded in place, a replaced parameter array, the optimizer's
``lr``, observers and the model's mode are read at every step and need no new plan.

What changes per step and is decided on the host reaches a bound layer through device arrays
it reads: a layer may define ``before_step()``, host work the plan calls before each step, and
before each replay of its CUDA graph, outside the capture (Dropout writes the step's mask key
there and advances its step count, so a planned or graphed step drops the units an eager one
does). The plan is made for training: its dry forward runs every layer in training mode (so a
layer that passes its input on in eval, as Dropout does, still gets its buffer) and puts back the
layers' modes and buffers (running statistics, Dropout's step) after it.

A layer whose ``forward``/``backward`` take no ``out`` (a user's layer; every gpubp layer
takes it) makes the model unplannable: ``plan_problem`` says why and ``fit`` then runs the eager
step. ``fit`` keeps one plan per batch shape (``cache.PlanCache``). On a GPU each plan can be
captured as one CUDA graph (``graph.GraphedStep``, ``fit(cuda_graph=True)``).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .. import _checks
from .._checks import takes_out
from ..errors import DeviceError, DTypeError, InvalidValueError, ShapeError, StateError
from ..losses import Loss, get_loss
from ..network import Sequential, observers_of, tell
from ..optim import get_optimizer
from .buffers import PlanBuffers
from .own_layers import held_to_returns


def plan_problem(model) -> str | None:
    """Why ``model`` cannot be driven by a plan, or None when it can."""
    if not isinstance(model, Sequential) or type(model).forward is not Sequential.forward \
            or type(model).backward is not Sequential.backward:
        return f"a {type(model).__name__} is not a plain gpubp Sequential"
    if not model.layers:
        return "the model has no layers"
    for i, layer in enumerate(model._layers()):  # junk put in since the model was made: refused, naming it
        if not (takes_out(layer.forward) and takes_out(layer.backward)):
            return f"layer {i} ({layer!r}) takes no output buffers (out=)"
    return None


class StepPlan(PlanBuffers):
    """Buffers for one training step of ``model`` on batches of ``batch_shape``.

    Args:
        model: a Sequential whose layers all take ``out=`` (see ``plan_problem``).
        loss: a name or a Loss instance; optimizer: a name or an Optimizer (used by ``step``).
        batch_shape: the shape of ``X`` per step, e.g. ``(64, 784)`` (whole numbers >= 1).
        target_shape, target_dtype: of ``y``; default the model's output shape and dtype
            (give ``(N,)`` and an integer dtype for class labels).

    What it was made of and its buffers are fixed (``_checks.Fixed``): the steps are bound to them,
    so a buffer put in their place would be ignored; write into them (``plan.X[...] = ...``).
    """

    model, loss, optimizer, backend, X, y, work, dout, deltas, outputs, arena = (_checks.Fixed() for _ in range(11))

    def __init__(self, model, loss, optimizer, batch_shape, target_shape=None, target_dtype=None):
        problem = plan_problem(model)
        if problem:
            raise InvalidValueError(f"StepPlan: {problem}; train it eagerly (fit(..., plan=False))")
        self.model, self.loss, self.optimizer = model, get_loss(loss), get_optimizer(optimizer)
        batch_shape, target_shape = _shape("batch_shape", batch_shape), \
            None if target_shape is None else _shape("target_shape", target_shape)
        target_dtype = None if target_dtype is None else _dtype(target_dtype)
        backend = self.backend = model.backend
        self._layers = list(model.layers)  # what the plan binds: a step checks they are still the model's
        model.draw_parameters()  # those drawn on first use, as one flat buffer (one update kernel)
        with backend.activate():
            self.X = backend.zeros(batch_shape)
            with model.mode(True), _buffers_kept(model):  # a training step's buffers; no state moves
                shapes, Y = self._dry_shapes()
                self.y = backend.zeros(tuple(target_shape or Y.shape), target_dtype or backend.dtype)
                space = self.loss.workspace(Y, self.y)
                placed = self._layout = self._place(shapes, space)
                inputs, self.outputs = self._dry_forward(shapes, placed.pools)
            Y = self.outputs[-1] if self.outputs[-1] is not None else inputs[-1]
            self.work = self._loss_work(space, placed.work)
            self.dout = self._region(placed.dout, Y.shape)
            self.deltas = [None if at is None else self._region(at, X.shape) for at, X in zip(placed.dx, inputs)]
            self._bind(inputs)
            # the loss once by its checked methods (shapes, dtypes), then bound for every step
            Loss.bind(self.loss, Y, self.y, self.dout, self.work)()
        self._loss = self.loss.bind(Y, self.y, self.dout, self.work)
        self._before = [layer.before_step for layer in model.layers if callable(getattr(layer, "before_step", None))]
        self.graph = None  # a GraphedStep of this plan, when fit captures one

    def _bind(self, inputs):
        """Each layer's forward and backward on these buffers (``Layer.bind``), and the
        (X, Y) and (dY, dX) arrays the observers are told about."""
        layers, fwd, bwd, self._seen = self.model.layers, [], [], []
        for X, out in zip(inputs, self.outputs):
            self._seen.append([X, X if out is None else out, None, None])
        dY = self.dout
        for i in range(len(layers) - 1, -1, -1):
            dX = self.deltas[i]
            passes = self.outputs[i] is None  # the layer returns its input, and dY as dX
            bound = layers[i].bind(inputs[i], self.outputs[i], dY, dX)  # a layer of one's own: held to its returns
            forward, backward = held_to_returns(self.backend, layers[i], i, *bound, self.outputs[i], dX)
            fwd.append(forward)
            bwd.append(backward)
            self._seen[i][2:] = dY, dY if passes else dX
            dY = dY if passes else dX
        self._forward, self._backward = fwd[::-1], bwd

    def gather(self, X, y, idx):
        """Copy the samples ``idx`` of the whole arrays ``X``, ``y`` into the plan's batch
        buffers (no new array); returns them. ``X`` and ``y`` hold as many samples; ``idx`` holds one
        integer index per row of the plan's batch, each in [0, len(X)) (checked: on a GPU that reads
        their least and greatest back, a sync; ``fit``, which draws them, skips that check)."""
        self._fits(X, y, idx)
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= len(X):  # NumPy's take clips, CuPy's wraps: a batch of other samples, silently
            raise InvalidValueError(f"StepPlan.gather: idx must lie in [0, {len(X)}) (X has {len(X)} samples), "
                                    f"got indices from {low} to {high}")
        return self._take(X, y, idx)

    def gather_drawn(self, X, y, idx):
        """``gather`` of indices known to lie in range (``fit`` draws them): no values read back."""
        self._fits(X, y, idx)
        return self._take(X, y, idx)

    def _take(self, X, y, idx):
        xp = self.backend.xp
        mode = {"mode": "clip"} if self.backend.name == "numpy" else {}  # 'raise' would buffer a copy
        xp.take(X, idx, axis=0, out=self.X, **mode)
        xp.take(y, idx, axis=0, out=self.y, **mode)
        return self.X, self.y

    def _fits(self, X, y, idx):
        """Refuse arrays ``gather`` cannot take: on another device, of another dtype or sample shape,
        X and y of different lengths, or ``idx`` not one integer per row of the batch (no sync)."""
        self._check(X, self.X, "X", any_rows=True)
        self._check(y, self.y, "y", any_rows=True)
        if len(X) != len(y):  # the indices would read past y's (or X's) end: rows clipped or wrapped, silently
            raise ShapeError(f"StepPlan.gather: X has {len(X)} samples and y {len(y)}; give one target per sample")
        rows = self.X.shape[0]
        if getattr(idx, "dtype", np.dtype(object)).kind not in "iu" or getattr(idx, "shape", None) != (rows,):
            raise ShapeError(f"StepPlan.gather: idx must be {rows} integer indices on {self.backend.device}, "
                             f"one per row of the plan's batch, got {type(idx).__name__} "
                             f"{getattr(idx, 'dtype', '')} {tuple(getattr(idx, 'shape', ()))}")

    def run(self, X, y, scale=1.0):
        """Forward, loss and backward (no input gradient) of one batch into the plan's
        buffers; returns ``(model output, loss value)``: the output is the plan's buffer
        (valid until ``update``, which takes its scratch there), the value a 0-d array of the caller's own. Gradients
        accumulate as in the eager step (call ``model.zero_grad()`` first to start afresh);
        ``scale`` multiplies dL/dY, hence every gradient (a rank's share of a global batch)."""
        Y, value = self.run_into(X, y, scale)
        return Y, value.copy()  # the caller's own 0-d array: the loss's buffer is written again next step

    def run_into(self, X, y, scale=1.0):
        """``run`` with the loss value left in the plan's own buffer (no copy: what a CUDA graph
        records, where nothing may be allocated)."""
        problem = self.stale()
        if problem:
            raise StateError(f"StepPlan: {problem} since the plan was made; make a new plan")
        return self._run_into(X, y, scale)

    def _run_into(self, X, y, scale=1.0):
        """``run_into`` of a plan known to be current (``PlanCache.run``: its ``get`` checked)."""
        if type(scale) is not float or scale != 1.0:  # a bool or an array is no scale: checked, not compared
            scale = _checks.number("StepPlan.run: scale", scale, low=0, low_open=True)
        self._load(X, self.X, "X")
        self._load(y, self.y, "y")
        self.before_step()
        return self._launch(scale)

    def before_step(self):
        """The layers' host work before a step (``before_step``: Dropout's key written, its step
        advanced): before each planned step, and before each replay of a captured one."""
        for hook in self._before:
            hook()

    def _launch(self, scale=1.0):
        """Forward, loss and backward on the plan's buffers: device work only (what a CUDA graph
        records); ``before_step`` has run."""
        observers = observers_of(self.model)
        # one errstate for the step's expected overflows (``Kernel.overflows``: the sigmoid's exp(-z) = inf)
        with self.backend.activate(), np.errstate(over="ignore"):
            self._pass(self._forward, observers, "forward", range(len(self._forward)), 0)
            value = self._loss()
            if scale != 1:
                self.dout *= self.backend.dtype.type(scale)
            self._pass(self._backward, observers, "backward", range(len(self._backward) - 1, -1, -1), 2)
        return self._seen[-1][1], value

    def _pass(self, steps, observers, event, order, at):
        """Run the bound ``steps``; with observers, tell them after each layer as Sequential does."""
        if not observers:
            for run in steps:
                run()
            return
        layers = self.model.layers
        for run, i in zip(steps, order):
            run()
            tell(observers, event, self.model, i, layers[i], *self._seen[i][at:at + 2])

    def step(self, X, y):
        """One training step: zero_grad, ``run``, ``optimizer.step``; returns the loss value
        (a device scalar: no host sync)."""
        self.model.zero_grad()
        _, value = self.run(X, y)
        self.update()
        return value

    def update(self):
        """``optimizer.step(model)``, its NumPy kernels' scratch taken from the plan's arena (the
        activations and deltas are spent once the backward pass is over): no memory of its own."""
        with self._scratch:
            self.optimizer.step(self.model)

    def stale(self) -> str | None:
        """What changed in the model since this plan was made that the plan cannot follow (a layer
        replaced, inserted or removed; the model moved), or None while the plan is current."""
        model = self.model
        if model.backend is not self.backend and model.backend != self.backend:
            return (f"the model moved to {model.backend.device} {model.backend.dtype} (the plan is on "
                    f"{self.backend.device} {self.backend.dtype})")
        if layers_changed(model, self._layers):
            return (f"the model's layers changed (the plan was bound to {len(self._layers)} layers, the "
                    f"model has {len(model.layers)}, not all the same objects)")
        return None

    def _load(self, a, buffer, name):
        """``a`` itself when it is the plan's buffer, else copied into it (device, shape and dtype checked)."""
        if a is buffer:
            return a
        self._check(a, buffer, name)
        buffer[...] = a
        return buffer

    def _check(self, a, buffer, name, any_rows=False):
        """Refuse ``a`` unless it is an array on the plan's device with the dtype and shape of ``buffer``
        (with ``any_rows``, its shape per sample: the whole data a batch is gathered from)."""
        if not self.backend.is_own(a):
            where = {"numpy": "NumPy ", "cupy": "CuPy "}.get(type(a).__module__.split(".")[0], "")
            kind = f"{where}{type(a).__name__}"  # a NumPy ndarray is not a CuPy one
            raise DeviceError(f"StepPlan: {name} is a {kind}, not an array on {self.backend.device}; "
                              f"move it with model.backend.asarray")
        want, made = tuple(buffer.shape), f"{tuple(buffer.shape)}; make a plan for this batch"
        if any_rows:
            want, made = (a.shape[0] if a.ndim else None, *want[1:]), f"samples of shape {want[1:]}"
        if tuple(a.shape) != want:
            raise ShapeError(f"StepPlan: {name} has shape {tuple(a.shape)}, the plan was made for {made}")
        if a.dtype != buffer.dtype:
            raise DTypeError(f"StepPlan: {name} has dtype {a.dtype}, the plan was made for {buffer.dtype}; "
                             f"convert it (model.backend.asarray({name}, dtype={buffer.dtype.name!r})) or make a "
                             f"plan for this dtype")


@contextlib.contextmanager
def _buffers_kept(model):
    """A block after which every layer's buffers hold what they held before it (a dry run moves no
    running statistic, no Dropout step)."""
    saved = [(b, b.copy()) for layer in model.layers for b in layer.buffers.values()]
    try:
        yield
    finally:
        for b, value in saved:
            b[...] = value


def layers_changed(model, layers) -> bool:
    """Whether ``model.layers`` are no longer the layer objects ``layers`` (a list taken when a
    plan was made), compared by identity, layer by layer (a tuple assigned to ``model.layers`` too)."""
    return model.layers != layers and list(model.layers) != layers


def _shape(name, shape) -> tuple:
    """``shape`` as a tuple of whole numbers >= 1, each checked by name."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise InvalidValueError(f"StepPlan: {name} must be a tuple of sizes, e.g. (64, 784), got {shape!r}") from None
    return tuple(_checks.integer(f"StepPlan: {name}[{i}]", d, 1) for i, d in enumerate(dims))


def _dtype(dtype):
    try:
        return np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"StepPlan: target_dtype {dtype!r} is not a dtype (e.g. 'int64', 'float32')") from None
