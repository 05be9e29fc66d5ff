"""Checkpoints written by an older gpubp train, whose data record lacks what later versions keep (the
training data's value range, its validation split): predict, evaluate and train --resume still
read them, and say once what they cannot check; a resumed run records what its --save lacked."""
import numpy as np
import pytest

from gpubp import checkpoint
from gpubp.cli import main

CPU = ["--device", "cpu"]


def older(path, *lacks):
    """Rewrite the checkpoint ``path`` as an older gpubp wrote it: its data record without ``lacks``."""
    ck = checkpoint.load(path, "cpu")
    extra = ck.metadata["extra"]
    for key in lacks:
        del extra["data"][key]
    checkpoint.save(path, ck.model, ck.optimizer, extra=extra)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Images in [0, 1] (train and test), the same as 0..255 pixels, and a CNN trained on them by an
    older gpubp (no range in its record); an MLP on the digits of one that kept no validation split."""
    d = tmp_path_factory.mktemp("older")
    rng = np.random.default_rng(0)
    X = rng.random((60, 1, 8, 8))
    y = (X[..., :4].mean(axis=(1, 2, 3)) > X[..., 4:].mean(axis=(1, 2, 3))).astype(int)
    np.savez(d / "images.npz", X=X, y=y)
    np.savez(d / "u8.npz", X=(X * 255).astype(np.uint8), y=y)
    for name, argv in (("cnn", ["--model", "cnn", "--data", str(d / "images.npz")]),
                       ("digits", ["--hidden", "8", "--val-split", "0.2"])):
        assert main(["train", *argv, "--epochs", "1", "--quiet", *CPU, "--save", str(d / f"{name}.npz")]) == 0
    older(d / "cnn.npz", "range")
    older(d / "digits.npz", "val_split")
    return d


def warnings_of(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_on_an_older_checkpoint_say_the_scale_is_not_checked(saved, capsys, command):
    """Was: 0..255 pixels given to an older checkpoint of a model trained on 0..1 were answered (an
    accuracy of chance, predictions of certainty) without a word of what could not be checked."""
    capsys.readouterr()
    assert main([command, str(saved / "cnn.npz"), str(saved / "u8.npz"), *CPU]) == 0
    said = warnings_of(capsys)
    assert len(said) == 1 and str(saved / "cnn.npz") in said[0] and "older gpubp" in said[0], said
    assert "value range" in said[0] and "cannot be checked" in said[0]


def test_an_older_checkpoint_resumed_says_it_once_and_its_save_records_the_range(saved, tmp_path, capsys):
    """Was: said nothing, and the resumed run's --save lacked the range too, so every later predict of
    the model went unchecked."""
    capsys.readouterr()
    assert main(["train", "--data", str(saved / "images.npz"), "--test", str(saved / "images.npz"), "--resume",
                 str(saved / "cnn.npz"), "--epochs", "2", "--quiet", *CPU, "--save", str(tmp_path / "m.npz")]) == 0
    said = [line for line in warnings_of(capsys) if "older gpubp" in line]
    assert len(said) == 1 and "value range" in said[0], said
    low, high = checkpoint.read_metadata(tmp_path / "m.npz")["extra"]["data"]["range"]
    assert 0 <= low < 0.01 and 0.99 < high < 1
    assert main(["predict", str(tmp_path / "m.npz"), str(saved / "u8.npz"), *CPU]) == 1  # now checked
    assert "0..255" in capsys.readouterr().err


def test_an_older_checkpoint_without_its_validation_split_says_which_is_taken(saved, tmp_path, capsys):
    """Was: resumed with the default --val-split 0.1, another split than the run's 0.2, unsaid (the resumed
    run validated on samples it had trained on)."""
    capsys.readouterr()
    assert main(["train", "--resume", str(saved / "digits.npz"), "--epochs", "2", "--quiet", *CPU]) == 0
    said = [line for line in warnings_of(capsys) if "older gpubp" in line]  # and fit's, of other samples
    assert len(said) == 1 and "--val-split 0.1 is taken" in said[0], said
    assert "value range" not in said[0]  # the built-in digits are read as they always were
