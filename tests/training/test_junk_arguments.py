"""Junk in the datasets' and checkpoint's arguments (found by fuzzing the public API): a gpubp error
naming the argument, never NumPy's "truth value of an array is ambiguous", a TypeError from
len(), or a ComplexWarning while the imaginary parts are dropped."""
import warnings

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.datasets import Scaler, load_table, split
from gpubp.errors import DTypeError, InvalidValueError, ShapeError
from helpers import stable_id

ARRAYS = [np.array([]), np.ones((2, 3), dtype=np.int8)]
IRIS = __file__.rsplit("/", 2)[0] + "/data/iris.csv"


@pytest.mark.parametrize("junk", ARRAYS + ["yes"])
def test_split_stratify_must_be_a_flag(junk):
    X, y = np.ones((8, 2)), np.arange(8) % 2
    with pytest.raises(InvalidValueError, match="stratify must be True or False"):
        split(X, y, 0.25, 0, stratify=junk)


@pytest.mark.parametrize("junk", ARRAYS + [3, ["species"]])
def test_load_table_target_must_be_a_column_name(junk):
    with pytest.raises(InvalidValueError, match="target must be a column name"):
        load_table(IRIS, target=junk)


@pytest.mark.parametrize("call", [
    lambda c: Scaler.fit(c),
    lambda c: Scaler(c, np.ones(5)),
    lambda c: Scaler(np.zeros(5), c),
    lambda c: Scaler.fit(np.ones((3, 5)))(c),
    lambda c: Scaler.fit(np.ones((3, 5)) * [[1], [2], [3]]).inverse(c),
])
def test_scaler_refuses_complex_values_without_a_warning(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidValueError, match="must be real numbers, got complex"):
            call(np.ones(5, dtype=complex).reshape(1, 5))


@pytest.mark.parametrize("junk", [None, 1.5])
def test_scaler_fit_of_a_single_value_is_a_shape_error(junk):
    with pytest.raises(ShapeError, match="Scaler.fit: X needs one row per sample"):
        Scaler.fit(junk)


@pytest.mark.parametrize("junk", ARRAYS)
def test_checkpoint_load_dtype_array_is_a_dtype_error(junk, tmp_path):
    path = checkpoint.save(tmp_path / "m.npz", gpubp.mlp(2, [3], 2))
    with pytest.raises(DTypeError, match="dtype must be float32 or float64"):
        checkpoint.load(path, dtype=junk)


def _history():
    X, y = np.ones((8, 4), np.float32), np.arange(8) % 3
    return gpubp.fit(gpubp.mlp(4, [5], 3, seed=0), X, y, optimizer="sgd", epochs=2, progress=False)


@pytest.mark.parametrize("history", [None, "x", 1.5, [], {}, object(), np.array([])], ids=stable_id)
def test_epoch_log_on_epoch_end_takes_a_history(history, tmp_path):
    """Before, AttributeError: '...' object has no attribute 'metric_name'."""
    from gpubp.history import EpochLog
    with pytest.raises(InvalidValueError, match="EpochLog.on_epoch_end: history must be a gpubp History"):
        EpochLog(tmp_path / "log.csv").on_epoch_end(0, None, history)


@pytest.mark.parametrize("epoch, words", [(None, "epoch must be a whole number >= 0"), ("x", "must be a whole number"),
                                          (1.5, "must be a whole number"), (-1, "must be a whole number >= 0"),
                                          (np.array([]), "must be a whole number"), (2, "epoch 2 is not in the history"),
                                          (10**30, "is not in the history")], ids=stable_id)
def test_epoch_log_on_epoch_end_names_a_bad_epoch(epoch, words, tmp_path):
    """Before, TypeError, IndexError, or a row for epoch 0 written for epoch=-1."""
    from gpubp.history import EpochLog
    with pytest.raises(InvalidValueError, match=words):
        EpochLog(tmp_path / "log.csv").on_epoch_end(epoch, None, _history())


def test_epoch_log_still_logs_each_epoch(tmp_path):
    from gpubp.history import EpochLog
    log, h = EpochLog(tmp_path / "log.csv"), _history()
    log.on_epoch_end(0, None, h)
    log.on_epoch_end(np.int64(1), None, h)
    log.close()
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3


class LooksLikeAModel:
    """What fit's old check asked for (these names), without being a model: it got past that check
    and failed later in the data checks with AttributeError ('NoneType' object has no attribute ...)."""
    backend = layers = forward = backward = parameters = buffers = load_parameters = load_buffers = None


@pytest.mark.parametrize("call, caller", [
    (lambda m, p: gpubp.fit(m, np.ones((4, 2)), np.zeros(4, dtype=int), epochs=1, progress=False), "fit"),
    (lambda m, p: gpubp.evaluate(m, np.ones((4, 2)), np.zeros(4, dtype=int)), "evaluate"),
    (lambda m, p: gpubp.predict(m, np.ones((4, 2))), "predict"),
    (lambda m, p: checkpoint.save(p, m), "checkpoint.save"),
    (lambda m, p: checkpoint.load_into(p, m), "checkpoint.load_into"),
], ids=["fit", "evaluate", "predict", "save", "load_into"])
@pytest.mark.parametrize("junk", [LooksLikeAModel(), [gpubp.Dense(2, 2)]], ids=["lookalike", "list"])
def test_every_caller_refuses_what_is_not_a_sequential_by_one_check(call, caller, junk, tmp_path):
    path = str(tmp_path / "m.npz")
    checkpoint.save(path, gpubp.Sequential([gpubp.Dense(2, 2)]))
    before = open(path, "rb").read()
    with pytest.raises(InvalidValueError, match=f"^{caller}: model must be a gpubp Sequential, got a "
                                                f"{type(junk).__name__}$"):
        call(junk, path)
    assert open(path, "rb").read() == before
