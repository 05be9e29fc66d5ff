"""Plots of training curves and per-layer gradient norms, in the format the file name asks for
(``.png``, ``.pdf``, ``.svg``, ...; a name without one of matplotlib's formats is refused).
Each file is stamped as gpubp's (``STAMP`` in its metadata), so drawing it again replaces it,
while a file there that gpubp did not draw is kept unless ``overwrite=True``.

matplotlib is optional (``pip install gpubp[plot]``); it is imported only when a
plot is drawn, with the non-interactive Agg backend, so no display is needed.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from .._version import __version__
from .._checks import output_path, writable_target
from ..checkpoint.atomic import describe, write_atomically
from ..errors import GpubpError, InvalidValueError
from .diagnostics import checked_epoch


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a GpubpError naming the extra to install."""
    try:
        import matplotlib
    except ImportError as exc:
        raise GpubpError("plotting needs matplotlib: install gpubp[plot] "
                         "(pip install 'gpubp[plot]' or pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


FORMATS = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")


STAMP = "gpubp plot"  # in the metadata of every plot drawn here: what ``is_plot`` looks for
TAIL = 1 << 16  # bytes read at each end of a file for the stamp (a PDF's or WebP's is at the end)


def check_plot_path(path, name="plot path", overwrite=False) -> Path:
    """Refuse, before any work, a path that cannot be written: an extension that is not an
    image format (matplotlib would write PNG bytes under it, or fail), a folder, a file where
    a folder is needed, or a folder without write permission (missing folders are created);
    and a file there that is not a plot drawn by gpubp, unless ``overwrite`` (``output_path``)."""
    target = Path(writable_target(name, path, create_parents=True))
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidValueError(f"{name}: {str(path)!r} must end in an image format "
                                f"({', '.join('.' + f for f in FORMATS[:4])}, ...), got "
                                f"{('.' + suffix) if suffix else 'no extension'}")
    return Path(output_path(name, path, is_plot, "a plot", overwrite, create_parents=True))


def is_plot(path) -> bool:
    """Whether the file at ``path`` is a plot drawn here: its first or last 64 KiB hold ``STAMP``."""
    with open(path, "rb") as f:
        head = f.read(TAIL)
        f.seek(max(len(head), os.fstat(f.fileno()).st_size - TAIL))
        return STAMP.encode() in head + f.read()


def _stamp(fmt) -> dict:
    """savefig's keywords that put ``STAMP`` in a file of format ``fmt``: the Creator of PNG, PDF,
    SVG and PostScript; Pillow's comment (JPEG), Software tag (TIFF) or XMP (WebP) for the others."""
    text = f"{STAMP} (gpubp {__version__})"
    pil = {"jpg": {"comment": text}, "jpeg": {"comment": text}, "tif": {"tiffinfo": {305: text}},
           "tiff": {"tiffinfo": {305: text}}, "webp": {"xmp": text.encode()}}
    return {"pil_kwargs": pil[fmt]} if fmt in pil else {"metadata": {"Creator": text}}


def _save(fig, path) -> Path:
    """Write ``fig`` to ``path`` (checked), stamped, atomically (``checkpoint.atomic``), so a save
    that fails (a full disk, a folder gone, no memory left) or is interrupted (Ctrl-C) leaves an
    earlier plot there whole and no temp file."""
    final = Path(path)  # check_plot_path's: through a symbolic link, the file it names
    fmt = final.suffix.lower().lstrip(".")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        write_atomically(str(final), lambda tmp: fig.savefig(tmp, format=fmt, dpi=100, **_stamp(fmt)), by_name=True)
    except (OSError, MemoryError) as exc:
        raise InvalidValueError(f"cannot write the plot to {path} ({describe(exc)}); a file already there is "
                                f"kept") from None
    finally:
        pyplot().close(fig)
    return path


def plot_history(history, path, title=None, overwrite=False) -> Path:
    """Loss (train, validation) and the metric, e.g. accuracy, per epoch -> PNG at ``path``.

    ``history`` is a :class:`gpubp.history.History` or its ``as_dict()``; ``title`` (say, the
    dataset and model) heads the figure. A loss spanning more than two decades is drawn on a
    log scale. A file at ``path`` that gpubp did not draw is kept unless ``overwrite=True``.
    """
    path, h = check_plot_path(path, overwrite=overwrite), _history_dict(history)
    for key in ("loss", "val_loss", "metric", "val_metric"):
        _series(f"plot_history: history[{key!r}]", h.get(key))
    if not h.get("loss"):
        raise GpubpError("plot_history: the history has no epochs to plot")
    plt = pyplot()
    panels = [("loss", "loss", "val_loss")]
    if h.get("metric"):
        name = h.get("metric_name") or "metric"
        panels.append((name, "metric", "val_metric"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (panel, train, val) in zip(axes[0], panels):
        epochs = range(1, len(h[train]) + 1)
        ax.plot(epochs, h[train], marker="o", label="train")
        if h.get(val):
            ax.plot(range(1, len(h[val]) + 1), h[val], marker="s", label="validation")
        ax.set(xlabel="epoch", ylabel=panel, title=panel)
        if panel == "loss" and _spans_decades(h[train] + (h.get(val) or [])):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if _title("plot_history", title):
        fig.suptitle(title)
    return _save(fig, path)


def _history_dict(history) -> dict:
    """``history`` as a dict: a History (or anything with ``as_dict()``), or a dict already."""
    if isinstance(history, dict):
        return history
    if callable(getattr(history, "as_dict", None)):
        return history.as_dict()
    raise InvalidValueError(f"plot_history: history must be a gpubp History or its as_dict(), "
                            f"got {type(history).__name__} {history!r:.60}")


def _series(name, values):
    """Refuse a series that is not a list of numbers (None marks an epoch without a value)."""
    if values is None:
        return
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise InvalidValueError(f"{name} must be a list of numbers, one per epoch, got {values!r:.60}")
    bad = [v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real))]
    if bad:
        raise InvalidValueError(f"{name} must hold numbers, one per epoch, got {bad[0]!r:.40}")


def _spans_decades(values, decades=2) -> bool:
    """True when ``values`` (None for an epoch without one) are positive, finite and span more
    than ``decades`` powers of ten."""
    present = [v for v in values if v is not None]
    good = [v for v in present if v > 0 and math.isfinite(v)]
    return len(good) == len(present) and len(good) > 1 and max(good) / min(good) > 10 ** decades


def _title(who, title):
    """``title`` when it is None or text, else an InvalidValueError naming ``who``."""
    if title is not None and not isinstance(title, str):
        raise InvalidValueError(f"{who}: title must be text or None, got {title!r:.80}")
    return title


def plot_gradient_norms(recorders, path, epoch=0, title="per-layer ||dW||", overwrite=False) -> Path:
    """||dW|| per Dense layer (log scale) for each named recorder -> PNG at ``path``.

    ``recorders``: ``{label: GradientRecorder}``, e.g. ``{"sigmoid": ..., "relu": ...}``
    as returned by :func:`gpubp.tools.diagnostics.vanishing_experiment`. A file at ``path``
    that gpubp did not draw is kept unless ``overwrite=True``.
    """
    path, series = check_plot_path(path, overwrite=overwrite), _recorded_norms(recorders, epoch)
    _title("plot_gradient_norms", title)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, norms in series.items():
        ax.plot(range(1, len(norms) + 1), norms, marker="o", label=label)
    ax.set_yscale("log")
    ax.set(xlabel="Dense layer (1 = nearest the input; the last is the output layer)", ylabel="||dW||",
           title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)


def _recorded_norms(recorders, epoch) -> dict:
    """``{label: ||dW|| per Dense layer}`` of ``epoch``, checked before any figure is made: at
    least one recorder, each with that epoch recorded and every norm positive and finite."""
    if not isinstance(recorders, dict) or not recorders:
        raise InvalidValueError(f"plot_gradient_norms: recorders must be a non-empty dict "
                                f"{{label: GradientRecorder}}, got {recorders!r:.60}")
    series = {}
    for label, rec in recorders.items():
        recorded = getattr(rec, "dW_norms", None)
        if not isinstance(recorded, list):
            raise InvalidValueError(f"plot_gradient_norms: {label!r} is not a GradientRecorder, got "
                                    f"{type(rec).__name__}")
        norms = recorded[checked_epoch(f"plot_gradient_norms: {label!r}", rec, epoch)]
        bad = [(k + 1, v) for k, v in enumerate(norms) if not (math.isfinite(v) and v > 0)]
        if bad:
            raise GpubpError(f"plot_gradient_norms: {label} has {len(bad)} non-positive or non-finite "
                             f"norm(s) of {len(norms)} (Dense layer {bad[0][0]}: {bad[0][1]}); a log scale "
                             f"cannot show them")
        series[label] = norms
    return series
