"""Junk given to train, plan, datasets, progress and the shared argument checks (found by fuzzing the
public API): a gpubp error naming what was wrong, never NumPy's "Maximum allowed size exceeded",
an AttributeError, or junk that passes and changes the answer (a bool scale, None read as NaN,
an empty string read as False)."""
import io
import math

import numpy as np
import pytest

import gpubp
from gpubp import _checks
from gpubp.datasets import Scaler, spirals
from gpubp.errors import InvalidValueError
from gpubp.plan import GraphedStep, PlanCache, StepPlan
from gpubp.progress import Progress
from gpubp.train import epoch_order
from helpers import stable_id


def _model():
    return gpubp.mlp(4, [3], 2, "tanh", "cpu", "float32", seed=0)


def test_epoch_order_of_more_samples_than_numpy_can_index_names_n():
    with pytest.raises(InvalidValueError, match=r"epoch_order: n=10+ samples"):
        epoch_order(10**30, 0, 0)


def test_spirals_of_more_points_than_numpy_can_hold_names_n():
    with pytest.raises(InvalidValueError, match=r"spirals: n=10+ points"):
        spirals(n=10**30)


@pytest.mark.parametrize("method", ["__call__", "inverse"])
def test_scaler_refuses_none_that_numpy_reads_as_nan(method):
    scaler = Scaler.fit(np.array([[0.0, 1.0], [2.0, 5.0]]))
    with pytest.raises(InvalidValueError, match="holds None"):
        getattr(scaler, method)(np.array([[1.0, None]], dtype=object))


@pytest.mark.parametrize("scale", [True, np.ones(2), "1"], ids=stable_id)
def test_step_plan_scale_must_be_a_number(scale):
    plan = StepPlan(_model(), "softmax_cross_entropy", "sgd", (8, 4), (8,), "int64")
    X, y = np.ones((8, 4), np.float32), np.arange(8) % 2
    with pytest.raises(InvalidValueError, match="StepPlan.run: scale must be a finite number > 0"):
        plan.run(X, y, scale)


@pytest.mark.parametrize("plan", [None, "plan", _model()], ids=["None", "str", "model"])
def test_graphed_step_takes_a_step_plan(plan):
    with pytest.raises(InvalidValueError, match="GraphedStep: plan must be a gpubp StepPlan"):
        GraphedStep(plan)


@pytest.mark.parametrize("model", [None, [gpubp.Dense(4, 2)]], ids=["None", "list"])
def test_plan_cache_takes_a_sequential(model):
    with pytest.raises(InvalidValueError, match="PlanCache: model must be a gpubp Sequential"):
        PlanCache(model, "mse", "sgd")


@pytest.mark.parametrize("cuda_graph", [None, "", 0, [], np.ones(2, bool)], ids=stable_id)
def test_plan_cache_cuda_graph_must_be_a_flag(cuda_graph):
    with pytest.raises(InvalidValueError, match="PlanCache: cuda_graph must be True or False"):
        PlanCache(_model(), "mse", "sgd", cuda_graph)


@pytest.mark.parametrize("stream", [0, "", [], {}, "stderr"], ids=stable_id)
def test_progress_stream_must_be_writable_or_none(stream):
    with pytest.raises(InvalidValueError, match="Progress stream must be a text stream"):
        Progress(3, True, stream)


@pytest.mark.parametrize("unit", [None, 1, np.array(["a", "b"])], ids=stable_id)
def test_progress_unit_must_be_a_word(unit):
    with pytest.raises(InvalidValueError, match="Progress unit must be a word"):
        Progress(3, True, io.StringIO(), unit)


@pytest.mark.parametrize("call, words", [
    (lambda p, v: p.update(v), "Progress.update: done must be a whole number >= 0"),
    (lambda p, v: p.epoch(v, ""), "Progress.epoch: epoch must be a whole number >= 0"),
])
@pytest.mark.parametrize("junk", [None, 1.5, math.nan, True, -1, "1"], ids=stable_id)
def test_progress_counts_must_be_whole_numbers(call, words, junk):
    with pytest.raises(InvalidValueError, match=words):
        call(Progress(3, True, io.StringIO()), junk)


@pytest.mark.parametrize("minimum", ["x", math.nan, True, np.ones(2)], ids=stable_id)
def test_checks_integer_refuses_a_bound_that_is_not_a_number(minimum):
    with pytest.raises(InvalidValueError, match="n: the bound minimum must be a number"):
        _checks.integer("n", 5, minimum)


@pytest.mark.parametrize("which", ["low", "high"])
@pytest.mark.parametrize("bound", ["x", math.nan, 1j, [1], np.ones(2)], ids=stable_id)
def test_checks_number_refuses_a_bound_that_is_not_a_number(which, bound):
    with pytest.raises(InvalidValueError, match=f"x: the bound {which} must be a number"):
        _checks.number("x", 0.5, **{which: bound})


@pytest.mark.parametrize("which", ["low_open", "high_open"])
def test_checks_number_open_ends_must_be_flags(which):
    with pytest.raises(InvalidValueError, match=f"x: {which} must be True or False"):
        _checks.number("x", 0.5, 0, 1, **{which: np.ones(2, bool)})


@pytest.mark.parametrize("kind", [None, (), "Sequential", (gpubp.Sequential, 1)], ids=stable_id)
def test_checks_instance_refuses_a_kind_that_is_not_a_class(kind):
    with pytest.raises(InvalidValueError, match="m: the kind to check against must be a class"):
        _checks.instance("m", 1, kind)


def test_checks_instance_names_each_class_of_a_tuple():
    with pytest.raises(InvalidValueError, match="m must be a gpubp Dense or Sequential, got an int"):
        _checks.instance("m", 1, (gpubp.Dense, gpubp.Sequential))


@pytest.mark.parametrize("junk", ["no", np.ones(2, bool), 1], ids=stable_id)
def test_checks_writable_target_create_parents_must_be_a_flag(junk, tmp_path):
    with pytest.raises(InvalidValueError, match="p: create_parents must be True or False"):
        _checks.writable_target("p", tmp_path / "a" / "b.txt", junk)
