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


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("label", ["nan", "inf", "-inf"])
def test_a_missing_label_is_not_made_a_class(tmp_path, label):
    path = write(tmp_path, "d.csv", f"a,y\n1,0\n2,1\n3,{label}\n")
    with pytest.raises(InvalidValueError, match=f"line 4.*{label!r} is not finite"):  # was: a class "nan"
        load_table(path)
    np.savez(tmp_path / "d.npz", X=np.ones((3, 1)), y=np.array([0.0, 1.0, float(label)]))
    with pytest.raises(InvalidValueError, match="not finite|NaN/Inf"):
        load_table(tmp_path / "d.npz")
    np.savez(tmp_path / "r.npz", X=np.ones((3, 1)), y=np.array([[0.0], [1.0], [float(label)]]))
    with pytest.raises(InvalidValueError, match="NaN/Inf"):  # regression targets from .npz were not checked
        load_table(tmp_path / "r.npz", regression=True)


def test_one_label_spelled_two_ways_is_one_class(tmp_path):
    table = load_table(write(tmp_path, "d.csv", "a,y\n1,1\n2,1.0\n3,2\n"))
    assert table.classes == [1, 2] and table.y.tolist() == [0, 0, 1]  # was: classes [1, 1, 2], y [1, 1, 2]
    big = load_table(write(tmp_path, "b.csv", f"a,y\n1,{2**60}\n2,{2**60 + 1}\n"))
    assert big.classes == [2**60, 2**60 + 1] and big.y.tolist() == [0, 1]  # float rounding merged them


def test_given_classes_are_matched_by_value_and_must_be_distinct(tmp_path):
    path = write(tmp_path, "d.csv", "a,y\n1,0\n2,1\n")
    assert load_table(path, classes=[0.0, 1.0]).y.tolist() == [0, 1]  # was: "'0' is not one of [0.0, 1.0]"
    with pytest.raises(InvalidValueError, match="more than once"):  # was: y indexed past the duplicate
        load_table(path, classes=[0, 0, 1])


@pytest.mark.parametrize("content, words", [
    (b"PK\x03\x04garbage", "cannot read"), (b"", r"is empty \(0 bytes\)"),
])
def test_a_damaged_npz_is_named(tmp_path, content, words):
    (tmp_path / "d.npz").write_bytes(content)
    with pytest.raises(InvalidValueError, match=words):  # was: BadZipFile / EOFError
        load_table(tmp_path / "d.npz")


def test_odd_arguments_and_arrays_are_named(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(InvalidValueError, match="list of column names"):  # was: one column per character
        load_table(path, features="ab")
    with pytest.raises(InvalidValueError, match="must be a path"):  # was: TypeError
        load_table(None)
    np.savez(tmp_path / "s.npz", X=np.ones((3, 2)), y=np.array(1))
    with pytest.raises(gpubp.ShapeError, match="one label"):  # was: TypeError len() of unsized object
        load_table(tmp_path / "s.npz")
    np.savez(tmp_path / "e.npz", X=np.ones((0, 2)), y=np.zeros(0))
    with pytest.raises(gpubp.ShapeError, match="no samples"):
        load_table(tmp_path / "e.npz")


@pytest.mark.parametrize("stored, words", [
    ({"mean": [0.0]}, "stored as"), ({"mean": [0.0, 1.0], "std": [1.0]}, "2 means but 1 stds"),
    ({"mean": [0.0], "std": [0.0]}, "std > 0"), ({"mean": [float("nan")], "std": [1.0]}, "finite"),
])
def test_a_damaged_scaler_is_refused_when_read(stored, words):
    with pytest.raises(gpubp.GpubpError, match=words):  # was: KeyError, or Inf/NaN for every input
        Scaler.from_dict(stored)


def test_a_scaler_names_data_of_another_width():
    scaler = Scaler.fit(np.ones((3, 2)))
    with pytest.raises(gpubp.ShapeError, match="2 features"):  # was: ValueError cannot reshape
        scaler(np.ones((3, 3)))


@pytest.mark.parametrize("kwargs, words", [
    (dict(features=3), "features must be a list of column names, got 3"),  # was: TypeError 'int' not iterable
    (dict(features=[1, 2]), r"features must be a list of column names, got \[1, 2\]"),
    (dict(features=["a", "a"]), r"features \['a', 'a'\] name a column more than once"),  # was: "no target column"
    (dict(classes=3), "classes must be a list of labels, got 3"),  # was: TypeError
    (dict(regression="no"), "regression must be True or False, got 'no'"),  # was: read as True
    (dict(require_target="yes"), "require_target must be True or False, got 'yes'"),
])
def test_load_table_arguments_are_checked_by_name(tmp_path, kwargs, words):
    path = write(tmp_path, "d.csv", "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(InvalidValueError, match=words):
        load_table(path, **kwargs)


def test_an_npz_with_no_feature_or_a_bad_target_is_named(tmp_path):
    np.savez(tmp_path / "f.npz", X=np.ones((3, 0)), y=np.arange(3) % 2)
    with pytest.raises(gpubp.ShapeError, match=r"no features \(shape \(3, 0\)\)"):  # was: a Table with 0 features
        load_table(tmp_path / "f.npz")
    np.savez(tmp_path / "b.npz", X=np.ones((3, 2)), y=np.array(["1", "x", "2"]))
    with pytest.raises(InvalidValueError, match=r"b.npz, y\[1\], column 'y': 'x' is not a number"):  # was: "line 1"
        load_table(tmp_path / "b.npz", regression=True)


@pytest.mark.parametrize("call, words", [
    (lambda: Scaler.fit("abc"), "Scaler.fit: X must be numbers"),  # was: ValueError from NumPy
    (lambda: Scaler.fit([[1, "a"]]), "Scaler.fit: X must be numbers"),
    (lambda: Scaler([0.0], [1.0])([["x"]]), "Scaler: X must be numbers"),
    (lambda: Scaler("ab", [1.0]), "Scaler: mean must be numbers"),
])
def test_a_scaler_given_text_says_so(call, words):
    with pytest.raises(InvalidValueError, match=words):
        call()


def test_an_npz_that_is_not_an_archive_of_arrays_is_named(tmp_path):
    import zipfile
    np.save(tmp_path / "one.npy", np.zeros((3, 2)))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(InvalidValueError, match="cannot read .*one.npz as .npz .*a single ndarray"):
        load_table(tmp_path / "one.npz")  # was: TypeError (an ndarray is no context manager)
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as z:
        z.writestr("X.npy", b"not an array")
        z.writestr("y.npy", b"nor this")
    with pytest.raises(InvalidValueError, match=r"cannot read .*raw.npz as .npz .*\['X', 'y'\] not stored as .npy"):
        load_table(tmp_path / "raw.npz")  # was: AttributeError 'bytes' object has no attribute 'dtype'


def test_the_target_column_is_never_also_a_feature(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(InvalidValueError, match=r"the target column 'a' is also one of the features \['a', 'b'\]"):
        load_table(path, target="a", features=["a", "b"])  # was: X held the target, silently


def test_a_scaler_s_mean_and_std_are_fixed_when_it_is_made():
    """Was: ``scaler.std = None`` (or 0, or a list) taken, ending in a raw error or NaN inputs later."""
    scaler = Scaler([1.0, 2.0], [2.0, 4.0])
    for name in ("mean", "std"):
        with pytest.raises(InvalidValueError, match=f"Scaler {name} is fixed when it is made \\(Scaler\\(2 features"):
            setattr(scaler, name, np.zeros(2))
    np.testing.assert_array_equal(scaler(np.array([[3.0, 6.0]])), [[1.0, 1.0]])
