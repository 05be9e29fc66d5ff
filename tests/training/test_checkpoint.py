import os

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import CheckpointError


def trained(backend, steps=3):
    model = gpubp.Sequential([gpubp.Dense(4, 6), gpubp.LeakyReLU(0.1), gpubp.Dense(6, 3)],
                             backend=backend, seed=5)
    opt = gpubp.Adam(lr=0.01)
    rng = np.random.default_rng(0)
    X, y = backend.asarray(rng.normal(size=(10, 4))), backend.asarray(rng.integers(0, 3, 10))
    loss = gpubp.SoftmaxCrossEntropy()
    for _ in range(steps):
        loss(model(X), y)
        model.zero_grad()
        model.backward(loss.backward())
        opt.step(model)
    return model, opt, X


def test_round_trip_is_exact(tmp_path, device, dtype):
    model, opt, X = trained(gpubp.get_backend(device, dtype))
    path = checkpoint.save(tmp_path / "m.npz", model, opt, extra={"note": "x"})
    ck = checkpoint.load(path, "cpu")
    assert ck.model.config() == model.config()
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(model.backend.to_numpy(v), ck.model.parameters()[k])
    here = checkpoint.load(path, model.backend.device).model  # the same device: the same products, bit for bit
    assert here.backend == model.backend
    np.testing.assert_array_equal(model.backend.to_numpy(model(X)), here.backend.to_numpy(here.predict(X)))
    assert ck.optimizer.t == opt.t and ck.optimizer.hyper == opt.hyper
    for name, st in opt.state.items():
        for slot, a in st.items():
            np.testing.assert_array_equal(model.backend.to_numpy(a), ck.optimizer.state[name][slot])
    meta = ck.metadata
    assert meta["device"] == model.backend.device and meta["dtype"] == dtype
    assert meta["gpubp"] == gpubp.__version__ and meta["numpy"] == np.__version__
    assert meta["extra"] == {"note": "x"} and meta["created"].endswith("+00:00")


def test_save_to_string_path_keeps_name(tmp_path):
    model, _, _ = trained(gpubp.get_backend("cpu"), steps=0)
    path = str(tmp_path / "model.ckpt")
    checkpoint.save(path, model)
    assert os.listdir(tmp_path) == ["model.ckpt"]
    assert checkpoint.load(path).optimizer is None


def test_crash_while_writing_keeps_old_checkpoint(tmp_path, monkeypatch):
    model, opt, _ = trained(gpubp.get_backend("cpu"))
    path = tmp_path / "m.npz"
    checkpoint.save(path, model, opt)
    before = path.read_bytes()

    def crash(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(CheckpointError, match="disk full.*kept"):  # one gpubp error, as the CLI prints them
        checkpoint.save(path, model, opt)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no stray temp file


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x01\xfenot a zip")
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoint.load(junk)
    junk.write_bytes(b"a,b,label\n1,2,cat\n")
    with pytest.raises(CheckpointError, match=r"holds text \(a CSV\?\), not a gpubp checkpoint"):
        checkpoint.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a gpubp checkpoint"):
        checkpoint.load(other)


def rewrite(src, dst, change_meta=None, drop=()):
    """Copy checkpoint ``src`` to ``dst`` with its metadata edited or arrays dropped."""
    import json
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files if k not in drop}
    meta = json.loads(str(arrays.pop("__meta__")))
    if change_meta:
        change_meta(meta)
    np.savez(dst, __meta__=np.array(json.dumps(meta)), **arrays)


def test_damaged_or_incompatible_files_give_clear_errors(tmp_path):
    model, opt, _ = trained(gpubp.get_backend("cpu"))
    good = checkpoint.save(tmp_path / "good.npz", model, opt)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match="single array"):
        checkpoint.load(tmp_path / "single.npy")
    raw = bytearray(open(good, "rb").read())
    raw[len(raw) // 3: len(raw) // 3 + 64] = bytes(64)  # zeroed bytes inside a stored array
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path / "flipped.npz")
    (tmp_path / "cut.npz").write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoint.load(tmp_path / "cut.npz")
    rewrite(good, tmp_path / "missing.npz", drop=("param/2.b",))
    with pytest.raises(CheckpointError, match=r"missing array\(s\) 'param/2.b'"):
        checkpoint.load(tmp_path / "missing.npz")
    rewrite(good, tmp_path / "future.npz", lambda m: m.update(format="gpubp-checkpoint-99"))
    with pytest.raises(CheckpointError, match="unsupported checkpoint format 'gpubp-checkpoint-99'"):
        checkpoint.load(tmp_path / "future.npz")
    rewrite(good, tmp_path / "shape.npz", lambda m: m["architecture"][2].update(n_in=7))
    with pytest.raises(CheckpointError, match=r"cannot be built: Sequential: layer 2 Dense\(7, 3\) expects inputs of width 7"):
        checkpoint.load(tmp_path / "shape.npz")
    rewrite(good, tmp_path / "layer.npz", lambda m: m["architecture"][1].update(type="Swish"))
    with pytest.raises(CheckpointError, match="unknown layer type 'Swish'"):
        checkpoint.load(tmp_path / "layer.npz")


def test_load_in_another_dtype(tmp_path):
    model, opt, X = trained(gpubp.get_backend("cpu", "float64"))
    ck = checkpoint.load(checkpoint.save(tmp_path / "m.npz", model, opt), "cpu", dtype="float32")
    assert ck.model.backend.dtype == np.float32 and ck.metadata["dtype"] == "float64"
    np.testing.assert_allclose(ck.model.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)
