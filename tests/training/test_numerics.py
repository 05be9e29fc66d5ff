"""Numerical edge cases through the public API: extreme but legal values give either the right
numbers (checked against NumPy float64) or a gpubp error naming the cause, before long work;
never NaN/Inf passed off as a result, never a raw NumPy RuntimeWarning."""
import math
import warnings

import numpy as np
import pytest

import gpubp
from gpubp.errors import NumericalError
from gpubp.train import evaluate, fit, predict

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))


def regressor(dtype="float32", seed=0):
    backend = gpubp.get_backend("cpu", dtype=dtype)
    return gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Tanh(), gpubp.Dense(4, 1)], seed=seed, backend=backend)


def host(model):
    return {k: np.array(model.backend.to_numpy(v)) for k, v in model.parameters().items()}


def reference_mse(model, X, y):
    """The MSE of ``model`` (Dense -> Tanh -> Dense) on (X, y) in NumPy float64."""
    p = {k: v.astype(np.float64) for k, v in host(model).items()}
    (W1, b1), (W2, b2) = [(p[k], p[k.replace("W", "b")]) for k in sorted(p) if k.endswith("W")]
    return float(np.mean((np.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2))


@pytest.fixture
def no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


BIG_Y = rng.normal(size=(40, 1)) * 1e20  # within float32's range, its square is not


def test_evaluate_refuses_a_loss_overflowing_float32_and_float64_gives_the_number(no_runtime_warning):
    with pytest.raises(NumericalError, match=r"MSE loss .* is inf .* overflows float32 \(\|y\| up to"):
        evaluate(regressor(), X, BIG_Y, loss="mse")
    model = regressor("float64")
    assert evaluate(model, X, BIG_Y, loss="mse")["loss"] == pytest.approx(reference_mse(model, X, BIG_Y), rel=1e-12)


def test_predict_and_evaluate_refuse_outputs_overflowing_in_the_layers(no_runtime_warning):
    model = gpubp.Sequential([gpubp.Dense(2, 1)], seed=0)
    model.layers[0].params["W"][...] = 3e38
    Xo = np.array([[0.5, 0.25], [1e38, 1e38], [1.0, 1.0]])
    with pytest.raises(NumericalError, match=r"predict: the model's output for sample 1 of X is inf \(2 sample"):
        predict(model, Xo)
    with pytest.raises(NumericalError, match=r"evaluate: the model's output for sample 1 of X is inf"):
        evaluate(model, Xo, np.zeros((3, 1)), loss="mse")


def test_fit_refuses_an_overflowing_loss_at_its_first_step_not_after_an_epoch(no_runtime_warning):
    steps = []

    class Count:
        def on_batch_end(self, step, model, loss_value):
            steps.append(step)

    for plan in (True, False):
        steps.clear()
        model = regressor()
        before = host(model)
        with pytest.raises(NumericalError, match="overflows float32.*before any update, so not from the learning"):
            fit(model, X, BIG_Y, loss="mse", epochs=1000, batch_size=4, plan=plan, progress=False,
                callbacks=[Count()])
        assert steps == [], "no step ran to its end"
        assert all(np.array_equal(before[k], v) for k, v in host(model).items())


def test_fit_refuses_validation_data_whose_loss_overflows(no_runtime_warning):
    y_val = np.zeros((40, 1))
    y_val[7] = 1e25  # the first sample (probed before training) is fine
    with pytest.raises(NumericalError, match=r"fit: the MSE loss over validation_data X and validation_data y is inf"):
        fit(regressor(), X, np.zeros((40, 1)), loss="mse", epochs=2, validation_data=(X, y_val), progress=False)


def test_scaler_maps_a_constant_column_to_zero_and_keeps_new_values_finite(no_runtime_warning):
    from gpubp.datasets import Scaler
    train = np.column_stack([np.full(10, 0.1), np.arange(10.0)])  # ten 0.1s sum to 0.9999999999999999
    scaler = Scaler.fit(train)
    assert scaler.mean[0] == 0.1 and scaler.std[0] == 1.0
    assert np.array_equal(scaler(train)[:, 0], np.zeros(10))
    assert scaler(np.array([[0.2, 4.5]]))[0] == pytest.approx([0.1, 0.0])  # not 7.2e15
    reference = (train[:, 1] - train[:, 1].mean()) / train[:, 1].std()  # a varying column as before, bit for bit
    assert np.array_equal(scaler(train)[:, 1], reference)


@pytest.mark.parametrize("column", [[1e308, 1.5e308, -1.7e308], [1e-320, 2e-320, 4e-320], [3e200, -3e200, 1e199]])
def test_scaler_of_extreme_columns_is_right_without_overflow_or_underflow(column, no_runtime_warning):
    from gpubp.datasets import Scaler
    X = np.array(column)[:, None]
    unit = np.abs(X).max()  # the float64 reference, computed in units of the largest value
    mean, std = (X / unit).mean() * unit, (X / unit).std() * unit
    scaler = Scaler.fit(X)
    assert scaler.mean[0] == pytest.approx(mean, rel=1e-3) and scaler.std[0] == pytest.approx(std, rel=1e-3)
    assert scaler(X)[:, 0] == pytest.approx(((X / unit - mean / unit) / (std / unit))[:, 0], rel=1e-2)
    assert np.allclose(scaler.inverse(scaler(X)), X, rtol=1e-2, atol=0)


def test_scaler_refuses_values_scaled_beyond_float64(no_runtime_warning):
    from gpubp.datasets import Scaler
    scaler = Scaler.fit(np.array([[-1e308], [1e308]]))
    with pytest.raises(NumericalError, match=r"Scaler: X\[1, 0\] = 1e\+300 unscaled is beyond float64's range"):
        scaler.inverse(np.array([[1e-300], [1e300]]))  # the second: 1e300 * 1e308


def _fit_copying_at(path, epoch_copied, **kw):
    """An uninterrupted fit that checkpoints every epoch; the checkpoint as it was after ``epoch_copied``
    epochs is kept beside ``path``, to resume from."""
    import shutil

    class Copy:
        def on_epoch_begin(self, epoch, model):
            if epoch == epoch_copied:
                shutil.copy(path, f"{path}.{epoch_copied}.npz")

    model = classifier()
    history = fit(model, XC, YC, checkpoint_path=path, checkpoint_every=1, callbacks=[Copy()], **kw)
    return model, history, f"{path}.{epoch_copied}.npz"


XC, YC = X, X[:, :1] * 0.5 + X[:, 1:2] ** 2


def classifier():  # a regressor with Dropout: restore_best judges the validation loss
    return gpubp.Sequential([gpubp.Dense(3, 8), gpubp.Tanh(), gpubp.Dropout(0.2), gpubp.Dense(8, 1)], seed=3)


def rates(best):  # small steps until epoch ``best``, then steps too big: the validation loss gets worse
    return lambda epoch: 0.05 if epoch < best else 0.5


@pytest.mark.parametrize("plan", [True, False])
def test_resumed_restore_best_puts_back_the_saved_runs_best_epoch_as_an_uninterrupted_run(tmp_path, plan):
    kw = dict(loss="mse", optimizer="sgd", epochs=7, batch_size=6, restore_best=True, validation_data=(XC, YC),
              schedule=rates(3), plan=plan, progress=False)
    whole, history, saved = _fit_copying_at(str(tmp_path / "run.npz"), 3, **kw)
    assert history.best_epoch == 3 and min(history.val_loss) == history.val_loss[2]
    resumed = classifier()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = fit(resumed, XC, YC, resume_from=saved, **kw)
    assert again.best_epoch == 3 and again.val_loss == history.val_loss
    assert all(np.array_equal(v, host(resumed)[k]) for k, v in host(whole).items())


def test_resumed_restore_best_warns_when_the_checkpoint_lacks_the_best_epoch(tmp_path):
    kw = dict(loss="mse", optimizer="sgd", epochs=6, batch_size=6, restore_best=True, validation_data=(XC, YC),
              schedule=rates(2), progress=False)
    _, history, saved = _fit_copying_at(str(tmp_path / "run.npz"), 3, **kw)
    assert history.best_epoch == 2
    with pytest.warns(gpubp.GpubpWarning, match=r"the best epoch so far, 2, is not in resume_from=.* \(it holds "
                                               r"epoch 3\), so it cannot be put back"):
        again = fit(classifier(), XC, YC, resume_from=saved, **kw)
    assert again.best_epoch is None  # no later epoch beat epoch 2: the run ends on its last epoch, as warned


def test_cosine_schedule_of_the_largest_rates_stays_finite_and_exact():
    from fractions import Fraction
    from gpubp.schedules import Cosine
    for lr, min_lr in ((1.7e308, 0.0), (1e308, 1e307), (0.1, 0.001)):
        schedule = Cosine(lr, 4, min_lr)
        for epoch in range(6):
            cos = (1 + np.cos(np.pi * min(epoch, 4) / 4)) / 2  # the reference in exact arithmetic from here
            exact = Fraction(min_lr) + (Fraction(lr) - Fraction(min_lr)) * Fraction(float(cos))
            assert schedule(epoch) == pytest.approx(float(exact), rel=1e-15)
    history = fit(regressor(), X, np.zeros((40, 1)), loss="mse", optimizer="sgd", lr=1e-30, epochs=2,
                  schedule="cosine", progress=False)
    assert history.lr == [1e-30, 0.5e-30]


def test_loading_a_float64_checkpoint_whose_optimizer_slots_overflow_float32_is_a_checkpoint_error(tmp_path):
    from gpubp.errors import CheckpointError
    model = regressor("float64")
    optimizer = gpubp.Adam(lr=1e-3)
    fit(model, X, np.full((40, 1), 1e30), loss="mse", optimizer=optimizer, epochs=1, progress=False)
    assert max(float(np.abs(a).max()) for st in optimizer.state.values() for a in st.values()) > 3.4e38
    path = _save(tmp_path, model, optimizer)
    with pytest.raises(CheckpointError, match=r"run\.npz: the saved optimizer's slots: .*beyond float32's range.*"
                                              r"cannot be used in float32"):
        gpubp.checkpoint.load(path, "cpu", dtype="float32")
    assert gpubp.checkpoint.load(path, "cpu").optimizer.t == optimizer.t  # in float64 it loads


def _save(folder, model, optimizer):
    return gpubp.checkpoint.save(str(folder / "run.npz"), model, optimizer)


@pytest.mark.parametrize("make", [lambda: gpubp.Adam(lr=0.01, eps=1e-50), lambda: gpubp.RMSprop(lr=0.01, eps=1e-50)])
def test_an_eps_that_rounds_to_zero_in_float32_is_refused_naming_eps(make):
    """Was: a zero gradient's step was 0/0 = NaN, reported an epoch later as 'lower the learning rate'."""
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.ReLU(), gpubp.Dense(4, 2)], seed=0)
    model.layers[0].params["W"][:, 0] = 0
    model.layers[0].params["b"][0] = -100  # a dead unit: its gradients are exactly 0
    with pytest.raises(gpubp.InvalidValueError, match="eps"):
        fit(model, X, (X[:, 0] > 0).astype(np.int64), optimizer=make(), epochs=1, progress=False)


class LossValues:
    """Each step's loss value (the batch mean, in the model's dtype), as fit hands it to callbacks."""

    def __init__(self):
        self.values = []

    def on_batch_end(self, step, model, loss_value):
        self.values.append(float(loss_value))


@pytest.mark.parametrize("plan", [True, False], ids=["planned", "eager"])
def test_a_long_float32_epochs_loss_is_summed_in_float64(plan):
    n, batch = 20_000, 3  # 6667 steps, the last of 2 samples
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(n, 3)), 100 + 30 * rng.normal(size=(n, 1))
    seen = LossValues()
    history = fit(regressor(), X, y, loss="mse", optimizer=gpubp.SGD(lr=1e-4), epochs=1, batch_size=batch,
                  shuffle=False, callbacks=seen, plan=plan, progress=False)
    sizes = [batch] * (n // batch) + [n % batch]
    assert len(seen.values) == len(sizes)
    want = math.fsum(v * b for v, b in zip(seen.values, sizes)) / n  # the batch means summed exactly
    assert history.loss[0] == pytest.approx(want, rel=1e-13)  # a float32 running sum was about 1e-6 off


def test_evaluate_over_many_float32_batches_matches_a_float64_reference():
    n = 20_000
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(n, 3)), 100 + 30 * rng.normal(size=(n, 1))
    model = regressor()
    got = evaluate(model, X, y, loss="mse", batch_size=1)["loss"]
    # each sample's float32 loss is within ~1e-7 of float64's; a float32 running sum drifts 1e-6 or more
    assert got == pytest.approx(reference_mse(model, X, y), rel=2e-7)
