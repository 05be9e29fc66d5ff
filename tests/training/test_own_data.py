"""fit(restore_best=True), checkpoint_extra, and the data files of gpubp.datasets.files."""
import numpy as np
import pytest

import gpubp
from gpubp.datasets import Scaler, load_table, spirals
from gpubp.errors import InvalidValueError
from gpubp.train import evaluate, fit
from helpers import ROOT


def test_restore_best_returns_and_checkpoints_the_best_epoch(tmp_path):
    X, y, Xt, yt = spirals(n=200)
    model = gpubp.mlp(2, [32], 2, "relu", seed=0)
    path = tmp_path / "c.npz"
    h = fit(model, X, y, lr=0.3, epochs=30, validation_data=(Xt, yt), restore_best=True, progress=False,
            checkpoint_path=path, checkpoint_every=7, checkpoint_extra={"note": 1})
    best = int(np.argmax(h.val_metric)) + 1
    assert h.best_epoch == best and h.epochs == 30
    assert evaluate(model, Xt, yt)["accuracy"] == max(h.val_metric)
    ck = gpubp.checkpoint.load(path)
    assert ck.metadata["extra"]["note"] == 1 and ck.metadata["extra"]["epochs_done"] == 30
    assert evaluate(ck.model, Xt, yt)["accuracy"] == max(h.val_metric)


def test_early_stop_checkpoint_holds_the_returned_model(tmp_path):
    X, y, Xt, yt = spirals(n=200)
    model = gpubp.mlp(2, [16], 2, "relu", seed=0)
    path = tmp_path / "c.npz"
    h = fit(model, X, y, lr=0.5, epochs=200, validation_data=(Xt, yt), patience=2, progress=False,
            checkpoint_path=path, checkpoint_every=50)
    assert h.stopped and h.epochs < 50
    ck = gpubp.checkpoint.load(path)
    assert ck.metadata["extra"]["epochs_done"] == h.epochs
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(np.asarray(v), ck.model.parameters()[k])


def test_tables_and_scaler(tmp_path):
    t = load_table(ROOT / "tests" / "data" / "fruit.csv", target="fruit")
    assert t.X.shape == (180, 4) and t.classes == ["apple", "banana", "orange"] and t.y.dtype == np.int64
    s = Scaler.fit(t.X)
    Z = s(t.X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-12)
    np.testing.assert_array_equal(Scaler.from_dict(s.to_dict())(t.X), Z)
    f = tmp_path / "n.csv"
    f.write_text("a,label\n1,2\n2,1.0\n3,10\n")
    assert load_table(f).classes == [1, 2, 10]
    with pytest.raises(InvalidValueError, match=r"line 2, column 'label': '2' is not one of the model's classes \[1, 10\]"):
        load_table(f, classes=[1, 10])
