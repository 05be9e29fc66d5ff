"""What a user's shell found of --save and of checkpoint records. A --save that its writer would
refuse (read-only, a pipe) is refused before training, not after it; a checkpoint whose records
(training state, run, data) were edited by hand or damaged is one line naming the file and the
record, before any data is read, never a traceback or a silent wrong answer; two runs writing one
--save at once keep both models."""
import importlib
import json
import os
import re
import signal

import numpy as np
import pytest

import gpubp.cli.saving
import gpubp.cli.train
from gpubp import checkpoint
from gpubp.cli import main
from helpers import run_cli as run

FIT = importlib.import_module("gpubp.train.fit")  # the module (gpubp.train.fit is the function)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints written by gpubp train: xor (built-in), and a classifier and a regression of an
    own CSV; and that CSV."""
    d = tmp_path_factory.mktemp("saves")
    X = np.random.default_rng(0).normal(size=(16, 2)).round(3)
    rows = "\n".join(f"{a},{b},{int(a + b > 0)}" for a, b in X)
    (d / "data.csv").write_text("a,b,y\n" + rows + "\n")
    for name, flags in (("xor", ["--dataset", "xor"]), ("own", ["--data", str(d / "data.csv")]),
                        ("reg", ["--data", str(d / "data.csv"), "--loss", "mse"])):
        assert main(["train", "--device", "cpu", "--epochs", "2", "--quiet", *flags, "--save", str(d / f"{name}.npz"),
                     "--hidden", "4"]) == 0
    return d


def never(*args, **kwargs):
    pytest.fail("training began before the mistake was refused")


def edited(src, dst, change):
    """A copy of checkpoint ``src`` at ``dst`` whose metadata ``change(meta)`` edited, as a user's
    script (np.load, json, np.savez) would: every array kept."""
    with np.load(src) as z:
        meta, arrays = json.loads(str(z["__meta__"])), {k: z[k] for k in z.files if k != "__meta__"}
    change(meta)
    with open(dst, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
    return str(dst)


# -- --save refused before training as its writer refuses it -------------------------------------
def test_a_read_only_or_special_save_is_refused_before_training(saved, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro.npz"
    ro.write_bytes((saved / "xor.npz").read_bytes())
    ro.chmod(0o444)  # a model the user protected: kept, also from root (whose os.access says writable)
    os.mkfifo(tmp_path / "pipe.npz")
    monkeypatch.setattr(FIT, "_run_epoch", never)  # was: trained, then refused at the save
    for path, words in ((ro, "ro.npz is read-only; it is kept"), (tmp_path / "pipe.npz", "not a regular file")):
        code, out, err = run(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "4", "--quiet",
                              "--resume", str(ro), "--save", str(path)], capsys)
        assert code == 1 and err.startswith("gpubp train: error: --save: ") and words in err, err
        assert "model:" not in out
    assert ro.read_bytes() == (saved / "xor.npz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.npz", "ro.npz"]  # nothing rescued: nothing trained


# -- a checkpoint's records, edited by hand or damaged --------------------------------------------
def _set(*keys, value):
    """An edit of the metadata: ``meta[k1][k2]... = value``."""
    def change(meta):
        for key in keys[:-1]:
            meta = meta[key]
        meta[keys[-1]] = value
    return change


RESUMED = [  # (edit, words): was a traceback, a wrong flag named (fit's), or silently trained
    (_set("extra", "epochs_done", value="3"), "damaged training state: epochs_done must be a whole number"),
    (_set("extra", "seed", value=-5), "damaged training state: seed must be a whole number >= 0, got -5"),
    (_set("extra", "batching", value=[32]), "damaged training state: batching must be a dict"),
    (_set("extra", "batching", "batch_size", value=0), "batching batch_size must be a whole number >= 1, got 0"),
    (_set("extra", "run", value=[1]), "its run record .* is damaged: it is a list, not a dict"),
    (_set("extra", "run", "schedule", value="junk"), "run record .* schedule must be one of constant, step, cosine"),
    (_set("extra", "data", value="xor"), "its data record .* is damaged: it is a str, not a dict"),
    (_set("extra", "data", "val_split", value=5), "val_split must be a finite number >= 0 and < 1, got 5"),
    (_set("extra", "data", "loss", value="junk"), "loss must be one of .*, got 'junk'"),
    (_set("extra", "data", "shape", value=[3]), r"shape \[3\] says 3 value\(s\) per sample, but the model's first "
                                                 r"layer reads 2"),
    (_set("extra", "data", "shape", value="2"), "shape must be a list of 1 or 3 whole numbers"),
    (_set("extra", "data", "classes", value=[0, 1, 2]), r"the classes \[0, 1, 2\] for 3 output\(s\), but the "
                                                        r"model has 2"),
]


@pytest.mark.parametrize("change, words", RESUMED)
def test_a_resumed_checkpoint_with_a_damaged_record_is_one_line_before_the_data(saved, tmp_path, capsys, monkeypatch,
                                                                               change, words):
    path = edited(saved / "xor.npz", tmp_path / "edited.npz", change)
    monkeypatch.setattr(gpubp.cli.train, "prepare", never)  # the data is read after the checkpoint is checked
    code, out, err = run(["train", "--device", "cpu", "--epochs", "6", "--quiet", "--resume", path,
                          "--save", str(tmp_path / "next.npz")], capsys)
    assert code == 1 and err.startswith(f"gpubp train: error: {path}: ") and re.search(words, err), err
    assert not (tmp_path / "next.npz").exists()


PREDICTED = [  # (model, edit, words): was a traceback, or predictions of a damaged record (raw outputs, dicts)
    ("own", _set("extra", "data", value=[1]), "it is a list, not a dict"),
    ("own", _set("extra", "data", "task", value="junk"), "task must be classification or regression, got 'junk'"),
    ("own", _set("extra", "data", "classes", value=[{"a": 1}, {"b": 2}]), "classes must be a list of labels"),
    ("own", _set("extra", "data", "shape", value=[-2]), "shape must be a whole number >= 1, got -2"),
    ("own", _set("extra", "data", "scaler", value="x"), "a Scaler is stored as"),
    ("own", _set("extra", "data", "scaler", value={"mean": [0.0], "std": [1.0]}),
     r"scaler has 1 feature\(s\), but shape \[2\] says 2"),
    ("reg", _set("extra", "data", "target_scaler", value={"mean": [0.0, 1.0]}), "a Scaler is stored as"),
    # was: the data blamed, 'DATA data.csv: the model reads 2 features per sample, the file holds 1 values'
    ("own", _set("extra", "data", "features", value=["a"]),
     r"features names 1 column\(s\) \['a'\], but shape \[2\] says 2 values per sample"),
    # was: "features ['a', 'a'] name a column more than once", as if the data or the command had named them
    ("own", _set("extra", "data", "features", value=["a", "a"]), r"features \['a', 'a'\] name a column more than once"),
    ("own", _set("extra", "data", "classes", value=[1, "1.0"]), r"classes \[1, '1.0'\] name a class more than once"),
]


@pytest.mark.parametrize("name, change, words", PREDICTED)
def test_predict_and_evaluate_refuse_a_damaged_data_record_naming_the_checkpoint(saved, tmp_path, capsys, name,
                                                                                change, words):
    path = edited(saved / f"{name}.npz", tmp_path / "edited.npz", change)
    for command in ("predict", "evaluate"):
        code, out, err = run([command, path, str(saved / "data.csv"), "--device", "cpu"], capsys)
        assert code == 1 and out == "", out
        assert err.startswith(f"gpubp {command}: error: {path}: its data record") and re.search(words, err), err


def test_records_a_later_gpubp_adds_to_are_read(saved, tmp_path, capsys):
    """Fields a record does not know (a later gpubp's) are left alone, not refused."""
    def change(meta):
        meta["extra"]["data"]["new_field"] = [1, 2]
        meta["extra"]["run"]["new_field"] = {"a": 1}
        meta["extra"]["unknown"] = "x"
    path = edited(saved / "own.npz", tmp_path / "later.npz", change)
    code, out, err = run(["evaluate", path, str(saved / "data.csv"), "--device", "cpu"], capsys)
    assert code == 0 and out.startswith("samples: 16"), err
    code, out, err = run(["train", "--device", "cpu", "--epochs", "3", "--quiet", "--resume", path, "--data",
                          str(saved / "data.csv"), "--save", path], capsys)
    assert code == 0 and "epochs: 3" in out, err


@pytest.mark.parametrize("change, shown", [
    (_set("optimizer", "hyper", value=[1]), r"optimizer: Adam\(\[1\]\), 2 step\(s\) taken"),
    (lambda meta: meta["optimizer"].pop("hyper"), r"optimizer: Adam\(None\)"),
    (_set("architecture", 0, value={"n_in": 2}), r"architecture: \?\(2\) -> ReLU\(\) -> Dense\(4, 2\)"),
])
def test_info_shows_a_hand_edited_checkpoint_as_it_is(saved, tmp_path, capsys, change, shown):
    """gpubp info shows a checkpoint's metadata; edited by hand it was a traceback (KeyError: 'hyper')."""
    path = edited(saved / "xor.npz", tmp_path / "edited.npz", change)
    code, out, err = run(["info", path], capsys)
    assert code == 0 and re.search(shown, out), (out, err)


# -- two runs given one --save -----------------------------------------------------------------------
def another_run_writes(monkeypatch, source, save, at_epoch):
    """While this run trains epoch ``at_epoch`` (1-based), another run's checkpoint (``source``)
    lands at ``save``, as a save (atomic replace) of a run started at the same time would."""
    real, calls = FIT._run_epoch, []

    def run_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_epoch:
            save.with_name("other.tmp").write_bytes(source.read_bytes())
            os.replace(save.with_name("other.tmp"), save)
        return real(*args, **kwargs)
    monkeypatch.setattr(FIT, "_run_epoch", run_epoch)


@pytest.mark.parametrize("every", [None, 1])
def test_a_checkpoint_another_run_wrote_at_save_meanwhile_is_kept(saved, tmp_path, capsys, monkeypatch, every):
    """Was: the run that finished last replaced the other's model at --save, and both said "saved"."""
    save, other = tmp_path / "same.npz", saved / "own.npz"
    another_run_writes(monkeypatch, other, save, at_epoch=2)
    code, out, err = run(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "3", "--quiet",
                          "--save", str(save), *(["--checkpoint-every", str(every)] if every else [])], capsys)
    assert code == 1 and err.startswith(f"gpubp train: error: --save: another run wrote {save} while this one "
                                        f"trained (a checkpoint of 2 epoch(s), saved "), err
    assert err.count("another run wrote") == 1 and f"is saved instead at {tmp_path / 'same.rescued.npz'}" in err
    assert save.read_bytes() == other.read_bytes()  # the other run's model, kept
    rescued = checkpoint.read_metadata(tmp_path / "same.rescued.npz")["extra"]
    assert rescued["dataset"] == "xor" and rescued["epochs_done"] == (2 if every else 3)  # stopped at epoch 2's write


def test_a_run_s_own_checkpoints_and_the_file_it_was_given_are_its_to_replace(saved, tmp_path, capsys):
    """No false alarm: --checkpoint-every's own writes, the --resume checkpoint continued in place, and a
    file --overwrite replaces are this run's to write."""
    save = tmp_path / "m.npz"
    save.write_bytes((saved / "own.npz").read_bytes())  # another run's model, replaced as asked
    base = ["train", "--device", "cpu", "--quiet", "--checkpoint-every", "1", "--save", str(save)]
    assert run([*base, "--dataset", "xor", "--epochs", "3", "--overwrite"], capsys)[0] == 0
    code, out, err = run([*base, "--epochs", "5", "--resume", str(save), "--patience", "9"], capsys)
    assert code == 0 and "epochs: 5" in out, err
    assert checkpoint.read_metadata(save)["extra"]["epochs_done"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


# -- an empty path, a folder for a file --------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["train", "--save", ""], "argument --save: expected a file path, got ''"),  # was: trained, saved nothing
    (["train", "--data", ""], "argument --data: expected a file path, got ''"),  # was: trained on the digits
    (["train", "--resume", " "], "argument --resume: expected a file path, got ' '"),
    (["train", "--log", ""], "argument --log: expected a file path"),
    (["train", "--plot", ""], "argument --plot: expected a file path"),
    (["train", "--data", "{d}/data.csv", "--test", ""], "argument --test: expected a file path"),
    (["train", "--data", "{d}/data.csv", "--target", ""], "argument --target: expected a column name, got ''"),
    (["train", "--save", "{tmp}/runs/"], r"argument --save: expected a file name, got '.*runs/', a folder"),
    (["train", "--log", "{tmp}/"], "argument --log: expected a file name"),  # was: a file named runs, written
    (["predict", "{d}/own.npz", "{d}/data.csv", "--out", ""], "argument --out: expected a file path"),  # printed
    (["predict", "{d}/own.npz", "{d}/data.csv", "--out", "{tmp}/p/"], "argument --out: expected a file name"),
    (["evaluate", "", "{d}/data.csv"], "argument MODEL: expected a file path"),
    (["evaluate", "{d}/own.npz", "{d}/data.csv", "--target", ""], "argument --target: expected a column name"),
    (["info", ""], "argument PATH: expected a file path"),
    (["vanishing", "--plot", "{tmp}/v/"], "argument --plot: expected a file name"),
    (["bench", "--json", ""], "argument --json: expected a file path"),
])
def test_an_empty_path_or_a_folder_for_a_file_is_a_usage_error(saved, tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.setattr(FIT, "_run_epoch", never)
    argv = [a.format(d=saved, tmp=tmp_path) for a in argv]
    code, out, err = run(argv + (["--device", "cpu"] if argv[0] == "train" else []), capsys)
    assert code == 2 and re.search(f"gpubp {argv[0]}: error: {words}", err), err
    assert out == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("at_epoch", [1, 2])
def test_an_epoch_log_another_run_writes_meanwhile_is_left_to_it(saved, tmp_path, capsys, monkeypatch, at_epoch):
    """Was: the two runs' lines mixed in one file, a run's first line replacing the other's log."""
    log, other = tmp_path / "same.csv", tmp_path / "other.csv"
    other.write_text("epoch,loss,accuracy,lr,seconds,samples_per_sec\n1,0.5,0.5,0.01,0.1,100.0\n")
    another_run_writes(monkeypatch, other, log, at_epoch)
    code, out, err = run(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "3", "--quiet",
                          "--log", str(log)], capsys)
    assert code == 0 and "epochs: 3" in out
    assert err == f"gpubp train: warning: --log {log}: another run wrote it while this one trained; it is left to " \
                  f"that run, and this run logs no more lines from epoch {at_epoch} on (give each run its own --log)"
    assert log.read_text() == other.read_text()  # the other run's log, whole and alone


# -- Ctrl-C while the model is written ---------------------------------------------------------------
def test_ctrl_c_while_the_model_is_written_waits_for_the_write(tmp_path, capsys, monkeypatch):
    """Was: the KeyboardInterrupt cut the write short (its temp file removed), and the model of the
    whole run, trained to its end, was lost with "interrupted" said."""
    real = gpubp.cli.saving.save_training

    def ctrl_c_in_the_write(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # the user's Ctrl-C, as the file is being written
        return real(*args, **kwargs)
    monkeypatch.setattr(gpubp.cli.saving, "save_training", ctrl_c_in_the_write)  # train's --save writer
    save = tmp_path / "m.npz"
    code, out, err = run(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "3", "--quiet",
                          "--save", str(save)], capsys)
    assert code == 130 and err == "gpubp train: interrupted" and f"saved: {save}" in out
    assert checkpoint.read_metadata(save)["extra"]["epochs_done"] == 3
