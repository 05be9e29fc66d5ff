"""Your own files from the command line: predict reads no labels, and a checkpoint's data record
must describe its model; inputs that once stopped a command on
something it does not read, or named the wrong place in the file."""
import csv
import re

import numpy as np
import pytest

import gpubp
from gpubp.cli import main
from gpubp.train import fit
from helpers import run_cli as run


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A classifier of 'cat'/'dog' from two columns a, b, trained one epoch; its folder."""
    d = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    rows = [f"{a},{b},{'cat' if a > 0 else 'dog'}" for a, b in X]
    (d / "train.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    assert main(["train", "--data", str(d / "train.csv"), "--epochs", "1", "--quiet", "--device", "cpu",
                 "--save", str(d / "m.npz")]) == 0
    return d


@pytest.mark.parametrize("labels", ["", "bird", "1.5"])
def test_predict_reads_no_label_of_a_file_that_has_its_target_column(model, tmp_path, capsys, labels):
    """Was: "the label is empty" or "'bird' is not one of the model's classes": new data with its
    label column left blank (or holding labels never trained on) refused by predict, which reads
    no label."""
    new = tmp_path / "new.csv"
    new.write_text("b,a,label\n" + "".join(f"{b},{a},{labels}\n" for a, b in [(1.0, 2.0), (-1.0, 0.5)]))
    code, out, last = run(["predict", str(model / "m.npz"), str(new), "--device", "cpu"], capsys)
    assert code == 0, last
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["prediction", "p_cat", "p_dog"] and len(rows) == 3
    code, _, last = run(["evaluate", str(model / "m.npz"), str(new), "--device", "cpu"], capsys)
    assert code == 1 and "column 'label'" in last  # evaluate does read them, and says which is wrong


def test_predict_on_an_npz_reads_no_y(tmp_path, capsys):
    """Was: an .npz's y read and refused by predict (labels outside the model's classes, a 2-D y)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--quiet", "--device", "cpu",
                 "--save", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    for y in (np.full(4, 7), np.zeros((4, 2))):
        np.savez(tmp_path / "new.npz", X=X[:4], y=y)
        code, out, last = run(["predict", str(tmp_path / "m.npz"), str(tmp_path / "new.npz"), "--device", "cpu"],
                              capsys)
        assert code == 0 and len(out.splitlines()) == 5, last


@pytest.mark.parametrize("record, words", [
    ({"task": "classification", "classes": ["a", "b", "c"]}, r"the classes \['a', 'b', 'c'\] for 3"),
    ({"task": "regression", "target_scaler": {"mean": [0.0, 1.0], "std": [1.0, 2.0]}}, "a target scaling for 2"),
])
def test_a_data_record_that_is_not_the_model_s_is_refused(tmp_path, capsys, record, words):
    """Was: predict wrote a header of three classes over rows of two probabilities (a class with none,
    silently), or "Scaler: fitted on 2 features per sample" of a record beside a one-output model."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 2))
    outputs = 2 if record["task"] == "classification" else 1
    model = gpubp.mlp(2, [4], outputs, "relu", seed=0)
    y = (X[:, 0] > 0).astype(int) if outputs == 2 else X[:, :1]
    fit(model, X, y, loss="softmax_cross_entropy" if outputs == 2 else "mse", epochs=1, progress=False,
        checkpoint_path=tmp_path / "m.npz", checkpoint_every=1,
        checkpoint_extra={"data": {**record, "features": ["a", "b"], "target": "y"}})
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,a\n3,4,b\n" if outputs == 2 else "a,b,y\n1,2,0.5\n3,4,7\n")
    for command in ("predict", "evaluate"):
        extra = ["--out", str(tmp_path / "p.csv")] if command == "predict" else []
        code, _, last = run([command, str(tmp_path / "m.npz"), str(tmp_path / "d.csv"), "--device", "cpu", *extra],
                            capsys)
        assert code == 1 and re.search(words + r" output\(s\), but the model has " + str(outputs), last), last
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("argv, words", [
    (["predict", "{d}/train.csv", "{d}/m.npz"], "MODEL {d}/train.csv is not a gpubp checkpoint but DATA {d}/m.npz "
                                               "is one: give the model first (gpubp predict MODEL DATA)"),
    (["evaluate", "{d}/train.csv", "{d}/m.npz"], "MODEL {d}/train.csv is not a gpubp checkpoint but DATA {d}/m.npz "
                                                "is one: give the model first (gpubp evaluate MODEL DATA)"),
    (["info", "{d}/train.csv"], "{d}/train.csv holds text (a CSV?), not a gpubp checkpoint (.npz)"),
    (["predict", "{d}/m.npz", "{d}/m.npz"], "{d}/m.npz is a gpubp checkpoint (a trained model), not data"),
    (["train", "--data", "{d}/m.npz"], "{d}/m.npz is a gpubp checkpoint (a trained model), not data"),
])
def test_a_model_given_as_data_or_data_as_a_model_is_named_so(model, capsys, argv, words):
    """Was: 'train.csv is not a readable .npz checkpoint (BadZipFile: File is not a zip file); it is damaged,
    truncated or another kind of file' for arguments given the wrong way round, and 'an .npz needs arrays named
    X and y, found ['__meta__', 'opt/0.W/m', ...]' (every array of the checkpoint) for a model given as data."""
    code, out, last = run([a.format(d=model) for a in argv], capsys)
    assert code == 1 and words.format(d=model) in last, last
