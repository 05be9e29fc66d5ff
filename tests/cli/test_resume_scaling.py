"""gpubp train --resume reads --data as the saved model was trained to read it: with the saved
scaling, or with none when it was trained on data given as it is (a built-in dataset, a model of
fit in Python), never with a scaling fitted anew; a checkpoint that does not say what data it was
trained on needs that data named."""
import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.cli import main
from gpubp.datasets import load_digits
from helpers import run_cli as run

CPU = ["--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """digits.npz: 2 epochs on the built-in digits; digits.csv: their test split as a CSV; python.npz: a
    model of fit in Python (no data record) trained 2 epochs on the raw features of that CSV."""
    d = tmp_path_factory.mktemp("scaling")
    assert main(["train", "--epochs", "2", "--hidden", "16", *CPU, "--save", str(d / "digits.npz")]) == 0
    _, _, X, y = load_digits()
    rows = "\n".join(",".join(f"{v:g}" for v in x) + f",{t}" for x, t in zip(X, y))
    (d / "digits.csv").write_text(",".join(f"p{i}" for i in range(64)) + ",label\n" + rows + "\n")
    model = gpubp.mlp(64, [16], 10, "relu", "cpu", seed=0)
    gpubp.fit(model, X, y, epochs=2, progress=False, checkpoint_path=str(d / "python.npz"), checkpoint_every=1)
    return d


def test_a_model_of_unscaled_data_resumed_on_a_file_reads_it_unscaled(saved, tmp_path):
    """Was: the digits model, trained on the pixels as they are, was resumed on the same digits as a CSV
    standardised with a scaling fitted anew (its training loss went from 0.22 to 0.45: other inputs),
    and its --save kept that scaling, so it read the built-in digits wrongly from then on."""
    assert main(["train", "--resume", str(saved / "digits.npz"), "--data", str(saved / "digits.csv"), "--epochs", "3",
                 "--val-split", "0.1", *CPU, "--save", str(tmp_path / "m.npz")]) == 0
    assert checkpoint.read_metadata(tmp_path / "m.npz")["extra"]["data"]["scaler"] is None


def test_a_checkpoint_without_a_data_record_resumed_without_data_is_refused(saved, capsys):
    """Was: a model of fit in Python, 64 features and 10 classes of the user's own data, resumed without
    --data was trained on the built-in digits, silently (and --save in place replaced it)."""
    before = (saved / "python.npz").read_bytes()
    code, out, last = run(["train", "--resume", str(saved / "python.npz"), "--epochs", "3", *CPU,
                           "--save", str(saved / "python.npz")], capsys)
    assert code == 1 and "keeps no record of the data it was trained on" in last and "--data" in last, last
    assert "epochs:" not in out and (saved / "python.npz").read_bytes() == before


def test_a_checkpoint_without_a_data_record_resumed_on_a_file_reads_it_as_it_is(saved, tmp_path, capsys):
    """Was: standardised with a scaling fitted anew, where the model had learnt the raw features (and
    gpubp predict reads them raw for it)."""
    code = main(["train", "--resume", str(saved / "python.npz"), "--data", str(saved / "digits.csv"), "--epochs",
                 "3", *CPU, "--save", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert code == 0 and "goes into the model as it is" in err, err
    assert checkpoint.read_metadata(tmp_path / "m.npz")["extra"]["data"]["scaler"] is None
    code = main(["train", "--resume", str(saved / "python.npz"), "--dataset", "digits", "--epochs", "3", *CPU])
    assert code == 0  # the built-in digits named: taken as named
