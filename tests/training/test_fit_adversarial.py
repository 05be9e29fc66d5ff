"""fit, evaluate, predict and the step plan given what a careless or hostile user gives them:
each refusal a gpubp error naming what was wrong, before the work it would spoil."""
import types

import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError, ShapeError, StateError
from gpubp.plan import StepPlan, plan_problem
from gpubp.train import evaluate, fit


def net(n_in=2, n_out=2, seed=0):
    return gpubp.Sequential([gpubp.Dense(n_in, 8), gpubp.Tanh(), gpubp.Dense(8, n_out)], seed=seed)


rng = np.random.default_rng(0)
X0, Y0 = rng.normal(size=(16, 2)), rng.integers(0, 2, 16)


def host(model):
    return {k: np.array(model.backend.to_numpy(v)) for k, v in model.parameters().items()}


@pytest.mark.parametrize("call", [
    lambda m: fit(m, X0, Y0[:, None], epochs=1, progress=False),  # labels as a column: read as 1-class rows
    lambda m: fit(m, X0, np.zeros(16, int), epochs=1, progress=False),
    lambda m: evaluate(m, X0, np.zeros(16, int)),
])
def test_softmax_over_a_single_output_is_refused(call):
    """Was: accepted, the loss 0 at every step and nothing learned, silently."""
    model = net(n_out=1)
    before = host(model)
    with pytest.raises(ShapeError, match="softmax_cross_entropy needs one output per class .* gives 1 per sample"):
        call(model)
    assert all(np.array_equal(v, before[k]) for k, v in host(model).items())


@pytest.mark.parametrize("plan", [True, False])
def test_a_callback_removing_every_layer_stops_fit_by_name(plan):
    """Was: IndexError from inside the step plan, or (plan=False) the data trained as its own output."""
    class Clear:
        def on_epoch_begin(self, epoch, model):
            if epoch == 1:
                model.layers.clear()
    with pytest.raises(StateError, match="no layers left"):
        fit(net(), X0, Y0, epochs=2, plan=plan, callbacks=Clear(), progress=False)


def test_a_step_plan_of_a_model_without_layers_is_refused():
    model = net()
    model.layers.clear()
    assert plan_problem(model) == "the model has no layers"
    with pytest.raises(InvalidValueError, match="the model has no layers"):  # was: IndexError
        StepPlan(model, "mse", "sgd", (4, 2))


def bn_net(dropout_first=False):
    layers = [gpubp.Dense(2, 8), gpubp.BatchNorm(8), gpubp.ReLU(), gpubp.Dense(8, 2)]
    layers.insert(1, gpubp.Dropout(0.5)) if dropout_first else None
    return gpubp.Sequential(layers, seed=0)


@pytest.mark.parametrize("n, batch_size, words", [(9, 4, "at the end of every epoch"), (16, 1, "at every step")])
def test_a_one_sample_batch_batchnorm_refuses_is_named_before_training(n, batch_size, words):
    """Was: a whole epoch trained, then BatchNorm's ShapeError at the last batch, the model left mid-epoch."""
    model = bn_net(dropout_first=True)
    before, buffers = host(model), {k: np.array(v) for k, v in model.buffers().items()}
    seen = []
    with pytest.raises(ShapeError, match=rf"{n} sample\(s\) in batches of {batch_size} make a batch of one sample "
                                         rf"{words}.*BatchNorm.*choose another batch_size"):
        fit(model, X0[:n], Y0[:n], batch_size=batch_size, epochs=2, progress=False,
            callbacks=type("C", (), {"on_epoch_begin": lambda self, e, m: seen.append(e)})())
    assert seen == [] and all(np.array_equal(v, before[k]) for k, v in host(model).items())
    assert all(np.array_equal(np.array(v), buffers[k]) for k, v in model.buffers().items())  # Dropout's step too


def test_the_one_sample_probe_leaves_no_trace():
    """A model that takes a one-sample batch trains exactly as if the probe had not run: Dropout's
    step counts only the steps (3 per epoch), BatchNorm's statistics only the training batches."""
    model = gpubp.Sequential([gpubp.Dense(2, 8), gpubp.Dropout(0.5), gpubp.Dense(8, 2)], seed=0)
    fit(model, X0[:9], Y0[:9], batch_size=4, epochs=2, progress=False)
    assert model.layers[1].step == 6


def test_predict_names_the_array_a_model_refuses():
    cnn = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.Flatten(), gpubp.Dense(2 * 6 * 6, 3)], seed=0)
    with pytest.raises(ShapeError, match=r"predict: X of shape \(4, 64\) does not fit the model: Conv2D"):
        gpubp.predict(cnn, np.zeros((4, 64)))  # was: the layer's message alone, about its own input


class InfGradientsIn:
    """Turns the gradients of every step of epoch ``epoch`` (0-based) into Inf."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, model):
        self.now = epoch

    def on_batch_end(self, step, model, value):
        if self.now == self.epoch:
            model.gradients()["0.W"][...] = np.inf


def test_a_numerical_error_with_restore_best_puts_the_best_epoch_back():
    """Was: the model held the start of the failing epoch, not the best one restore_best promised."""
    X, y = rng.normal(size=(64, 2)), rng.integers(0, 2, 64)
    best = net()
    h = fit(best, X, y, epochs=3, lr=0.05, restore_best=True, progress=False)  # the same first three epochs
    model = net()
    with pytest.raises(gpubp.NumericalError, match=f"restore_best then put back the best epoch, {h.best_epoch}") as err:
        fit(model, X, y, epochs=5, lr=0.05, restore_best=True, progress=False, callbacks=InfGradientsIn(3))
    assert all(np.array_equal(v, host(best)[k]) for k, v in host(model).items())
    assert err.value.history.loss[:3] == h.loss and err.value.history.best_epoch == h.best_epoch  # was: lost


def test_a_diverging_run_is_one_numerical_error_and_no_numpy_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: RuntimeWarnings from NumPy's update kernels before the error
        with pytest.raises(gpubp.NumericalError, match="NaN/Inf in epoch 1"):
            fit(net(), X0, Y0, epochs=2, progress=False, callbacks=InfGradientsIn(0))


@pytest.mark.parametrize("X, y, idx, error, words", [
    (np.zeros((6, 1), np.float32), np.zeros(6, np.int64), np.arange(4), ShapeError,
     r"X has shape \(6, 1\), the plan was made for samples of shape \(2,\)"),  # was: ValueError from np.take
    (np.zeros((6, 2), np.float32), np.zeros(6, np.int32), np.arange(4), gpubp.DTypeError,
     "y has dtype int32, the plan was made for int64"),  # was: TypeError from np.take
    (np.zeros((6, 2), np.float32), np.zeros(6, np.int64), np.arange(2), ShapeError,
     r"idx must be 4 integer indices .* got ndarray int64 \(2,\)"),  # was: ValueError from np.take
    (np.zeros((6, 2), np.float32), np.zeros(6, np.int64), np.arange(4.0), ShapeError,
     r"idx must be 4 integer indices .* got ndarray float64 \(4,\)"),  # was: TypeError (casting)
])
def test_a_plan_names_what_it_cannot_gather(X, y, idx, error, words):
    plan = StepPlan(net(), "softmax_cross_entropy", "sgd", (4, 2), (4,), np.int64)
    with pytest.raises(error, match=words):
        plan.gather(X, y, idx)


@pytest.mark.parametrize("scale", [float("nan"), "2", 0, -1.0])
def test_a_plan_refuses_a_gradient_scale_that_is_no_positive_number(scale):
    """Was: NaN (or a negated, or zero) gradient in every parameter, silently."""
    model = net()
    plan = StepPlan(model, "softmax_cross_entropy", "sgd", (4, 2), (4,), np.int64)
    X, y = np.zeros((4, 2), np.float32), np.zeros(4, np.int64)
    with pytest.raises(InvalidValueError, match=f"StepPlan.run: scale must be a finite number > 0, got {scale!r}"):
        plan.run(X, y, scale)


class EpochEnd:
    def on_epoch_end(self, epoch, model, history):
        pass


class NoArguments:
    def on_epoch_end(self):
        pass


@pytest.mark.parametrize("callbacks, words", [
    (NoArguments(), r"callbacks.on_epoch_end must be a method taking \(epoch, model, history\), got <bound method"),
    (EpochEnd, r"callbacks.on_epoch_end must be .* \(a class: pass an instance of it\)"),
    ([EpochEnd(), type("C", (), {"on_epoch_begin": lambda self, e, m: None, "on_batch_end": 5})()],
     r"callbacks\[1\].on_batch_end must be a method taking \(step, model, loss_value\), got 5"),
])
def test_a_hook_fit_could_not_call_is_refused_before_training(callbacks, words):
    """Was: a TypeError at the end of the first epoch (or its first step), after the training it spoilt."""
    model = net()
    before = host(model)
    with pytest.raises(InvalidValueError, match=words):
        fit(model, X0, Y0, epochs=2, callbacks=callbacks, progress=False)
    assert all(np.array_equal(v, before[k]) for k, v in host(model).items())


def test_hooks_with_extra_or_variable_arguments_are_called():
    seen = []
    class Flexible:
        def on_batch_end(self, *args):
            seen.append(len(args))
        def on_epoch_end(self, epoch, model, history, note="kept"):
            seen.append(note)
    fit(net(), X0, Y0, epochs=1, batch_size=8, callbacks=Flexible(), progress=False)
    assert seen == [3, 3, "kept"]


class ForeignDtype:
    """An array-like whose ``dtype`` is not NumPy's (a torch tensor, a pandas extension column)."""
    dtype, shape = "float64", X0.shape

    def __array__(self, dtype=None, copy=None):
        return X0 if dtype is None else X0.astype(dtype)


def test_array_likes_with_a_foreign_dtype_train_as_the_array_would():
    """Was: AttributeError ('str' object has no attribute 'kind'), also for torch tensors."""
    expected = fit(net(), X0, Y0, epochs=2, progress=False).loss
    assert fit(net(), ForeignDtype(), Y0, epochs=2, progress=False).loss == expected
    np.testing.assert_array_equal(gpubp.predict(net(), ForeignDtype()), gpubp.predict(net(), X0))


def test_ragged_labels_are_named():
    with pytest.raises(ShapeError, match="fit: y is not a rectangular array"):  # was: ValueError from np.ndim
        fit(net(), X0, [[0], [1, 0]] * 8, epochs=1, progress=False)


@pytest.mark.parametrize("which", ["X", "y"])
def test_masked_values_are_refused_not_read_unmasked(which):
    """Was: the values under the mask trained on, silently."""
    X, y = np.ma.masked_array(X0, mask=X0 > 1), np.ma.masked_array(Y0, mask=Y0 > 0)
    n = int(np.ma.count_masked(X if which == "X" else y))
    args = (X, Y0) if which == "X" else (X0, y)
    with pytest.raises(InvalidValueError, match=f"fit: {which}: {n} masked .*fill them"):
        fit(net(), *args, epochs=1, progress=False)
    assert fit(net(), np.ma.masked_array(X0), Y0, epochs=1, progress=False).epochs == 1  # nothing masked: fine


@pytest.mark.parametrize("comm", [5, "mpi", True])
def test_a_comm_that_is_no_communicator_is_refused_by_name(comm):
    with pytest.raises(InvalidValueError, match=f"fit: comm must be a communicator .* got {comm!r}"):
        fit(net(), X0, Y0, epochs=1, comm=comm, progress=False)  # was: AttributeError 'int' has no 'guard'


@pytest.mark.parametrize("args, words", [
    (("5", 0, 0), "epoch_order: n must be a whole number >= 0, got '5'"),  # was: AxisError
    ((-1, 0, 0), "epoch_order: n must be .* got -1"),  # was: an empty order, silently
    ((5, 1.5, 0), "epoch_order: seed must be .* got 1.5"),  # was: TypeError
    ((5, None, 0), "epoch_order: seed must be .* got None"),
    ((5, 0, -2), "epoch_order: epoch must be .* got -2"),  # was: ValueError from NumPy's SeedSequence
    ((5, 0, 0, "no"), "epoch_order: shuffle must be True or False, got 'no'"),  # was: read as True
])
def test_epoch_order_checks_its_arguments(args, words):
    from gpubp.train import epoch_order
    with pytest.raises(InvalidValueError, match=words):
        epoch_order(*args)


@pytest.mark.parametrize("plan", [True, False])
def test_outputs_the_loss_cannot_take_are_named_before_training(plan):
    """Was: ValueError 'too many values to unpack' from inside the step plan (plan=True), or the
    loss's own message at the first step (plan=False), for a softmax over images."""
    conv = gpubp.Sequential([gpubp.Conv2D(1, 2, 3)], seed=0)
    with pytest.raises(ShapeError, match=r"fit: the model's output, \(2, 6, 6\) per sample, and y do not fit "
                                         r"SoftmaxCrossEntropy: .*expected a 2-d array"):
        fit(conv, np.zeros((8, 1, 8, 8)), np.arange(8) % 2, epochs=1, plan=plan, progress=False)


def test_graph_problem_names_what_is_not_a_model():
    from gpubp.plan import graph_problem
    assert graph_problem([1, 2]) == "a list is not a gpubp Sequential"  # was: AttributeError
    assert graph_problem(net()) is None


class PoisonAtEpochEnd:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, model, history):
        if epoch == self.epoch:
            model.parameters()["0.W"][...] = np.nan


@pytest.mark.parametrize("kwargs", [{}, dict(restore_best=True)])
def test_nan_written_by_on_epoch_end_never_leaves_fit(kwargs):
    """Was: after the last epoch the NaN model was returned silently (and restore_best could keep a
    NaN 'best' epoch); now the epoch's start comes back (with restore_best the best finite epoch)."""
    X, y = rng.normal(size=(64, 2)), rng.integers(0, 2, 64)
    first = net()
    fit(first, X, y, epochs=1, lr=0.05, progress=False)
    model = net()
    with pytest.raises(gpubp.NumericalError, match=r"an on_epoch_end callback wrote NaN/Inf into the "
                                                   r"model in epoch 2 \(parameter 0.W\)"):
        fit(model, X, y, epochs=2, lr=0.05, progress=False, callbacks=PoisonAtEpochEnd(1), **kwargs)
    assert all(np.array_equal(v, host(first)[k]) for k, v in host(model).items())  # epoch 1's end, finite


def test_labels_given_as_a_column_are_told_the_way_out():
    with pytest.raises(ShapeError, match=r"y has shape \(16, 1\) .* or be class labels of shape \(16,\): y.ravel\(\)"):
        fit(net(), X0, Y0[:, None], epochs=1, progress=False)


def test_a_checkpoint_path_holding_someone_elses_file_is_refused_before_training(tmp_path):
    """Was: refused by the writer at the first checkpoint, after the epochs before it were trained."""
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    seen = []
    with pytest.raises(InvalidValueError, match="fit: checkpoint path: .*data.csv is there and is not a gpubp "
                                                "checkpoint, so it is not replaced"):
        fit(net(), X0, Y0, epochs=3, checkpoint_path=data, checkpoint_every=2, progress=False,
            callbacks=type("C", (), {"on_epoch_begin": lambda self, e, m: seen.append(e)})())
    assert seen == [] and data.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("call", [lambda m: gpubp.train.predict(m, X0), lambda m: evaluate(m, X0, Y0)])
def test_predict_and_evaluate_refuse_a_model_holding_nan(call):
    """Was: an array of NaN predictions (a loss of NaN), silently."""
    from gpubp.errors import NumericalError
    model = net()
    W = model.parameters()["2.W"]
    W[0, 0] = np.nan
    with pytest.raises(NumericalError, match=r"holds NaN/Inf \(parameter 2.W\)"):
        call(model)


def test_restore_best_keeps_the_old_best_whole_when_a_snapshot_is_interrupted(monkeypatch):
    """Was: the new best epoch and value were recorded before its snapshot was taken, so a Ctrl-C
    while copying left the keeper naming epoch 2 with epoch 1's weights."""
    from gpubp.train import state
    model, opt = net(), gpubp.SGD(0.1)
    keeper = state._BestKeeper(opt)
    history = types.SimpleNamespace(watched=lambda: [1.0])
    keeper.on_epoch_end(0, model, history)
    kept = keeper.state

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(state, "_snapshot", interrupted)
    history.watched = lambda: [0.5]
    with pytest.raises(KeyboardInterrupt):
        keeper.on_epoch_end(1, model, history)
    assert (keeper.epoch, keeper.value, keeper.state) == (0, 1.0, kept)


@pytest.mark.parametrize("call", [lambda m, y: fit(m, X0, y, loss="bce", epochs=1, progress=False),
                                  lambda m, y: evaluate(m, X0, y, loss="bce")])
def test_bce_after_a_final_sigmoid_layer_is_warned(call):
    """Was: silent; BCE takes logits, so the sigmoid was applied twice and the model learned little."""
    model = gpubp.Sequential([gpubp.Dense(2, 4), gpubp.Tanh(), gpubp.Dense(4, 1), gpubp.Sigmoid()], seed=0)
    y = (X0[:, :1] > 0).astype(float)
    with pytest.warns(gpubp.GpubpWarning, match="ends in a Sigmoid layer and bce applies the sigmoid itself"):
        call(model, y)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call(gpubp.Sequential(model.layers[:-1], seed=None), y)  # logits: no warning


def test_resuming_a_checkpoint_restore_best_rewound_says_so(tmp_path):
    """A restore_best run's last checkpoint holds its best epoch's weights under the count of all its
    epochs; continuing it went on from those silently. (Random labels: the validation loss is least
    after epoch 1.)"""
    r = np.random.default_rng(0)
    X, y, Xv, yv = r.normal(size=(64, 2)), r.integers(0, 2, 64), r.normal(size=(32, 2)), r.integers(0, 2, 32)
    path = tmp_path / "c.npz"
    history = fit(net(), X, y, epochs=6, lr=0.05, restore_best=True, validation_data=(Xv, yv), checkpoint_path=path,
                  checkpoint_every=1, progress=False)
    assert history.best_epoch < 6
    with pytest.warns(gpubp.GpubpWarning, match=f"holds epoch {history.best_epoch}'s weights, the best one"):
        fit(net(), X, y, epochs=7, resume_from=path, validation_data=(Xv, yv), progress=False)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the check itself must not overflow a cast
@pytest.mark.parametrize("how", ["lr", "schedule"])
def test_an_lr_beyond_the_models_dtype_is_refused_before_its_epoch(how):
    """Before: lr=1e39 on a float32 model (inf where the update kernels read it) trained an epoch,
    then stopped on NaN parameters; now refused before the epoch that would use it, the model kept."""
    X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 3
    model = gpubp.mlp(4, [8], 3, seed=0)
    start = {k: v.copy() for k, v in model.parameters().items()}
    kw = {"lr": 1e39} if how == "lr" else {"schedule": lambda e: 1e39, "epochs": 2}
    with pytest.raises(gpubp.InvalidValueError, match=r"lr=1e\+39.* beyond float32's largest number"):
        gpubp.fit(model, X, y, progress=False, **kw)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, start[k])
    history = gpubp.fit(gpubp.mlp(4, [8], 3, seed=0, dtype="float64"), X, y, lr=1e39, epochs=1, progress=False)
    assert len(history.loss) == 1  # a float64 model holds that rate
