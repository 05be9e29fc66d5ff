"""plot_history / plot_gradient_norms write valid PNGs; a missing matplotlib is a clear error."""
import sys

import pytest

from helpers import assert_png

from gpubp import Dense, ReLU, Sequential, datasets, fit, get_backend
from gpubp.tools.diagnostics import GradientRecorder, vanishing_experiment
from gpubp.errors import GpubpError
from gpubp.history import History
from gpubp.tools.plot import plot_gradient_norms, plot_history

pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")


def test_plot_history_of_a_real_fit(tmp_path):
    X, y, Xv, yv = datasets.xor()
    model = Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], backend=get_backend("cpu"), seed=0)
    history = fit(model, X, y, epochs=4, progress=False, validation_data=(Xv, yv))
    assert history.metric  # accuracy recorded, so the second panel is drawn
    w_two, _ = assert_png(plot_history(history, tmp_path / "curves.png"))
    loss_only = History(loss=history.loss)
    w_one, _ = assert_png(plot_history(loss_only.as_dict(), tmp_path / "sub" / "loss.png"))
    assert w_two > w_one  # two panels side by side


def test_plot_history_refuses_empty(tmp_path):
    with pytest.raises(GpubpError, match="no epochs"):
        plot_history(History(), tmp_path / "x.png")


def test_plot_gradient_norms(tmp_path):
    result = vanishing_experiment(depth=5, width=8, n_samples=64, backend=get_backend("cpu"))
    recorders = {k: result[k] for k in ("sigmoid", "relu")}
    assert_png(plot_gradient_norms(recorders, tmp_path / "norms.png"))


def test_plot_gradient_norms_refuses_zero_norms(tmp_path):
    rec = GradientRecorder()
    rec.dW_norms = [[1.0, 0.0]]
    with pytest.raises(GpubpError, match="log scale"):
        plot_gradient_norms({"dead": rec}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(GpubpError, match=r"gpubp\[plot\]"):
        plot_history(History(loss=[1.0, 0.5]), tmp_path / "x.png")


def test_train_command_plot(tmp_path, capsys):
    from gpubp.cli import main
    path = tmp_path / "train.png"
    assert main(["train", "--dataset", "xor", "--hidden", "8", "--epochs", "3", "--device", "cpu",
                 "--quiet", "--plot", str(path)]) == 0
    assert f"plot: {path}" in capsys.readouterr().out
    w, _ = assert_png(path)
    assert w > 600  # loss and accuracy panels


def test_train_command_plot_without_matplotlib_fails_before_training(tmp_path, capsys, monkeypatch):
    from gpubp.cli import main
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["train", "--dataset", "xor", "--epochs", "1", "--device", "cpu", "--quiet",
                 "--plot", str(tmp_path / "x.png")]) == 1
    captured = capsys.readouterr()
    assert "gpubp[plot]" in captured.err and "epochs:" not in captured.out


def test_the_file_name_sets_the_format_and_an_unknown_one_is_refused(tmp_path):
    history = History(loss=[1.0, 0.5], metric=[0.5, 0.7], metric_name="accuracy")
    svg = plot_history(history, tmp_path / "curves.svg", title="digits, MLP")
    assert b"<svg" in svg.read_bytes()[:500]
    with pytest.raises(GpubpError, match=r"must end in an image format.*got \.csv"):
        plot_history(history, tmp_path / "curves.csv")
    assert not (tmp_path / "curves.csv").exists()
