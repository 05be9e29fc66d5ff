"""Planned training steps: every buffer a step writes allocated once (``step.StepPlan``, its
buffers laid out by ``buffers.PlanBuffers``), one plan per batch shape (``cache.PlanCache``) and,
on a GPU, the whole step captured as one CUDA graph (``graph.GraphedStep``)."""
from .cache import PlanCache
from .graph import GraphedStep, graph_problem
from .step import StepPlan, plan_problem, takes_out

__all__ = ["GraphedStep", "PlanCache", "StepPlan", "graph_problem", "plan_problem", "takes_out"]
