"""gpubp train and predict when the machine fails mid-run (monkeypatched: a full disk, no memory
left, an input changed after it was read): one line naming what failed and what is kept, the
trained model saved before the error is said (at --save, else beside it), no temp file left."""
import errno
import os

import numpy as np
import pytest

from gpubp import checkpoint
from helpers import run_cli as run

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "table.npz", X=rng.normal(size=(24, 3)), y=np.arange(24) % 2)
    return tmp_path / "table.npz"


def train(table, *extra, capsys, epochs=4):
    return run(["train", "--device", "cpu", "--quiet", "--hidden", "8", "--epochs", str(epochs), "--data", str(table),
                *extra], capsys)


def epochs_at(path):
    return checkpoint.read_metadata(path)["extra"]["epochs_done"]


def params(path):
    return {k: np.asarray(v) for k, v in checkpoint.load(path, "cpu").model.parameters().items()}


def savez_failing(monkeypatch, calls):
    """np.savez fails (disk full, after writing a few bytes) at the given 1-based calls."""
    count, real = [], np.savez

    def savez(f, *args, **kwargs):
        count.append(1)
        if len(count) in calls:
            f.write(b"PK half")
            raise ENOSPC
        return real(f, *args, **kwargs)
    monkeypatch.setattr(np, "savez", savez)


def files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_save_that_cannot_be_written_is_saved_beside_it(table, tmp_path, capsys, monkeypatch):
    """Was: the error alone, and the run's training lost."""
    savez_failing(monkeypatch, {1})
    code, out, last = train(table, "--save", str(tmp_path / "m.npz"), capsys=capsys)
    rescued = tmp_path / "m.rescued.npz"
    assert code == 1 and last == (f"gpubp train: error: --save {tmp_path / 'm.npz'}: cannot write {tmp_path / 'm.npz'} "
                                  f"(OSError: No space left on device); the file already there, if any, is kept; "
                                  f"the model (4 epoch(s)) is saved instead at {rescued}; give it to --resume to "
                                  f"continue")
    assert epochs_at(rescued) == 4 and files(tmp_path) == ["m.rescued.npz", "table.npz"]


def test_a_save_of_a_long_name_that_cannot_be_written_is_saved_beside_it(table, tmp_path, capsys, monkeypatch):
    """Was: the rescue name, '<name>.rescued.npz', too long for the file system when --save's was near its limit
    (250 characters): 'nor could it be written beside it or in the current folder (File name too long): the model
    (4 epoch(s)) is lost'."""
    savez_failing(monkeypatch, {1})
    monkeypatch.chdir(tmp_path)
    save = tmp_path / ("m" * 246 + ".npz")
    code, out, last = train(table, "--save", str(save), capsys=capsys)
    rescued = [name for name in files(tmp_path) if ".rescued" in name]
    assert code == 1 and len(rescued) == 1 and f"is saved instead at {tmp_path / rescued[0]}" in last, last
    assert epochs_at(tmp_path / rescued[0]) == 4 and rescued[0].startswith("m" * 100)


def test_a_checkpoint_that_cannot_be_written_keeps_the_earlier_one_and_the_model_is_saved_beside_it(
        table, tmp_path, capsys, monkeypatch):
    """Epoch 2's checkpoint is written; epoch 4's, and --save again, find the disk full; beside it there is room.
    Was: a raw error after epoch 4, the model of 4 epochs lost."""
    savez_failing(monkeypatch, {2, 3})
    save = tmp_path / "m.npz"
    code, out, last = train(table, "--save", str(save), "--checkpoint-every", "2", "--epochs", "6", capsys=capsys)
    assert code == 1 and last.startswith(f"gpubp train: error: fit: cannot write the checkpoint of epoch 4 to {save}")
    assert f"{save} keeps the checkpoint of epoch 2; training stopped in epoch 4: the model holds 4 whole epoch(s); " \
           f"--save {save}: cannot write" in last and last.endswith(f"saved instead at {tmp_path / 'm.rescued.npz'}; "
                                                                    f"give it to --resume to continue")
    assert epochs_at(save) == 2 and epochs_at(tmp_path / "m.rescued.npz") == 4
    assert files(tmp_path) == ["m.npz", "m.rescued.npz", "table.npz"]


def test_when_nothing_can_be_written_the_error_says_what_is_lost_and_kept(table, tmp_path, capsys, monkeypatch):
    savez_failing(monkeypatch, set(range(2, 10)))
    monkeypatch.chdir(tmp_path)
    save = tmp_path / "m.npz"
    code, out, last = train(table, "--save", str(save), "--checkpoint-every", "2", capsys=capsys)
    assert code == 1 and last.endswith(f"nor could it be written beside it or in the current folder (cannot write "
                                       f"{tmp_path / 'm.rescued.npz'} (OSError: No space left on device); the file "
                                       f"already there, if any, is kept): the model (4 epoch(s)) is lost; {save} keeps "
                                       f"the checkpoint of epoch 2")
    assert epochs_at(save) == 2 and files(tmp_path) == ["m.npz", "table.npz"]


def test_out_of_memory_mid_run_saves_the_whole_epochs_before_saying_so(table, tmp_path, capsys, monkeypatch):
    """Was: "out of memory; ask for a smaller model", and the epochs trained lost."""
    import importlib
    fit_module = importlib.import_module("gpubp.train.fit")
    real, calls = fit_module._run_epoch, []

    def run_epoch(*args, **kwargs):
        calls.append(1)
        real(*args, **kwargs)  # epoch 3 trains, then the memory runs out
        if len(calls) == 3:
            raise MemoryError("cannot allocate 1.00 GiB")
    monkeypatch.setattr(fit_module, "_run_epoch", run_epoch)
    save = tmp_path / "m.npz"
    code, out, last = train(table, "--save", str(save), capsys=capsys)
    assert code == 1 and last == (f"gpubp train: error: fit: out of memory (MemoryError: cannot allocate 1.00 GiB); "
                                  f"training stopped in epoch 3 (its part done is undone): the model holds 2 whole "
                                  f"epoch(s); saved: {save}")
    monkeypatch.undo()
    assert train(table, "--save", str(tmp_path / "two.npz"), capsys=capsys, epochs=2)[0] == 0
    assert epochs_at(save) == 2 and all(np.array_equal(v, params(tmp_path / "two.npz")[k])
                                        for k, v in params(save).items())


def test_out_of_memory_in_the_report_says_the_model_is_saved(table, tmp_path, capsys, monkeypatch):
    """Was: the out-of-memory line alone, the saved line never printed."""
    def evaluate(*args, **kwargs):
        raise MemoryError()
    monkeypatch.setattr("gpubp.cli.train.evaluate", evaluate)
    save = tmp_path / "m.npz"
    code, out, last = train(table, "--save", str(save), capsys=capsys)
    assert code == 1 and last == (f"gpubp train: error: the report after training failed (MemoryError: no detail); "
                                  f"saved: {save}") and epochs_at(save) == 4


def test_a_plot_that_cannot_be_drawn_or_written_says_the_model_is_saved(table, tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure
    save, plot = tmp_path / "m.npz", tmp_path / "p.png"

    def savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise ENOSPC
    monkeypatch.setattr(Figure, "savefig", savefig)
    code, out, last = train(table, "--save", str(save), "--plot", str(plot), capsys=capsys)
    assert code == 1 and last == (f"gpubp train: error: --plot {plot}: cannot write the plot to {plot} (OSError: No "
                                  f"space left on device); a file already there is kept; saved: {save}")
    assert files(tmp_path) == ["m.npz", "table.npz"]

    def plot_history(*args, **kwargs):
        raise MemoryError("figure")
    monkeypatch.setattr("gpubp.cli.train.plot_history", plot_history)
    code, out, last = train(table, "--save", str(save), "--plot", str(plot), "--overwrite", capsys=capsys)
    assert code == 1 and last == f"gpubp train: error: --plot {plot}: MemoryError: figure; saved: {save}"


def test_a_log_line_that_cannot_be_written_stops_the_run_with_the_model_saved(table, tmp_path, capsys, monkeypatch):
    """Was: a raw "No space left on device" without the log's path, the model and half a line lost."""
    import gpubp.history as history_module
    real, calls = os.write, []

    def write(fd, data):
        calls.append(1)
        if len(calls) == 2:  # epoch 3's line
            real(fd, bytes(data)[:3])
            raise ENOSPC
        return real(fd, data)
    monkeypatch.setattr(history_module.os, "write", write)
    save, log = tmp_path / "m.npz", tmp_path / "log.csv"
    code, out, last = train(table, "--save", str(save), "--log", str(log), capsys=capsys)
    assert code == 1 and last == (f"gpubp train: error: EpochLog: cannot write epoch 3's line to {log} (OSError: No "
                                  f"space left on device); the log keeps the lines written before it; training stopped "
                                  f"in epoch 3 (its part done is undone): the model holds 2 whole epoch(s); saved: "
                                  f"{save}")
    assert epochs_at(save) == 2 and [line[:2] for line in log.read_text().splitlines()] == ["ep", "1,", "2,"]


def test_a_resume_checkpoint_changed_or_gone_after_it_was_read_is_refused_before_training(
        table, tmp_path, capsys, monkeypatch):
    """Was: fit read the file again and continued whatever another run had written there meanwhile."""
    first, other = tmp_path / "first.npz", tmp_path / "other.npz"
    assert train(table, "--save", str(first), capsys=capsys, epochs=2)[0] == 0
    assert train(table, "--save", str(other), "--seed", "5", capsys=capsys, epochs=3)[0] == 0
    before = first.read_bytes()
    import gpubp.cli.train as cli_train
    real = cli_train.prepare

    def prepare(*args, **kwargs):
        result = real(*args, **kwargs)
        first.write_bytes(other.read_bytes())  # another run writes the checkpoint meanwhile
        return result
    monkeypatch.setattr(cli_train, "prepare", prepare)
    code, out, last = train(table, "--resume", str(first), "--save", str(first), capsys=capsys)
    assert code == 1 and last == (f"gpubp train: error: --resume {first} changed since it was read (another run wrote "
                                  f"it?); nothing was trained: run again to continue what it holds now")
    assert first.read_bytes() == other.read_bytes() != before

    def gone(*args, **kwargs):
        result = real(*args, **kwargs)
        first.unlink()
        return result
    monkeypatch.setattr(cli_train, "prepare", gone)
    first.write_bytes(before)
    code, out, last = train(table, "--resume", str(first), "--save", str(tmp_path / "next.npz"), capsys=capsys)
    assert code == 1 and last.startswith(f"gpubp train: error: --resume {first} cannot be read again since it was read")
    assert not (tmp_path / "next.npz").exists()


def test_data_removed_after_it_was_read_trains_and_saves(table, tmp_path, capsys, monkeypatch):
    import gpubp.cli.train as cli_train
    real = cli_train.prepare

    def prepare(*args, **kwargs):
        result = real(*args, **kwargs)
        table.unlink()
        return result
    monkeypatch.setattr(cli_train, "prepare", prepare)
    code, out, last = train(table, "--save", str(tmp_path / "m.npz"), capsys=capsys)
    assert code == 0 and epochs_at(tmp_path / "m.npz") == 4


def test_predictions_that_cannot_be_written_keep_the_earlier_ones(table, tmp_path, capsys, monkeypatch):
    """Was: "No space left on device" without naming --out."""
    import gpubp.checkpoint.atomic as atomic
    assert train(table, "--save", str(tmp_path / "m.npz"), capsys=capsys)[0] == 0
    out = tmp_path / "p.csv"
    argv = ["predict", str(tmp_path / "m.npz"), str(table), "--out", str(out), "--device", "cpu"]
    assert run(argv, capsys)[0] == 0
    before = out.read_bytes()

    def fsync(fd):
        raise ENOSPC
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    code, _, last = run(argv, capsys)
    assert code == 1 and last == (f"gpubp predict: error: --out {out}: cannot write the predictions (OSError: No space "
                                  f"left on device); nothing was written there (a file already there is kept)")
    assert out.read_bytes() == before and files(tmp_path) == ["m.npz", "p.csv", "table.npz"]


@pytest.mark.parametrize("failure", [OSError(errno.EPIPE, "Broken pipe"), MemoryError("cannot allocate 4 GiB")])
def test_a_failure_one_rank_alone_meets_outside_fit_ends_every_rank(monkeypatch, failure):
    """gpubp train --distributed: an error that is no gpubp error (rank 0's stdout closed, no memory left)
    met by one rank. Was: that rank's main() said it and returned 1, the other ranks waited for it in
    their next collective (a hang); now every rank is ended (MPI_Abort), as for a gpubp error."""
    import gpubp.cli.train as train_command
    from gpubp.cli import build_parser

    class Aborted(BaseException):
        pass

    class Comm:
        size, is_root, aborted = 2, True, []

        def abort(self, message):
            self.aborted.append(message)
            raise Aborted

    def fails(args, comm):
        raise failure
    monkeypatch.setattr(train_command, "communicator", lambda args: Comm())
    monkeypatch.setattr(train_command, "train", fails)
    with pytest.raises(Aborted):
        train_command.run(build_parser().parse_args(["train", "--distributed"]))
    assert Comm.aborted == [f"gpubp train: error: {type(failure).__name__}: {failure.args[-1]}"]
