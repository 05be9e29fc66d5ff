"""A plot replaces only a plot gpubp drew (stamped in its metadata), or any file with overwrite=True:
plot_history and plot_gradient_norms had replaced whatever was at their path (someone's figure,
their data under an image name)."""
import pytest

from gpubp.errors import InvalidValueError
from gpubp.tools.diagnostics import GradientRecorder
from gpubp.tools.plot import FORMATS, is_plot, plot_gradient_norms, plot_history

pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")

HISTORY = {"loss": [1.0, 0.5, 0.25]}


def others_figure(path):
    """A PNG drawn by matplotlib, not by gpubp."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([3, 1, 2])
    fig.savefig(path)
    plt.close(fig)
    return path.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_stamped_so_drawing_it_again_replaces_it(tmp_path, fmt):
    path = tmp_path / f"curves.{fmt}"
    plot_history(HISTORY, path)
    first = path.read_bytes()
    assert is_plot(path)
    plot_history({"loss": [2.0, 1.0]}, path)  # a rerun: the plot of the first run is replaced
    assert is_plot(path) and path.read_bytes() != first


def test_someone_elses_figure_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "figure.png"
    before = others_figure(path)
    assert not is_plot(path)
    with pytest.raises(InvalidValueError, match=r"plot path: .*figure\.png holds a PNG image of [\d,]+ bytes, not a "
                                                r"plot written by gpubp.*pass overwrite=True to replace it"):
        plot_history(HISTORY, path)
    assert path.read_bytes() == before
    assert plot_history(HISTORY, path, overwrite=True) and is_plot(path)


def test_gradient_norms_keep_a_file_they_did_not_draw(tmp_path):
    rec = GradientRecorder()
    rec.dW_norms = [[1.0, 0.5]]
    path = tmp_path / "norms.svg"
    path.write_text("<svg>my drawing</svg>")
    with pytest.raises(InvalidValueError, match=r"norms\.svg holds a text of 21 bytes starting '<svg>my drawing"):
        plot_gradient_norms({"a": rec}, path)
    assert path.read_text() == "<svg>my drawing</svg>"
    plot_gradient_norms({"a": rec}, path, overwrite=True)
    assert is_plot(path)
    plot_gradient_norms({"a": rec}, path)  # now gpubp's own


def test_overwrite_must_be_a_flag(tmp_path):
    with pytest.raises(InvalidValueError, match="overwrite must be True or False, got 'no'"):
        plot_history(HISTORY, tmp_path / "x.png", overwrite="no")
    assert not (tmp_path / "x.png").exists()
