"""A checkpoint on disk is never lost or replaced by a worse one, and a damaged or crafted file
is refused with one CheckpointError before anything big is allocated: never another exception,
never a model with missing, wrong or non-finite values."""
import io
import json
import os
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import CheckpointError, InvalidValueError, NumericalError


def trained(steps=2, optimizer=None):
    model = gpubp.Sequential([gpubp.Dense(4, 6), gpubp.Tanh(), gpubp.Dense(6, 3)], seed=5)
    opt = optimizer or gpubp.Adam(lr=0.01)
    rng = np.random.default_rng(0)
    X, y, loss = rng.normal(size=(10, 4)).astype(np.float32), rng.integers(0, 3, 10), gpubp.SoftmaxCrossEntropy()
    for _ in range(steps):
        loss(model(X), y)
        model.zero_grad()
        model.backward(loss.backward())
        opt.step(model)
    return model, opt


@pytest.fixture
def good(tmp_path):
    model, opt = trained()
    return checkpoint.save(tmp_path / "good.npz", model, opt), model, opt


def entries(path):
    """{name without .npy: raw .npy bytes} of a checkpoint."""
    with zipfile.ZipFile(path) as z:
        return {i.filename[:-4]: z.read(i) for i in z.infolist()}


def write(path, raw):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in raw.items():
            z.writestr(name + ".npy", data)
    return path


def npy(a):
    f = io.BytesIO()
    np.save(f, a)
    return f.getvalue()


def edited(src, dst, change):
    """``src`` with entries replaced (bytes or arrays) or dropped (None); ``"meta"`` edits the metadata."""
    raw, change = entries(src), dict(change)
    meta = change.pop("meta", None)
    if meta:
        m = json.loads(str(np.load(io.BytesIO(raw["__meta__"]))))
        meta(m)
        raw["__meta__"] = npy(np.array(json.dumps(m)))
    for key, value in change.items():
        if value is None:
            del raw[key]
        else:
            raw[key] = value if isinstance(value, bytes) else npy(value)
    return write(dst, raw)


def same_state(ck, model, opt):
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(ck.model.parameters()[k], v)
    assert ck.optimizer.t == opt.t
    for name, st in opt.state.items():
        for slot, a in st.items():
            np.testing.assert_array_equal(ck.optimizer.state[name][slot], a)


@pytest.mark.parametrize("change, words", [
    ({"opt/0.W/m": None}, r"missing array\(s\) 'opt/0.W/m'"),
    ({"opt/2.b/v": np.zeros(4, np.float32)}, r"opt/2.b/v has shape \(4,\), the architecture says \(3,\)"),
    ({"param/0.W": np.full((4, 6), np.nan, np.float32)}, r"NaN/Inf in param/0.W \(24 values\)"),
    ({"opt/0.b/v": np.array([np.inf] * 6, np.float32)}, "NaN/Inf in opt/0.b/v"),
    ({"param/0.b": np.zeros(6)}, "param/0.b holds float64 values, the checkpoint says float32"),
    ({"param/9.W": np.zeros(3, np.float32)}, r"unexpected array\(s\) 'param/9.W'"),
    ({"param/0.b": np.array([None] * 6)}, "holds object values"),
    ({"param/0.b": np.arange(6)}, "holds int64 values"),
    ({"param/0.b": npy(np.zeros(6, np.float32))[:-8]}, r"declares shape \(6,\) .* holds 16 bytes"),
    ({"meta": lambda m: m["architecture"][0].update(n_in=30000)},
     r"param/0.W has shape \(4, 6\), the architecture says \(30000, 6\)"),
    ({"meta": lambda m: m["architecture"][0].update(n_in=2.7)}, "architecture cannot be built: .*n_in"),
    ({"meta": lambda m: m.update(dtype="float16")}, "dtype 'float16'"),
    ({"meta": lambda m: m.update(architecture="Dense")}, "no architecture"),
    ({"meta": lambda m: m["optimizer"].update(type="Adagrad")}, "saved optimizer is unreadable"),
    ({"meta": lambda m: m["optimizer"].update(t=-1)}, "saved optimizer is unreadable"),
    ({"meta": lambda m: m["optimizer"]["hyper"].update(lr="fast")}, "optimizer"),
    ({"__meta__": np.zeros(3)}, "metadata entry is not a JSON string"),
])
def test_incomplete_or_crafted_checkpoints_are_refused(good, tmp_path, change, words):
    path = edited(good[0], tmp_path / "bad.npz", change)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=words) as err:
            checkpoint.load(path, "cpu")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # nothing the size of what a crafted file declares was allocated
    assert "allow_pickle" not in str(err.value)


def test_a_huge_declared_array_in_a_tiny_entry_allocates_nothing(good, tmp_path):
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (30000, 30000)})
    path = edited(good[0], tmp_path / "bomb.npz", {"param/0.W": f.getvalue() + bytes(64)})
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"declares shape \(30000, 30000\)"):
            checkpoint.load(path, "cpu")
        assert tracemalloc.get_traced_memory()[1] < 5_000_000
    finally:
        tracemalloc.stop()


def test_every_single_flipped_byte_is_refused_or_harmless(good, tmp_path):
    path, model, opt = good
    raw = path.read_bytes() if hasattr(path, "read_bytes") else open(path, "rb").read()
    positions = sorted(set(np.random.default_rng(0).choice(len(raw), 150, replace=False)) |
                       set(range(len(raw) - 120, len(raw))))  # the central directory and its end record
    refused = 0
    for at in positions:
        damaged = bytearray(raw)
        damaged[at] ^= 0x55
        (tmp_path / "flip.npz").write_bytes(bytes(damaged))
        try:
            ck = checkpoint.load(tmp_path / "flip.npz", "cpu")
        except CheckpointError:
            refused += 1
            continue
        same_state(ck, model, opt)  # a byte that mattered nothing: the very same values
    assert refused > len(positions) // 2


@pytest.mark.parametrize("cut", [0, 1, 30, 100, 1000, -200, -22, -1])
def test_empty_and_truncated_files_are_refused(good, tmp_path, cut):
    raw = open(good[0], "rb").read()
    (tmp_path / "cut.npz").write_bytes(raw[:cut])
    with pytest.raises(CheckpointError, match="empty|not a readable|damaged|truncated"):
        checkpoint.load(tmp_path / "cut.npz")


def test_other_files_are_refused(tmp_path):
    write(tmp_path / "zip.npz", {"__meta__": b"x"})
    with zipfile.ZipFile(tmp_path / "text.npz", "w") as z:
        z.writestr("notes.txt", "hello")
    for path, words in [(tmp_path, "is a folder"), (tmp_path / "text.npz", "unexpected entry 'notes.txt'"),
                        (tmp_path / "zip.npz", "entry '__meta__' is damaged")]:
        with pytest.raises(CheckpointError, match=words):
            checkpoint.read_metadata(path)


def test_nonfinite_state_is_never_written_over_a_good_file(good):
    path, model, opt = good
    before = open(path, "rb").read()
    model.parameters()["2.b"][0] = np.nan
    with pytest.raises(NumericalError, match="refusing to write .*param/2.b"):
        checkpoint.save(path, model, opt)
    model.parameters()["2.b"][0] = 0
    opt.state["0.W"]["v"][1, 1] = np.inf
    with pytest.raises(NumericalError, match="opt/0.W/v"):
        checkpoint.save(path, model, opt)
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(os.path.dirname(path))) == ["good.npz"]


def test_numpy_values_in_extra_are_stored_as_json(tmp_path):
    model, opt = trained(steps=0)
    path = checkpoint.save(tmp_path / "m.npz", model, extra={"acc": np.float32(0.5), "n": np.int64(3),
                                                             "ids": np.arange(3), "ok": np.bool_(True)})
    assert checkpoint.read_metadata(path)["extra"] == {"acc": 0.5, "n": 3, "ids": [0, 1, 2], "ok": True}
    for extra in ({"f": open}, {(1, 2): "tuple key"}):
        with pytest.raises(InvalidValueError, match="checkpoint extra"):
            checkpoint.save(tmp_path / "x.npz", model, extra=extra)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_permissions_of_an_existing_file_are_kept_and_new_files_follow_the_umask(tmp_path):
    model, opt = trained(steps=0)
    path = tmp_path / "m.npz"
    old = os.umask(0o022)
    try:
        checkpoint.save(path, model)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.chmod(path, 0o640)
        checkpoint.save(path, model)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    finally:
        os.umask(old)


def test_orphans_of_killed_saves_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = checkpoint.atomic.HOST
    orphan = tmp_path / f".gpubp-{host}-{dead}-0123abcd.tmp"
    live = tmp_path / f".gpubp-{host}-{os.getppid()}-0123abcd.tmp"
    elsewhere = tmp_path / f".gpubp-otherhost-{dead}-0123abcd.tmp"
    legacy_old, legacy_new = tmp_path / ".gpubp-ab12cd34.tmp", tmp_path / ".gpubp-zz12cd34.tmp"
    for f in (orphan, live, elsewhere, legacy_old, legacy_new):
        f.write_bytes(b"x" * 100)
    os.utime(legacy_old, (0, 0))
    checkpoint.save(tmp_path / "m.npz", trained(steps=0)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, elsewhere.name, legacy_new.name, "m.npz"])


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    checkpoint.save(tmp_path / "m.npz", trained(steps=0)[0])
    assert synced == [False, True]  # the file, then its folder


@pytest.mark.parametrize("where, words", [("missing/m.npz", "does not exist"), ("", "is a folder")])
def test_save_refuses_a_path_it_cannot_write_before_writing(tmp_path, where, words):
    with pytest.raises(InvalidValueError, match=words):
        checkpoint.save(tmp_path / where, trained(steps=0)[0])


@pytest.mark.parametrize("fail_at", ["savez", "replace"])
def test_a_write_that_fails_is_a_checkpoint_error_and_keeps_the_old_file(good, monkeypatch, fail_at):
    path, model, opt = good
    before = open(path, "rb").read()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np if fail_at == "savez" else os, "savez" if fail_at == "savez" else "replace", full)
    with pytest.raises(CheckpointError, match="No space left.*kept"):  # was: a raw OSError
        checkpoint.save(path, model, opt)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(os.path.dirname(path))) == ["good.npz"]  # no temp file left behind


@pytest.mark.parametrize("args, words", [
    (("a string",), "model must be a gpubp Sequential"),
    ((None, "adam"), "optimizer must be a gpubp Optimizer"),
    ((None, None, [1, 2]), "extra must be a dict"),
])
def test_save_names_arguments_of_the_wrong_kind(tmp_path, args, words):
    model, _ = trained(steps=0)
    args = tuple(model if a is None and i == 0 else a for i, a in enumerate(args))
    with pytest.raises(InvalidValueError, match=words):  # was: AttributeError from deep inside save
        checkpoint.save(tmp_path / "m.npz", *args)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("load", [checkpoint.load, checkpoint.read_metadata])
def test_a_path_that_is_not_a_path_is_a_checkpoint_error(load):
    with pytest.raises(CheckpointError, match="file path"):  # was: TypeError from os.fspath
        load(None)


@pytest.mark.parametrize("change, words", [
    (dict(lr=[0.1]), "lr has 1 entries for 2 epochs"),
    (dict(val_loss=[1.0, 2.0, 3.0]), "more than its 2 epochs"),
    (dict(best_epoch=5), "past its 2 epochs"),
    (dict(lr=[-0.1, 0.1]), "negative"),
    (dict(metric_name="accuracy", metric=[0.5]), "metric has 1 entries"),
])
def test_a_damaged_history_is_refused_when_read(change, words):
    # a history whose lists disagree resumed, then failed deep in the epoch log (IndexError)
    from gpubp.history import History
    good = History(loss=[1.0, 0.5], lr=[0.1, 0.1], epoch_time=[1.0, 1.0], samples_per_sec=[9.0, 9.0]).as_dict()
    assert History.from_dict(good).epochs == 2
    with pytest.raises(InvalidValueError, match=words):
        History.from_dict({**good, **change})
