"""Junk given to the tools (format_table, checked_epoch, GradientRecorder's and AnomalyWatch's observer
events, vanishing_experiment) and to History: an InvalidValueError naming what was wrong, never a
TypeError, KeyError, AttributeError or OverflowError from inside."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, NumericalError, OutOfMemoryError
from gpubp.history import History
from gpubp.tools.anomaly import AnomalyWatch, detect_anomaly
from gpubp.tools.diagnostics import GradientRecorder, checked_epoch, format_table, record_gradients, vanishing_experiment


def model():
    return gpubp.mlp(4, [3], 2, "tanh", "cpu", "float64", seed=0)


@pytest.mark.parametrize("result", [None, {}, {"sigmoid": 1, "relu": 2, "ratio": {}}, np.ones(3), "table"])
def test_format_table_takes_what_vanishing_experiment_returns(result):
    """Before: TypeError ('NoneType' is not subscriptable), KeyError 'sigmoid', IndexError."""
    with pytest.raises(InvalidValueError, match="format_table takes what vanishing_experiment returns"):
        format_table(result)


@pytest.mark.parametrize("rec", [None, "rec", {"dW_norms": []}])
def test_checked_epoch_takes_a_recorder(rec):
    with pytest.raises(InvalidValueError, match="who: expected a GradientRecorder, got"):  # was: AttributeError
        checked_epoch("who", rec, 0)


@pytest.mark.parametrize("i,dY,words", [
    (None, np.ones((5, 3)), "i=None"),           # was: TypeError at on_batch_end, the batch already counted
    (10**30, np.ones((5, 3)), "i=1000000"),      # was: IndexError 'cannot fit int'
    (7, np.ones((5, 3)), "i=7"),
    (0, None, "dY NoneType"),                    # was: TypeError from the norm
    (0, "x", "dY str"),
])
def test_recorder_backward_refuses_an_event_no_model_sends(i, dY, words):
    m = model()
    rec = GradientRecorder()
    rec.attach(m)
    with pytest.raises(InvalidValueError, match=f"GradientRecorder.backward: takes .*{words}"):
        rec.backward(m, i, m.layers[0], dY, None)
    assert rec._batch == {}


def test_recorder_still_records():
    rng = np.random.default_rng(0)
    rec = record_gradients(model(), rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), "mse")
    assert all(d > 0 for d in rec.delta_norms[0])


@pytest.mark.parametrize("call", [
    lambda w, m: w.forward(m, np.ones(2, bool), m.layers[0], np.ones((5, 4)), np.ones((5, 3))),  # ambiguous truth
    lambda w, m: w.forward(m, 0, m.layers[0], np.ones((5, 4)), None),                            # None.size
    lambda w, m: w.forward(None, 0, None, np.ones((5, 4)), np.ones((5, 3))),                     # None.backend
    lambda w, m: w.backward(m, 2, None, np.ones((5, 2)), None),                                  # None.grads
    lambda w, m: w.backward(m, 0, m.layers[0], np.ones((5, 2)), "dX"),                           # 'str'.size
])
def test_anomaly_watch_refuses_an_event_no_model_sends(call):
    """Before: AttributeError / ValueError from inside the watch."""
    with detect_anomaly(), pytest.raises(InvalidValueError, match="AnomalyWatch.(forward|backward): takes"):
        call(AnomalyWatch(), model())


def test_anomaly_watch_still_finds_a_nan():
    m = model()
    with detect_anomaly(), pytest.raises(NumericalError, match="layer 1"):
        AnomalyWatch().forward(m, 1, m.layers[1], np.ones((5, 3)), np.full((5, 3), np.nan))


def test_vanishing_experiment_refuses_a_depth_no_array_holds():
    """Before: OverflowError 'cannot fit int into an index-sized integer'."""
    with pytest.raises(OutOfMemoryError, match="vanishing_experiment: the hidden weights of shape"):
        vanishing_experiment(depth=10**30, width=4)


@pytest.mark.parametrize("field,value,words", [
    ("loss", None, "History loss must be a list of numbers, got None"),      # was: TypeError len() in .epochs
    ("loss", "0.5", "History loss must be a list of numbers, got '0.5'"),    # was: format code 'f' for str
    ("val_metric", ["a"], r"History val_metric must be a list of numbers"),  # was: TypeError unary - in watched()
    ("samples_per_sec", {}, "History samples_per_sec must be a list"),       # was: KeyError 0
    ("metric_name", np.ones(2, bool), "History metric_name must be a string or None"),  # was: ambiguous truth value
    ("best_epoch", 0, "History best_epoch must be a whole number >= 1"),
    ("interrupted", "no", "History interrupted must be True or False"),
])
def test_history_refuses_fields_of_the_wrong_kind_when_made(field, value, words):
    with pytest.raises(InvalidValueError, match=words):
        History(**{field: value})


def test_history_keeps_a_nan_loss_and_summarises_an_epoch_without_speed():
    h = History(loss=[float("nan")], lr=[0.1])
    assert h.summary(0) == "loss nan"  # was: IndexError, samples_per_sec holds no entry
