"""fit when the machine fails mid-run (monkeypatched: a full disk, a folder gone, no memory left):
one gpubp error saying what failed and what is kept, the error's history and the model agreeing
on the whole epochs done, the previous checkpoint and log whole, and no temp file left."""
import errno
import os
import shutil

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.errors import CheckpointError, GpubpError, OutOfMemoryError
from gpubp.train import fit


def net():
    return gpubp.Sequential([gpubp.Dense(3, 8), gpubp.Tanh(), gpubp.Dense(8, 2)], seed=0)


def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(48, 3)), rng.integers(0, 2, 48)


def host(model):
    return {k: np.array(model.backend.to_numpy(v)) for k, v in model.parameters().items()}


def same(a, b):
    return host(a).keys() == host(b).keys() and all(np.array_equal(v, host(b)[k]) for k, v in host(a).items())


def trained(epochs, **kw):
    """The model of an uninterrupted run of ``epochs`` (the reference a stopped run must equal)."""
    model = net()
    fit(model, *data(), epochs=epochs, batch_size=16, seed=3, progress=False, **kw)
    return model


def full_disk(monkeypatch, at_call):
    """np.savez writes a few bytes, then the disk is full, at its ``at_call``-th call (1-based)."""
    calls, real = [], np.savez

    def savez(f, *args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            f.write(b"PK\x03\x04 half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, *args, **kwargs)
    monkeypatch.setattr(np, "savez", savez)


def test_a_full_disk_at_a_periodic_checkpoint_stops_with_the_model_and_the_previous_checkpoint_whole(
        tmp_path, monkeypatch):
    """Was: a raw error out of fit with no history, after the epochs the user trained."""
    path = tmp_path / "run.npz"
    full_disk(monkeypatch, at_call=2)  # epoch 2's checkpoint is written, epoch 4's is not
    model = net()
    with pytest.raises(CheckpointError, match=r"cannot write the checkpoint of epoch 4 .*No space left on device.*"
                                              r"keeps the checkpoint of epoch 2; training stopped in epoch 4: the "
                                              r"model holds 4 whole epoch\(s\)") as err:
        fit(model, *data(), epochs=6, batch_size=16, seed=3, progress=False, checkpoint_path=path,
            checkpoint_every=2)
    assert err.value.history.epochs == 4 and same(model, trained(4))
    assert checkpoint.read_metadata(path)["extra"]["epochs_done"] == 2
    assert os.listdir(tmp_path) == ["run.npz"]  # no temp file left


def test_the_folder_gone_at_a_checkpoint_is_said_and_the_model_kept(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()

    class Vanish:
        def on_epoch_end(self, epoch, model, history):
            if epoch == 2:
                shutil.rmtree(folder)

    model = net()
    with pytest.raises(CheckpointError, match=r"epoch 4 .*out does not exist.*no checkpoint is at .*run\.npz; "
                                              r"training stopped in epoch 4: the model holds 4 whole epoch"):
        fit(model, *data(), epochs=6, batch_size=16, seed=3, progress=False, checkpoint_path=folder / "run.npz",
            checkpoint_every=2, callbacks=Vanish())
    assert same(model, trained(4))


def test_a_full_disk_at_the_final_checkpoint_says_training_is_done(tmp_path, monkeypatch):
    """restore_best's final write (the last epoch was not a checkpoint's): was a raw error, the history lost."""
    full_disk(monkeypatch, at_call=1)
    model = net()
    with pytest.raises(CheckpointError, match=r"epoch 3 .*No space.*no checkpoint is at .*training is done: the "
                                              r"model holds 3 whole epoch") as err:
        fit(model, *data(), epochs=3, batch_size=16, seed=3, progress=False, checkpoint_path=tmp_path / "r.npz",
            checkpoint_every=5, restore_best=True)
    assert err.value.history.epochs == 3 and os.listdir(tmp_path) == []


class RunOutOfMemory:
    """MemoryError at step ``step`` of epoch ``epoch`` (0-based), after that step's backward."""

    def __init__(self, epoch, step):
        self.epoch, self.step, self.now = epoch, step, None

    def on_epoch_begin(self, epoch, model):
        self.now = epoch

    def on_batch_end(self, step, model, value):
        if (self.now, step) == (self.epoch, self.step):
            raise MemoryError("cannot allocate 4.00 GiB")


def test_out_of_memory_mid_epoch_undoes_that_epoch_and_keeps_the_whole_ones():
    """Was: a raw MemoryError, the model holding part of an epoch and no history."""
    model = net()
    with pytest.raises(OutOfMemoryError, match=r"fit: out of memory \(MemoryError: cannot allocate 4.00 GiB\); training stopped "
                                               r"in epoch 3 \(its part done is undone\): the model holds 2 whole") as err:
        fit(model, *data(), epochs=5, batch_size=16, seed=3, progress=False, callbacks=RunOutOfMemory(2, 1))
    assert err.value.history.epochs == 2 and same(model, trained(2))


def test_out_of_memory_in_validation_keeps_history_and_model_agreeing(monkeypatch):
    import importlib
    fit_module = importlib.import_module("gpubp.train.fit")
    real, calls = fit_module._evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError()
        return real(*args, **kwargs)
    monkeypatch.setattr(fit_module, "_evaluate", evaluate)
    X, y = data()
    model = net()
    with pytest.raises(OutOfMemoryError, match=r"out of memory \(MemoryError: no detail\); training stopped in "
                                               r"epoch 3") as err:
        fit(model, X, y, epochs=5, batch_size=16, seed=3, progress=False, validation_data=(X[:8], y[:8]))
    h = err.value.history
    assert h.epochs == len(h.val_loss) == len(h.val_metric) == 2 and same(model, trained(2))


def test_out_of_memory_with_restore_best_ends_on_the_best_epoch():
    X, y = data()
    best = trained(3, restore_best=True, validation_data=(X[:8], y[:8]))
    model = net()
    with pytest.raises(OutOfMemoryError, match="with the weights of the best, epoch") as err:
        fit(model, X, y, epochs=5, batch_size=16, seed=3, progress=False, restore_best=True,
            validation_data=(X[:8], y[:8]), callbacks=RunOutOfMemory(3, 0))
    assert err.value.history.epochs == 3 and same(model, best)


def test_a_log_line_that_cannot_be_written_is_cut_off_and_stops_the_run(tmp_path, monkeypatch):
    """Was: a raw OSError without the log's path, and half a line left for the next run to append to."""
    import gpubp.history as history_module
    path = tmp_path / "log.jsonl"
    real, calls = os.write, []

    def write(fd, data):
        calls.append(1)
        if len(calls) == 2:  # epoch 3's line (epoch 1's went through write_atomically)
            real(fd, bytes(data)[:7])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    monkeypatch.setattr(history_module.os, "write", write)
    model = net()
    with pytest.raises(GpubpError, match=r"EpochLog: cannot write epoch 3's line to .*log\.jsonl \(OSError: No space "
                                         r"left on device\); the log keeps the lines written before it; training "
                                         r"stopped in epoch 3 \(its part done is undone\): the model holds 2") as err:
        fit(model, *data(), epochs=5, batch_size=16, seed=3, progress=False,
            callbacks=gpubp.history.EpochLog(path))
    lines = path.read_text().splitlines()
    assert err.value.history.epochs == 2 and [line[:11] for line in lines] == ['{"epoch": 1', '{"epoch": 2']
    assert path.read_text().endswith("\n") and same(model, trained(2))


def test_an_earlier_log_is_kept_whole_when_the_first_line_cannot_be_written(tmp_path, monkeypatch):
    """Was: opened with "w" (emptied) at the first line, so a full disk lost the earlier log too."""
    import gpubp.checkpoint.atomic as atomic
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n1,0.5\n")

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(GpubpError, match=r"cannot write epoch 1's line to .*log\.csv .*No space"):
        fit(net(), *data(), epochs=2, batch_size=16, progress=False, callbacks=gpubp.history.EpochLog(path))
    assert path.read_text() == "epoch,loss\n1,0.5\n" and os.listdir(tmp_path) == ["log.csv"]


def test_a_log_removed_mid_run_is_said_gone_not_made_anew_without_its_header(tmp_path):
    path = tmp_path / "log.csv"

    class Remove:
        def on_epoch_end(self, epoch, model, history):
            if epoch == 1:
                os.remove(path)

    with pytest.raises(GpubpError, match=r"cannot write epoch 3's line .*No such file.*the log is gone"):
        fit(net(), *data(), epochs=4, batch_size=16, progress=False,
            callbacks=[gpubp.history.EpochLog(path), Remove()])
    assert not path.exists()


def test_a_callbacks_own_oserror_keeps_its_type_with_the_whole_epochs():
    """Was: re-labelled a GpubpError, so the caller's ``except FileNotFoundError`` missed its own error."""
    class ReadsItsFile:
        def on_epoch_begin(self, epoch, model):
            if epoch == 2:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/no/such/notes.txt")

    model = net()
    with pytest.raises(FileNotFoundError, match="notes.txt") as err:
        fit(model, *data(), epochs=4, batch_size=16, seed=3, progress=False, callbacks=ReadsItsFile())
    assert err.value.history.epochs == 2 and same(model, trained(2))
