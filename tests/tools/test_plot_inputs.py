"""Bad input to the plot helpers: a gpubp error naming it, before matplotlib draws anything."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import GpubpError, InvalidValueError
from gpubp.tools.diagnostics import GradientRecorder, record_gradients
from gpubp.tools.plot import plot_gradient_norms, plot_history


def recorded():
    model = gpubp.mlp(4, [5], 3, "tanh", "cpu", seed=0)
    return record_gradients(model, np.ones((4, 4)), np.array([0, 1, 2, 0]), "softmax_cross_entropy")


@pytest.mark.parametrize("history, words", [
    (None, "history must be a gpubp History or its as_dict"),
    ([1.0, 2.0], "history must be a gpubp History"),
    ({"loss": 1.0}, r"history\['loss'\] must be a list of numbers"),
    ({"loss": ["a", "b"]}, r"history\['loss'\] must hold numbers"),
    ({"loss": [1.0], "metric": "acc"}, r"history\['metric'\] must be a list"),
    # an array: before, NumPy's "truth value of an array ... is ambiguous"
    ({"loss": np.array([1.0, 0.5])}, r"history\['loss'\] must be a list of numbers"),
])
def test_a_history_that_is_not_one_is_named(history, words, tmp_path):
    with pytest.raises(InvalidValueError, match=words):
        plot_history(history, tmp_path / "h.png")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("recorders, epoch, words", [
    ({}, 0, "recorders must be a non-empty dict"),
    ([GradientRecorder()], 0, "recorders must be a non-empty dict"),
    ({"sigmoid": GradientRecorder()}, 0, "'sigmoid' has recorded 0 epoch"),
    ({"sigmoid": "rec"}, 0, "'sigmoid' is not a GradientRecorder"),
    ("recorded", 5, "'a' has recorded 1 epoch.*epoch 5 is not there"),
    ("recorded", "x", "epoch must be a whole number"),
])
def test_recorders_without_that_epoch_are_named(recorders, epoch, words, tmp_path):
    recorders = {"a": recorded()} if recorders == "recorded" else recorders
    with pytest.raises(InvalidValueError, match=words):
        plot_gradient_norms(recorders, tmp_path / "g.png", epoch=epoch)
    assert not list(tmp_path.iterdir())


def test_zero_norms_are_named_in_one_short_line(tmp_path):
    rec = recorded()
    rec.dW_norms[0] = [0.0] * 200
    with pytest.raises(GpubpError, match=r"a has 200 non-positive or non-finite norm\(s\) of 200 \(Dense layer 1: 0.0\)") \
            as caught:
        plot_gradient_norms({"a": rec}, tmp_path / "g.png")
    assert len(str(caught.value)) < 200


def test_an_epoch_without_a_value_is_plotted(tmp_path):
    """None marks an epoch without a value (the series check allows it); before, the log-scale test
    compared None > 0 and raised TypeError."""
    path = plot_history({"loss": [1.0, None, 1e-4], "val_loss": [None, 2.0, 1e-3]}, tmp_path / "h.png")
    assert path.stat().st_size > 0


def test_a_bytes_path_is_a_path(tmp_path):
    """os.fspath takes bytes paths; before, pathlib refused the checked one with a raw TypeError."""
    path = plot_history({"loss": [1.0, 0.5]}, bytes(tmp_path / "h.png"))
    assert path == tmp_path / "h.png" and path.stat().st_size > 0


def test_an_interrupted_save_leaves_the_earlier_plot_whole(tmp_path, monkeypatch):
    """Before: savefig wrote into the file itself, so Ctrl-C mid-save left a truncated image."""
    from matplotlib.figure import Figure
    path = plot_history({"loss": [1.0, 0.5]}, tmp_path / "h.png")
    before = path.read_bytes()

    def interrupted(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plot_history({"loss": [3.0, 2.0, 1.0]}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["h.png"]


def test_a_bad_path_is_refused_before_drawing(tmp_path, monkeypatch):
    import gpubp.tools.plot as plot
    monkeypatch.setattr(plot, "pyplot", lambda: pytest.fail("drew a figure for a path that cannot be written"))
    with pytest.raises(InvalidValueError, match="is a folder"):
        plot_history({"loss": [1.0]}, tmp_path)
    with pytest.raises(InvalidValueError, match="must end in an image format"):
        plot_gradient_norms({"a": recorded()}, tmp_path / "g.txt")


@pytest.mark.parametrize("title", [np.array([]), np.ones((2, 3), dtype=np.int8), 3, object()])
def test_a_title_that_is_not_text_is_named(title, tmp_path):
    """Before, an array title was NumPy's "truth value ... is ambiguous" (plot_history) or went to matplotlib."""
    with pytest.raises(InvalidValueError, match="plot_history: title must be text or None"):
        plot_history({"loss": [1.0, 0.5]}, tmp_path / "h.png", title=title)
    with pytest.raises(InvalidValueError, match="plot_gradient_norms: title must be text or None"):
        plot_gradient_norms({"a": recorded()}, tmp_path / "g.png", title=title)
    assert not list(tmp_path.iterdir())
