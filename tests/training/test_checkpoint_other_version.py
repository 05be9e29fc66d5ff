"""A checkpoint another gpubp wrote, refused: the refusal says which gpubp wrote it, and that a newer
one's is read with that version. Was: "unsupported checkpoint format", "unknown layer type", or
"missing array(s) ...; the file is damaged, truncated or from another model", with no word of the
version, so a newer gpubp's good checkpoint read as a damaged file."""
import json

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import CheckpointError
from gpubp.network import mlp
from gpubp.optim import get_optimizer


@pytest.fixture
def good(tmp_path):
    model = mlp(3, [4], 2, "relu", gpubp.get_backend("cpu"), seed=0)
    path = tmp_path / "good.npz"
    checkpoint.save(path, model, get_optimizer("adam"))
    return path


def as_written_by(src, dst, version, change):
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    meta["gpubp"] = version
    change(meta, arrays)
    np.savez(dst, __meta__=np.array(json.dumps(meta)), **arrays)
    return dst


CHANGES = {
    "format": lambda m, a: m.update(format="gpubp-checkpoint-2"),
    "layer": lambda m, a: m["architecture"][1].update(type="GELU"),
    "dtype": lambda m, a: m.update(dtype="bfloat16"),
    "optimizer": lambda m, a: m["optimizer"].update(type="Lion"),
    "array": lambda m, a: a.update({"param/0.scale": np.ones(4, np.float32)}),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_newer_gpubps_checkpoint_is_named_so(good, tmp_path, change):
    path = as_written_by(good, tmp_path / "new.npz", "9.1.0", CHANGES[change])
    with pytest.raises(CheckpointError, match=rf"\(written by gpubp 9\.1\.0, newer than this gpubp "
                                              rf"{gpubp.__version__}: read it with that version\)$"):
        checkpoint.load(path, "cpu")


def test_an_older_gpubps_refused_checkpoint_names_its_version(good, tmp_path):
    path = as_written_by(good, tmp_path / "old.npz", "0.0.1", CHANGES["format"])
    with pytest.raises(CheckpointError, match=rf"\(written by gpubp 0\.0\.1; this is gpubp {gpubp.__version__}\)$"):
        checkpoint.load(path, "cpu")


def test_this_versions_refused_checkpoint_says_no_version(good, tmp_path):
    path = as_written_by(good, tmp_path / "same.npz", gpubp.__version__, CHANGES["layer"])
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, "cpu")
    assert "written by" not in str(info.value)
