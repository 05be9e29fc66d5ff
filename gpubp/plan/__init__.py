"""Planned training steps: every buffer a step writes allocated once (``step.StepPlan``) and,
on a GPU, the whole step captured as one CUDA graph (``graph.GraphedStep``)."""
from .graph import GraphedStep, graph_problem
from .step import PlanCache, StepPlan, plan_problem, takes_out

__all__ = ["GraphedStep", "PlanCache", "StepPlan", "graph_problem", "plan_problem", "takes_out"]
