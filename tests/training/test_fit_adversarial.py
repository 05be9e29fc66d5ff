"""fit, evaluate, predict and the step plan given what a careless or hostile user gives them:
each refusal a gpubp error naming what was wrong, before the work it would spoil."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, ShapeError, StateError
from gpubp.plan import StepPlan, plan_problem
from gpubp.train import evaluate, fit


def net(n_in=2, n_out=2, seed=0):
    return gpubp.Sequential([gpubp.Dense(n_in, 8), gpubp.Tanh(), gpubp.Dense(8, n_out)], seed=seed)


rng = np.random.default_rng(0)
X0, Y0 = rng.normal(size=(16, 2)), rng.integers(0, 2, 16)


def host(model):
    return {k: np.array(model.backend.to_numpy(v)) for k, v in model.parameters().items()}


@pytest.mark.parametrize("call", [
    lambda m: fit(m, X0, Y0[:, None], epochs=1, progress=False),  # labels as a column: read as 1-class rows
    lambda m: fit(m, X0, np.zeros(16, int), epochs=1, progress=False),
    lambda m: evaluate(m, X0, np.zeros(16, int)),
])
def test_softmax_over_a_single_output_is_refused(call):
    """Was: accepted, the loss 0 at every step and nothing learned, silently."""
    model = net(n_out=1)
    before = host(model)
    with pytest.raises(ShapeError, match="softmax_cross_entropy needs one output per class .* gives 1 per sample"):
        call(model)
    assert all(np.array_equal(v, before[k]) for k, v in host(model).items())


@pytest.mark.parametrize("plan", [True, False])
def test_a_callback_removing_every_layer_stops_fit_by_name(plan):
    """Was: IndexError from inside the step plan, or (plan=False) the data trained as its own output."""
    class Clear:
        def on_epoch_begin(self, epoch, model):
            if epoch == 1:
                model.layers.clear()
    with pytest.raises(StateError, match="no layers left"):
        fit(net(), X0, Y0, epochs=2, plan=plan, callbacks=Clear(), progress=False)


def test_a_step_plan_of_a_model_without_layers_is_refused():
    model = net()
    model.layers.clear()
    assert plan_problem(model) == "the model has no layers"
    with pytest.raises(InvalidValueError, match="the model has no layers"):  # was: IndexError
        StepPlan(model, "mse", "sgd", (4, 2))
