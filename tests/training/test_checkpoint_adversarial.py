"""Saving and loading under hostile use: paths that are links, bytes, ``~`` or special files;
files that cannot be read; checkpoints whose values a layer refuses; a model that is never
left half-loaded by a refused checkpoint."""
import os

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.cli import main
from gpubp.errors import CheckpointError, InvalidValueError

from test_checkpoint_safety import edited, good, trained  # noqa: F401 (good: a fixture)


# -- where a save writes ----------------------------------------------------------------------
def test_a_save_through_a_link_replaces_the_file_it_points_to_and_keeps_the_link(tmp_path):
    model, opt = trained()
    (tmp_path / "runs").mkdir()
    real, link = tmp_path / "runs" / "m.npz", tmp_path / "latest.npz"
    checkpoint.save(real, trained(steps=0)[0])
    link.symlink_to(real)
    assert checkpoint.save(link, model, opt) == str(link)
    assert link.is_symlink() and os.readlink(link) == str(real)  # was: the link replaced by a file
    assert checkpoint.load(real).optimizer.t == opt.t
    assert sorted(os.listdir(tmp_path / "runs")) == ["m.npz"] and sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"]


def test_a_dangling_link_gets_its_file_and_stays_a_link(tmp_path):
    model, _ = trained(steps=0)
    link = tmp_path / "latest.npz"
    link.symlink_to(tmp_path / "m.npz")
    checkpoint.save(link, model)
    assert link.is_symlink() and (tmp_path / "m.npz").is_file()
    link.unlink()
    link.symlink_to(tmp_path / "gone" / "m.npz")
    with pytest.raises(InvalidValueError, match=r"latest.npz \(a link to .*gone/m.npz\): the folder .*gone does not"):
        checkpoint.save(link, model)
    assert link.is_symlink()


def test_a_link_to_a_folder_or_a_special_file_is_refused(tmp_path):
    model, _ = trained(steps=0)
    (tmp_path / "folder").mkdir()
    (tmp_path / "to_folder").symlink_to(tmp_path / "folder")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "to_pipe").symlink_to(tmp_path / "pipe")
    for path, words in [("to_folder", "is a folder"), ("pipe", "pipe is not a regular file"),
                        ("to_pipe", "pipe is not a regular file")]:
        with pytest.raises(InvalidValueError, match=words):  # was: the pipe replaced by a checkpoint
            checkpoint.save(tmp_path / path, model)
    assert (tmp_path / "to_pipe").is_symlink() and not (tmp_path / "pipe").is_file()
    assert sorted(os.listdir(tmp_path)) == ["folder", "pipe", "to_folder", "to_pipe"]
    assert not os.listdir(tmp_path / "folder")


@pytest.mark.parametrize("write", ["save", "fit", "log"])
def test_a_path_ending_in_a_separator_is_refused_as_a_folder(tmp_path, write):
    """Was: checkpoint.save('runs/', model), fit(checkpoint_path='runs/') and EpochLog('runs/') wrote a file named
    runs, not one in the folder runs/ meant (the command line refused it already)."""
    model, opt = trained()
    path = str(tmp_path / "runs") + os.sep
    with pytest.raises(InvalidValueError, match=r"runs/ ends in a separator, so it names a folder; name a file"):
        if write == "save":
            checkpoint.save(path, model, opt)
        elif write == "log":
            gpubp.history.EpochLog(path)
        else:
            gpubp.fit(model, np.zeros((4, 4)), np.array([0, 1, 0, 1]), epochs=1, progress=False,
                      checkpoint_path=path, checkpoint_every=1)
    assert os.listdir(tmp_path) == []


def test_an_empty_file_at_the_path_is_replaced(tmp_path, capsys):
    """An empty file holds nothing to keep (touch m.npz; a temp file's name a harness made): replaced, as every
    other output gpubp writes replaces one. Was: 'is there and is not a gpubp checkpoint, so it is not replaced'
    (checkpoint.save, fit) and '--save m.npz is a file that is not a gpubp checkpoint' (gpubp train)."""
    model, opt = trained()
    for name in ("a.npz", "b.npz"):
        (tmp_path / name).touch()
    assert checkpoint.load(checkpoint.save(tmp_path / "a.npz", model, opt)).optimizer.t == opt.t
    assert main(["train", "--device", "cpu", "--dataset", "xor", "--epochs", "1", "--quiet", "--hidden", "4",
                 "--save", str(tmp_path / "b.npz")]) == 0, capsys.readouterr().err
    assert checkpoint.read_metadata(tmp_path / "b.npz")["extra"]["epochs_done"] == 1


def test_paths_as_bytes_and_with_a_tilde(tmp_path, monkeypatch):
    model, opt = trained()
    monkeypatch.setenv("HOME", str(tmp_path))
    for given in (os.fsencode(tmp_path / "b.npz"), "~/t.npz"):  # was: TypeError / AttributeError; '~' a folder
        path = checkpoint.save(given, model, opt)
        assert os.path.isfile(path) and path.startswith(str(tmp_path))
        assert checkpoint.load(given).optimizer.t == opt.t
        assert checkpoint.read_metadata(given)["format"] == checkpoint.FORMAT
    assert sorted(os.listdir(tmp_path)) == ["b.npz", "t.npz"]


def test_the_training_state_keys_are_refused_by_one_check_in_one_message(tmp_path):
    from gpubp.train import fit, save_training
    model, _ = trained(steps=0)
    history = gpubp.history.History()
    X, y = np.zeros((4, 4), np.float32), np.zeros(4, int)
    messages = []
    for call in (lambda: save_training(tmp_path / "a.npz", model, None, history, 0, seed=1, history=2),
                 lambda: fit(model, X, y, epochs=1, progress=False, checkpoint_path=tmp_path / "b.npz",
                             checkpoint_every=1, checkpoint_extra={"seed": 1, "history": 2})):
        with pytest.raises(InvalidValueError) as err:
            call()
        messages.append(str(err.value))
    assert messages[0] == messages[1]  # was: two wordings, one of them blaming fit's own argument
    assert "checkpoint extra may not use the key(s) ['history', 'seed']" in messages[0]
    assert not os.listdir(tmp_path)


# -- what a load reads ------------------------------------------------------------------------
def bn_net(seed):
    return gpubp.Sequential([gpubp.Dense(4, 6), gpubp.BatchNorm(6), gpubp.Tanh(), gpubp.Dense(6, 3),
                             gpubp.Dropout(0.3)], seed=seed)


@pytest.mark.parametrize("change, words", [
    ({"buffer/1.running_var": -np.ones(6, np.float32)}, "running_var must be >= 0"),
    ({"buffer/4.step": np.array(-5)}, "Dropout step must be a whole number >= 0"),
])
def test_buffer_values_a_layer_refuses_leave_the_model_unchanged(tmp_path, change, words):
    model = bn_net(5)
    model.layers[4].step = 7
    path = edited(checkpoint.save(tmp_path / "g.npz", model), tmp_path / "bad.npz", change)
    target = bn_net(9)
    target.layers[1].buffers["running_mean"][...] = 3.0
    before = {k: v.copy() for k, v in {**target.parameters(), **target.buffers()}.items()}
    for load in (lambda: checkpoint.load(path), lambda: checkpoint.load_into(path, target)):
        with pytest.raises(CheckpointError, match=f"bad.npz: .*{words}.*model is unchanged"):  # was: InvalidValueError
            load()
    after = {**target.parameters(), **target.buffers()}
    for k, v in before.items():  # was: the parameters and BatchNorm's statistics of the checkpoint loaded
        np.testing.assert_array_equal(after[k], v, err_msg=k)


def test_load_into_something_that_is_not_a_model(tmp_path):
    path = checkpoint.save(tmp_path / "m.npz", trained(steps=0)[0])
    with pytest.raises(InvalidValueError, match="model must be a gpubp Sequential, got a str"):  # was: AttributeError
        checkpoint.load_into(path, "model.npz")


def test_a_file_that_cannot_be_opened_is_a_checkpoint_error(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path / "m.npz", trained(steps=0)[0])

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("builtins.open", denied)
    for read in (checkpoint.load, checkpoint.read_metadata):
        with pytest.raises(CheckpointError, match="cannot read .*m.npz .*Permission denied"):  # was: PermissionError
            read(path)


def test_metadata_whose_extra_is_not_a_dict_is_refused(tmp_path):
    path = checkpoint.save(tmp_path / "m.npz", trained(steps=0)[0])
    edited(path, tmp_path / "bad.npz", {"meta": lambda m: m.update(extra=[1, 2])})
    with pytest.raises(CheckpointError, match="the extra metadata is not a dict"):  # was: a list, read as extras
        checkpoint.read_metadata(tmp_path / "bad.npz")


# -- the training state: written only when it can be read back ---------------------------------
def test_save_training_refuses_what_resume_would_refuse_and_keeps_the_old_checkpoint(tmp_path):
    from gpubp.history import History
    from gpubp.train import fit, save_training
    model, _ = trained(steps=0)
    X, y = np.zeros((8, 4), np.float32), np.arange(8) % 3
    path = tmp_path / "c.npz"
    history = fit(model, X, y, epochs=1, progress=False, checkpoint_path=path, checkpoint_every=1)
    before = path.read_bytes()
    for args, words in [((history, "3"), "seed must be a whole number >= 0, got '3'"),
                        ((history, -1), "seed must be a whole number >= 0, got -1"),
                        ((history, 1.5), "seed must be a whole number >= 0, got 1.5"),
                        ((history.as_dict(), 0), "history must be a gpubp History, got a dict"),
                        ((History(loss=[1.0]), 0), "history lr has 0 entries for 1 epochs")]:
        with pytest.raises(InvalidValueError, match=words):  # was: written, then refused by resume (or AttributeError)
            save_training(path, model, None, *args)
    assert path.read_bytes() == before
    assert fit(model, X, y, epochs=2, progress=False, resume_from=path).epochs == 2


def test_history_round_trips_numpy_numbers_and_never_shares_lists():
    from gpubp.history import History
    d = History(loss=[np.float32(0.5), 1], lr=[np.float64(0.1)] * 2, epoch_time=[1, 2], samples_per_sec=[3.0, 4.0],
                metric_name="accuracy", metric=[np.float32(0.25), 0.5], best_epoch=np.int64(2)).as_dict()
    h = History.from_dict(d)  # was: refused ('must be a list of numbers'), np.int64 best_epoch too
    assert h.loss == [0.5, 1.0] and all(type(v) is float for v in h.loss + h.metric + h.lr)
    assert h.best_epoch == 2 and type(h.best_epoch) is int
    d["loss"].append(9.0)
    assert h.epochs == 2  # was: the History grew with the dict it was read from
    assert History.from_dict(h.as_dict()) == h


@pytest.mark.parametrize("change, words", [
    (dict(loss=[10 ** 400, 1.0]), "history loss must be a list of numbers"),  # was: OverflowError
    (dict(val_metric=[0.5]), "val_metric holds values but metric_name .* is None"),  # was: 'val_None 0.5'
    (dict(best_epoch=True), "best_epoch must be a whole number >= 1"),
])
def test_history_from_dict_refuses_odd_values_naming_them(change, words):
    from gpubp.history import History
    good = History(loss=[1.0, 0.5], lr=[0.1, 0.1], epoch_time=[1.0, 1.0], samples_per_sec=[9.0, 9.0]).as_dict()
    with pytest.raises(InvalidValueError, match=words):
        History.from_dict({**good, **change})


@pytest.mark.parametrize("epoch, words", [(2, "epoch 2 is past the 2 epoch"), (-1, "got -1"), ("0", "got '0'")])
def test_history_summary_of_an_epoch_not_recorded(epoch, words):
    from gpubp.history import History
    h = History(loss=[1.0, 0.5], lr=[0.1, 0.1], epoch_time=[1.0, 1.0], samples_per_sec=[9.0, 9.0])
    assert h.summary(1).startswith("loss 0.5000")
    with pytest.raises(InvalidValueError, match=words):  # was: IndexError, or the last epoch for -1
        h.summary(epoch)


@pytest.mark.parametrize("make, words", [
    (lambda d: gpubp.history.EpochLog(d), "EpochLog path: .* is a folder"),  # was: IsADirectoryError
    (lambda d: gpubp.history.EpochLog(d / "no" / "log.csv"), "the folder .*no does not exist"),  # FileNotFoundError
    (lambda d: gpubp.history.EpochLog(None), "EpochLog path must be a file path, got None"),  # wrote ./None
    (lambda d: gpubp.history.EpochLog(3), "EpochLog path must be a file path, got 3"),  # wrote ./3
    (lambda d: gpubp.history.EpochLog(d / "log.csv", append="no"), "append must be True or False, got 'no'"),
    (lambda d: gpubp.progress.Progress("3"), "Progress total must be a whole number >= 0, got '3'"),  # TypeError
    (lambda d: gpubp.progress.Progress(3, enabled="no"), "enabled must be True or False or None, got 'no'"),
])
def test_epoch_log_and_progress_refuse_bad_arguments_and_write_nothing(tmp_path, monkeypatch, make, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidValueError, match=words):
        make(tmp_path)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("extra", [{"classes": {0: "cat", 1: "dog"}}, {"runs": [{"a": 1}, {2.5: "b"}]},
                                   {1: "a", "1": "b"}])
def test_extra_keys_json_would_turn_into_strings_are_refused(tmp_path, extra):
    from gpubp.train import fit
    model, _ = trained(steps=0)
    with pytest.raises(InvalidValueError, match=r"checkpoint extra: the key .* would be read back as a string"):
        checkpoint.save(tmp_path / "m.npz", model, extra=extra)  # was: {"0": "cat"} read back; {1:, "1":} lost one
    if all(isinstance(k, str) for k in extra):  # fit refuses it before training, not after the first epoch
        with pytest.raises(InvalidValueError, match="would be read back as a string"):
            fit(model, np.zeros((4, 4), np.float32), np.zeros(4, int), epochs=1, progress=False,
                checkpoint_path=tmp_path / "c.npz", checkpoint_every=1, checkpoint_extra=extra)
    assert not os.listdir(tmp_path)


# -- a save never writes what a load would refuse ---------------------------------------------
def other_models_optimizer():
    return trained(optimizer=gpubp.Adam())[1], gpubp.Sequential([gpubp.Dense(4, 3)], seed=1)


def float64_optimizer():
    model = gpubp.Sequential([gpubp.Dense(4, 6), gpubp.Tanh(), gpubp.Dense(6, 3)], seed=5, dtype="float64")
    opt = gpubp.Adam()
    X, y, loss = np.ones((4, 4)), np.arange(4) % 3, gpubp.SoftmaxCrossEntropy()
    loss(model(X), y)
    model.backward(loss.backward())
    opt.step(model)
    return opt, None


def stepped_without_state():
    opt = gpubp.Adam()
    opt.t = 3
    return opt, None


def negative_second_moment():
    opt = trained()[1]
    opt.state["0.W"]["v"][0, 0] = -1.0
    return opt, None


@pytest.mark.parametrize("make, words", [
    (other_models_optimizer, r"unexpected array\(s\) 'opt/2.W/m'"),
    (float64_optimizer, "opt/0.W/m holds float64 values, the checkpoint says float32"),
    (stepped_without_state, r"missing array\(s\) 'opt/0.W/m'"),
    (negative_second_moment, "0.W.v holds negative values"),
])
def test_an_optimizer_whose_state_would_not_load_is_refused_before_writing(good, make, words):
    path, model, _ = good
    before = open(path, "rb").read()
    opt, other = make()
    with pytest.raises(InvalidValueError, match=f"refusing to write .*good.npz: the Adam optimizer's state does not "
                                                f"fit the model \\(.*({words})"):
        checkpoint.save(path, other or model, opt)  # was: written over the good file, then refused by load
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(os.path.dirname(path))) == ["good.npz"]


@pytest.mark.parametrize("content", [b"x,y\n1,2\n", b"\0", "npy", "npz"])  # an empty file: replaced (below)
def test_a_file_that_is_not_a_checkpoint_is_never_replaced(tmp_path, content):
    path = tmp_path / "data.npz"
    if content == "npy":
        np.save(tmp_path / "data.npy", np.arange(3))
        path = tmp_path / "data.npy"
    elif content == "npz":
        np.savez(path, X=np.arange(3))  # the user's data, not a checkpoint
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(InvalidValueError, match="data.np[yz] is there and is not a gpubp checkpoint, so it is not "
                                                "replaced"):  # was: replaced by the checkpoint
        checkpoint.save(path, trained(steps=0)[0])
    assert path.read_bytes() == before and len(os.listdir(tmp_path)) == 1


def test_a_read_only_checkpoint_is_kept(good, monkeypatch):
    path, model, opt = good
    before = open(path, "rb").read()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: not (mode & os.W_OK and str(p) == path) and real(p, mode))
    with pytest.raises(InvalidValueError, match="good.npz is read-only; it is kept"):  # was: replaced (os.replace
        checkpoint.save(path, model, opt)                                               # needs the folder's rights)
    assert open(path, "rb").read() == before


def test_loading_from_a_pipe_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for read in (checkpoint.load, checkpoint.read_metadata):
        with pytest.raises(CheckpointError, match="pipe is not a regular file"):  # was: waited forever for a writer
            read(tmp_path / "pipe")


def test_a_spec_naming_a_dtype_loads_in_it(tmp_path):
    path = checkpoint.save(tmp_path / "m.npz", *trained())
    ck = checkpoint.load(path, "cpu/float64")  # was: DeviceError, 'dtype=float32 was asked for' (the saved one)
    assert ck.model.backend.dtype == np.float64 and ck.optimizer.state["0.W"]["m"].dtype == np.float64
    assert checkpoint.load(path, "cpu").model.backend.dtype == np.float32  # the saved dtype
    assert checkpoint.load(path, "cpu", dtype="float64").model.backend.dtype == np.float64
    with pytest.raises(gpubp.errors.DeviceError, match="names dtype float64 but dtype=float32"):
        checkpoint.load(path, "cpu/float64", dtype="float32")  # both given, and they disagree


def test_a_bytes_path_is_a_str_path_for_every_writer(tmp_path):
    """writable_target returned a bytes path for a bytes path, so each caller had to decode it
    (EpochLog's CSV test, ``path.lower().endswith('.csv')``, raised TypeError before it did)."""
    log = gpubp.history.EpochLog(os.fsencode(tmp_path / "log.csv"))
    assert log.path == str(tmp_path / "log.csv") and not log.json
    log.close()


def test_every_writer_follows_a_link_and_refuses_a_loop(tmp_path):
    """writable_target followed no link: a looping link was found only when written (after the
    work), and only the CLI and checkpoint.save wrote through a link to the file it names."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(InvalidValueError, match="EpochLog path: .*loop is a link that leads to no file"):
        gpubp.history.EpochLog(tmp_path / "loop")
    (tmp_path / "log.csv").symlink_to(tmp_path / "real.csv")
    log = gpubp.history.EpochLog(tmp_path / "log.csv")
    log.close()
    assert log.path == str(tmp_path / "real.csv") and os.path.islink(tmp_path / "log.csv")


def test_an_epoch_log_leaves_its_file_as_it_was_until_the_first_epoch_ends(tmp_path):
    """Was: opened (emptied) when made, so a run refused before training lost the earlier log."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n1,0.5\n")
    log = gpubp.history.EpochLog(path)
    model = gpubp.Sequential([gpubp.Dense(2, 2)], seed=0)
    with pytest.raises(InvalidValueError, match="epochs"):
        gpubp.fit(model, np.ones((4, 2)), np.array([0, 1, 0, 1]), epochs=0, callbacks=[log], progress=False)
    log.close()
    assert path.read_text() == "epoch,loss\n1,0.5\n"
    gpubp.fit(model, np.ones((4, 2)), np.array([0, 1, 0, 1]), epochs=1, callbacks=[log], progress=False)
    log.close()
    assert path.read_text().startswith("epoch,loss,accuracy,lr")


def test_an_appended_csv_log_keeps_its_columns(tmp_path):
    """Was: a resumed run with validation data appended lines of 9 columns under the file's header
    of 7, which no CSV reader reads back; now the file's columns are kept, with a warning."""
    import csv
    path = tmp_path / "log.csv"
    X, y = np.ones((8, 2)), np.array([0, 1] * 4)
    model = gpubp.Sequential([gpubp.Dense(2, 2)], seed=0)
    log = gpubp.history.EpochLog(path)
    gpubp.fit(model, X, y, epochs=1, callbacks=[log], progress=False)
    log.close()
    log = gpubp.history.EpochLog(path, append=True)
    with pytest.warns(gpubp.GpubpWarning, match="keep the file's columns"):
        gpubp.fit(model, X, y, epochs=1, callbacks=[log], progress=False, validation_data=(X, y))
    log.close()
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 and all(None not in row for row in rows) and "val_loss" not in rows[0]


def test_a_checkpoint_of_another_run_is_kept_unless_overwrite(tmp_path):
    """Was: a second fit with the same checkpoint_path (a rerun, another experiment) wrote over the
    first run's trained model at its first checkpoint, maybe with a worse one. Refused before any
    training, naming what the file holds; continuing that run (resume_from) or overwrite=True may."""
    from gpubp.train import fit
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)).astype(np.float32), rng.integers(0, 2, 40)
    path = tmp_path / "run.npz"

    def run(epochs, **kw):
        model = gpubp.Sequential([gpubp.Dense(3, 2)], seed=0)
        before = model.parameters()["0.W"].copy()
        try:
            return fit(model, X, y, epochs=epochs, checkpoint_path=path, checkpoint_every=1, progress=False, **kw)
        finally:
            run.trained = not np.array_equal(before, model.parameters()["0.W"])
    run(2)
    first = path.read_bytes()
    with pytest.raises(InvalidValueError, match=r"fit: checkpoint_path: .*run.npz already holds a trained model "
                                                r"\(1 layers, 2 epoch\(s\) trained, saved .*\).*"
                                                r"resume_from='.*run.npz'.*overwrite=True"):
        run(1)
    assert path.read_bytes() == first and not run.trained  # refused before training
    assert run(3, resume_from=path).epochs == 3  # continuing it in place
    assert run(1, overwrite=True).epochs == 1
    with pytest.raises(InvalidValueError, match="fit: overwrite must be True or False"):
        run(1, overwrite="yes")
