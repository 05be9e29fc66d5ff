"""How a step plan lays out its buffers (``PlanBuffers``, the half of ``step.StepPlan`` that
allocates them): a dry run gives each layer's output shape; ``layout.place`` puts dL/dY, the
loss's work and each layer's dX in a layer output that nothing reads any more by the time they
are written (a Dense output under a sigmoid, say: the sigmoid's backward reads its own output),
in a pool only where none is free, so after a planned ``run`` those outputs hold deltas (the
model's output is kept). The outputs and pools of the backend's dtype are views of one buffer,
the arena. Its contents are spent once the backward pass is over:
``StepPlan.update`` lends it to the optimizer's NumPy kernels as their scratch (it is made at least
as large as that).
"""
from __future__ import annotations

import math

from ..backend._blocks import LENT_BLOCK, workers
from ..backend.huge_pages import lines_apart
from ..backend.kernels.scratch import ScratchIn
from . import layout


class PlanBuffers:
    """The buffers of a ``StepPlan``: laid out by its dry runs, carved from one arena, and listed
    (``repr``, ``nbytes``). Reads the plan's ``model``, ``backend``, ``loss`` and ``X``."""

    def _dry_shapes(self):
        """Run each layer once on zeros, checking shapes and dtypes once: per layer the (shape, dtype)
        of its output (None where it passes its input on), and the model's output."""
        shapes, X = [], self.X
        for layer in self.model.layers:
            Y = layer.forward(X)
            shapes.append(None if Y is X else (Y.shape, Y.dtype))
            X = Y
        return shapes, X

    def _place(self, shapes, space):
        """Where dL/dY, the loss's work and each layer's dX lie (``layout.place``): in outputs of the
        arena that nothing reads any more by then, in pools where none is free."""
        sizes, sources, reads, dx, source, size_in = [], [], [], [], None, math.prod(self.X.shape)
        for i, (layer, shape) in enumerate(zip(self.model.layers, shapes)):
            passes = shape is None
            own = not passes and shape[1] == self.backend.dtype  # an output of the arena
            sources.append(source)
            sizes.append(math.prod(shape[0]) if own else None)
            reads.append(layer.reads_in_backward())
            dx.append(size_in if _writes_dx(i, layer, passes) else None)
            if not passes:
                source, size_in = (i if own else None), math.prod(shape[0])
        work = sum(math.prod(shape) for name, (shape, dtype) in space.items() if self._in_arena(name, dtype))
        return layout.place(sizes, [s is None for s in shapes], sources, reads, dx, size_in, work)

    def _dry_forward(self, shapes, pools):
        """Run each layer once more, into a buffer of the plan (so what it saves for backward is the
        plan's, not a stray array); returns each layer's input and its output buffer (None where a
        layer passes its input on)."""
        own = [s for s in shapes if s is not None and s[1] == self.backend.dtype]
        carved = iter(self._carve([shape for shape, _ in own] + [(size,) for size in pools]))
        inputs, outputs, X, self._apart = [], [], self.X, []
        for layer, shape in zip(self.model.layers, shapes):
            inputs.append(X)
            if shape is not None:
                if shape[1] == self.backend.dtype:
                    out = next(carved)
                else:  # an output of another dtype than the backend's: a buffer of its own
                    out = self.backend.zeros(*shape)
                    self._apart.append(out)
                X = layer.forward(X, out=out)
            outputs.append(None if shape is None else X)
        self._pools = list(carved)  # for what no dead output can hold (layout.place)
        return inputs, outputs

    def _carve(self, shapes):
        """Views of ``shapes`` into one zeroed buffer of the backend's dtype (``self.arena``), each on
        a cache line, one line after the last view ends (``huge_pages.lines_apart``). All it holds is
        spent once the backward pass is over: the update takes its scratch there (``update``)."""
        starts, at = lines_apart([math.prod(shape) for shape in shapes], self.backend.dtype.itemsize)
        self.arena = self.backend.flat_zeros([max(at, self._update_room())])[0]  # on the host on huge pages
        self._scratch = ScratchIn(self.arena)
        return [self.arena[at:at + math.prod(shape)].reshape(shape) for shape, at in zip(shapes, starts)]

    def _update_room(self) -> int:
        """Elements of scratch the update's NumPy kernel needs at least (``update``): its scratch arrays
        (``Kernel.scratch``) for one pass over the parameters (a flat model's one buffer: one kernel), or for
        one block of ``LENT_BLOCK`` (``_blocks.sizes``: every block reuses it) in each thread that shares
        them; none on a GPU. The arena holds at least that much."""
        if self.backend.name != "numpy":
            return 0
        n = sum(p.size for p in self.model.parameters().values())
        return getattr(self.optimizer.kernel, "scratch", 0) * min(n, LENT_BLOCK) * workers(n)

    def _region(self, region, shape):
        """A view of ``shape`` at the start of ``region`` (``layout.Layout``)."""
        return self._flat(region)[:math.prod(shape)].reshape(shape)

    def _flat(self, region):
        """``region`` (``layout.Layout``) as a flat view: a pool, or a layer's output buffer."""
        kind, k = region
        return self._pools[k] if kind == "pool" else self.outputs[k].reshape(-1)

    def _in_arena(self, name, dtype) -> bool:
        """Whether the loss's work array ``name`` lies in the arena: not its ``value``, returned after the
        backward pass, nor an array of another dtype."""
        return name != "value" and dtype == self.backend.dtype

    def _loss_work(self, space, region):
        """The loss's work arrays, one after the other in ``region``, dead from the loss until the
        backward pass (but its value and arrays of another dtype: arrays of their own)."""
        work, free = {}, None if region is None else self._flat(region)
        for name, (shape, dtype) in space.items():
            if self._in_arena(name, dtype):
                n = math.prod(shape)
                work[name], free = free[:n].reshape(shape), free[n:]
            else:
                work[name] = self.backend.zeros(shape, dtype)
                self._apart.append(work[name])
        return work

    def __repr__(self):
        rows = [("input X", self.X), ("targets y", self.y)]
        rows += [(f"layer {i} {layer!r} output", out) for i, (layer, out) in
                 enumerate(zip(self._layers, self.outputs)) if out is not None]  # the layers it was made for
        rows += [(f"deltas, loss work (pool {k} of {len(self._pools)})", pool) for k, pool in enumerate(self._pools)]
        rows += [(f"loss {type(self.loss).__name__} {name}", a) for name, a in self.work.items()]
        lines = [f"StepPlan({type(self.loss).__name__}, {type(self.optimizer).__name__}, batch "
                 f"{tuple(self.X.shape)} on {self.backend.device} {self.backend.dtype}: "
                 f"{len(rows)} buffers, {_kib(self.nbytes)} allocated once; persistent: "
                 f"{_kib(self.persistent_bytes)} of parameters, gradients and optimizer state)"]
        lines += [f"  {name:42} {str(tuple(a.shape)):>14} {a.dtype.name:>8} {_kib(a.nbytes):>12}"
                  for name, a in rows]
        deltas = [at for at in (self._layout.dout, *self._layout.dx) if at is not None]
        lines.append(f"  (layer outputs and pools lie in one arena of {_kib(self.arena.nbytes)}, the update's "
                     f"scratch once the backward pass is over; {sum(at[0] == 'output' for at in deltas)} of the "
                     f"{len(deltas)} deltas, dL/dY included, lie in layer outputs that nothing reads by then)")
        problem = self.stale()
        if problem:  # its steps are refused: said where it is shown
            lines.append(f"  stale: {problem} since the plan was made; make a new plan")
        return "\n".join(lines)

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers this plan allocated."""
        arrays = [self.X, self.y, self.arena, *self._apart]
        return sum(a.nbytes for a in arrays)

    @property
    def persistent_bytes(self) -> int:
        """Bytes of what persists without a plan: parameters, gradients, optimizer slots."""
        state = getattr(self.optimizer, "state", {})
        return (sum(a.nbytes for a in self.model.parameters().values())
                + sum(a.nbytes for a in self.model.gradients().values())
                + sum(a.nbytes for st in state.values() for a in st.values()))


def _writes_dx(i, layer, passes) -> bool:
    """Whether layer ``i`` writes a dX of its own in a planned step: not when it passes its input
    on (dY is then its dX), nor when it is the first and can skip it (``backward_params``)."""
    return not passes and not (i == 0 and hasattr(layer, "backward_params"))



def _kib(nbytes) -> str:
    return f"{nbytes / 1024:.1f} KiB"
