"""Your own CSV from the CLI alone: train -> checkpoint -> resume -> predict -> evaluate."""
import csv
import json

import numpy as np
import pytest

import gpubp
from gpubp.cli import main
from helpers import ROOT

DATA = ROOT / "tests" / "data"


def test_train_checkpoint_resume_predict_evaluate(tmp_path, capsys):
    ck, log = tmp_path / "m.npz", tmp_path / "log.jsonl"
    assert main(["train", "--data", str(DATA / "fruit.csv"), "--target", "fruit", "--epochs", "6", "--quiet",
                 "--device", "cpu", "--save", str(ck), "--checkpoint-every", "3", "--log", str(log)]) == 0
    meta = gpubp.checkpoint.read_metadata(ck)
    info = meta["extra"]["data"]
    assert info["classes"] == ["apple", "banana", "orange"] and info["target"] == "fruit"
    assert len(info["scaler"]["mean"]) == 4 and meta["extra"]["epochs_done"] == 6
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 7))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_sec"} <= set(lines[0])
    assert main(["train", "--data", str(DATA / "fruit.csv"), "--epochs", "40", "--quiet", "--device", "cpu",
                 "--resume", str(ck), "--save", str(ck)]) == 0
    assert gpubp.checkpoint.read_metadata(ck)["extra"]["epochs_done"] == 40
    out = tmp_path / "preds.csv"
    assert main(["predict", str(ck), str(DATA / "fruit.csv"), "--out", str(out), "--device", "cpu"]) == 0
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction", "p_apple", "p_banana", "p_orange"] and len(rows) == 181
    with open(DATA / "fruit.csv") as f:
        truth = [r["fruit"] for r in csv.DictReader(f)]
    assert np.mean([r[0] == t for r, t in zip(rows[1:], truth)]) >= 0.85  # raw data, scaled as in training
    capsys.readouterr()
    assert main(["evaluate", str(ck), str(DATA / "fruit.csv"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 180 and result["accuracy"] >= 0.85


def test_predict_reads_columns_by_name_without_the_target(tmp_path):
    ck = tmp_path / "m.npz"
    assert main(["train", "--data", str(DATA / "fruit.csv"), "--epochs", "5", "--quiet", "--device", "cpu",
                 "--save", str(ck)]) == 0
    with open(DATA / "fruit.csv") as f:
        rows = list(csv.DictReader(f))
    shuffled = tmp_path / "new.csv"
    with open(shuffled, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sweetness", "width_cm", "length_cm", "weight_g"])
        for r in rows[:10]:
            w.writerow([r["sweetness"], r["width_cm"], r["length_cm"], r["weight_g"]])
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["predict", str(ck), str(DATA / "fruit.csv"), "--out", str(a), "--device", "cpu"]) == 0
    assert main(["predict", str(ck), str(shuffled), "--out", str(b), "--device", "cpu"]) == 0
    whole, ten = (list(csv.reader(p.read_text().splitlines())) for p in (a, b))
    assert whole[0] == ten[0] and [r[0] for r in whole[1:11]] == [r[0] for r in ten[1:]]  # header, labels
    # the probabilities alike to float32 rounding: BLAS may block 10 rows other than 180 (last digit differs)
    np.testing.assert_allclose(np.array([r[1:] for r in whole[1:11]], float), np.array([r[1:] for r in ten[1:]], float),
                               rtol=1e-5, atol=1e-12)


def test_regression_and_early_stop_with_restore_best(tmp_path, capsys):
    ck = tmp_path / "h.npz"
    assert main(["train", "--data", str(DATA / "houses.csv"), "--loss", "mse", "--epochs", "200", "--lr", "0.01",
                 "--patience", "5", "--restore-best", "--quiet", "--device", "cpu", "--save", str(ck),
                 "--checkpoint-every", "7"]) == 0
    out = capsys.readouterr().out
    history = gpubp.checkpoint.read_metadata(ck)["extra"]["history"]
    best = history["best_epoch"]
    assert best == int(np.argmin(history["val_loss"])) + 1 and f"restored the best epoch, {best}" in out
    model = gpubp.checkpoint.load(ck).model  # the checkpoint holds the best, as returned
    assert main(["evaluate", str(ck), str(DATA / "houses.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] < 500  # prices in k: a 20k error (3300 before the
    assert model is not None                                  # target was standardised)


@pytest.mark.parametrize("content, words", [
    ("a,b,label\n1,2,x\n3,oops,y\n", r"bad.csv, line 3, column 'b': 'oops' is not a number"),
    ("a,b,label\n1,2,x\n3,4\n", r"bad.csv, line 3: 2 values but the header has 3 columns"),
    ("a,b,label\n1,2,x\n3,4,x\n", "only one distinct value"),
])
def test_bad_files_are_named_with_line_and_column(tmp_path, capsys, content, words):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert main(["train", "--data", str(bad), "--device", "cpu", "--quiet", "--val-split", "0"]) == 1
    import re
    assert re.search(words, capsys.readouterr().err)


def test_npz_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    np.savez(tmp_path / "d.npz", X=X * 100 + 5, y=(X[:, 0] > 0).astype(int))
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "20", "--quiet", "--device", "cpu",
                 "--save", str(tmp_path / "m.npz")]) == 0
    assert main(["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "d.npz")]) == 0


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 30)" in text and "(default: 0.1)" in text and "--hidden HIDDEN, --layers HIDDEN" in text
    for command in ("gradcheck", "parity", "bench", "vanishing", "predict", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--batch-size" in text or command in ("bench", "vanishing")
        assert "--device DEVICE" in text and "(default: auto)" in text or command == "parity"  # parity: two specs


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_a_resumed_run_appends_to_its_log(tmp_path, name):
    """Nothing lost: the epochs of the first run stay in the log, once, under one CSV header."""
    ck, log = tmp_path / "m.npz", tmp_path / name
    common = ["--data", str(DATA / "fruit.csv"), "--quiet", "--device", "cpu", "--save", str(ck), "--log", str(log)]
    assert main(["train", *common, "--epochs", "2"]) == 0
    assert main(["train", *common, "--epochs", "4", "--resume", str(ck)]) == 0
    text = log.read_text().splitlines()
    if name.endswith(".csv"):
        assert text[0].startswith("epoch,") and [r.split(",")[0] for r in text[1:]] == ["1", "2", "3", "4"]
    else:
        assert [json.loads(r)["epoch"] for r in text] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_a_run_resumed_from_an_earlier_checkpoint_than_its_log_logs_each_epoch_once(tmp_path, capsys, name):
    """A run killed between checkpoints (--checkpoint-every) leaves lines in its log past the checkpoint it is
    resumed from. Was: the resumed run's lines followed them, the log holding epochs 1, 2, 3, 3, 4 (two runs'
    epoch 3), silently; now the lines the checkpoint does not hold are cut off, said once."""
    ck, log = tmp_path / "m.npz", tmp_path / name
    common = ["--data", str(DATA / "fruit.csv"), "--quiet", "--device", "cpu", "--log", str(log)]
    assert main(["train", *common, "--epochs", "2", "--save", str(ck)]) == 0
    earlier = (tmp_path / "earlier.npz").write_bytes(ck.read_bytes())
    assert earlier and main(["train", *common, "--epochs", "4", "--resume", str(ck), "--save", str(ck)]) == 0
    capsys.readouterr()
    assert main(["train", *common, "--epochs", "3", "--resume", str(tmp_path / "earlier.npz")]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert said == [f"gpubp train: warning: EpochLog: {log} holds lines of epochs 3 to 4, past the epoch 2 this run "
                    f"resumed from (a run that went on after its last checkpoint): they are cut off, and this run's "
                    f"lines follow epoch 2"], said
    text = log.read_text().splitlines()
    epochs = [int(r.split(",")[0]) for r in text[1:]] if name.endswith(".csv") else [json.loads(r)["epoch"] for r in text]
    assert epochs == [1, 2, 3]


def test_a_resumed_run_cuts_no_line_of_another_run_s_log(tmp_path, capsys):
    """The lines past the resumed epoch are cut only from the run's own log: one whose line of that epoch
    is not the saved run's (another run's log, given to --log by mistake) keeps every line."""
    common = ["--data", str(DATA / "fruit.csv"), "--quiet", "--device", "cpu"]
    log = tmp_path / "other.csv"
    assert main(["train", *common, "--epochs", "4", "--seed", "1", "--log", str(log)]) == 0
    before = log.read_text()
    assert main(["train", *common, "--epochs", "2", "--save", str(tmp_path / "m.npz")]) == 0
    assert main(["train", *common, "--epochs", "3", "--resume", str(tmp_path / "m.npz"), "--log", str(log)]) == 0
    assert log.read_text().startswith(before) and len(log.read_text().splitlines()) == 6
    assert "cut off" not in capsys.readouterr().err


def test_a_real_csv_end_to_end(tmp_path, capsys):
    """Fisher's iris (tests/data/iris.csv): train with a validation split and a test file,
    then predict and evaluate the raw file from the checkpoint."""
    ck = tmp_path / "iris.npz"
    assert main(["train", "--data", str(DATA / "iris.csv"), "--target", "species", "--test", str(DATA / "iris.csv"),
                 "--val-split", "0.2", "--epochs", "60", "--lr", "0.02", "--quiet", "--device", "cpu",
                 "--save", str(ck)]) == 0
    assert gpubp.checkpoint.read_metadata(ck)["extra"]["data"]["classes"] == ["setosa", "versicolor", "virginica"]
    capsys.readouterr()
    assert main(["evaluate", str(ck), str(DATA / "iris.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] >= 0.9


def test_a_regression_learns_its_target_standardised_and_answers_in_its_units(tmp_path, capsys):
    """Prices of about 280 (k) learnt from raw targets by the default MLP and settings ended at a
    validation MSE of about 3300 (outputs start near 0); standardised, the same run ends near 200.
    predict and evaluate answer in the target's units, as read from the file."""
    ck = tmp_path / "h.npz"
    assert main(["train", "--data", str(DATA / "houses.csv"), "--loss", "mse", "--quiet", "--device", "cpu",
                 "--save", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "final train loss (of the standardised target)" in out
    assert float(out.split("validation loss: ")[1].split()[0]) < 1000
    info = gpubp.checkpoint.read_metadata(ck)["extra"]["data"]
    table = gpubp.datasets.load_table(DATA / "houses.csv", regression=True)
    assert abs(info["target_scaler"]["mean"][0] - table.y.mean()) < 0.2 * table.y.std()  # the training split's
    assert main(["predict", str(ck), str(DATA / "houses.csv")]) == 0
    predicted = np.array([float(v) for v in capsys.readouterr().out.split()[1:]])
    assert main(["evaluate", str(ck), str(DATA / "houses.csv"), "--json"]) == 0
    loss = json.loads(capsys.readouterr().out)["loss"]
    np.testing.assert_allclose(loss, np.mean((predicted - table.y.ravel()) ** 2), rtol=1e-6)
    assert loss < 1000
