"""Found by an adversarial sweep of the command line: each input here once gave a raw
traceback, a silently different model or data, or a checkpoint lost; now it is one clear
line before any training, or it is read as what it is."""
import re

import numpy as np
import pytest

import gpubp.cli.train as train_command
from gpubp.cli import build_parser, main
from gpubp.datasets import Scaler, load_digits, load_table
from gpubp.errors import InvalidValueError
from helpers import run_cli as run


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An MLP and a CNN trained one epoch on the built-in digits, and data files around them."""
    d = tmp_path_factory.mktemp("sweep")
    for model in ("mlp", "cnn"):
        assert main(["train", "--device", "cpu", "--model", model, "--epochs", "1", "--quiet",
                     "--save", str(d / f"{model}.npz")]) == 0
    _, _, X, y = load_digits()
    np.savez(d / "flat.npz", X=X, y=y)
    np.savez(d / "other_images.npz", X=X.reshape(-1, 1, 4, 16), y=y)
    np.savez(d / "two_channels.npz", X=np.concatenate([X, X], 1).reshape(-1, 2, 8, 8), y=y)
    np.savez(d / "half.npz", X=X[:, :32], y=y)
    rows = [",".join([*(f"x{i}" for i in range(64)), "label"])]
    rows += [",".join([*map(str, r), str(int(t))]) for r, t in zip(X, y)]
    (d / "digits.csv").write_text("\n".join(rows) + "\n")
    return d


@pytest.mark.parametrize("model, data, words", [
    ("cnn", "other_images.npz", r"reads images of \(1, 8, 8\) .* holds images of \(1, 4, 16\)"),
    ("cnn", "two_channels.npz", r"holds images of \(2, 8, 8\)"),
    ("cnn", "half.npz", r"images of \(1, 8, 8\) per sample, the file holds 32 values"),
    ("mlp", "half.npz", "reads 64 features per sample, the file holds 32 values"),
    ("mlp", "two_channels.npz", r"holds images of \(2, 8, 8\)"),
])
def test_a_saved_model_refuses_data_of_another_shape(saved, capsys, model, data, words):
    """Was: a reshape traceback, or (1x4x16 images into the 1x8x8 CNN) a silent re-layout."""
    for command in ("evaluate", "predict"):
        code, out, last = run([command, str(saved / f"{model}.npz"), str(saved / data), "--device", "cpu"], capsys)
        assert code == 1 and last.startswith(f"gpubp {command}: error: DATA ") and re.search(words, last), last


def test_predict_names_a_target_column_left_in(saved, capsys):
    """A built-in model reads every CSV column as a feature: the label column is one too many."""
    code, _, last = run(["predict", str(saved / "mlp.npz"), str(saved / "digits.csv"), "--device", "cpu"], capsys)
    assert code == 1 and "65 values" in last and "target column" in last
    code, out, _ = run(["evaluate", str(saved / "cnn.npz"), str(saved / "digits.csv"), "--device", "cpu"], capsys)
    assert code == 0 and "accuracy" in out


@pytest.mark.parametrize("argv, words", [
    (["--model", "cnn", "--hidden", "32"], "--hidden shapes the MLP; --model cnn has fixed layers"),
    (["--model", "cnn", "--activation", "tanh"], "--activation shapes the MLP"),
    (["--model", "cnn", "--dataset", "xor"], "--model cnn reads images: .* xor has 2 features"),
    (["--model", "cnn", "--dataset", "spirals"], "spirals has 2 features"),
])
def test_flags_the_cnn_would_ignore_or_cannot_read_are_refused(capsys, argv, words):
    """Was: --hidden/--activation silently ignored; xor/spirals a reshape traceback."""
    code, out, last = run(["train", "--device", "cpu", "--epochs", "1", *argv], capsys)
    assert code == 1 and re.search(words, last), last
    assert "epochs:" not in out


def test_resume_continues_the_saved_kind_and_dtype(saved, tmp_path, capsys):
    """Was: resuming a CNN without --model cnn fed it flat data (an error after loading
    everything); a float64 run resumed printed float32; --hidden was silently ignored."""
    code, out, _ = run(["train", "--device", "cpu", "--resume", str(saved / "cnn.npz"), "--epochs", "2",
                        "--quiet", "--save", str(tmp_path / "c.npz")], capsys)
    assert code == 0 and "Conv2D" in out and "saved:" in out
    code, _, last = run(["train", "--device", "cpu", "--resume", str(saved / "cnn.npz"), "--model", "mlp",
                         "--epochs", "2"], capsys)
    assert code == 1 and "holds a CNN" in last
    code, _, last = run(["train", "--device", "cpu", "--resume", str(saved / "mlp.npz"), "--hidden", "5",
                         "--epochs", "2"], capsys)
    assert code == 1 and "hidden widths 5" in last and "leave them out" in last
    code, out, _ = run(["train", "--device", "cpu", "--resume", str(saved / "mlp.npz"), "--hidden", "128,64",
                        "--epochs", "2", "--quiet"], capsys)
    assert code == 0  # the same architecture, spelled out again
    assert main(["train", "--device", "cpu", "--dtype", "float64", "--epochs", "1", "--quiet",
                 "--save", str(tmp_path / "f64.npz")]) == 0
    code, out, _ = run(["train", "--device", "cpu", "--resume", str(tmp_path / "f64.npz"), "--epochs", "2",
                        "--quiet"], capsys)
    assert code == 0 and out.startswith("device: cpu, float64") and "dtype=float64" in out


def test_resuming_other_data_of_another_width_is_one_line(saved, tmp_path, capsys):
    csv = tmp_path / "small.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    code, _, last = run(["train", "--device", "cpu", "--resume", str(saved / "mlp.npz"), "--data", str(csv),
                         "--epochs", "2"], capsys)
    assert code == 1 and "the model reads 64 features per sample, the file holds 2 values" in last


def test_ctrl_c_never_replaces_a_checkpoint_with_part_of_an_epoch(tmp_path, capsys, monkeypatch):
    """Was: after Ctrl-C --save was written anyway, over the checkpoint already there (an earlier
    run's, or --checkpoint-every's last, taken at an epoch's end) with a half-trained epoch."""
    real = train_command.fit

    class CtrlC:
        def on_batch_end(self, step, model, loss):
            if step == 3:
                raise KeyboardInterrupt

    path = tmp_path / "m.npz"
    assert main(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "1", "--quiet", "--save", str(path)]) == 0
    earlier = path.read_bytes()  # an earlier run's checkpoint
    monkeypatch.setattr(train_command, "fit", lambda *a, callbacks=(), **k: real(*a, callbacks=[*callbacks, CtrlC()],
                                                                                 **k))
    code, out, _ = run(["train", "--device", "cpu", "--epochs", "3", "--quiet", "--save", str(path), "--overwrite"],
                       capsys)
    assert code == 130 and "not saved: interrupted in epoch 1" in out
    assert path.read_bytes() == earlier
    fresh = tmp_path / "fresh.npz"  # nothing to keep: what was trained is written, and said to be partial
    code, out, _ = run(["train", "--device", "cpu", "--epochs", "3", "--quiet", "--save", str(fresh)], capsys)
    assert code == 130 and fresh.exists() and "interrupted: 0 whole epoch(s)" in out


def test_the_model_is_saved_before_the_report(tmp_path, capsys, monkeypatch):
    """Was: written after the report, so a failure while reporting (a closed pipe) lost it."""
    def broken_report(*args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(train_command, "report", broken_report)
    main(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--save", str(tmp_path / "m.npz")])
    capsys.readouterr()
    assert (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("argv, words", [
    (["train", "--data", "{d}/data.csv", "--log", "{d}/data.csv"], "--log .* is also --data"),
    (["train", "--data", "{d}/data.csv", "--save", "{d}/data.csv"], "--save .* is also --data"),
    (["train", "--save", "{d}/m.npz", "--log", "{d}/m.npz"], "--log .* is also --save"),
    (["predict", "{d}/m.npz", "{d}/data.csv", "--out", "{d}/data.csv"], "--out .* is also DATA"),
    (["predict", "{d}/m.npz", "{d}/data.csv", "--out", "{d}/m.npz"], "--out .* is also MODEL"),
])
def test_an_output_never_overwrites_an_input(tmp_path, capsys, argv, words):
    """Was: `predict m.npz data.csv --out data.csv` replaced the data, `--log` the model."""
    (tmp_path / "data.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    (tmp_path / "m.npz").write_bytes(b"model")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, last = run([a.format(d=tmp_path) for a in argv] + ["--device", "cpu"], capsys)
    assert code == 1 and re.search(words, last), last
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("content, words", [
    ("a,a,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", r"names the column\(s\) \['a'\] more than once"),
    ("a,,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", r"column\(s\) \[2\] of the header have no name"),
    ("a,b,label\n1,2,\n3,4,1\n5,6,0\n7,8,1\n", "line 2, column 'label': the label is empty"),
    ("label\n0\n1\n0\n1\n", "no feature column"),
])
def test_csv_headers_and_labels_that_would_read_wrongly(tmp_path, content, words):
    """Was: a repeated name read one column twice, an empty label became a class of its own."""
    (tmp_path / "d.csv").write_text(content)
    with pytest.raises(InvalidValueError, match=words):
        load_table(tmp_path / "d.csv", target="label")


def test_labels_spelled_two_ways_are_one_class(tmp_path):
    (tmp_path / "d.csv").write_text("a,label\n1,cat\n2,1\n3,1.0\n4,cat\n")
    table = load_table(tmp_path / "d.csv")
    assert table.classes == ["1", "cat"] and table.y.tolist() == [1, 0, 0, 1]


@pytest.mark.parametrize("split, words", [("0.1", "rounds to none: no validation"), ("0.9", None)])
def test_a_validation_split_of_a_few_rows(tmp_path, capsys, split, words):
    """Was: a split rounding to no validation sample (or to no training sample) was a traceback."""
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    code, out, last = run(["train", "--device", "cpu", "--data", str(tmp_path / "d.csv"), "--val-split", split,
                           "--epochs", "1", "--quiet"], capsys)
    if words:
        assert code == 0 and words in out
    else:
        assert code == 1 and "holds out all 4 samples, none is left to train on" in last


def test_scaler_of_no_rows():
    assert Scaler([0.0, 1.0], [1.0, 2.0])(np.empty((0, 2))).shape == (0, 2)


def test_train_on_images_with_the_mlp_reads_their_pixels(tmp_path, capsys):
    """Was: an MLP built with one input per channel, then refused at its first step."""
    X, y, _, _ = load_digits()
    np.savez(tmp_path / "img.npz", X=X[:200].reshape(-1, 1, 8, 8), y=y[:200])
    code, out, _ = run(["train", "--device", "cpu", "--data", str(tmp_path / "img.npz"), "--epochs", "1",
                        "--quiet", "--save", str(tmp_path / "m.npz")], capsys)
    assert code == 0 and "Dense(64, 128)" in out
    code, out, _ = run(["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "img.npz"), "--device", "cpu"], capsys)
    assert code == 0 and "samples: 200" in out


def test_help_states_each_default_once():
    """Was: `parity --help` said "(default: cpu gpu) (default: ['cpu', 'gpu'])", `check --help`
    "--cpu-only ... (default: True)" beside --expect-gpu's own default, `bench --help` nothing for --repeat."""
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subs.items():
        text = sub.format_help()
        for block in re.split(r"\n  (?=-|\w)", text):
            assert block.count("(default:") <= 1, (name, block)
        assert all(a.help for a in sub._actions if a.dest != "help"), name
    assert "(default: True)" not in subs["check"].format_help()
