"""load_table's refusals, worded in its Python arguments (target=COLUMN, regression=True), reach the
command line in its flags (--target COLUMN, --loss mse): the CLI re-words them, as the same error."""
import numpy as np
import pytest

from gpubp.cli.model_data import read_for_model
from gpubp.errors import InvalidValueError
from helpers import run_cli as run

CPU = ["--device", "cpu"]


def test_load_tables_python_words_are_said_as_flags(tmp_path, capsys):
    (tmp_path / "one.csv").write_text("a,label\n1,x\n2,x\n3,x\n")
    code, _, last = run(["train", "--data", str(tmp_path / "one.csv"), "--epochs", "1", "--quiet", *CPU], capsys)
    assert code == 1 and "(--loss mse for a real-valued target)" in last and "regression=" not in last, last
    np.savez(tmp_path / "rows.npz", X=np.arange(12.0).reshape(6, 2), y=np.arange(12.0).reshape(6, 2) / 7)
    code, _, last = run(["train", "--data", str(tmp_path / "rows.npz"), "--epochs", "1", "--quiet", *CPU], capsys)
    assert code == 1 and "(--loss mse for several real-valued targets)" in last and "regression=" not in last, last
    (tmp_path / "d.csv").write_text("a,b,c,d\n1,2,x,3\n4,5,y,6\n")
    with pytest.raises(InvalidValueError, match=r"d\.csv: no target column \(give --target COLUMN\)"):
        read_for_model(tmp_path / "d.csv", {"features": ["a", "b"]}, require_target=True)
