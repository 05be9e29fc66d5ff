"""One callback object given twice in fit's list is refused before training, naming both places.
Was: called twice per event, so an EpochLog wrote each epoch's line twice."""
import os

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.history import EpochLog
from gpubp.tools.diagnostics import GradientRecorder

X = np.random.default_rng(0).normal(size=(40, 4))
y = np.arange(40) % 3


def test_a_callback_given_twice_is_refused_before_training(tmp_path):
    log, rec = EpochLog(str(tmp_path / "log.csv")), GradientRecorder()
    model = gpubp.mlp(4, [5], 3, seed=0)
    before = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(InvalidValueError, match=r"^fit: callbacks\[2\] is callbacks\[0\] again \(EpochLog\)"):
        gpubp.fit(model, X, y, epochs=2, progress=False, callbacks=[log, rec, log])
    assert not os.path.exists(log.path) and all(np.array_equal(v, before[k]) for k, v in model.parameters().items())
    h = gpubp.fit(model, X, y, epochs=2, progress=False, callbacks=[log, GradientRecorder(), rec])  # alike, not one
    assert len(open(log.path).read().splitlines()) == 1 + h.epochs
