"""A training step captured as one CUDA graph (gpubp/plan/graph.py): refused with one line
where it cannot run (NumPy, no plan, a communicator, observers), and on a GPU the same numbers
as the eager step run with the same GEMM, bit for bit, after every kind of step change."""
import contextlib
import functools
import types

import numpy as np
import pytest

import gpubp
from gpubp.backend.numpy_backend import NumpyBackend
from gpubp.errors import InvalidValueError, StateError
from gpubp.network import mlp
from gpubp.optim import SGD, Adam
from gpubp.plan import GraphedStep, StepPlan, graph_problem
from gpubp.train import fit

from helpers import needs_gpu


def small_problem(n=70, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 3, n)


@pytest.mark.parametrize("kwargs, words", [
    ({}, "cpu runs NumPy: a CUDA graph needs a CUDA device"),
    ({"plan": False}, "needs plan=True"),
    ({"comm": object()}, "not with comm"),
])
def test_fit_refuses_a_graph_it_cannot_run_before_training(kwargs, words):
    model = mlp(6, [8], 3, seed=0)
    before = {k: v.copy() for k, v in model.parameters().items()}
    with pytest.raises(InvalidValueError, match=f"fit: cuda_graph: .*{words}"):
        fit(model, *small_problem(), epochs=1, progress=False, cuda_graph=True, **kwargs)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(v, before[k])


def test_fit_refuses_a_cuda_graph_flag_that_is_not_a_bool():
    with pytest.raises(InvalidValueError, match="cuda_graph must be True or False"):
        fit(mlp(6, [8], 3), *small_problem(), epochs=1, progress=False, cuda_graph="yes")


def test_a_numpy_plan_cannot_be_captured():
    plan = StepPlan(mlp(6, [8], 3), "mse", SGD(), (16, 6))
    with pytest.raises(InvalidValueError, match="a CUDA graph needs a CUDA device"):
        GraphedStep(plan)


class Twice(gpubp.nn.Layer):
    """A user's layer: it takes out= (a plan binds it) but its class does not say it is capturable."""

    def forward(self, X, out=None):
        self.X = X
        return self.backend.xp.multiply(X, 2, out=out)

    def backward(self, dY, out=None):
        return self.backend.xp.multiply(dY, 2, out=out)


def test_a_layer_whose_class_is_not_capturable_is_refused_by_name():
    assert graph_problem(mlp(6, [8, 5], 3, "tanh")) is None
    cnn = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.ReLU(), gpubp.MaxPool2D(2), gpubp.Flatten(), gpubp.Dense(2, 3)])
    assert graph_problem(cnn) is None  # the image layers too (tests/training/test_graph_images.py)
    assert graph_problem(gpubp.Sequential([gpubp.Dense(6, 4), Twice(), gpubp.Dense(4, 3)])).startswith("layer 1 (Twice(")


def test_the_train_command_refuses_cuda_graph_on_the_cpu(capsys):
    from gpubp.cli import main
    assert main(["train", "--device", "cpu", "--cuda-graph", "--epochs", "1", "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gpubp train: error: fit: cuda_graph:") and "CUDA device" in err[-1]


class CaptureOnTheHost(NumpyBackend):
    """NumPy with CupyBackend's capture interface: a "graph" replays the launches ``fn`` made. A
    launch inside a capture of a registry kernel or product on arrays of a kind (shape, dtype,
    layout) not launched before fails, as a kernel first compiled and loaded inside a CUDA
    stream capture would (CuPy compiles per argument kind)."""

    class Stream:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def record(self):
            return None

        def wait_event(self, event):
            pass

        def synchronize(self):
            pass

    def __init__(self, dtype="float64"):
        super().__init__(dtype)
        self.seen, self.capturing, self.captures = set(), False, 0

    def _launched(self, *key):
        if self.capturing and key not in self.seen:
            raise AssertionError(f"{key[0]} on arrays of a new kind launched inside a capture: {key[1:]}")
        self.seen.add(key)

    @staticmethod
    def _kind(args):
        return tuple((a.shape, a.dtype.str, a.flags.c_contiguous) if isinstance(a, np.ndarray) else type(a).__name__
                     for a in args)

    def bind(self, kernel, *args):
        args = self._arguments(kernel, args)
        return functools.partial(self.run, kernel, args)

    def run(self, kernel, args):
        self._launched(kernel.name, self._kind(args))
        super().run(kernel, args)

    def matmul(self, a, b, out=None):
        self._launched("matmul", self._kind((a, b, out)))
        return np.matmul(a, b, out=out)

    def stream(self):
        return self.Stream()

    def current_stream(self):
        return self.Stream()

    @contextlib.contextmanager
    def graph_arithmetic(self):
        yield

    def capture(self, fn, stream):
        self.capturing, self.captures = True, self.captures + 1
        try:
            fn()
        finally:
            self.capturing = False
        return types.SimpleNamespace(launch=lambda stream: fn())


def test_a_graph_recorded_again_launches_nothing_new_inside_the_capture():
    """A parameter replaced by assignment gives up the flat buffer: the update runs per parameter, on
    arrays of other shapes, and the step records a new graph. Those kernels must be compiled before
    the capture starts (a warm-up step), as on first recording, never inside it."""
    backend = CaptureOnTheHost("float64")
    rng = np.random.default_rng(1)
    model = mlp(6, [8], 3, backend=backend, seed=0)
    graphed = GraphedStep(StepPlan(model, "mse", SGD(lr=0.1, momentum=0.9), (16, 6)))
    X, y = (backend.asarray(rng.normal(size=shape)) for shape in ((16, 6), (16, 3)))
    graphed.step(X, y)
    W2 = backend.asarray(rng.normal(size=(6, 8)))
    model.layers[0].params["W"] = W2
    before = W2.copy()
    graphed.step(X, y)
    assert backend.captures == 2 and not np.array_equal(W2, before)


# -- on a GPU ------------------------------------------------------------------------


def train_on_gpu(cuda_graph, optimizer, schedule=None, epochs=3):
    X, y = small_problem()
    model = mlp(6, [8, 5], 3, "sigmoid", backend="cuda:0", dtype="float64", seed=3)
    with model.backend.graph_arithmetic():  # the eager run computes as the graph does
        history = fit(model, X, y, optimizer=optimizer, epochs=epochs, batch_size=16, seed=1,
                      schedule=schedule, progress=False, cuda_graph=cuda_graph)
    return model, history


@needs_gpu
@pytest.mark.parametrize("make, schedule", [(lambda: SGD(lr=0.05), None), (lambda: SGD(lr=0.05, momentum=0.9), "step"),
                                            (lambda: Adam(lr=1e-2), "cosine")], ids=["sgd", "momentum-step", "adam-cosine"])
def test_a_graphed_fit_equals_the_eager_fit_bit_for_bit(make, schedule):
    # 70 samples in batches of 16: a short last batch, so two graphs; Adam's bias corrections
    # and the schedule's lr change every step and epoch: the scalars the graph reads anew
    eager, h_eager = train_on_gpu(False, make(), schedule)
    graphed, h_graphed = train_on_gpu(True, make(), schedule)
    assert h_graphed.loss == h_eager.loss
    for name, p in eager.parameters().items():
        np.testing.assert_array_equal(graphed.backend.to_numpy(graphed.parameters()[name]),
                                      eager.backend.to_numpy(p), err_msg=name)


@needs_gpu
def test_capturing_does_not_train_and_replaced_state_is_recaptured():
    model = mlp(6, [8], 3, backend="cuda:0", dtype="float64", seed=0)
    before = {k: model.backend.to_numpy(v) for k, v in model.parameters().items()}
    opt = Adam(lr=1e-2)
    plan = StepPlan(model, "softmax_cross_entropy", opt, (16, 6), (16,), np.int64)
    graphed = GraphedStep(plan)  # warm-up step and capture: nothing may change
    assert opt.t == 0
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(model.backend.to_numpy(v), before[k])
    X, y = small_problem(16)
    X, y = model.backend.asarray(X), model.backend.xp.asarray(y)
    graphed.step(X, y)
    twin = gpubp.Sequential.from_config(model.config(), backend=model.backend)
    twin.load_parameters(model.parameters())
    twin_opt = Adam(lr=1e-2)
    state = opt.state_dict()
    state["state"]["0.W"]["m"] += 1.0
    opt.load_state_dict(state, model.backend)  # new slot arrays: the old graph would miss them
    twin_opt.load_state_dict(state, model.backend)
    with model.backend.graph_arithmetic():  # the eager run computes as the graph does
        graphed.step(X, y)
        StepPlan(twin, "softmax_cross_entropy", twin_opt, (16, 6), (16,), np.int64).step(X, y)
    for name, p in twin.parameters().items():
        np.testing.assert_array_equal(model.backend.to_numpy(model.parameters()[name]),
                                      model.backend.to_numpy(p), err_msg=name)


@needs_gpu
def test_a_graphed_step_refuses_a_learning_rate_beyond_the_dtype_and_changes_nothing():
    """As Optimizer.step refuses it (bc334cd); was: the graph replayed with an inf scalar, every
    parameter inf/NaN without an error."""
    model = mlp(6, [8], 3, backend="cuda:0", dtype="float32", seed=0)
    opt = SGD(lr=1e-2)
    graphed = GraphedStep(StepPlan(model, "softmax_cross_entropy", opt, (16, 6), (16,), np.int64))
    X, y = small_problem(16)
    X, y = model.backend.asarray(X), model.backend.xp.asarray(y)
    graphed.step(X, y)
    before, t = {k: model.backend.to_numpy(v) for k, v in model.parameters().items()}, opt.t
    opt.lr = 1e39
    with pytest.raises(InvalidValueError, match="beyond the model's float32"):
        graphed.step(X, y)
    assert opt.t == t
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(model.backend.to_numpy(v), before[k], err_msg=k)


@needs_gpu
def test_a_graph_refuses_a_step_once_a_layer_was_replaced_and_follows_a_replaced_parameter():
    rng = np.random.default_rng(1)
    model = mlp(6, [8], 3, backend="cuda:0", dtype="float64", seed=0)
    graphed = GraphedStep(StepPlan(model, "mse", SGD(lr=0.1), (16, 6)))
    X, y = (model.backend.asarray(rng.normal(size=shape)) for shape in ((16, 6), (16, 3)))
    W2 = model.backend.asarray(rng.normal(size=(6, 8)))
    model.layers[0].params["W"] = W2  # a new array: the graph is recorded anew and updates it
    before = model.backend.to_numpy(W2)
    graphed.step(X, y)
    assert model.layers[0].params["W"] is W2 and not np.array_equal(model.backend.to_numpy(W2), before)
    model.layers[2] = gpubp.Dense(8, 3, backend=model.backend)
    with pytest.raises(StateError, match="GraphedStep: the model's layers changed"):
        graphed.step(X, y)


@needs_gpu
def test_a_graphed_step_refuses_observers():
    model = mlp(6, [8], 3, backend="cuda:0", seed=0)
    graphed = GraphedStep(StepPlan(model, "mse", SGD(), (16, 6)))
    with gpubp.detect_anomaly(), pytest.raises(StateError, match="observers"):
        graphed.step(graphed.plan.X, graphed.plan.y)


@needs_gpu
def test_fit_refuses_to_capture_a_layer_that_is_not_capturable_before_training():
    model = gpubp.Sequential([gpubp.Dense(6, 4), Twice(), gpubp.Dense(4, 3)], backend="cuda:0", seed=0)
    before = {k: model.backend.to_numpy(v) for k, v in model.parameters().items()}
    with pytest.raises(InvalidValueError, match=r"fit: cuda_graph: layer 1 \(Twice"):
        fit(model, *small_problem(), epochs=1, progress=False, cuda_graph=True)
    for k, v in model.parameters().items():
        np.testing.assert_array_equal(model.backend.to_numpy(v), before[k])



# -- Dropout in a graph: each replay's key written before it, the step counted on the host ----------


def dropout_mlp(backend, dtype="float64", seed=3):
    return gpubp.Sequential([gpubp.Dense(6, 8), gpubp.Sigmoid(), gpubp.Dropout(0.3), gpubp.Dense(8, 5), gpubp.ReLU(),
                             gpubp.Dropout(0.2), gpubp.Dense(5, 3)], backend=backend, dtype=dtype, seed=seed)


class RecordOnTheHost(CaptureOnTheHost):
    """A "capture" that records without running (as CUDA's does): the numbers of replays can be compared."""

    def capture(self, fn, stream):
        self.captures += 1
        return types.SimpleNamespace(launch=lambda stream: fn())


def test_a_graphed_dropout_step_replays_each_steps_mask_and_counts_its_steps():
    """A captured step's Dropout reads the key ``before_step`` writes before each replay: the steps
    drop what eager steps drop, the host step count follows, and a mode change records anew."""
    backend = RecordOnTheHost("float64")
    graphed_model, eager_model = dropout_mlp(backend), dropout_mlp("cpu")
    assert graph_problem(graphed_model) is None
    graphed = GraphedStep(StepPlan(graphed_model, "mse", SGD(lr=0.1, momentum=0.9), (16, 6)))
    assert graphed_model.layers[2].step == 0  # warming up and capturing take no step
    rng = np.random.default_rng(2)
    eager_opt, lossf = SGD(lr=0.1, momentum=0.9), gpubp.losses.get_loss("mse")
    for mode in (True, True, False, True):
        graphed_model.train(mode)
        eager_model.train(mode)
        X, y = rng.normal(size=(16, 6)), rng.normal(size=(16, 3))
        graphed.step(X, y)
        eager_model.zero_grad()
        lossf.forward(eager_model.forward(X), y)
        eager_model.backward(lossf.backward(), input_grad=False)
        eager_opt.step(eager_model)
        assert [layer.state for layer in graphed_model.layers[2::3]] == [layer.state for layer in eager_model.layers[2::3]]
        for name, p in eager_model.parameters().items():
            np.testing.assert_array_equal(graphed_model.parameters()[name], p, err_msg=name)
    assert graphed_model.layers[2].step == 3 and backend.captures == 3  # eval, then training again: recorded anew


@needs_gpu
def test_a_graphed_fit_with_dropout_equals_the_eager_fit_bit_for_bit():
    # two graphs (a short last batch), each replay with its own step's masks; checkpoints save the step
    X, y = small_problem()
    runs = []
    for cuda_graph in (False, True):
        model = dropout_mlp("cuda:0")
        with model.backend.graph_arithmetic():  # the eager run computes as the graph does
            history = fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=3, batch_size=16, seed=1, progress=False,
                          cuda_graph=cuda_graph)
        runs.append((model, history))
    (eager, h_eager), (graphed, h_graphed) = runs
    assert h_graphed.loss == h_eager.loss
    assert [layer.state for layer in graphed.layers[2::3]] == [layer.state for layer in eager.layers[2::3]]
    assert graphed.layers[2].step == 15
    for name, p in eager.parameters().items():
        np.testing.assert_array_equal(graphed.backend.to_numpy(graphed.parameters()[name]),
                                      eager.backend.to_numpy(p), err_msg=name)
