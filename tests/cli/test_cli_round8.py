"""Round eight of the CLI's reliability: what a user's shell found. A --save that its writer would
refuse (read-only, a pipe) is refused before training, not after it; a checkpoint whose records
(training state, run, data) were edited by hand or damaged is one line naming the file and the
record, before any data is read, never a traceback or a silent wrong answer; two runs writing one
--save at once keep both models."""
import importlib
import json
import os

import numpy as np
import pytest

from gpubp.cli import main
from helpers import run_cli as run

FIT = importlib.import_module("gpubp.train.fit")  # the module (gpubp.train.fit is the function)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints written by gpubp train: xor (built-in), and a classifier and a regression of an
    own CSV; and that CSV."""
    d = tmp_path_factory.mktemp("round8")
    X = np.random.default_rng(0).normal(size=(16, 2)).round(3)
    rows = "\n".join(f"{a},{b},{int(a + b > 0)}" for a, b in X)
    (d / "data.csv").write_text("a,b,y\n" + rows + "\n")
    for name, flags in (("xor", ["--dataset", "xor"]), ("own", ["--data", str(d / "data.csv")]),
                        ("reg", ["--data", str(d / "data.csv"), "--loss", "mse"])):
        assert main(["train", "--device", "cpu", "--epochs", "2", "--quiet", *flags, "--save", str(d / f"{name}.npz"),
                     "--hidden", "4"]) == 0
    return d


def never(*args, **kwargs):
    pytest.fail("training began before the mistake was refused")


def edited(src, dst, change):
    """A copy of checkpoint ``src`` at ``dst`` whose metadata ``change(meta)`` edited, as a user's
    script (np.load, json, np.savez) would: every array kept."""
    with np.load(src) as z:
        meta, arrays = json.loads(str(z["__meta__"])), {k: z[k] for k in z.files if k != "__meta__"}
    change(meta)
    with open(dst, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
    return str(dst)


# -- --save refused before training as its writer refuses it -------------------------------------
def test_a_read_only_or_special_save_is_refused_before_training(saved, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro.npz"
    ro.write_bytes((saved / "xor.npz").read_bytes())
    ro.chmod(0o444)  # a model the user protected: kept, also from root (whose os.access says writable)
    os.mkfifo(tmp_path / "pipe.npz")
    monkeypatch.setattr(FIT, "_run_epoch", never)  # was: trained, then refused at the save
    for path, words in ((ro, "ro.npz is read-only; it is kept"), (tmp_path / "pipe.npz", "not a regular file")):
        code, out, err = run(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "4", "--quiet",
                              "--resume", str(ro), "--save", str(path)], capsys)
        assert code == 1 and err.startswith("gpubp train: error: --save: ") and words in err, err
        assert "model:" not in out
    assert ro.read_bytes() == (saved / "xor.npz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.npz", "ro.npz"]  # nothing rescued: nothing trained
