import io
import math

import numpy as np
import pytest

import gpubp
from gpubp.datasets import house_price, load_digits, spirals
from gpubp.errors import CheckpointError, NumericalError, ShapeError
from gpubp.train import evaluate, fit, predict


def mlp(backend="cpu", dtype="float32", hidden=32, n_in=2, n_out=2, seed=0):
    return gpubp.Sequential([gpubp.Dense(n_in, hidden), gpubp.Tanh(), gpubp.Dense(hidden, n_out)],
                            backend=backend, dtype=dtype, seed=seed)


def params(model):
    return {k: model.backend.to_numpy(v).copy() for k, v in model.parameters().items()}


def test_digits_reach_target_accuracy():
    Xtr, ytr, Xte, yte = load_digits()
    model = gpubp.Sequential([gpubp.Dense(64, 128, init="he_uniform"), gpubp.ReLU(),
                              gpubp.Dense(128, 10)], seed=0)
    history = fit(model, Xtr, ytr, optimizer="adam", lr=0.01, epochs=20, batch_size=32,
                  validation_data=(Xte, yte))
    assert history.epochs == 20 and history.loss[-1] < history.loss[0]
    assert evaluate(model, Xte, yte)["accuracy"] >= 0.95
    assert history.val_metric[-1] == evaluate(model, Xte, yte)["accuracy"]
    assert all(s > 0 for s in history.samples_per_sec) and len(history.epoch_time) == 20


def test_predict_matches_forward():
    model = mlp()
    X = np.random.default_rng(0).normal(size=(2500, 2))
    np.testing.assert_array_equal(predict(model, X, batch_size=1000), model.predict(X))


class InterruptAt:
    """A callback that presses Ctrl-C as epoch ``epoch`` begins."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, model):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_same_seed_same_run_and_resume_is_bit_identical(tmp_path):
    X, y, _, _ = spirals(n=200)
    run = dict(epochs=6, seed=3, lr=0.05, schedule="step")
    a, b = mlp(), mlp()
    full = fit(a, X, y, **run)
    fit(b, X, y, **run, checkpoint_path=tmp_path / "c.npz", checkpoint_every=2)
    for k, v in params(a).items():
        np.testing.assert_array_equal(v, params(b)[k])
    # Ctrl-C as epoch 5 begins; resume from the epoch-4 checkpoint (seed read from it)
    c = mlp()
    cut = fit(c, X, y, **run, checkpoint_path=tmp_path / "r.npz", checkpoint_every=2,
              callbacks=[InterruptAt(4)])
    assert cut.interrupted and cut.epochs == 4
    d = mlp(seed=99)
    history = fit(d, X, y, epochs=6, lr=0.05, schedule="step", resume_from=tmp_path / "r.npz")
    assert history.epochs == 6 and history.loss == full.loss and history.lr == full.lr
    for k, v in params(a).items():
        np.testing.assert_array_equal(v, params(d)[k])


def test_nan_loss_stops_and_keeps_last_good_parameters():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 2)), rng.normal(size=(64, 2)) * 100
    starts = {}

    class Snapshot:
        def on_epoch_begin(self, epoch, model):
            starts[epoch + 1] = params(model)
    model = mlp()
    with np.errstate(all="ignore"), pytest.raises(NumericalError, match="loss became (nan|inf) in epoch") as err:
        fit(model, X, y, loss="mse", optimizer="sgd", lr=1e6, epochs=5, callbacks=[Snapshot()])  # diverges
    bad_epoch = int(str(err.value).split("in epoch ")[1].split(";")[0])
    first_bad = params(model)
    for k, v in starts[bad_epoch].items():  # restored to the start of the epoch that went bad
        np.testing.assert_array_equal(first_bad[k], v)
    X_bad = X.copy()
    X_bad[7, 0] = np.nan
    with pytest.raises(NumericalError, match=r"X contains 1 NaN/Inf value\(s\); the first at index \(7, 0\)"):
        fit(model, X_bad, y, loss="mse", epochs=1)
    for k, v in first_bad.items():
        np.testing.assert_array_equal(v, params(model)[k])


def test_divergence_restores_the_optimizer_state_too():
    """Momentum slots and step count return to the start of the bad epoch with the weights."""
    X, y, _, _ = house_price()
    starts = {}

    class Snapshot:
        def on_epoch_begin(self, epoch, model):
            starts[epoch + 1] = (params(model), opt.state_dict())
    model, opt = gpubp.Sequential([gpubp.Dense(1, 1)], seed=0), gpubp.SGD(lr=10.0, momentum=0.5)
    with np.errstate(all="ignore"), pytest.raises(NumericalError, match="loss became inf") as err:
        fit(model, X, y, loss="mse", optimizer=opt, epochs=100, callbacks=[Snapshot()])
    bad_epoch = int(str(err.value).split("in epoch ")[1].split(";")[0])
    assert bad_epoch > 1
    good_params, good_opt = starts[bad_epoch]
    for k, v in good_params.items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(v, params(model)[k])
    assert opt.t == good_opt["t"] > 0
    for name, slots in good_opt["state"].items():
        for slot, a in slots.items():
            np.testing.assert_array_equal(a, opt.state_dict()["state"][name][slot])


def test_ctrl_c_returns_history_so_far():
    X, y, _, _ = spirals(n=100)
    history = fit(mlp(), X, y, epochs=10, callbacks=[InterruptAt(2)])
    assert history.interrupted and history.epochs == 2 and history.stopped is None


def test_callbacks_see_gradients_before_the_step():
    seen = []

    class Recorder:
        def on_batch_end(self, step, model, loss_value):
            seen.append((step, float(np.abs(model.backend.to_numpy(model.gradients()["0.W"])).sum()),
                         float(loss_value)))

        def on_epoch_end(self, epoch, model, history):
            seen.append(("end", epoch, history.epochs))
    X, y, _, _ = spirals(n=64)
    fit(mlp(), X, y, epochs=2, batch_size=16, callbacks=[Recorder()])
    ends = [s for s in seen if s[0] == "end"]
    assert ends == [("end", 0, 1), ("end", 1, 2)]
    steps = [s for s in seen if s[0] != "end"]
    assert len(steps) == 2 * math.ceil(len(X) / 16) and all(g > 0 and l > 0 for _, g, l in steps)


def test_early_stopping():
    X, y, Xv, yv = spirals(n=200)
    h = fit(mlp(), X, y, epochs=500, lr=1e-6, optimizer="sgd", tol=1e-3)
    assert h.epochs < 500 and h.stopped.startswith("converged")
    h = fit(mlp(), X, y, epochs=500, lr=0.05, validation_data=(Xv, yv), patience=3)
    assert h.epochs < 500 and "no improvement for 3 epochs" in h.stopped


def test_bad_data_is_refused():
    with pytest.raises(ShapeError, match="100 samples but y has 99"):
        fit(mlp(), np.zeros((100, 2)), np.zeros(99, dtype=int))
    with pytest.raises(ShapeError, match="must hold samples along its first axis"):
        fit(mlp(), np.zeros(100), np.zeros(100, dtype=int))
    with pytest.raises(ShapeError, match=r"Dense input: expected a 2-d array, got shape \(100, 2, 1\)"):
        fit(mlp(), np.zeros((100, 2, 1)), np.zeros(100, dtype=int))  # images into an MLP


def test_lr_schedule_and_lr_override():
    X, y, _, _ = spirals(n=64)
    h = fit(mlp(), X, y, epochs=6, lr=0.1, optimizer="sgd", schedule="step")
    assert h.lr == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    opt = gpubp.SGD(lr=0.5)
    assert fit(mlp(), X, y, epochs=1, optimizer=opt, lr=0.02).lr == [0.02] and opt.lr == 0.02


def test_progress_only_when_asked_or_on_a_terminal(monkeypatch):
    X, y, _, _ = spirals(n=64)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    fit(mlp(), X, y, epochs=3)  # stderr is not a terminal: quiet
    assert err.getvalue() == ""
    fit(mlp(), X, y, epochs=3, progress=True)
    text = err.getvalue()
    assert "epoch 3/3" in text and "samples/s" in text and text.endswith("\n")


def test_history_round_trips_through_a_dict():
    X, y, Xv, yv = spirals(n=64)
    h = fit(mlp(), X, y, epochs=2, validation_data=(Xv, yv))
    assert gpubp.history.History.from_dict(h.as_dict()) == h
    assert h.metric_name == "accuracy" and len(h.val_metric) == 2 and 0 <= h.metric[-1] <= 1


def test_resume_refuses_another_architecture(tmp_path):
    X, y, _, _ = spirals(n=64)
    fit(mlp(), X, y, epochs=1, checkpoint_path=tmp_path / "c.npz", checkpoint_every=1)
    with pytest.raises(CheckpointError, match="different architecture"):
        fit(mlp(hidden=8), X, y, epochs=2, resume_from=tmp_path / "c.npz")
    model = mlp()
    gpubp.checkpoint.save(tmp_path / "plain.npz", model)
    with pytest.raises(gpubp.checkpoint.CheckpointError, match="no training state"):
        fit(model, X, y, epochs=2, resume_from=tmp_path / "plain.npz")


def test_every_device_sees_the_same_batches_as_the_cpu(device):
    """float64: same seed, same batches -> the same weights as a CPU run, up to rounding."""
    X, y, _, _ = spirals(n=200)
    cpu, other = mlp("cpu", "float64"), mlp(device, "float64")
    fit(cpu, X, y, epochs=3, seed=4)
    fit(other, X, y, epochs=3, seed=4)
    for k, v in params(cpu).items():
        np.testing.assert_allclose(params(other)[k], v, rtol=1e-9, atol=1e-12)


def test_labels_are_checked_once_per_fit_not_per_batch(monkeypatch):
    """On a GPU each label check is a device sync: fit checks all labels once (train and
    validation), then the batches trust them."""
    calls = []
    real = gpubp.SoftmaxCrossEntropy.check_targets
    monkeypatch.setattr(gpubp.SoftmaxCrossEntropy, "check_targets",
                        lambda self, Z, T: calls.append(T.shape) or real(self, Z, T))
    X, y, Xv, yv = spirals(n=200)
    fit(mlp(), X, y, epochs=3, batch_size=16, validation_data=(Xv, yv), progress=False)
    assert calls == [y.shape, yv.shape]


def test_a_bad_label_anywhere_is_refused_before_training():
    X, y, _, _ = spirals(n=200)
    y = y.copy()
    y[-1] = 7  # in the last batch only
    model = mlp()
    before = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(gpubp.InvalidValueError, match=r"labels must be in \[0, 1\].*\[0, 7\]"):
        fit(model, X, y, epochs=2, batch_size=16, progress=False)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, before[k])
