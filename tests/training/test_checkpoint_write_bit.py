"""Checkpoints kept: a file without a write permission bit is kept
from every writer, root included (as every output gpubp writes); the training state a
checkpoint keeps is read by one checker, for fit and the command alike."""
import os

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import InvalidValueError


def trained():
    model = gpubp.mlp(2, [3], 2, "relu", "cpu", seed=0)
    X, y = np.random.default_rng(0).normal(size=(8, 2)), np.arange(8) % 2
    history = gpubp.fit(model, X, y, epochs=1, batch_size=4, progress=False)
    return model, history


def test_a_file_without_a_write_bit_is_kept_from_root_too(tmp_path):
    model, _ = trained()
    path = tmp_path / "kept.npz"
    checkpoint.save(path, model)
    before = path.read_bytes()
    path.chmod(0o444)  # os.access says writable to root, and os.replace needs only the folder's rights
    with pytest.raises(InvalidValueError, match="kept.npz is read-only; it is kept"):  # was: replaced as root
        checkpoint.save(path, model)
    assert path.read_bytes() == before and os.stat(path).st_mode & 0o777 == 0o444
