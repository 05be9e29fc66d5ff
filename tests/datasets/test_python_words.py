"""Refusals of gpubp.datasets called from Python: were worded in the command line's flags ("give --target
COLUMN", "--loss mse for regression"); now in the function's own arguments (target=, regression=True)."""
import ast
from pathlib import Path

import numpy as np
import pytest

import gpubp.datasets
from gpubp.datasets import load_table
from gpubp.errors import InvalidValueError, ShapeError

FLAGS = ("--target", "--test", "--data", "--loss", "--model", "gpubp train", "gpubp predict", "gpubp evaluate")


def test_no_message_of_the_datasets_speaks_in_flags():
    """Every string in gpubp/datasets' code (its messages' f-strings, its docstrings) is free of the CLI's words."""
    found = []
    for path in Path(gpubp.datasets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [(path.name, node.lineno, flag) for flag in FLAGS if flag in node.value]
    assert not found, found


def test_a_target_not_found_among_several_columns_names_the_argument(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c,d\n1,2,x,3\n4,5,y,6\n")
    with pytest.raises(InvalidValueError, match=r"d\.csv: no target column \(give target=COLUMN\)") as info:
        load_table(tmp_path / "d.csv", features=["a", "b"])
    assert "--" not in str(info.value)


def test_one_class_and_rows_of_targets_name_regression_true(tmp_path):
    (tmp_path / "one.csv").write_text("a,label\n1,x\n2,x\n")
    with pytest.raises(InvalidValueError, match=r"one\.csv: column 'label' has only one distinct value \['x'\]; "
                                                r"classification needs two or more \(regression=True for a "
                                                r"real-valued target\)") as info:
        load_table(tmp_path / "one.csv")
    assert "--" not in str(info.value)
    np.savez(tmp_path / "rows.npz", X=np.ones((3, 2)), y=np.arange(6.0).reshape(3, 2) / 7)
    with pytest.raises(ShapeError, match=r"classification needs y with one label per sample, got shape \(3, 2\) "
                                         r"\(regression=True for several real-valued targets\)") as info:
        load_table(tmp_path / "rows.npz")
    assert "--" not in str(info.value)
