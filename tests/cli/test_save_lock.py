"""Runs of `gpubp train` that write one --save in the same instant: the check of --save and the write
hold the path's lock, so each later run finds the earlier one's checkpoint there and its own model
goes beside it, under a name of its own; runs writing one --log at once leave it whole to one of
them; a lock left by a run that was killed is taken over, said once, or removed by a command that
reads its file; a --save in a folder that takes no new files is refused before training."""
import contextlib
import io
import json
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from gpubp import checkpoint
from gpubp.checkpoint import atomic
from gpubp.checkpoint.claim import Claim
from gpubp.cli import main
from gpubp.cli.claim import LogClaim
from gpubp.history import EpochLog
from helpers import run_cli as run

FORK = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
pytestmark = pytest.mark.skipif(FORK is None or atomic.fcntl is None, reason="needs fork and fcntl (POSIX)")
TRAIN = ["train", "--device", "cpu", "--dataset", "xor", "--epochs", "1", "--quiet", "--hidden", "4"]


def train_at_once(save, seed, barrier, err):
    """In a forked process: ``gpubp train --save save --seed seed``, its check and write of --save
    started with the other runs' (``barrier``) and its checkpoint written slowly, so that without
    the lock every run would check before any had replaced the file."""
    writing, savez = Claim.writing, np.savez

    def together(self):
        barrier.wait(timeout=60)
        return writing(self)

    def slow_savez(*args, **kwargs):
        time.sleep(0.05)
        return savez(*args, **kwargs)
    Claim.writing, np.savez = together, slow_savez
    with open(err, "w") as f, contextlib.redirect_stderr(f), contextlib.redirect_stdout(io.StringIO()):
        code = main([*TRAIN, "--seed", str(seed), "--save", save])
    os._exit(code)


def test_runs_that_save_in_one_instant_keep_every_model(tmp_path):
    """Was: each run checked --save a few milliseconds before its write, so runs finishing in the
    same instant all found it free and the last to write replaced the others' models unsaid."""
    seeds = (1, 2, 3)
    for round_ in range(8):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        save, barrier = folder / "m.npz", FORK.Barrier(len(seeds))
        runs = {s: FORK.Process(target=train_at_once, args=(str(save), s, barrier, str(folder / f"err{s}")))
                for s in seeds}
        for p in runs.values():
            p.start()
        for p in runs.values():
            p.join(120)
        codes = {s: p.exitcode for s, p in runs.items()}
        assert sorted(codes.values()) == [0, 1, 1], (codes, [(folder / f"err{s}").read_text() for s in seeds])
        kept = ["m.npz", "m.rescued.npz", "m.rescued-1.npz"]
        assert sorted(os.listdir(folder)) == sorted(["err1", "err2", "err3", *kept])  # no lock or temp file left
        at = {name: checkpoint.read_metadata(folder / name)["extra"]["seed"] for name in kept}
        assert sorted(at.values()) == list(seeds) and codes[at["m.npz"]] == 0  # every run's model, once
        for name in kept[1:]:
            err = (folder / f"err{at[name]}").read_text()
            assert f"--save: another run wrote {save} while this one trained" in err
            assert f"is saved instead at {folder / name}" in err


def log_at_once(log, seed, barrier, err):
    """In a forked process: ``gpubp train --log log --seed seed`` for 3 epochs, each epoch's check of
    --log started with the other run's (``barrier``) and its line written slowly."""
    claimed, write = LogClaim.on_epoch_end, EpochLog._write

    def together(self, *args):
        barrier.wait(timeout=60)
        return claimed(self, *args)

    def slow_write(self, *args):
        time.sleep(0.05)
        return write(self, *args)
    LogClaim.on_epoch_end, EpochLog._write = together, slow_write
    with open(err, "w") as f, contextlib.redirect_stderr(f), contextlib.redirect_stdout(io.StringIO()):
        code = main([*TRAIN, "--epochs", "3", "--seed", str(seed), "--log", log])
    os._exit(code)


def test_runs_that_log_in_one_instant_leave_the_log_whole_to_one(tmp_path):
    """Was: both runs found --log as they had left it and wrote: the second's first line replaced
    the first's, or their lines were mixed."""
    for round_ in range(4):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        log, barrier = folder / "log.jsonl", FORK.Barrier(2)
        runs = [FORK.Process(target=log_at_once, args=(str(log), s, barrier, str(folder / f"err{s}"))) for s in (1, 2)]
        for p in runs:
            p.start()
        for p in runs:
            p.join(120)
        assert [p.exitcode for p in runs] == [0, 0]
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert [line["epoch"] for line in lines] == [1, 2, 3]
        errs = [(folder / f"err{s}").read_text() for s in (1, 2)]
        left = [e for e in errs if "another run wrote it while this one trained" in e]
        assert len(left) == 1 and "logs no more lines from epoch 1 on" in left[0], errs
        assert sorted(os.listdir(folder)) == ["err1", "err2", "log.jsonl"]  # no lock or temp file left


def hold_then_die(path, held):
    """In a forked process: take ``path``'s lock and hold it until killed."""
    with atomic.locked(path):
        held.set()
        time.sleep(120)
    os._exit(0)


def test_a_lock_left_by_a_killed_run_is_taken_over_and_said(tmp_path, capsys):
    save = tmp_path / "m.npz"
    held = FORK.Event()
    holder = FORK.Process(target=hold_then_die, args=(str(save), held))
    holder.start()
    assert held.wait(60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(60)
    lock = tmp_path / ".m.npz.gpubp-lock"
    assert lock.read_text() == f"{atomic.HOST} {holder.pid}\n"  # left behind by the killed run
    code, out, err = run([*TRAIN, "--save", str(save)], capsys)
    assert code == 0 and f"saved: {save}" in out
    assert err == f"gpubp train: warning: {save}: the lock left by process {holder.pid} on {atomic.HOST}, which " \
                  f"ended without releasing it (killed?), is taken over ({lock})"
    assert os.listdir(tmp_path) == ["m.npz"] and checkpoint.read_metadata(save)["extra"]["epochs_done"] == 1


@pytest.mark.parametrize("folder", ["/proc", "/sys"])
def test_a_save_in_a_folder_that_takes_no_new_files_is_refused_before_training(tmp_path, capsys, monkeypatch,
                                                                               folder):
    """Was: root's os.access calls /proc and /sys writable: the run trained, then found it could not save."""
    if not os.path.isdir(folder):
        pytest.skip(f"no {folder} here")
    monkeypatch.setattr("gpubp.cli.train.prepare", lambda *a: pytest.fail("the data was read first"))
    code, out, err = run([*TRAIN, "--save", f"{folder}/m.npz"], capsys)
    assert code == 1 and err.startswith(f"gpubp train: error: --save: no file can be made in {folder} ("), err
    assert err.endswith("give a path in a folder that takes new files")


def test_a_save_beginning_with_a_tilde_is_the_file_checked_not_one_in_home(tmp_path, capsys, monkeypatch):
    """The shell expands ~; a --save given as '~/m.npz' is the file ./~/m.npz, which the run checked.
    Was: written as $HOME/m.npz, another run's checkpoint there replaced unchecked."""
    home, here = tmp_path / "home", tmp_path / "here"
    (here / "~").mkdir(parents=True)
    home.mkdir()
    assert main([*TRAIN, "--save", str(home / "m.npz")]) == 0
    other = (home / "m.npz").read_bytes()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    code, out, err = run([*TRAIN, "--save", "~/m.npz"], capsys)
    assert code == 0 and f"saved: {here / '~' / 'm.npz'}" in out, err
    assert (home / "m.npz").read_bytes() == other and os.listdir(here / "~") == ["m.npz"]


def killed_holding_the_lock(path) -> int:
    """The pid of a process that took ``path``'s lock, wrote its temp file beside it and was killed."""
    held = FORK.Event()
    holder = FORK.Process(target=hold_then_die, args=(str(path), held))
    holder.start()
    assert held.wait(60)
    temp = os.path.join(os.path.dirname(path), f".gpubp-{atomic.HOST}-{holder.pid}-0123abcd.tmp")
    with open(temp, "wb") as f:
        f.write(b"PK half a checkpoint")
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(60)
    return holder.pid


@pytest.mark.parametrize("command", [["predict", "{m}", "{x}"], ["evaluate", "{m}", "{xy}"], ["info", "{m}"],
                                     ["train", "--device", "cpu", "--epochs", "2", "--quiet", "--resume", "{m}"]])
def test_a_lock_left_by_a_killed_writer_is_removed_when_its_file_is_read(tmp_path, capsys, command):
    """Was: predict, evaluate, info and train --resume read the checkpoint and left the killed writer's
    .m.npz.gpubp-lock (and its temp file) beside it until the next write, unsaid."""
    save, data, labelled = tmp_path / "m.npz", tmp_path / "x.csv", tmp_path / "xy.csv"
    assert main([*TRAIN, "--save", str(save)]) == 0
    data.write_text("a,b\n0,0\n0,1\n")
    labelled.write_text("a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    pid = killed_holding_the_lock(save)
    lock = tmp_path / ".m.npz.gpubp-lock"
    assert lock.exists()
    capsys.readouterr()
    code, err = main([a.format(m=save, x=data, xy=labelled) for a in command]), capsys.readouterr().err
    assert code == 0, err
    warned = [line for line in err.splitlines() if "lock" in line]
    assert warned == [f"gpubp {command[0]}: warning: {save}: the lock left by process {pid} on {atomic.HOST}, which "
                      f"ended without releasing it (killed while writing it?), is removed ({lock}); the file holds "
                      f"its last whole write"], warned
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "x.csv", "xy.csv"]


def test_a_lock_held_by_a_live_writer_is_left_to_it_when_its_file_is_read(tmp_path, capsys):
    """A read beside a write under way removes nothing and says nothing: the lock is the writer's."""
    save = tmp_path / "m.npz"
    assert main([*TRAIN, "--save", str(save)]) == 0
    held = FORK.Event()
    holder = FORK.Process(target=hold_then_die, args=(str(save), held))
    holder.start()
    try:
        assert held.wait(60)
        code, out, err = run(["info", str(save)], capsys)
        assert code == 0 and "lock" not in err and (tmp_path / ".m.npz.gpubp-lock").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(60)
