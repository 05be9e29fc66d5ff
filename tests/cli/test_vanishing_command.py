"""``gpubp vanishing`` on a real (small) run: table, plot, and the no-matplotlib path."""
import re
import sys

import pytest

from helpers import assert_png

from gpubp.cli import main


def first_layer_norms(out):
    """(sigmoid, relu) ||dW|| of the first table row (Dense layer 1, as in the plot)."""
    row = re.search(r"^\s+1\s+(\S+)\s+(\S+)$", out, re.M)
    return float(row.group(1)), float(row.group(2))


def test_table_numbers_dense_layers_as_the_plot_and_marks_the_output(capsys):
    assert main(["vanishing", "--device", "cpu", "--depth", "3", "--width", "8", "--no-plot"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert [r[0] for r in rows] == ["1", "2", "3", "4"] and rows[-1][-2:] == ["output", "layer"]


@pytest.mark.parametrize("name", ["v.txt", "v"])
def test_a_plot_name_without_an_image_format_is_refused_before_the_experiment(tmp_path, capsys, name):
    assert main(["vanishing", "--device", "cpu", "--plot", str(tmp_path / name)]) == 1
    err = capsys.readouterr().err
    assert "must end in an image format" in err and not list(tmp_path.iterdir())


def test_vanishing_table_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    path = tmp_path / "v.png"
    assert main(["vanishing", "--device", "cpu", "--depth", "8", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    sig, relu = first_layer_norms(out)
    assert sig < 1e-3 * relu
    assert f"plot: {path}" in out
    assert_png(path)


def test_vanishing_without_matplotlib_prints_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = tmp_path / "v.png"
    assert main(["vanishing", "--device", "cpu", "--depth", "6", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no plot" in out and "gpubp[plot]" in out
    assert not path.exists()
    sig, relu = first_layer_norms(out)
    assert sig < relu


def test_vanishing_no_plot_with_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["vanishing", "--device", "cpu", "--depth", "4", "--width", "8",
                 "--epochs", "1", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1 of training" in out
    assert list(tmp_path.iterdir()) == []


def test_bad_depth_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["vanishing", "--depth", "0"])
    assert exc.value.code == 2


def test_a_plot_in_a_folder_not_there_yet_is_written_there(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    path = tmp_path / "new" / "sub" / "v.png"  # check_plot_path creates missing folders
    assert main(["vanishing", "--device", "cpu", "--depth", "2", "--width", "4", "--plot", str(path)]) == 0
    assert_png(path)
