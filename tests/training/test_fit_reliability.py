"""fit never hands back (or writes) a non-finite model, follows the loss with its accuracy,
honours explicit arguments on resume, and refuses every bad argument with one gpubp error
that names it, before any training."""
import warnings

import numpy as np
import pytest

import gpubp
from gpubp.errors import CheckpointError, GpubpError, InvalidValueError, NumericalError, ShapeError
from gpubp.train import evaluate, fit, predict


def net(n_in=2, n_out=2, seed=0, dtype="float32"):
    return gpubp.Sequential([gpubp.Dense(n_in, 8), gpubp.Tanh(), gpubp.Dense(8, n_out)], dtype=dtype, seed=seed)


def data(n=64, n_in=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.integers(0, 2, n)


def host(model):
    return {k: np.array(model.backend.to_numpy(v)) for k, v in model.parameters().items()}


class Poison:
    """Makes the last step of epoch ``epoch`` write NaN weights (64 samples in batches of 32: step 1),
    after that epoch's losses were all computed: the epoch loss stays finite."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, model, history):
        pass

    def on_batch_end(self, step, model, loss_value):
        if self._epoch == self.epoch and step == 1:
            model.gradients()["2.W"][...] = np.nan  # the step turns this into NaN weights

    def on_epoch_begin(self, epoch, model):
        self._epoch = epoch


def test_nonfinite_weights_behind_a_finite_loss_are_refused_and_restored():
    X, y = data()
    model, starts = net(), []

    class Starts:
        def on_epoch_begin(self, epoch, model):
            starts.append(host(model))
    with pytest.raises(NumericalError, match=r"NaN/Inf in epoch 2 although the loss stayed finite.*2\.W"):
        fit(model, X, y, optimizer="sgd", epochs=3, callbacks=[Starts(), Poison(1)])
    for k, v in host(model).items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(v, starts[1][k])


def test_adam_second_moment_overflow_is_caught():
    """float32 inputs near 1e30: g*g overflows in Adam's v while the loss stays finite."""
    X, y = data()
    model = gpubp.Sequential([gpubp.Dense(2, 2)], seed=0)
    before = host(model)
    opt = gpubp.Adam()
    with np.errstate(all="ignore"), pytest.raises(NumericalError, match="Adam slot 0.W.v"):
        fit(model, X * 1e30, y, optimizer=opt, epochs=2)
    for k, v in host(model).items():
        np.testing.assert_array_equal(v, before[k])
    assert opt.t == 0 and not opt.state  # restored to before the first step


def test_a_good_checkpoint_is_never_replaced_by_a_bad_one(tmp_path):
    X, y = data()
    path = tmp_path / "run.npz"
    with pytest.raises(NumericalError):
        fit(net(), X, y, optimizer="sgd", epochs=3, checkpoint_path=path, checkpoint_every=1,
            callbacks=Poison(2))  # one callback object, not a list
    ck = gpubp.checkpoint.load(path)
    assert ck.metadata["extra"]["epochs_done"] == 2
    assert all(np.isfinite(v).all() for v in ck.model.parameters().values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_a_model_holding_nan_is_refused_before_training():
    model = net()
    model.parameters()["0.b"][1] = np.inf
    with pytest.raises(NumericalError, match=r"before training \(parameter 0\.b\)"):
        fit(model, *data(), epochs=1)


@pytest.mark.parametrize("rate", [float("nan"), -0.1, float("inf"), "0.1", None])
def test_a_schedule_giving_a_bad_rate_is_refused(rate):
    with pytest.raises(InvalidValueError, match=r"schedule's lr for epoch 1 must be a finite number >= 0, got"):
        fit(net(), *data(), epochs=3, schedule=lambda epoch: 0.01 if epoch == 0 else rate)


def test_a_schedule_may_reach_zero():
    h = fit(net(), *data(), epochs=2, optimizer="sgd", schedule=lambda epoch: 0.1 * (1 - epoch))
    assert h.lr == [0.1, 0.0]


def test_bce_accuracy_is_per_output_and_softmax_accuracy_is_argmax():
    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    model = gpubp.Sequential([gpubp.Dense(3, 3, bias=False)], seed=0)
    model.load_parameters({"0.W": np.eye(3, dtype=np.float32)})  # outputs = X
    T = (X > 0).astype(np.float32)
    assert evaluate(model, X, T, loss="bce")["accuracy"] == 1.0  # 12 outputs right
    T[0, 0] = 1 - T[0, 0]
    assert evaluate(model, X, T, loss="bce")["accuracy"] == pytest.approx(11 / 12)
    labels = X.argmax(axis=1)
    assert evaluate(model, X, labels)["accuracy"] == 1.0
    h = fit(model, X, (X > 0).astype(np.float32), loss="bce", optimizer="sgd", lr=1e-9, epochs=1, shuffle=False)
    assert h.metric == [1.0]


def test_resume_honours_an_explicit_lr_and_optimizer(tmp_path):
    X, y = data()
    path = tmp_path / "c.npz"
    fit(net(), X, y, lr=0.05, epochs=2, checkpoint_path=path, checkpoint_every=2)
    assert fit(net(seed=1), X, y, epochs=3, resume_from=path).lr == [0.05] * 3  # the saved optimizer
    assert fit(net(seed=1), X, y, epochs=3, lr=0.01, resume_from=path).lr == [0.05, 0.05, 0.01]
    mine = gpubp.Adam(lr=0.02)
    assert fit(net(seed=1), X, y, epochs=3, optimizer=mine, resume_from=path).lr[-1] == 0.02
    saved_t = gpubp.checkpoint.load(path).optimizer.t
    assert mine.t == saved_t + 2 and set(mine.state["0.W"]) == {"m", "v"}  # it got the saved slots
    model = net(seed=1)
    before = host(model)
    for other in ("sgd", gpubp.RMSprop()):
        with pytest.raises(InvalidValueError, match=r"continues a Adam run .* asks for (SGD|RMSprop)"):
            fit(model, X, y, epochs=3, optimizer=other, resume_from=path)
    for k, v in host(model).items():  # refused before anything was loaded
        np.testing.assert_array_equal(v, before[k])


def test_resume_without_lr_keeps_the_schedule_of_the_run(tmp_path):
    X, y = data()
    run = dict(epochs=4, lr=0.05, schedule="step", optimizer="sgd")
    full = fit(net(), X, y, **run)

    class StopAt:
        def on_epoch_begin(self, epoch, model):
            if epoch == 2:
                raise KeyboardInterrupt
    fit(net(), X, y, **run, checkpoint_path=tmp_path / "c.npz", checkpoint_every=1, callbacks=[StopAt()])
    resumed = fit(net(seed=7), X, y, epochs=4, schedule="step", resume_from=tmp_path / "c.npz")
    assert resumed.lr == full.lr and resumed.loss == full.loss


X0, Y0 = data(16)


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=0), "lr must be a finite number > 0, got 0"),
    (dict(lr=-1), "lr must be"),
    (dict(lr=float("nan")), "got nan"),
    (dict(lr=float("inf")), "got inf"),
    (dict(lr="0.1"), "got '0.1'"),
    (dict(epochs=0), "epochs must be a whole number >= 1, got 0"),
    (dict(epochs=2.5), "epochs must be a whole number >= 1, got 2.5"),
    (dict(epochs=True), "epochs must be"),
    (dict(epochs="3"), "got '3'"),
    (dict(batch_size=0), "batch_size must be a whole number >= 1"),
    (dict(batch_size=1.5), "batch_size must be"),
    (dict(seed=-1), "seed must be a whole number >= 0, got -1"),
    (dict(seed="x"), "seed must be"),
    (dict(tol=-1), "tol must be"),
    (dict(patience=0), "patience must be a whole number >= 1"),
    (dict(callbacks=5), "callbacks must be an object with any of on_epoch_begin"),
    (dict(callbacks=[object()]), r"callbacks\[0\] \(a object\) has none of the methods"),
    (dict(checkpoint_path="x.npz"), "checkpoint_path needs checkpoint_every"),
    (dict(checkpoint_path="x.npz", checkpoint_every=0), "checkpoint_every must be a whole number >= 1, got 0"),
    (dict(checkpoint_path="x.npz", checkpoint_every=2.5), "checkpoint_every must be .* got 2.5"),
    (dict(checkpoint_every=1), "checkpoint_every=1 without checkpoint_path"),
    (dict(validation_data=X0), "validation_data must be a pair .* got a ndarray"),
    (dict(validation_data=(X0,)), "got a 1-item tuple"),
    (dict(validation_data=(X0, Y0, Y0)), "got a 3-item tuple"),
    (dict(validation_data=(X0[:, :1], Y0)), r"validation_data X has shape \(16, 1\)"),
    (dict(validation_data=(X0, Y0[:3])), "validation_data X has 16 samples but validation_data y has 3"),
    (dict(optimizer="adamm"), "adamm"),
    (dict(schedule="linear"), "unknown schedule 'linear'"),
    # flags: a string such as "no" reads as True, so only True/False are taken
    (dict(shuffle="no"), "shuffle must be True or False, got 'no'"),
    (dict(restore_best="false"), "restore_best must be True or False, got 'false'"),
    (dict(progress="off"), "progress must be True or False or None .* got 'off'"),
    # checkpoint_extra: checked before training, not at the first checkpoint an epoch later
    (dict(checkpoint_path="c.npz", checkpoint_every=1, checkpoint_extra={"seed": 3}),
     r"checkpoint extra may not use the key\(s\) \['seed'\]"),
    (dict(checkpoint_path="c.npz", checkpoint_every=1, checkpoint_extra={"scaler": object()}),
     "a object cannot be stored as JSON"),
    (dict(checkpoint_extra=["scale", 2]), r"checkpoint_extra must be a dict with string keys, got \['scale', 2\]"),
])
def test_bad_arguments_are_one_gpubp_error_naming_them(kwargs, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = net()
    before = host(model)
    with pytest.raises(GpubpError, match=words) as err:
        fit(model, X0, Y0, **kwargs)
    assert isinstance(err.value, ValueError)
    for k, v in host(model).items():
        np.testing.assert_array_equal(v, before[k])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where, words", [
    ("missing/c.npz", "the folder .*missing does not exist"),
    ("file.txt/c.npz", "file.txt is a file, not a folder"),
    (".", "is a folder; give a file name inside it"),
])
def test_an_unwritable_checkpoint_path_is_refused_before_training(where, words, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    seen = []
    with pytest.raises(InvalidValueError, match=words):
        fit(net(), X0, Y0, checkpoint_path=tmp_path / where, checkpoint_every=1,
            callbacks=[type("C", (), {"on_epoch_begin": lambda self, e, m: seen.append(e)})()])
    assert seen == []


@pytest.mark.parametrize("call, X, y, error, words", [
    ("fit", X0[:, :1].repeat(5, axis=1), Y0, ShapeError, r"X has shape \(16, 5\), 5 features .* expects 2"),
    ("fit", X0, np.array(3), ShapeError, r"y has a single number \(0-d\)"),
    ("fit", X0, np.zeros((16, 3)), ShapeError, r"y has shape \(16, 3\) but the model gives \(2,\) per sample"),
    ("fit", np.zeros((0, 2)), np.zeros(0, int), ShapeError, r"fit: no samples \(X has shape \(0, 2\)\)"),
    ("evaluate", np.zeros((0, 2)), np.zeros(0, int), ShapeError, "evaluate: no samples"),
    ("predict", np.zeros((0, 2)), None, ShapeError, "predict: no samples"),
    ("predict", np.zeros(2), None, ShapeError, r"predict: X must hold samples along its first axis.* \(2,\)"),
    ("predict", X0[:, :1].repeat(3, axis=1), None, ShapeError, r"predict: X has shape \(16, 3\)"),
    ("fit", [[1.0, 2.0], [3.0]], [0, 1], ShapeError, "not a rectangular array"),
    ("fit", X0[:, :, None], Y0, ShapeError, r"fit: X of shape \(16, 2, 1\) does not fit the model: Dense input"),
    ("fit", X0 * 1e39, Y0, NumericalError, "X: holds values up to .*e\\+39, beyond float32's range"),
    ("predict", -X0 * 1e39, None, NumericalError, "beyond float32's range"),
])
def test_bad_data_names_the_array_the_user_passed(call, X, y, error, words):
    fn = {"fit": fit, "evaluate": evaluate, "predict": predict}[call]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks on the way
        with pytest.raises(error, match=words):
            fn(net(), X, *(() if y is None else (y,)))


def test_float64_data_beyond_float32_is_fine_for_a_float64_model():
    X = X0 * 1e39
    assert np.isfinite(predict(net(dtype="float64"), X)).all()


def test_integer_features_and_targets_are_converted():
    X = np.arange(32).reshape(16, 2) % 3
    assert fit(net(), X, Y0, epochs=1).epochs == 1
    assert fit(net(n_out=1), X, (Y0 > 0).astype(int)[:, None], loss="bce", epochs=1).metric_name == "accuracy"


def test_a_damaged_training_state_is_a_checkpoint_error(tmp_path):
    model = net()
    for extra in ({"epochs_done": "x"}, {"epochs_done": 1, "history": {"los": []}},
                  {"epochs_done": 1, "history": {"loss": ["a"]}}, {"epochs_done": 2, "history": {"loss": [1.0]}},
                  {"epochs_done": 0, "history": {}, "seed": -3}):
        gpubp.checkpoint.save(tmp_path / "c.npz", model, gpubp.Adam(), extra=extra)
        with pytest.raises(CheckpointError, match="damaged training state"):
            fit(model, X0, Y0, epochs=2, resume_from=tmp_path / "c.npz")


def test_a_nonfinite_buffer_is_caught_and_restored_with_the_rest():
    """BatchNorm's running statistics are checked and snapshotted like the parameters: a NaN
    there stops fit with NumericalError naming it, and the start of the epoch comes back."""
    X = np.random.default_rng(0).normal(size=(64, 3))
    y = np.random.default_rng(1).integers(0, 2, 64)
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.BatchNorm(4), gpubp.ReLU(), gpubp.Dense(4, 2)],
                             dtype="float64", seed=0)
    fit(model, X, y, epochs=1, batch_size=16, progress=False, plan=False)
    before = {k: v.copy() for k, v in model.buffers().items()}

    class Poison:
        def on_batch_end(self, step, model, loss):
            model.layers[1].buffers["running_var"][0] = np.nan
    with pytest.raises(NumericalError, match="buffer 1.running_var"):
        fit(model, X, y, epochs=2, batch_size=16, progress=False, callbacks=[Poison()])
    for k, v in model.buffers().items():
        np.testing.assert_array_equal(v, before[k])


def test_save_training_keeps_any_extra_key_but_the_training_state(tmp_path):
    model, history = net(), fit(net(), X0, Y0, epochs=1, progress=False)
    path = gpubp.train.save_training(tmp_path / "c.npz", model, None, history, 0, path="raw.csv", model="v2")
    assert gpubp.checkpoint.read_metadata(path)["extra"]["path"] == "raw.csv"  # no TypeError from a key
    with pytest.raises(InvalidValueError, match=r"checkpoint extra may not use the key\(s\) \['epochs_done'\]"):
        gpubp.train.save_training(tmp_path / "d.npz", model, None, history, 0, epochs_done=9)
    assert not (tmp_path / "d.npz").exists()


def test_resuming_a_run_longer_than_asked_is_refused_before_the_model_is_touched(tmp_path):
    fit(net(), X0, Y0, epochs=3, checkpoint_path=tmp_path / "c.npz", checkpoint_every=1, progress=False)
    model = net(seed=5)
    before = host(model)
    with pytest.raises(InvalidValueError, match="has done 3 epochs but epochs=2; epochs counts every epoch"):
        fit(model, X0, Y0, epochs=2, resume_from=tmp_path / "c.npz")
    for k, v in host(model).items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.warns(gpubp.GpubpWarning, match="nothing"):  # all done: nothing to run, and said so
        assert fit(model, X0, Y0, epochs=3, resume_from=tmp_path / "c.npz").epochs == 3


@pytest.mark.parametrize("plan", [False, True])
def test_a_parameter_array_assigned_between_fits_is_the_one_trained(plan):
    # the optimizer's update is bound to the model's flat buffer: an array put in its place by
    # assignment would never be updated by that optimizer (the old one would), unless fit makes
    # the model flat again
    model, opt = net(), gpubp.optim.SGD(lr=0.1, momentum=0.9)
    fit(model, X0, Y0, optimizer=opt, epochs=1, progress=False, plan=plan)
    start = model.layers[0].params["W"] * 0.5
    model.layers[0].params["W"] = start.copy()
    fit(model, X0, Y0, optimizer=opt, epochs=1, progress=False, plan=plan)
    assert not np.array_equal(model.parameters()["0.W"], start)
    twin, twin_opt = net(), gpubp.optim.SGD(lr=0.1, momentum=0.9)  # the same run, the weights loaded in place
    fit(twin, X0, Y0, optimizer=twin_opt, epochs=1, progress=False, plan=plan)
    twin.load_parameters({**host(twin), "0.W": start})
    fit(twin, X0, Y0, optimizer=twin_opt, epochs=1, progress=False, plan=plan)
    for k, v in host(twin).items():
        np.testing.assert_array_equal(host(model)[k], v)


@pytest.mark.parametrize("plan", [False, True])
def test_a_model_moved_by_a_callback_is_refused_by_name_before_the_next_step(plan):
    class Move:
        def on_epoch_end(self, epoch, model, history):
            model.to("cpu", "float64")
    model = net()
    with pytest.raises(gpubp.errors.StateError, match="the model moved to cpu float64 during training .* "
                                                      "placed the data on cpu float32"):
        fit(model, X0, Y0, epochs=2, progress=False, plan=plan, callbacks=Move())
    assert all(v.dtype == np.float64 for v in model.parameters().values())


def test_ctrl_c_during_validation_leaves_a_history_of_whole_epochs():
    # the epoch's training records were written before its validation: kept alone, the lists
    # would be misaligned (val_loss[i] then belongs to another epoch than loss[i])
    class CtrlCInValidation:
        epoch = 0

        def on_epoch_begin(self, epoch, model):
            self.epoch = epoch

        def forward(self, model, i, layer, X, Y):
            if not model.training and self.epoch == 1:
                raise KeyboardInterrupt
    model, stop = net(), CtrlCInValidation()
    model.observers.append(stop)
    history = fit(model, X0, Y0, epochs=3, progress=False, validation_data=(X0, Y0), callbacks=stop)
    assert history.interrupted and history.epochs == 1
    lists = ("loss", "metric", "val_loss", "val_metric", "lr", "epoch_time", "samples_per_sec")
    assert {name: len(getattr(history, name)) for name in lists} == dict.fromkeys(lists, 1)


def test_resuming_a_model_saved_after_ctrl_c_says_so_and_writes_its_checkpoints(tmp_path):
    """A model saved after Ctrl-C (as ``gpubp train --save`` does) holds part of the next epoch:
    resuming from it says that it cannot repeat an uninterrupted run, and the resumed run is not
    itself taken for interrupted (it wrote no final checkpoint, and the CLI kept no --save of it)."""
    class CtrlC:
        def on_batch_end(self, step, model, value):
            if len(history_so_far) == 1:  # in the second epoch, after its first step
                raise KeyboardInterrupt

        def on_epoch_end(self, epoch, model, history):
            history_so_far.append(epoch)
    history_so_far = []
    model, opt = net(), gpubp.Adam(lr=0.01)
    cut = fit(model, X0, Y0, optimizer=opt, epochs=3, batch_size=8, progress=False, callbacks=CtrlC())
    assert cut.interrupted and cut.epochs == 1
    saved = gpubp.train.save_training(tmp_path / "cut.npz", model, opt, cut, 0)
    path = tmp_path / "resumed.npz"
    with pytest.warns(gpubp.GpubpWarning, match=r"saved after Ctrl-C in epoch 2: its weights hold part of that epoch"):
        h = fit(net(), X0, Y0, epochs=3, batch_size=8, progress=False, resume_from=saved,
                checkpoint_path=path, checkpoint_every=2)
    assert not h.interrupted and h.epochs == 3
    assert gpubp.checkpoint.read_metadata(path)["extra"]["epochs_done"] == 3  # the final write, after epoch 3


@pytest.mark.parametrize("y", [np.array([0.0, 1.0] * 32), [0.0, 1.0] * 32], ids=["array", "list"])
def test_float_class_labels_are_named_as_given_with_the_way_out(y):
    from gpubp.errors import DTypeError
    with pytest.raises(DTypeError, match=r"fit: y holds float64 values, but 1-d targets of softmax_cross_entropy "
                                         r"are integer class labels 0..C-1: convert them \(y.astype\(int\)\)"):
        fit(net(), X0, y, epochs=1, progress=False)


RUN = dict(epochs=2, batch_size=4, shuffle=True, seed=3, progress=False)  # 16 samples: 4 steps an epoch


def saved_run(tmp_path, **run):
    path = tmp_path / "c.npz"
    fit(net(), X0, Y0, **{**RUN, **run, "epochs": 1}, checkpoint_path=path, checkpoint_every=1)
    return path


@pytest.mark.parametrize("given, words", [
    (dict(batch_size=8), r"batch_size=8 \(saved: 4\)"),
    (dict(shuffle=False), r"shuffle=False \(saved: True\)"),
    (dict(seed=4), r"seed=4 \(saved: 3\)"),
    (dict(batch_size=5, seed=0), r"batch_size=5 \(saved: 4\), seed=0 \(saved: 3\)"),
])
def test_resuming_in_other_batches_than_the_saved_run_is_warned_of(tmp_path, given, words):
    path = saved_run(tmp_path)
    assert gpubp.checkpoint.read_metadata(path)["extra"]["batching"] == {"batch_size": 4, "shuffle": True}
    with pytest.warns(gpubp.GpubpWarning, match=f"{path} was trained in other batches than this run's: {words}; "
                                                f"the resumed run does not continue it"):
        assert fit(net(), X0, Y0, **{**RUN, **given}, resume_from=path).epochs == 2  # was: silent


def test_resuming_in_the_saved_batches_says_nothing_and_repeats_the_run(tmp_path):
    path = saved_run(tmp_path)
    whole = fit(net(), X0, Y0, **RUN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = fit(net(), X0, Y0, **{**RUN, "seed": None}, resume_from=path)  # the saved seed
        assert fit(net(), X0, Y0, **RUN, resume_from=path).loss == resumed.loss  # the same seed, given
    assert resumed.loss == whole.loss


def test_a_checkpoint_without_batching_still_resumes_unwarned(tmp_path):
    history = fit(net(), X0, Y0, **{**RUN, "epochs": 1})
    path = gpubp.train.save_training(tmp_path / "old.npz", net(), gpubp.Adam(), history, 3)  # as before it was kept
    assert "batching" not in gpubp.checkpoint.read_metadata(path)["extra"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit(net(), X0, Y0, **{**RUN, "batch_size": 8}, resume_from=path).epochs == 2


@pytest.mark.parametrize("batching, words", [
    ({"batch_size": 0, "shuffle": True}, "batching batch_size must be a whole number >= 1, got 0"),
    ({"batch_size": 8, "shuffle": "yes"}, "batching shuffle must be True or False, got 'yes'"),
    ({"batch_size": 8}, "batching must be a dict of batch_size .*, shuffle .*, got"),
    (16, "batching must be a dict of batch_size"),
])
def test_batching_is_checked_when_saved_and_when_read(tmp_path, batching, words):
    history = fit(net(), X0, Y0, **{**RUN, "epochs": 1})
    with pytest.raises(InvalidValueError, match=f"save_training: {words}"):
        gpubp.train.save_training(tmp_path / "c.npz", net(), None, history, 3, batching)
    assert not (tmp_path / "c.npz").exists()
    extra = {"epochs_done": 1, "seed": 3, "history": history.as_dict(), "batching": batching}
    gpubp.checkpoint.save(tmp_path / "d.npz", net(), gpubp.Adam(), extra=extra)
    with pytest.raises(CheckpointError, match=f"damaged training state: {words}"):
        fit(net(), X0, Y0, **RUN, resume_from=tmp_path / "d.npz")
    with pytest.raises(InvalidValueError, match=r"may not use the key\(s\) \['batching'\]"):
        fit(net(), X0, Y0, **RUN, checkpoint_path=tmp_path / "e.npz", checkpoint_every=1,
            checkpoint_extra={"batching": batching})
