"""``fit``'s step plans, one per batch shape (``PlanCache``), made again when the model's layers change."""
from __future__ import annotations

from .. import _checks
from ..network import Sequential
from .graph import GraphedStep
from .step import StepPlan, layers_changed, plan_problem


class PlanCache:
    """``fit``'s plans, one per batch shape (the short last batch gets its own), or none at
    all when the model cannot be planned (``problem`` says why: the eager step is used).
    With ``cuda_graph`` each plan is captured as a CUDA graph (``plan.graph``). When the
    model's layers change between steps (a callback replaced one), every plan is dropped and
    the model is planned again (or run eagerly, if it can no longer be planned)."""

    model, loss, optimizer, cuda_graph = (_checks.Fixed() for _ in range(4))  # what every plan is made of

    def __init__(self, model, loss, optimizer, cuda_graph=False):
        _checks.instance("PlanCache: model", model, Sequential)
        cuda_graph = _checks.flag("PlanCache: cuda_graph", cuda_graph)
        self.model, self.loss, self.optimizer, self.cuda_graph = model, loss, optimizer, cuda_graph
        self._renew()

    def _renew(self):
        self._layers = list(self.model.layers)
        self.problem = plan_problem(self.model)
        self.plans: dict = {}

    def get(self, X, y, n):
        """The plan for a batch of ``n`` rows of ``X`` and ``y``, or None (eager). The one check per
        step that the plan is current: the model's layers are those it was made for (else every plan is
        dropped and the model planned again), and it is the plan for the model's backend (the key)."""
        if layers_changed(self.model, self._layers):
            self._renew()
        if self.problem:
            return None
        key = (n, self.model.backend)
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = StepPlan(self.model, self.loss, self.optimizer, (n, *X.shape[1:]),
                                              (n, *y.shape[1:]), y.dtype)
            if self.cuda_graph:
                plan.graph = GraphedStep(plan)
        return plan

    @staticmethod
    def run(plan, X, y, scale=1.0):
        """One step of ``plan``, just returned by ``get`` (which checked that it is current, so it is
        not checked again): ``(model output, loss value)`` of its captured graph (the update included)
        or of its forward, loss and backward (``StepPlan.run``)."""
        if plan.graph is not None:
            return plan.graph._step(X, y)
        Y, value = plan._run_into(X, y, scale)
        return Y, value.copy()

