"""A second adversarial sweep of the command line: a resumed run that silently trained on other
data or with another loss or optimizer, inputs read as something else than they are, and
mistakes that ended in a traceback (or after minutes of work) instead of one line."""
import re
import sys

import numpy as np
import pytest

import gpubp
from gpubp.cli import main
from helpers import ROOT, run_cli as run

DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints of a short run each (2 epochs): on xor, on an own .npz, and a regression on houses.csv;
    and a model saved without a run (checkpoint.save)."""
    d = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(0)
    np.savez(d / "table.npz", X=rng.normal(size=(40, 3)), y=np.arange(40) % 2)
    for name, argv in {"xor": ["--dataset", "xor"], "own": ["--data", str(d / "table.npz")],
                       "houses": ["--data", str(DATA / "houses.csv"), "--loss", "mse"]}.items():
        assert main(["train", "--device", "cpu", "--epochs", "2", "--quiet", *argv,
                     "--save", str(d / f"{name}.npz")]) == 0
    gpubp.checkpoint.save(d / "bare.npz", gpubp.network.mlp(2, [4], 2, "relu", "cpu", seed=0))
    return d


@pytest.mark.parametrize("checkpoint, argv, words", [
    ("bare", [], "bare.npz holds a model but no training run to continue"),  # was: fit's words, after the data
    ("own", [], r"own.npz was trained on .*table.npz: give --data PATH"),  # was: trained on the digits, silently
    ("xor", ["--dataset", "spirals"], "--dataset spirals, but .*xor.npz was trained on xor; leave --dataset out"),
    ("xor", ["--loss", "mse"], "--loss mse, but .*xor.npz was trained with --loss softmax_cross_entropy"),
    ("xor", ["--optimizer", "sgd"], r"--optimizer sgd, but .*xor.npz continues Adam\(lr=0.01"),  # was: fit's words
    ("xor", ["--seed", "3"], "--seed 3, but .*xor.npz was trained with --seed 0; leave --seed out"),
    ("xor", ["--val-split", "0.2"], "--val-split 0.2, but .*xor.npz was trained with --val-split 0.1"),
    ("xor", ["--epochs", "1"], "--epochs 1, but .*xor.npz has done 2 epochs: .* give --epochs > 2"),  # fit's words
    ("xor", ["--optimizer", "adamw"], "--optimizer adamw, but .*continues Adam.*weight_decay=0.0"),
])
def test_a_resumed_run_contradicted_by_a_flag_is_refused_before_the_data(saved, capsys, checkpoint, argv, words):
    code, out, last = run(["train", "--device", "cpu", "--epochs", "3", "--quiet",
                           "--resume", str(saved / f"{checkpoint}.npz"), *argv], capsys)
    assert code == 1 and last.startswith("gpubp train: error: ") and re.search(words, last), last
    assert "data:" not in out


def test_a_resumed_run_continues_its_own_dataset_and_loss(saved, tmp_path, capsys):
    """Was: xor resumed without --dataset xor read the digits (a reshape traceback); a regression
    resumed without --loss mse read the prices as classes."""
    code, out, _ = run(["train", "--device", "cpu", "--epochs", "3", "--quiet", "--resume", str(saved / "xor.npz")],
                       capsys)
    assert code == 0 and "data: xor, 4 training" in out
    code, out, _ = run(["train", "--device", "cpu", "--epochs", "3", "--quiet", "--resume", str(saved / "houses.npz"),
                        "--data", str(DATA / "houses.csv")], capsys)
    assert code == 0 and "validation loss:" in out and "accuracy" not in out


def test_a_resumed_run_keeps_its_seed_and_validation_split(saved, tmp_path, capsys):
    """Was: resumed at --seed 0 and --val-split 0.1 whatever the saved run used: other samples held
    out (the first part's validation samples then trained on), another batch order."""
    argv = ["train", "--device", "cpu", "--quiet", "--data", str(saved / "table.npz")]
    code, out, _ = run([*argv, "--epochs", "1", "--seed", "5", "--val-split", "0.5", "--save", str(tmp_path / "m.npz")],
                       capsys)
    assert code == 0 and "20 training / 20 validation" in out
    code, out, _ = run([*argv, "--epochs", "2", "--resume", str(tmp_path / "m.npz"),
                        "--save", str(tmp_path / "m2.npz")], capsys)
    assert code == 0 and "20 training / 20 validation" in out
    assert gpubp.checkpoint.read_metadata(tmp_path / "m2.npz")["extra"]["seed"] == 5


def test_a_resumed_run_keeps_its_schedule_and_batch_size(saved, tmp_path, capsys):
    """Was: resumed at --schedule constant and --batch-size 32 whatever the run had used."""
    argv = ["train", "--device", "cpu", "--quiet", "--data", str(saved / "table.npz")]
    code, _, _ = run([*argv, "--epochs", "1", "--schedule", "cosine", "--batch-size", "8",
                      "--save", str(tmp_path / "m.npz")], capsys)
    assert code == 0
    for flag, value, words in (("--batch-size", "16", "--batch-size 16, but .*m.npz was trained with --batch-size 8"),
                               ("--schedule", "step", "--schedule step, but .*m.npz was trained with --schedule co")):
        code, _, last = run([*argv, "--epochs", "3", "--resume", str(tmp_path / "m.npz"), flag, value], capsys)
        assert code == 1 and re.search(words, last), last
    code, _, _ = run([*argv, "--epochs", "3", "--resume", str(tmp_path / "m.npz"), "--save", str(tmp_path / "m2.npz")],
                     capsys)
    meta = gpubp.checkpoint.read_metadata(tmp_path / "m2.npz")
    assert code == 0 and meta["extra"]["run"] == {"schedule": "cosine"}
    assert meta["extra"]["batching"] == {"batch_size": 8, "shuffle": True}  # what fit(resume_from=) compares too
    history = meta["extra"]["history"]
    assert len(history["lr"]) == 3 and history["lr"][2] < history["lr"][1] < history["lr"][0]  # cosine went on


def test_the_final_save_keeps_the_batching_a_python_resume_compares(saved, tmp_path, capsys):
    """Was: --save's last write held the batch size only in the command's own record, so
    fit(resume_from=) of it with another batch size went on silently."""
    ck = tmp_path / "m.npz"
    code, _, _ = run(["train", "--device", "cpu", "--quiet", "--data", str(saved / "table.npz"), "--epochs", "1",
                      "--batch-size", "8", "--save", str(ck)], capsys)
    assert code == 0
    loaded = gpubp.checkpoint.load(ck)
    X = np.random.default_rng(0).normal(size=(20, loaded.model.layers[0].n_in))
    y = np.zeros(20, dtype=np.int64)
    with pytest.warns(gpubp.GpubpWarning, match="other data"), \
            pytest.warns(gpubp.GpubpWarning, match=r"batch_size=16 \(saved: 8\)"):  # other samples too: both said
        gpubp.fit(loaded.model, X, y, loss="cross_entropy", optimizer=loaded.optimizer, epochs=2, batch_size=16,
                  resume_from=str(ck), progress=False)


def test_a_checkpoint_of_an_older_version_keeps_its_batch_size(saved, tmp_path, capsys):
    """Checkpoints written before "batching" held the batch size in the command's "run" record."""
    ck = tmp_path / "old.npz"
    code, _, _ = run(["train", "--device", "cpu", "--quiet", "--data", str(saved / "table.npz"), "--epochs", "1",
                      "--batch-size", "8", "--save", str(ck)], capsys)
    loaded = gpubp.checkpoint.load(ck)
    extra = gpubp.checkpoint.read_metadata(ck)["extra"]
    batching = extra.pop("batching")
    extra["run"]["batch_size"] = batching["batch_size"]
    gpubp.checkpoint.save(ck, loaded.model, loaded.optimizer, extra=extra)
    code, _, last = run(["train", "--device", "cpu", "--quiet", "--data", str(saved / "table.npz"), "--epochs", "2",
                         "--resume", str(ck), "--batch-size", "16"], capsys)
    assert code == 1 and "was trained with --batch-size 8" in last, last


def test_resume_with_the_saved_optimizer_named_keeps_its_hyperparameters(saved, tmp_path, capsys):
    """Was: `--optimizer adam` built a fresh Adam, so the run went on at Adam's default lr 0.001."""
    ck = tmp_path / "xor.npz"
    code, _, _ = run(["train", "--device", "cpu", "--epochs", "3", "--quiet", "--resume", str(saved / "xor.npz"),
                      "--optimizer", "adam", "--save", str(ck)], capsys)
    assert code == 0 and gpubp.checkpoint.read_metadata(ck)["optimizer"]["hyper"]["lr"] == 0.01


@pytest.mark.parametrize("content", ["a,b,price\n" + "".join(f"{i},{i % 3},{i * 1.37:.2f}\n" for i in range(30))])
def test_real_valued_targets_are_not_taken_for_classes(tmp_path, capsys, content):
    """Was: every distinct price its own class, trained to a validation accuracy of 0."""
    (tmp_path / "p.csv").write_text(content)
    np.savez(tmp_path / "p.npz", X=np.ones((30, 2)), y=np.linspace(0, 1, 30))
    for path in ("p.csv", "p.npz"):
        code, out, last = run(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--data", str(tmp_path / path)],
                              capsys)
        assert code == 1 and "holds numbers that are not whole" in last and "--loss mse" in last, last
        assert "epochs:" not in out
    code, out, _ = run(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--loss", "mse",
                        "--data", str(tmp_path / "p.csv")], capsys)
    assert code == 0


def test_target_with_an_npz_is_refused_not_ignored(saved, capsys):
    for argv in (["train", "--device", "cpu", "--epochs", "1", "--data", str(saved / "table.npz"), "--target", "label"],
                 ["evaluate", str(saved / "own.npz"), str(saved / "table.npz"), "--target", "label",
                  "--device", "cpu"]):
        code, _, last = run(argv, capsys)
        assert code == 1 and re.search(r"--target label names a CSV column, but .*table.npz is an .npz", last), last


def test_a_device_spec_naming_its_dtype_is_obeyed(monkeypatch, capsys):
    """Was: GPUBP_DEVICE=cpu/float64 (or --device cpu/float64) refused by train and vanishing,
    which passed their default --dtype float32 as if it had been asked for."""
    monkeypatch.setenv("GPUBP_DEVICE", "cpu/float64")
    code, out, _ = run(["train", "--epochs", "1", "--quiet", "--dataset", "xor"], capsys)
    assert code == 0 and out.startswith("device: cpu, float64")
    code, out, _ = run(["vanishing", "--depth", "2", "--width", "4", "--no-plot"], capsys)
    assert code == 0 and "cpu float64" in out.splitlines()[0]
    code, _, last = run(["train", "--dtype", "float32", "--epochs", "1", "--dataset", "xor"], capsys)
    assert code == 1 and "names dtype float64 but dtype=float32" in last


@pytest.mark.parametrize("argv", [
    ["train", "--device", "cpu", "--hidden", "100000000000", "--epochs", "1", "--quiet"],
    ["parity", "cpu", "cpu/float64", "--widths", "4,100000000000,3"],
])
def test_a_model_too_large_for_memory_is_one_line(capsys, argv):
    """Was: NumPy's _ArrayMemoryError traceback."""
    code, _, last = run(argv, capsys)
    assert code == 1 and last.startswith(f"gpubp {argv[0]}: error: out of memory (") and "Unable to allocate" in last


@pytest.mark.parametrize("argv, words", [
    (["--repeat", "0"], "argument --repeat: expected a whole number >= 1"),  # was: a StatisticsError traceback
    (["--threads", "-1"], "argument --threads: expected a whole number >= 1"),
    (["--json", "{d}"], "--json: .* is a folder"),  # was: refused by open() after the whole benchmark
    (["--json", "{d}/missing/b.json"], "--json: the folder .*missing does not exist"),
])
def test_bench_refuses_bad_flags_before_measuring(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.setattr("gpubp.bench.run", lambda *a, **k: pytest.fail("measured before refusing"))
    code, _, last = run(["bench", "--device", "cpu", *(a.format(d=tmp_path) for a in argv)], capsys)
    assert code in (1, 2) and last.startswith("gpubp bench: error: ") and re.search(words, last), last


@pytest.mark.parametrize("argv, words", [
    (["--target", "label"], "--target names a column of --data"),
    (["--data", "{d}/d.csv", "--dataset", "xor"], "--dataset xor names built-in data, --data .*d.csv your own"),
])
def test_train_flags_that_were_silently_ignored_are_refused(tmp_path, capsys, argv, words):
    """Was: --target without --data, and --dataset beside --data, had no effect."""
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    code, out, last = run(["train", "--device", "cpu", "--epochs", "1", *(a.format(d=tmp_path) for a in argv)], capsys)
    assert code == 1 and re.search(words, last), last
    assert out == ""


@pytest.mark.parametrize("argv, words", [
    (["train", "--epochs", "1", "--save", "{d}/notes.txt"], "--save .*notes.txt is a file that is not a gpubp"),
    (["train", "--epochs", "1", "--save", "{d}/one_byte.npz"], "--save .*one_byte.npz is a file that is not a gpubp"),
    (["train", "--epochs", "1", "--log", "{d}/xor.npz"], "--log .*xor.npz is a gpubp checkpoint"),
    (["predict", "{d}/own.npz", "{d}/table.npz", "--out", "{d}/xor.npz"], "--out .*xor.npz is a gpubp checkpoint"),
    (["vanishing", "--depth", "1", "--plot", "{d}/xor.png"], "--plot .*xor.png is a gpubp checkpoint"),
    (["bench", "--json", "{d}/xor.npz"], "--json .*xor.npz is a gpubp checkpoint"),
])
def test_an_output_never_replaces_a_file_of_another_kind(saved, tmp_path, capsys, monkeypatch, argv, words):
    """Was: --out/--log/--json replaced another model's checkpoint; --save replaced a data file or
    notes (or, over an empty file, trained and then was refused by the save: the model lost)."""
    monkeypatch.setattr("gpubp.bench.run", lambda *a, **k: pytest.fail("measured before refusing"))
    for name in ("xor.npz", "own.npz", "table.npz"):
        (tmp_path / name).write_bytes((saved / name).read_bytes())
    (tmp_path / "xor.png").write_bytes((saved / "xor.npz").read_bytes())
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "one_byte.npz").write_bytes(b"\0")  # a truncated save (an empty file is replaced: nothing in it)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, out, last = run([*(a.format(d=tmp_path) for a in argv), "--device", "cpu"], capsys)
    assert code == 1 and re.search(words, last), last
    assert "epochs:" not in out and {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_predict_with_a_one_output_model_saved_outside_the_command(tmp_path, capsys):
    """Was: taken for a classifier, so every row read `0,1`: a softmax over one output is 1."""
    model = gpubp.network.mlp(3, [4], 1, "tanh", "cpu", seed=0)
    gpubp.checkpoint.save(tmp_path / "m.npz", model)
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.savez(tmp_path / "x.npz", X=X)
    code, out, _ = run(["predict", str(tmp_path / "m.npz"), str(tmp_path / "x.npz"), "--device", "cpu"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "output"
    np.testing.assert_allclose([float(v) for v in lines[1:]], gpubp.train.predict(model, X).ravel(), rtol=1e-6)


def test_predict_out_is_all_or_nothing(saved, tmp_path, capsys, monkeypatch):
    """Was: --out was opened (emptied) first and written row by row, so Ctrl-C (or a full disk)
    midway left part of the new predictions in place of the earlier file."""
    import gpubp.cli.predict as predict_command

    def rows(outputs, info):
        def body():
            yield ["0"]
            raise KeyboardInterrupt
        return ["prediction"], body()

    out = tmp_path / "preds.csv"
    out.write_text("prediction\nearlier,run\n")
    monkeypatch.setattr(predict_command, "rows", rows)
    code, _, last = run(["predict", str(saved / "own.npz"), str(saved / "table.npz"), "--out", str(out),
                         "--device", "cpu"], capsys)
    assert code == 130 and last == "gpubp predict: interrupted"
    assert out.read_text() == "prediction\nearlier,run\n" and [p.name for p in tmp_path.iterdir()] == ["preds.csv"]


@pytest.mark.parametrize("argv, words", [
    (["vanishing", "--depth", "1", "--no-plot", "--plot", "v.png"], "--plot PATH asks for the PNG that --no-plot"),
    (["parity", "cpu", "cpu/float64", "--dataset", "digits", "--samples", "5"], "--samples sizes the synthetic data"),
    (["vanishing", "--depth", "1", "--lr", "0.5"], "--lr sets the training of --epochs N, and --epochs is 0"),
])
def test_tool_flags_that_were_silently_ignored_are_refused(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    code, out, last = run(argv, capsys)
    assert code == 1 and words in last and out == "" and list(tmp_path.iterdir()) == []


def test_the_cnn_names_images_too_small_for_its_pooling(tmp_path, capsys):
    """Was: "Dense needs n_in >= 1 and n_out >= 1, got (0, 2)", naming neither the images nor the pooling."""
    np.savez(tmp_path / "tiny.npz", X=np.ones((8, 1, 3, 5)), y=np.arange(8) % 2)
    code, _, last = run(["train", "--device", "cpu", "--model", "cnn", "--data", str(tmp_path / "tiny.npz")], capsys)
    assert code == 1 and re.search(r"--model cnn pools twice by 2, .* 4x4 pixels or more; .*tiny.npz holds 3x5", last)


def test_ctrl_c_in_a_run_continued_in_place_keeps_its_new_epochs(tmp_path, capsys, monkeypatch):
    """Was: `--resume m.npz --save m.npz` interrupted kept m.npz as the run had found it, so every
    epoch trained since was lost; the file is now replaced when it is still that starting point."""
    import gpubp.cli.train as train_command
    real, path = train_command.fit, tmp_path / "m.npz"
    argv = ["train", "--device", "cpu", "--dataset", "spirals", "--quiet", "--save", str(path)]
    assert main([*argv, "--epochs", "1"]) == 0

    class CtrlC:  # in the third epoch of the resumed run
        ends = 0

        def on_epoch_end(self, epoch, model, history):
            self.ends += 1

        def on_batch_end(self, step, model, loss):
            if self.ends == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "fit", lambda *a, callbacks=(), **k: real(*a, callbacks=[*callbacks, CtrlC()],
                                                                                 **k))
    code, out, _ = run([*argv, "--epochs", "9", "--resume", str(path)], capsys)
    assert code == 130 and "(interrupted: 3 whole epoch(s))" in out
    assert gpubp.checkpoint.read_metadata(path)["extra"]["epochs_done"] == 3
    code, out, _ = run([*argv, "--epochs", "9", "--resume", str(path), "--checkpoint-every", "1"], capsys)
    assert code == 130 and "not saved: interrupted in epoch 6" in out  # its last epoch-end write is kept
    assert gpubp.checkpoint.read_metadata(path)["extra"]["epochs_done"] == 5


def test_a_test_file_that_is_the_training_data_is_said(tmp_path, capsys):
    """Was: trained on the file, then "test accuracy" on those very samples, without a word."""
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "d.csv")
    code, out, last = run(["train", "--device", "cpu", "--epochs", "1", "--data", str(tmp_path / "d.csv"),
                           "--test", str(tmp_path / "link.csv"), "--quiet"], capsys)
    assert code == 0 and "test accuracy" in out
    assert re.fullmatch(r"gpubp train: warning: --test .*link.csv is also --data: its test scores are on samples "
                        r"trained on, not a test of new ones", last), last


class FullDisk:
    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        raise OSError(28, "No space left on device")


def test_a_full_disk_is_one_line(monkeypatch, capsys):
    """Was: `gpubp info > /dev/full` ended in an OSError traceback."""
    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(["info"]) == 1
    assert capsys.readouterr().err == "gpubp info: error: OSError: No space left on device\n"


def test_a_target_of_mostly_single_sample_classes_is_warned_of(tmp_path, capsys):
    """Was: an id (or a whole-number price) as the last column trained 30 one-sample classes without a word."""
    (tmp_path / "d.csv").write_text("a,b,id\n" + "".join(f"{i},{i % 3},{1000 + i}\n" for i in range(30)))
    code, out, last = run(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--data", str(tmp_path / "d.csv")],
                          capsys)
    assert code == 0 and re.fullmatch(r"gpubp train: warning: --data .*d.csv: the target 'id' has 30 distinct values "
                                      r"in 30 rows, so most classes have a single sample: is it the column to predict "
                                      r"\(--target\), or a real-valued target \(--loss mse\)\?", last), last


def test_help_states_a_default_of_zero():
    """Was: a default of 0 compared equal to False and was left out (--seed, vanishing --epochs)."""
    subs = next(a for a in gpubp.cli.build_parser()._actions if a.dest == "command").choices
    for name, sub in subs.items():
        for action in sub._actions:
            if action.default == 0 and action.default is not False and action.help:
                assert "(default: 0)" in " ".join(sub.format_help().split()), (name, action.dest)
    text = " ".join(subs["vanishing"].format_help().split())
    assert "show the last epoch (default: 0)" in text and "batch order (a whole number >= 0) (default: 0)" in text


@pytest.mark.parametrize("argv, link, words", [
    (["train", "--epochs", "1", "--quiet", "--save"], "loop", r"--save: .*loop is a link that leads to no file \(Too"),
    (["train", "--epochs", "1", "--quiet", "--save"], "nowhere/m.npz", r"--save .*m.npz \(a link to .*nowhere/m.npz\)"),
    (["predict", "{d}/own.npz", "{d}/table.npz", "--out"], "loop", "--out: .*loop is a link that leads to no file"),
])
def test_an_output_link_that_cannot_be_written_is_refused_before_the_work(saved, tmp_path, capsys, argv, link, words):
    """Was: trained (or predicted) in full, then refused by the write: the model lost."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "m.npz").symlink_to(tmp_path / "nowhere" / "m.npz")
    out_link = tmp_path / ("loop" if link == "loop" else "m.npz")
    code, out, last = run([*(a.format(d=saved) for a in argv), str(out_link), "--device", "cpu"], capsys)
    assert code == 1 and re.search(words, last), last
    assert "epochs:" not in out


def test_predict_out_through_a_link_writes_its_target(saved, tmp_path, capsys):
    (tmp_path / "target.csv").write_text("prediction,p_0,p_1\n1,0.1,0.9\n")  # an earlier run's predictions
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
    code, _, _ = run(["predict", str(saved / "own.npz"), str(saved / "table.npz"), "--out", str(tmp_path / "link.csv"),
                      "--device", "cpu"], capsys)
    assert code == 0 and (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "target.csv").read_text().splitlines()[0] == "prediction,p_0,p_1"


def test_a_run_refused_by_fit_leaves_the_log_as_it_was(tmp_path, capsys):
    """Was: --log was opened (emptied) before fit's own checks, so a refused run lost the earlier log."""
    log = tmp_path / "epochs.csv"
    log.write_text("epoch,loss\n1,0.5\n")
    code, _, last = run(["train", "--device", "cpu", "--dataset", "xor", "--cuda-graph", "--log", str(log),
                         "--overwrite"], capsys)
    assert code == 1 and "a CUDA graph needs a CUDA device" in last
    assert log.read_text() == "epoch,loss\n1,0.5\n"
    code, _, _ = run(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "2", "--quiet", "--log", str(log),
                      "--overwrite"], capsys)
    assert code == 0 and [r.split(",")[0] for r in log.read_text().splitlines()] == ["epoch", "1", "2"]


def test_predict_out_in_a_missing_folder_is_refused_before_the_model_is_read(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no-model.npz"), str(tmp_path / "no-data.csv"),
                 "--out", str(tmp_path / "missing" / "p.csv")]) == 1
    err = capsys.readouterr().err
    assert "--out: the folder" in err and "does not exist" in err and "no checkpoint" not in err


def _second_run_refused(flag, path, capsys):
    """``gpubp train`` on xor writing ``flag path``: a first run of 2 epochs, then a second of 1 that
    must be refused, leaving the file as it was; returns the command and the refusal."""
    base = ["train", "--device", "cpu", "--dataset", "xor", "--quiet", flag, str(path)]
    assert main([*base, "--epochs", "2"]) == 0
    capsys.readouterr()
    first = path.read_bytes()
    code, _, err = run([*base, "--epochs", "1"], capsys)
    assert code == 1 and path.read_bytes() == first
    return base, err


def test_save_keeps_a_model_of_another_run_unless_overwrite(tmp_path, capsys):
    """Was: `gpubp train --save m.npz` run twice replaced the first run's trained model by the
    second's, however worse (a lower learning rate left it at 12% accuracy). Refused before any
    work, naming what the file holds; --resume of that file, or --overwrite, may write it."""
    path = tmp_path / "m.npz"
    base, err = _second_run_refused("--save", path, capsys)
    assert re.search(r"--save: .*m.npz already holds a trained model \(.*2 epoch\(s\) trained, saved .*\).*"
                     r"--resume .*m.npz.*--overwrite", err)
    assert run([*base, "--epochs", "3", "--resume", str(path)], capsys)[0] == 0
    assert run([*base, "--epochs", "1", "--overwrite"], capsys)[0] == 0
    assert gpubp.checkpoint.read_metadata(path)["extra"]["epochs_done"] == 1


def test_log_keeps_another_run_s_log_unless_overwrite(tmp_path, capsys):
    """Was: a second run with the same --log wrote over the first run's record, line by line."""
    log = tmp_path / "epochs.csv"
    base, err = _second_run_refused("--log", log, capsys)
    assert "--log: " in err and "already holds another run's log" in err and "--overwrite" in err
    assert run([*base, "--epochs", "1", "--overwrite"], capsys)[0] == 0
    assert len(log.read_text().splitlines()) == 2  # the header and the new run's one epoch
