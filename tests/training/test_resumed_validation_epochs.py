"""A run resumed with validation data from one trained without it: each validation value is its own
epoch's (val_loss[e] is epoch e's, NaN for the epochs that had none), in the History, its summary,
the epoch log, the checkpoint read back, and what patience and restore_best judge. Was: appended
after the saved epochs' missing ones, read as epoch 1's, 2's... (summary, log, plot), and the log
wrote no validation for the epochs that had it."""
import json
import math

import numpy as np
import pytest

import gpubp
from gpubp.history import EpochLog, History


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    return X, np.arange(40) % 3


def _resumed(tmp_path, data, **kwargs):
    X, y = data
    path = str(tmp_path / "run.npz")
    gpubp.fit(gpubp.mlp(4, [5], 3, "tanh", seed=0), X, y, epochs=3, batch_size=8, progress=False,
              checkpoint_path=path, checkpoint_every=1)
    model = gpubp.mlp(4, [5], 3, "tanh", seed=0)
    history = gpubp.fit(model, X, y, epochs=5, batch_size=8, progress=False, resume_from=path,
                        validation_data=(X[:10], y[:10]), **kwargs)
    return model, history, path


def test_validation_values_are_their_own_epochs(tmp_path, data):
    model, h, _ = _resumed(tmp_path, data)
    assert len(h.val_loss) == len(h.val_metric) == 5
    assert all(math.isnan(v) for v in h.val_loss[:3] + h.val_metric[:3])
    X, y = data
    assert h.val_loss[4] == pytest.approx(gpubp.evaluate(model, X[:10], y[:10])["loss"], rel=1e-6)
    assert "val_loss" not in h.summary(0) and "val_loss" in h.summary(4)


def test_the_log_and_the_checkpoint_keep_them(tmp_path, data):
    X, y = data
    log = EpochLog(str(tmp_path / "log.jsonl"))
    model, h, path = _resumed(tmp_path, data, callbacks=[log], checkpoint_path=str(tmp_path / "again.npz"),
                              checkpoint_every=1)
    lines = [json.loads(line) for line in open(log.path)]  # standard JSON: no NaN written
    assert [("val_loss" in line) for line in lines] == [True, True]  # epochs 4 and 5, both validated
    assert [line["epoch"] for line in lines] == [4, 5]
    again = gpubp.fit(gpubp.mlp(4, [5], 3, "tanh", seed=0), X, y, epochs=6, batch_size=8, progress=False,
                      resume_from=str(tmp_path / "again.npz"), validation_data=(X[:10], y[:10]))
    assert again.val_loss[3:5] == h.val_loss[3:] and all(math.isnan(v) for v in again.val_loss[:3])
    assert len(again.val_loss) == 6


def test_restore_best_and_patience_judge_the_validated_epochs():
    h = History(loss=[0.5, 0.4, 0.3, 0.9], val_loss=[math.nan, math.nan, 2.0, 1.0], lr=[0.1] * 4,
                epoch_time=[1.0] * 4, samples_per_sec=[1.0] * 4)
    assert h.watched() == [math.inf, math.inf, 2.0, 1.0]  # not the training loss, not NaN (argmin's pick)
    h2 = History(loss=[0.5, 0.4, 0.3], val_loss=[2.0], lr=[0.1] * 3, epoch_time=[1.0] * 3,
                 samples_per_sec=[1.0] * 3)  # resumed without validation: its last epochs have none
    assert h2.watched() == [0.5, 0.4, 0.3]
    assert History.from_dict(h.as_dict()).val_loss[2:] == [2.0, 1.0]
