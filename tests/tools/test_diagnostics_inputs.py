"""Bad input to the gradient diagnostics: refused with a gpubp error naming the argument before
any net is built or trained, never a raw TypeError from a list product or a silently shorter run."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, NumericalError
from gpubp.tools.diagnostics import format_table, record_gradients, vanishing_experiment
from helpers import stable_id


@pytest.mark.parametrize("kwargs,words", [
    ({"depth": 2.5}, "depth must be a whole number >= 1, got 2.5"),      # was: TypeError from [width] * depth
    ({"depth": 0}, "depth must be a whole number >= 1, got 0"),          # was: a 1-layer "experiment", ratio 1
    ({"depth": True}, "depth must be a whole number >= 1, got True"),
    ({"width": 0}, "width must be a whole number >= 1, got 0"),          # was: Dense's "n_in >= 1 and n_out >= 1"
    ({"n_samples": -1}, "n_samples must be a whole number >= 1, got -1"),  # was: all rows but the last
    ({"n_samples": 2.5}, "n_samples must be a whole number >= 1, got 2.5"),
    ({"n_samples": 10**6}, "n_samples must be at most 1438"),            # was: silently 1438
    ({"epochs": None}, "epochs must be a whole number >= 0, got None"),
    ({"lr": "3"}, "lr must be a finite number > 0, got '3'"),            # was: accepted unused
    ({"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
])
def test_vanishing_experiment_names_a_bad_argument(kwargs, words):
    with pytest.raises(InvalidValueError, match=f"vanishing_experiment: {words}"):
        vanishing_experiment(**{"depth": 2, "width": 4, "n_samples": 8, **kwargs})


def small():
    model = gpubp.mlp(4, [3], 2, "tanh", "cpu", "float64", seed=0)
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(5, 4)), rng.normal(size=(5, 2))


def test_recorder_rows_take_numpy_integers_and_refuse_other_numbers():
    model, X, T = small()
    rec = record_gradients(model, X, T, "mse")
    assert rec.rows(np.int64(0)) == rec.rows(0)   # was: refused, "got epoch np.int64(0)"
    for bad in (0.0, "0", True):
        with pytest.raises(InvalidValueError, match="epoch must be a whole number"):
            rec.rows(bad)
    with pytest.raises(InvalidValueError, match=r"recorded 1 epoch\(s\).*epoch 1 is not there"):
        rec.table(1)


def test_format_table_names_an_epoch_not_recorded():
    result = vanishing_experiment(depth=1, width=4, n_samples=8)
    with pytest.raises(InvalidValueError, match=r"format_table has recorded 1 epoch\(s\).*epoch 3"):
        format_table(result, epoch=3)                    # was: IndexError
    with pytest.raises(InvalidValueError, match="format_table: epoch must be a whole number, got '0'"):
        format_table(result, epoch="0")                  # was: TypeError


def test_record_gradients_refuses_nan_input_and_a_non_model():
    model, X, T = small()
    X[2, 1] = np.nan
    with pytest.raises(NumericalError, match=r"record_gradients: the input X contains 1 NaN/Inf.*\(2, 1\)"):
        record_gradients(model, X, T, "mse")              # was: a table of nan norms
    with pytest.raises(NumericalError, match="record_gradients: the targets T"):
        record_gradients(model, np.nan_to_num(X), T * np.inf, "mse")
    with pytest.raises(InvalidValueError, match="model must be a gpubp Sequential, got a str"):
        record_gradients("model", X, T, "mse")            # was: AttributeError
    assert model.observers == []                          # nothing left attached by a refusal


def test_recorder_events_for_a_model_it_is_not_attached_to_are_refused():
    """Before: AttributeError ('_batch') before attach, and another model's gradients read by this
    model's layer indices after it."""
    from gpubp.errors import StateError
    from gpubp.tools.diagnostics import GradientRecorder
    model, other = small()[0], gpubp.mlp(4, [5, 5], 2, "tanh", "cpu", "float64", seed=0)
    with pytest.raises(StateError, match="on_batch_end: the recorder is not attached to this model"):
        GradientRecorder().on_batch_end(0, model, None)
    with pytest.raises(StateError, match="on_epoch_end: the recorder is not attached"):
        GradientRecorder().on_epoch_end(0, model)
    rec = GradientRecorder()
    rec.attach(model)
    with pytest.raises(StateError, match="not attached to this model"):
        rec.on_batch_end(0, other, None)


@pytest.mark.parametrize("model", [None, True, "x", 1.5, [], {}, object(), np.array([]), lambda: None], ids=stable_id)
def test_gradient_recorder_attach_takes_a_model(model):
    """Before, AttributeError: '...' object has no attribute 'layers' (found by fuzzing the public API)."""
    from gpubp.tools.diagnostics import GradientRecorder
    with pytest.raises(InvalidValueError, match="GradientRecorder.attach: model must be a gpubp Sequential"):
        GradientRecorder().attach(model)
