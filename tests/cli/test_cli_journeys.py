"""Whole command-line journeys, each step taken as a careless user would: a mistake made in one
command must be named by gpubp (or warned of) there, not turn into a silent wrong answer later."""
import csv

import numpy as np
import pytest

import gpubp
from gpubp.cli import main
from helpers import ROOT

IRIS = ROOT / "tests" / "data" / "iris.csv"


@pytest.mark.parametrize("command", [["train", "--epochs", "1", "--quiet"], ["gradcheck"]])
def test_a_junk_gpubp_device_is_named_as_the_variable(monkeypatch, capsys, command):
    """Was: `GPUBP_DEVICE=junk gpubp train` said only "unknown device 'junk'", a value the user never
    typed in the command; the error now names the variable it came from (Python's default device too)."""
    monkeypatch.setenv("GPUBP_DEVICE", "junk")
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "GPUBP_DEVICE='junk'" in err and "unknown device" in err and "Traceback" not in err
    with pytest.raises(gpubp.DeviceError, match="GPUBP_DEVICE='junk'"):
        gpubp.mlp(2, [2], 2)
    monkeypatch.setenv("GPUBP_DEVICE", "cpu/float16")
    with pytest.raises(gpubp.DTypeError, match="GPUBP_DEVICE='cpu/float16'.*float16"):
        gpubp.get_backend()


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_a_csv_without_its_header_row_is_named_so(tmp_path, capsys):
    """Was: a CSV saved without a header (np.savetxt) was refused for "naming columns more than once"
    (its first sample's repeated values), or, with distinct values, trained with that sample taken
    for column names; every command now says the header row is missing."""
    rng = np.random.default_rng(0)
    rows = np.c_[rng.normal(size=(40, 3)), np.arange(40) % 2]
    repeated = _write_csv(tmp_path / "repeated.csv", None, np.r_[[[0.0, 0.0, 1.0, 1]], rows])
    distinct = _write_csv(tmp_path / "distinct.csv", None, rows)
    for path in (repeated, distinct):
        assert main(["train", "--data", path, "--epochs", "1", "--quiet", "--device", "cpu"]) == 1
        assert "holds only numbers" in capsys.readouterr().err
    model = tmp_path / "m.npz"
    named = _write_csv(tmp_path / "named.csv", ["a", "b", "c", "label"], rows)
    assert main(["train", "--data", named, "--epochs", "1", "--quiet", "--device", "cpu", "--save", str(model)]) == 0
    for command in ("evaluate", "predict"):
        assert main([command, str(model), distinct, "--device", "cpu"]) == 1
        err = capsys.readouterr().err
        assert "holds only numbers, so it is a sample, not a header" in err, err


def test_train_resume_on_another_file_or_no_epoch_left_warns(tmp_path, capsys):
    """Was: `gpubp train --resume m.npz --data fewer_rows.csv` continued the saved run silently on other
    samples, and `--epochs N` equal to the epochs done trained nothing silently (and wrote --save again)."""
    with open(IRIS) as f:
        rows = list(csv.reader(f))
    half = _write_csv(tmp_path / "half.csv", rows[0], rows[1:60])
    model = str(tmp_path / "m.npz")
    base = ["train", "--target", "species", "--quiet", "--device", "cpu"]
    assert main(base + ["--data", str(IRIS), "--epochs", "2", "--save", model]) == 0
    capsys.readouterr()
    assert main(base + ["--data", half, "--epochs", "3", "--resume", model]) == 0
    assert "warning: fit: resume_from=" in capsys.readouterr().err
    assert main(base + ["--data", str(IRIS), "--epochs", "3", "--resume", model]) == 0
    assert "warning" not in capsys.readouterr().err  # the saved run's own file: it continues
    assert main(base + ["--data", str(IRIS), "--epochs", "2", "--resume", model]) == 0
    assert "has done 2 epochs and epochs=2, so nothing is trained" in capsys.readouterr().err


def test_an_id_column_among_the_features_is_warned_of(tmp_path, capsys):
    """Was: iris with an id column first (rows sorted by species) trained to validation accuracy 1.0 on
    the id alone, without a word; a feature numbering the rows is now warned of, also shuffled."""
    with open(IRIS) as f:
        rows = list(csv.reader(f))
    order = np.random.default_rng(0).permutation(len(rows) - 1)
    with_id = _write_csv(tmp_path / "id.csv", ["id"] + rows[0], [[1 + i] + r for i, r in zip(order, rows[1:])])
    assert main(["train", "--data", with_id, "--target", "species", "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "warning: --data" in err and "the feature 'id' holds each whole number from 1 to 150 once" in err, err
    assert main(["train", "--data", str(IRIS), "--target", "species", "--epochs", "1", "--quiet", "--device",
                 "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_whole_number_measurement_read_as_classes_is_warned_of(tmp_path, capsys):
    """Was: a price in whole dollars (51 values in 200 rows) trained as 51 classes of about 4 samples
    each without a word (only a target with more classes than half its rows was warned of)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200))
    path = _write_csv(tmp_path / "prices.csv", ["a", "b", "price"],
                      [[x, z, round(100 + 10 * x + 5 * z)] for x, z in zip(a, b)])
    assert main(["train", "--data", path, "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "the target 'price' has" in err and "a real-valued target (--loss mse)?" in err, err
    assert main(["train", "--data", path, "--loss", "mse", "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_labels_that_differ_only_in_case_are_warned_of(tmp_path, capsys):
    """Was: 'yes' and 'Yes' (a spreadsheet's autocorrect) trained as two classes without a word, the model
    learning to tell them apart; they stay two, as given, and are said."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 40))
    labels = ["no" if x < 0 else "yes" if i % 3 else "Yes" for i, x in enumerate(a)]
    path = _write_csv(tmp_path / "answers.csv", ["a", "b", "answer"], [[x, z, t] for x, z, t in zip(a, b, labels)])
    assert main(["train", "--data", path, "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "the target 'answer' holds labels that differ only in case: 'Yes' and 'yes'" in err, err
    assert "each a class of its own" in err


def test_predict_with_a_python_model_says_its_scaling_is_not_read(tmp_path, capsys):
    """Was: a model trained in Python on standardised data, its Scaler kept as fit's docstring suggests
    (checkpoint_extra={"scaler": ...}), was evaluated by `gpubp evaluate` on raw data at accuracy 0.44
    (0.997 scaled) without a word; predict and evaluate now warn that the extras are not read."""
    rng = np.random.default_rng(0)
    X = rng.normal(50, 10, size=(300, 3))
    y = (X[:, 0] > 50).astype(int)
    scaler = gpubp.datasets.Scaler.fit(X)
    model, ck, data = gpubp.mlp(3, [8], 2, "relu", "cpu", seed=0), tmp_path / "py.npz", tmp_path / "raw.npz"
    gpubp.fit(model, scaler(X), y, epochs=2, progress=False, checkpoint_path=str(ck), checkpoint_every=2,
              checkpoint_extra={"scaler": scaler.to_dict()})
    np.savez(data, X=X, y=y)
    for command in ("evaluate", "predict"):
        assert main([command, str(ck), str(data), "--device", "cpu"]) == 0
        err = capsys.readouterr().err
        assert f"warning: {ck} was not saved by gpubp train" in err and "its extras ['scaler'] are not read" in err
    trained = tmp_path / "cli.npz"
    assert main(["train", "--data", str(data), "--epochs", "1", "--quiet", "--device", "cpu", "--save", str(trained)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(trained), str(data), "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err  # gpubp train's own record: read and applied


@pytest.mark.parametrize("channels, side", [(1, 8), (4, 16)])
def test_cnn_images_saved_channels_last_are_named_so(tmp_path, capsys, channels, side):
    """Was: --model cnn on an .npz of NHWC images (N, H, W, C) said they were too small ("holds 8x1"),
    or, with 4 channels, trained on (C=16, H=16, W=4) images, the pixels in the wrong places."""
    rng = np.random.default_rng(0)
    path = tmp_path / "nhwc.npz"
    np.savez(path, X=rng.random((60, side, side, channels)), y=np.arange(60) % 2)
    assert main(["train", "--model", "cnn", "--data", str(path), "--epochs", "1", "--quiet", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "looks like NHWC (channels last)" in err and "X.transpose(0, 3, 1, 2)" in err, err
    np.savez(path, X=rng.random((60, channels, side, side)), y=np.arange(60) % 2)  # NCHW: trains
    assert main(["train", "--model", "cnn", "--data", str(path), "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
