"""A CSV's target column is no array of an .npz: train on a CSV with an .npz --test, or evaluate a
CSV-trained model on an .npz, read the .npz's y (the column name passed on was refused once load_table
honoured an .npz's target=)."""
import numpy as np
from helpers import run_cli as run

CPU = ["--device", "cpu"]


def _csv_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    rows = "\n".join(f"{a:.6f},{b:.6f},{'yes' if c else 'no'}" for (a, b), c in zip(X, y))
    (tmp_path / "train.csv").write_text("f0,f1,answer\n" + rows + "\n")
    np.savez(tmp_path / "test.npz", X=X[:10], y=np.where(y[:10] == 1, "yes", "no"))
    return tmp_path / "train.csv", tmp_path / "test.npz"


def test_a_csv_trained_run_reads_an_npz_test_file_and_evaluates_on_one(tmp_path, capsys):
    train, test = _csv_and_npz(tmp_path)
    ck = tmp_path / "m.npz"
    code, out, last = run(["train", "--data", str(train), "--target", "answer", "--test", str(test), "--epochs", "2",
                           "--quiet", "--save", str(ck), *CPU], capsys)
    assert code == 0, last
    code, out, last = run(["evaluate", str(ck), str(test), *CPU], capsys)
    assert code == 0 and "accuracy" in out, (out, last)
