"""Whole Python journeys (fit, save, load in a new process, resume), each step taken as a careless
user would: a run that does not continue the saved one must say so, not look like it does."""
import subprocess
import sys

import numpy as np
import pytest

import gpubp
from gpubp.datasets import load_digits
from gpubp.errors import GpubpWarning


@pytest.fixture(scope="module")
def digits():
    X, y, X_test, y_test = load_digits()
    return X[:400], y[:400], X_test, y_test


def _model(backend="cpu"):
    return gpubp.mlp(64, [16], 10, "relu", backend, seed=0)


def test_resuming_on_other_data_is_warned_of(tmp_path, digits, recwarn):
    """Was: fit(resume_from=...) on other data than the saved run's (the test split, a file with rows
    dropped) continued silently as if it were the saved run; now a GpubpWarning names both (samples and
    a hash); the same data, also read into a float64 model, continues without one."""
    X, y, X_test, y_test = digits
    ck = tmp_path / "run.npz"
    gpubp.fit(_model(), X, y, epochs=2, progress=False, checkpoint_path=str(ck), checkpoint_every=1)
    assert gpubp.checkpoint.read_metadata(ck)["extra"]["history"]["data"].startswith("400 samples, ")
    code = ("import sys, gpubp\nfrom gpubp.datasets import load_digits\nX, y, _, _ = load_digits()\n"
            "m = gpubp.checkpoint.load(sys.argv[1], 'cpu/float64').model\n"
            "gpubp.fit(m, X[:400], y[:400], epochs=3, progress=False, resume_from=sys.argv[1])\n")
    run = subprocess.run([sys.executable, "-W", "error::gpubp.errors.GpubpWarning", "-c", code, str(ck)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr  # a new process, float64: the same data, no warning
    with pytest.warns(GpubpWarning, match=r"other data \(400 samples, \w+\) than this run's \(359 samples, \w+\)"):
        gpubp.fit(_model(), X_test, y_test, epochs=3, progress=False, resume_from=str(ck))
    y_other = y.copy()
    y_other[::7] = (y_other[::7] + 1) % 10  # the same samples, other labels
    with pytest.warns(GpubpWarning, match="other data"):
        gpubp.fit(_model(), X, y_other, epochs=3, progress=False, resume_from=str(ck))


def test_resuming_with_no_epoch_left_is_warned_of(tmp_path, digits):
    """Was: fit(epochs=2, resume_from=a run of 2 epochs), meaning "2 more", trained nothing and said nothing."""
    X, y, _, _ = digits
    ck = tmp_path / "run.npz"
    gpubp.fit(_model(), X, y, epochs=2, progress=False, checkpoint_path=str(ck), checkpoint_every=1)
    model = _model()
    with pytest.warns(GpubpWarning, match="has done 2 epochs and epochs=2, so nothing is trained"):
        history = gpubp.fit(model, X, y, epochs=2, progress=False, resume_from=str(ck))
    assert history.epochs == 2
    np.testing.assert_array_equal(model.parameters()["0.W"], gpubp.checkpoint.load(ck, "cpu").model.parameters()["0.W"])
