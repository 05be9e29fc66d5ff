"""A training step as one CUDA graph: a step plan's launches recorded once, replayed per batch.

On a GPU, ``GraphedStep(plan)`` runs one step of the plan eagerly (every kernel compiled, every
optimizer slot made; the model and optimizer are put back afterwards), then records one step on
its own stream — zero_grad, forward, loss, backward, the optimizer's update — and from then on
replays it::

    graphed = GraphedStep(StepPlan(model, "mse", Adam(), (64, 784)))
    out, value = graphed.step(X, y)   # copy the batch in, write this step's scalars, one launch

The loss value stays on the device (``fit`` adds it up there: no host sync per step).

What a capture needs, and where it comes from:

* no allocation: every array is the plan's, the loss value included (``Loss._mean``);
* no cuBLAS, which CuPy refuses while a stream captures: ``CupyBackend.capture`` routes the
  layers' ``backend.matmul`` to gpubp's own GEMM (``backend/kernels/gemm.py``) and turns CuPy's
  CUB reductions off (they allocate scratch);
* no host sync and no per-step decision in Python: targets are trusted (``fit`` checks them
  all first), observers are refused, and what changes between steps is written on the host,
  before each replay, to device arrays the recorded kernels read: the step count's bias
  corrections and a scheduled lr (the optimizer's scalars), and whatever a layer's
  ``before_step`` writes (``StepPlan.before_step``: Dropout's mask key, its step count advanced
  on the host, so a checkpoint saves the right one). The layers' modes are recorded with the
  graph: a step after a mode changed records it again.

If the model or the optimizer replaces its arrays (a restore, a resumed state), the graph would
write into the old ones: ``step`` notices (``Optimizer.prepared`` returns another list), warms
up again (the new arrays may need a kernel not compiled yet) and records again. Unverified on
hardware as of this writing: no GPU has been lent to the project.
"""
from __future__ import annotations

from .. import _checks
from ..errors import InvalidValueError, StateError
from ..network import Sequential, observers_of


def graph_problem(model) -> str | None:
    """Why a planned step of ``model`` cannot be recorded as a CUDA graph yet, or None."""
    if not hasattr(model, "layers"):
        return f"a {type(model).__name__} is not a gpubp Sequential"
    for i, layer in enumerate(model.layers):
        if not layer.capturable:
            return (f"layer {i} ({layer!r}) cannot be captured yet (those whose class says capturable = True "
                    f"can: every gpubp layer; a step of another may allocate, read the host or run on "
                    f"cuBLAS, which a capture refuses)")
    return None


class GraphedStep:
    """One captured training step of ``plan`` (a StepPlan on a CuPy backend)."""

    plan, backend, stream = _checks.Fixed(), _checks.Fixed(), _checks.Fixed()  # what the graph was recorded on

    def __init__(self, plan):
        # a StepPlan (step.py imports this module, so the class is known by what it holds and does)
        if not isinstance(getattr(plan, "model", None), Sequential) or not callable(getattr(plan, "run_into", None)):
            raise InvalidValueError(f"GraphedStep: plan must be a gpubp StepPlan, got a {type(plan).__name__}")
        backend = plan.backend
        if not hasattr(backend, "capture"):
            raise InvalidValueError(f"cuda_graph: {backend.device} runs NumPy; a CUDA graph needs a "
                                    f"CUDA device (--device gpu)")
        problem = graph_problem(plan.model)
        if problem:
            raise InvalidValueError(f"cuda_graph: {problem}")
        self._refuse_observers(plan)
        self.plan, self.backend = plan, backend
        self.stream = backend.stream()
        self._warm_up()
        self._record()

    @staticmethod
    def _refuse_observers(plan):
        if observers_of(plan.model):
            raise StateError("cuda_graph: a captured step cannot tell observers (anomaly mode, recorders) "
                             "after each layer; run without them or with cuda_graph=False")

    def _warm_up(self):
        """One eager step in the capture's arithmetic (compiles and loads every kernel the capture
        launches, makes every slot), then the model, its gradients and the optimizer put back as
        they were: capturing must not train. It waits for the work queued on the current stream
        (a graph replayed there, the plan's buffers being zeroed) before it reads anything."""
        plan, opt = self.plan, self.plan.optimizer
        with self.backend.activate():
            self.stream.wait_event(self.backend.current_stream().record())
            with self.stream, self.backend.graph_arithmetic():
                buffers = [b for layer in plan.model.layers for b in layer.buffers.values()]  # Dropout's step
                arrays = [*opt.prepared(plan.model).arrays, *buffers]
                saved, t = [a.copy() for a in arrays], opt.t
                with plan.loss.targets_checked():
                    plan.step(plan.X, plan.y)
                for a, s in zip(arrays, saved):
                    a[...] = s
                opt.t = t
                self.stream.synchronize()

    def _record(self):
        plan = self.plan
        self._updates = plan.optimizer.prepared(plan.model)
        self._modes = _modes(plan.model)
        problem = plan.stale()
        if problem:
            raise StateError(f"GraphedStep: {problem} since the plan was made; make a new plan")

        def one_step():  # device work only: the host's part of a step (before_step) runs before each replay
            plan.model.zero_grad()
            with plan.loss.targets_checked():
                self.out, self.value = plan._launch()
            plan.optimizer.launch(self._updates, self.backend)  # reads the scalars step() writes
        self.graph = self.backend.capture(one_step, self.stream)
        # the layers' work arrays the graph writes at every replay, alive as long as it is, also once a
        # layer lets them go (it keeps those of its last few shapes: nn.arrays.kept)
        self._work = [dict(vars(layer).get("_kept_work", {})) for layer in plan.model.layers]

    def step(self, X, y):
        """One training step on ``X``, ``y`` (the plan's buffers, or arrays copied into them):
        ``(model output, loss value)``: the output is the plan's buffer (valid until the next
        step), the value a 0-d device array of the caller's own."""
        problem = self.plan.stale()
        if problem:  # the graph would replay the old layers' kernels
            raise StateError(f"GraphedStep: {problem} since the graph was recorded; make a new plan")
        return self._step(X, y)

    def _step(self, X, y):
        """``step`` of a plan known to be current (``PlanCache.run``: its ``get`` checked)."""
        plan, opt = self.plan, self.plan.optimizer
        self._refuse_observers(plan)
        if opt.prepared(plan.model) is not self._updates or _modes(plan.model) != self._modes:
            self._warm_up()  # arrays replaced (the graph would miss them) or a mode changed (the graph
            self._record()   # holds the other mode's kernels); the new ones may need kernels not yet
            # compiled (another shape, layout or a flat buffer given up): none may compile inside a capture
        with self.backend.activate():
            current = self.backend.current_stream()
            self.stream.wait_event(current.record())      # the batch gathered on the current stream
            with self.stream:
                plan._load(X, plan.X, "X")
                plan._load(y, plan.y, "y")
                plan.before_step()  # the layers' per-step values (Dropout's key) into their device arrays
                self.backend.write(self._updates.scalars, opt.advance(self.backend.dtype))  # refused: nothing changed
                self.graph.launch(self.stream)
            current.wait_event(self.stream.record())      # what reads the results waits for them
            return self.out, self.value.copy()


def _modes(model) -> tuple:
    """Each layer's mode (training or eval), as a graph records it."""
    return tuple(bool(layer.training) for layer in model.layers)
