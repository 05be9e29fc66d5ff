"""gpubp train on a CSV whose last column is not the one meant (pandas' to_csv of a frame with the
price first, the rooms last): it learnt to classify the rooms, and said nothing of which column it
learnt nor of its classes. Now a line says the target, that it was the default, and its classes."""
import numpy as np

from helpers import run_cli as run

CPU = ["--device", "cpu", "--epochs", "1", "--quiet", "--hidden", "4"]


def write(path):
    rng = np.random.default_rng(0)
    rows = [f"{100 + 50 * r + rng.normal():.1f},{40 + 20 * r},{r}" for r in rng.integers(1, 8, 40)]
    path.write_text("price_k,area_m2,rooms\n" + "\n".join(rows) + "\n")
    return str(path)


def test_the_default_target_column_is_said_with_its_classes(tmp_path, capsys):
    code, out, _ = run(["train", "--data", write(tmp_path / "houses.csv"), *CPU], capsys)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("target: "))
    assert line.startswith("target: 'rooms' (the last column; --target COLUMN names another), 7 classes: 1, 2, 3, 4, "
                           "5, 6, ..."), line


def test_a_target_given_is_said_without_the_hint(tmp_path, capsys):
    code, out, _ = run(["train", "--data", write(tmp_path / "houses.csv"), "--target", "price_k", "--loss", "mse",
                        *CPU], capsys)
    assert code == 0 and "target: 'price_k', real-valued (regression)\n" in out, out


def test_built_in_data_has_no_target_line(capsys):
    code, out, _ = run(["train", "--dataset", "xor", *CPU], capsys)
    assert code == 0 and "target:" not in out
