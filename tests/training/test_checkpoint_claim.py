"""fit's checkpoint_path claimed as gpubp train's --save is: a checkpoint another run (another
process, or a fit inside this one) writes there while this run trains is kept, and this run stops
at its next write, its model whole; the check and the write hold the path's lock, which one writer
holds at a time and which a platform without fcntl does without, said once. And saving under
hostile conditions: Ctrl-C between the temp file and the rename, a ``~`` path, a link."""
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.checkpoint import atomic, claim
from gpubp.errors import CheckpointError, GpubpWarning, InvalidValueError
from gpubp.train import fit

FORK = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
POSIX = pytest.mark.skipif(FORK is None or atomic.fcntl is None, reason="needs fork and fcntl (POSIX)")


def net(seed=0):
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Tanh(), gpubp.Dense(4, 2)], seed=seed)


def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(32, 3)), rng.integers(0, 2, 32)


def run(path, seed, epochs=3, **kw):
    return fit(net(seed), *data(), epochs=epochs, batch_size=16, seed=seed, progress=False, checkpoint_path=path,
               checkpoint_every=kw.pop("every", 1), **kw)


def seed_at(path):
    return checkpoint.read_metadata(path)["extra"]["seed"]


# -- two runs, one checkpoint_path --------------------------------------------------------------
@pytest.mark.parametrize("second", ["the same path", "another link to the file"])
def test_a_checkpoint_a_second_fit_writes_meanwhile_is_kept_and_the_first_stops_whole(tmp_path, second):
    """Was: the first run's next write replaced the second's checkpoint unsaid."""
    path = tmp_path / "m.npz"
    other = path
    if second != "the same path":
        (tmp_path / "a.npz").symlink_to(path)
        path, other = tmp_path / "a.npz", tmp_path / "b.npz"
        other.symlink_to(tmp_path / "m.npz")

    class SecondRun:
        def on_epoch_end(self, epoch, model, history):
            if epoch == 0:  # before the first run's first write (every 2 epochs)
                run(other, seed=2, epochs=1)
    with pytest.raises(CheckpointError) as err:
        run(path, seed=1, every=2, callbacks=SecondRun())
    assert str(err.value).startswith(f"fit: checkpoint_path: another run wrote {path} while this one trained (a "
                                     f"checkpoint of 1 epoch(s), saved ")
    assert str(err.value).endswith("; it is kept; this run stops before its checkpoint of epoch 2 would replace it "
                                   "(give each run its own path); training stopped in epoch 2: the model holds 2 "
                                   "whole epoch(s)")
    assert err.value.history.epochs == 2 and seed_at(tmp_path / "m.npz") == 2


def test_a_run_replaces_its_own_checkpoints_and_the_one_it_resumes(tmp_path):
    path = tmp_path / "m.npz"
    run(path, seed=1, epochs=2)
    history = run(path, seed=1, epochs=4, resume_from=path)  # continued in place, every epoch written
    assert history.epochs == 4 and checkpoint.read_metadata(path)["extra"]["epochs_done"] == 4
    run(path, seed=2, epochs=1, overwrite=True)  # replaced as asked
    assert seed_at(path) == 2 and os.listdir(tmp_path) == ["m.npz"]


def test_the_writer_key_of_checkpoint_extra_is_refused_before_training(tmp_path):
    with pytest.raises(InvalidValueError, match="checkpoint_extra may not use the key 'writer': fit marks"):
        run(tmp_path / "m.npz", seed=1, checkpoint_extra={"writer": "me"})
    assert not os.listdir(tmp_path)


def fit_at_once(path, seed, barrier, report):
    """In a forked process: a fit whose first write starts with the other's (``barrier``) and is
    slow, so that without the lock both would check before either had replaced the file; its
    epochs and error (or None) go to the file ``report``."""
    writing, savez, calls = claim.Claim.writing, np.savez, []

    def together(self):
        calls.append(1)
        if len(calls) == 1:
            barrier.wait(timeout=60)
        return writing(self)

    def slow_savez(*args, **kwargs):
        time.sleep(0.05)
        return savez(*args, **kwargs)
    claim.Claim.writing, np.savez = together, slow_savez
    try:
        result = [run(path, seed).epochs, None]
    except CheckpointError as exc:
        result = [exc.history.epochs, str(exc)]
    with open(report, "w") as f:
        json.dump(result, f)
    os._exit(0)


@POSIX
def test_two_processes_fitting_to_one_path_in_one_instant_keep_the_first_checkpoint(tmp_path):
    (tmp_path / "runs").mkdir()
    for round_ in range(4):
        path, barrier = tmp_path / "runs" / f"m{round_}.npz", FORK.Barrier(2)
        runs = {s: FORK.Process(target=fit_at_once, args=(str(path), s, barrier, str(tmp_path / f"{round_}-{s}")))
                for s in (1, 2)}
        for p in runs.values():
            p.start()
        for p in runs.values():
            p.join(120)
        got = {s: json.loads((tmp_path / f"{round_}-{s}").read_text()) for s in runs}
        finished = [s for s, (epochs, error) in got.items() if error is None]
        assert len(finished) == 1, got  # was: both finished, the one that wrote last had replaced the other's
        (epochs, error), = [r for r in got.values() if r[1] is not None]
        assert error.startswith(f"fit: checkpoint_path: another run wrote {path} while this one trained") and \
            epochs == 1, error
        assert seed_at(path) == finished[0] and checkpoint.read_metadata(path)["extra"]["epochs_done"] == 3
    assert sorted(os.listdir(tmp_path / "runs")) == [f"m{r}.npz" for r in range(4)]  # no lock or temp file left


# -- the lock ------------------------------------------------------------------------------------
def hold_until(path, held, release):
    with atomic.locked(path):
        held.set()
        release.wait(120)
    os._exit(0)


@POSIX
def test_a_writer_waits_for_another_and_names_it_when_it_holds_on(tmp_path, monkeypatch):
    path, held, release = tmp_path / "m.npz", FORK.Event(), FORK.Event()
    holder = FORK.Process(target=hold_until, args=(str(path), held, release))
    holder.start()
    assert held.wait(60)
    monkeypatch.setattr(atomic, "WAIT", 0.2)
    with pytest.raises(CheckpointError, match=rf"{path} is being written by process {holder.pid} on "
                                              rf"{atomic.HOST}, which has held its lock \(.*\.m\.npz\.gpubp-lock\) "
                                              rf"for over 0\.2 s; nothing was written"):
        checkpoint.save(path, net())
    release.set()
    holder.join(60)
    checkpoint.save(path, net())
    assert os.listdir(tmp_path) == ["m.npz"]


@POSIX
def test_a_writer_kept_waiting_says_what_for_while_it_waits(tmp_path, monkeypatch):
    """Was: silent for up to WAIT (300 s) while another process held the lock (a run stopped with Ctrl-Z
    while it saved): gpubp train --save seemed hung before training began."""
    path, held, release = tmp_path / "m.npz", FORK.Event(), FORK.Event()
    holder = FORK.Process(target=hold_until, args=(str(path), held, release))
    holder.start()
    assert held.wait(60)
    monkeypatch.setattr(atomic, "WAIT", 0.6)
    monkeypatch.setattr(atomic, "SAY_AFTER", 0.1)
    try:
        with pytest.warns(GpubpWarning, match=rf"{path}: waiting for process {holder.pid} on {atomic.HOST}, which "
                                              rf"is writing it \(up to 0\.6 s\)") as said:
            with pytest.raises(CheckpointError, match="is being written by"):
                checkpoint.save(path, net())
        assert len([w for w in said if "waiting for" in str(w.message)]) == 1
    finally:
        release.set()
        holder.join(60)


def test_one_thread_at_a_time_and_the_holder_may_take_it_again(tmp_path):
    path, seen = tmp_path / "m.npz", []

    def other_thread():
        try:
            with atomic.locked(path, wait=0.1):
                seen.append("locked")
        except CheckpointError as exc:
            seen.append(str(exc))
    with atomic.locked(path) as held, atomic.locked(path):  # taken again within: no wait
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        checkpoint.save(path, net())  # the save takes it again too
    assert held and "is being written by process" in seen[0] and os.listdir(tmp_path) == ["m.npz"]


def test_without_fcntl_a_claimed_write_is_unlocked_and_said_once(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "fcntl", None)
    monkeypatch.setattr(claim, "UNLOCKED", [])
    with pytest.warns(GpubpWarning, match=r"fit: checkpoint_path: .*m\.npz cannot be locked here \(no fcntl") as said:
        run(tmp_path / "m.npz", seed=1)
        run(tmp_path / "n.npz", seed=1)
    assert len(said) == 1 and sorted(os.listdir(tmp_path)) == ["m.npz", "n.npz"]


def test_gpubp_imports_and_saves_where_there_is_no_fcntl(tmp_path):
    code = ("import sys; sys.modules['fcntl'] = None; import gpubp; from gpubp import checkpoint; "
            "checkpoint.save(sys.argv[1], gpubp.Sequential([gpubp.Dense(2, 2)], seed=0)); print('saved')")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.npz")], capture_output=True, text=True)
    assert done.stdout == "saved\n", done.stderr
    assert os.listdir(tmp_path) == ["m.npz"]


# -- hostile conditions --------------------------------------------------------------------------
def test_ctrl_c_between_the_temp_file_and_the_rename_keeps_the_old_checkpoint_and_leaves_nothing(tmp_path,
                                                                                               monkeypatch):
    path = tmp_path / "m.npz"
    run(path, seed=1, epochs=1)
    before = path.read_bytes()

    def ctrl_c(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, net(2))
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]  # no temp file, no lock file


def test_a_tilde_checkpoint_path_is_checked_where_it_is_written(tmp_path, monkeypatch):
    """Was: the check for another run's checkpoint looked at './~/m.npz', the write replaced ~/m.npz."""
    monkeypatch.setenv("HOME", str(tmp_path))
    run(tmp_path / "m.npz", seed=1, epochs=1)
    with pytest.raises(InvalidValueError, match=f"{tmp_path / 'm.npz'} already holds a trained model"):
        run("~/m.npz", seed=2, epochs=1)
    assert seed_at(tmp_path / "m.npz") == 1


@pytest.mark.parametrize("folder", ["/proc", "/sys"])
def test_a_folder_that_takes_no_new_files_is_refused_before_training(folder):
    """Root's os.access calls /proc and /sys writable: was, a whole epoch trained before the write failed."""
    if not os.path.isdir(folder):
        pytest.skip(f"no {folder} here")
    class Never:
        def on_epoch_begin(self, epoch, model):
            pytest.fail("training began")
    with pytest.raises(InvalidValueError, match=f"fit: checkpoint_path: no file can be made in {folder} "):
        run(f"{folder}/m.npz", seed=1, callbacks=Never())
