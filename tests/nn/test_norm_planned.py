"""BatchNorm in a step plan and a CUDA graph: forward/backward into given buffers and the layer's
own work arrays (made once per shape), the same numbers bit for bit as the eager steps (and as
BatchNorm's eager code before it took out=, frozen below as ``Todays``), no allocation per planned
step, the plan's buffer checks leaving no trace in the running statistics, out buffers refused by
name, and a captured step under the CuPy stand-in (no allocation, host read or cuBLAS inside)."""
import importlib
import itertools
import os

import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, InvalidValueError, ShapeError
from gpubp.losses import MSE
from gpubp.nn import BatchNorm
from gpubp.nn.arrays import into
from gpubp.optim import SGD, Adam
from gpubp.plan import GraphedStep, StepPlan, graph_problem, plan_problem
from gpubp.train import fit

from helpers import allocation_peak, needs_gpu

FAKE = importlib.import_module("fake_cupy") if os.environ.get("GPUBP_FAKE_CUPY") == "1" else None

OPTIONS = [dict(affine=a, track_running_stats=t, momentum=m)
           for a, t, m in itertools.product((True, False), (True, False), (0.1, None))]
IDS = [f"affine={o['affine']}-track={o['track_running_stats']}-momentum={o['momentum']}" for o in OPTIONS]
SHAPES = {"NC": (12, 5), "NCHW": (6, 5, 3, 4)}


class Todays(BatchNorm):
    """BatchNorm's eager forward and backward as they were before they took out= (commit 192574d),
    verbatim but for names: the reference the new code must equal bit for bit."""

    def forward(self, X):
        xp, np_ = self.backend.xp, np
        axes, shape = _axes(X)
        self.batch_stats = self.training or not self.track_running_stats
        if self.batch_stats:
            mu = X.mean(axis=axes, dtype=np_.float64)
            d = X - mu.reshape(shape)
            var = xp.multiply(d, d, out=d).mean(axis=axes)
            self.inv_sigma = (1 / xp.sqrt(var + self.eps)).astype(X.dtype)
            with np_.errstate(over="ignore"):
                mu, var = mu.astype(X.dtype), var.astype(X.dtype)
            if self.training and self.track_running_stats:
                self._old_update_running(mu, var, X.size // self.num_features)
        else:
            mu, var = self.buffers["running_mean"], self.buffers["running_var"]
            self.inv_sigma = 1 / xp.sqrt(var + self.eps)
        self.x_hat = (X - mu.reshape(shape)) * self.inv_sigma.reshape(shape)
        self.X = X
        if not self.affine:
            return self.x_hat
        return self.x_hat * self.params["gamma"].reshape(shape) + self.params["beta"].reshape(shape)

    def _old_update_running(self, mu, var, m):
        xp = self.backend.xp
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        finite = xp.isfinite(mu).all() & xp.isfinite(var).all()
        if self.momentum is None:
            n = self.buffers["num_batches_tracked"]
            n += finite
            k = 1 / xp.maximum(n, 1)
            k, keep, k_var = (a.astype(rm.dtype) for a in (k, 1 - k, k * m / (m - 1)))
        else:
            k = self.momentum
            keep, k_var = 1 - k, k * m / (m - 1)
        xp.copyto(rm, keep * rm + k * mu, where=finite)
        xp.copyto(rv, keep * rv + k_var * var, where=finite)

    def backward(self, dY):
        axes, shape = _axes(dY)
        dbeta, dgamma = dY.sum(axis=axes), (dY * self.x_hat).sum(axis=axes)
        scale = self.inv_sigma.reshape(shape)
        if self.affine:
            self._accumulate("gamma", lambda out: into(out, dgamma))
            self._accumulate("beta", lambda out: into(out, dbeta))
            self._grads_zero = self._grads_stale = False
            scale = self.params["gamma"].reshape(shape) * scale
        if not self.batch_stats:
            return dY * scale
        m = dY.size // self.num_features
        return (scale / m) * (m * dY - dbeta.reshape(shape) - self.x_hat * dgamma.reshape(shape))


def _axes(X):
    return ((0,), (1, X.shape[1])) if X.ndim == 2 else ((0, 2, 3), (1, X.shape[1], 1, 1))


def same(a, b, what=""):
    np.testing.assert_array_equal(np.asarray(gpubp.get_backend("cpu").to_numpy(a)),
                                  np.asarray(gpubp.get_backend("cpu").to_numpy(b)), err_msg=what)


def same_arrays(model, like):
    """``model``'s parameters and buffers equal ``like``'s bit for bit."""
    for name, a in {**like.parameters(), **like.buffers()}.items():
        same({**model.parameters(), **model.buffers()}[name], a, name)


def state(layer):
    """Everything a BatchNorm step changes: gradients and buffers, as host copies."""
    host = layer.backend.to_numpy
    grads = {f"grad {k}": host(v) for k, v in layer.grads.items()} if layer.affine else {}
    return {**grads, **{k: host(v) for k, v in layer.buffers.items()}}


def batches(shape, dtype, n=5, seed=0):
    """``n`` batches of X and dY: normal values, then a batch spread past 1e19 (float32's variance
    overflows: the estimates stay), then normal ones again."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        scale = 3e19 if i == 2 else 1.0 + i
        yield (rng.normal(size=shape) * scale + i).astype(dtype), rng.normal(size=shape).astype(dtype)


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
@pytest.mark.parametrize("form", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_eager_steps_are_todays_bit_for_bit(options, form, dtype):
    backend = gpubp.get_backend("cpu", dtype)
    new, old = BatchNorm(5, backend=backend, **options), Todays(5, backend=backend, **options)
    for training in (True, False):
        for layer in (new, old):
            layer.training = training
        for X, dY in batches(SHAPES[form], dtype):
            for layer in (new, old):
                layer.zero_grad()
            with np.errstate(all="ignore"):
                same(new.forward(X), old.forward(X), "Y")
                same(new.backward(dY), old.backward(dY), "dX")
            for k, v in state(old).items():
                same(state(new)[k], v, k)


def plan_and_eager(options, form, dtype, steps=4, lr=0.01):
    """A BatchNorm -> Tanh model stepped by a StepPlan and, its twin, by the eager calls, layer by
    layer: each step's BatchNorm output, dX, gradients and buffers compared, then the parameters."""
    backend = gpubp.get_backend("cpu", dtype)
    models = [gpubp.Sequential([BatchNorm(5, **options), gpubp.Tanh()], backend=backend, seed=0) for _ in range(2)]
    planned, eager = models
    opts = [Adam(lr=lr), Adam(lr=lr)]
    plan = StepPlan(planned, "mse", opts[0], SHAPES[form])
    loss = MSE()
    data = list(batches(SHAPES[form], dtype, n=2 * steps, seed=1))
    for i, (X, y) in enumerate(data):
        if i == steps:  # the plan reads the model's mode at every step
            planned.eval(), eager.eval()
        planned.zero_grad()
        plan.run(X, np.tanh(y))  # plan.step's first half: the arena holds Y and dX until the update
        bn, act = eager.layers
        eager.zero_grad()
        Y = bn.forward(X)
        loss.forward(act.forward(Y), np.tanh(y))
        dX = bn.backward(act.backward(loss.backward()))
        opts[1].step(eager)
        same(plan.outputs[0], Y, f"step {i} Y")
        same(plan.deltas[0], dX, f"step {i} dX")
        for k, v in state(bn).items():
            same(state(planned.layers[0])[k], v, f"step {i} {k}")
        plan.update()
    for k, v in eager.parameters().items():
        same(planned.parameters()[k], v, k)
    return planned


@pytest.mark.filterwarnings("ignore:Adam. the model has no parameters")  # affine=False: only BatchNorm's statistics
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
@pytest.mark.parametrize("form", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_planned_steps_equal_eager_steps_bit_for_bit_in_train_and_eval(options, form, dtype):
    planned = plan_and_eager(options, form, dtype)
    if options["track_running_stats"] and options["momentum"] is None:  # the plan's own checks did not count,
        # nor, in float32, the batch spread over 3e19 (its variance is Inf there: left out)
        assert int(planned.layers[0].buffers["num_batches_tracked"]) == (3 if dtype == "float32" else 4)


def test_the_plans_buffer_checks_leave_the_running_statistics_as_they_were():
    model = gpubp.Sequential([gpubp.Dense(4, 6), BatchNorm(6, momentum=None), gpubp.ReLU(), gpubp.Dense(6, 2)],
                             dtype="float64", seed=0)
    model.layers[1].load_buffers({"running_mean": np.arange(6.0), "running_var": np.full(6, 2.0),
                                  "num_batches_tracked": 3})
    before = {k: np.array(v) for k, v in model.buffers().items()}
    StepPlan(model, "mse", SGD(), (8, 4))
    for k, v in model.buffers().items():
        same(v, before[k], k)
    # a user's own forwards, before or after, still count
    model.layers[1].forward(np.ones((8, 6)))
    assert int(model.buffers()["1.num_batches_tracked"]) == 4
    StepPlan(model, "mse", SGD(), (3, 4))
    assert int(model.buffers()["1.num_batches_tracked"]) == 4


def image_model(**kw):
    return gpubp.Sequential([gpubp.Conv2D(2, 3, 3, padding=1), BatchNorm(3, **kw), gpubp.ReLU(),
                             gpubp.MaxPool2D(2), gpubp.Flatten(), gpubp.Dense(3 * 3 * 3, 6),
                             BatchNorm(6, momentum=None), gpubp.Dense(6, 3)], dtype="float64", seed=0)


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_fit_with_plans_equals_fit_without_bit_for_bit(options):
    assert plan_problem(image_model(**options)) is None
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(22, 2, 6, 6)), rng.integers(0, 3, 22)  # batches of 8, 8 and 6
    Xv, yv = rng.normal(size=(7, 2, 6, 6)), rng.integers(0, 3, 7)  # eval: by the running statistics
    runs = []
    for plan in (True, False):
        model = image_model(**options)
        history = fit(model, X, y, optimizer=Adam(lr=0.01), epochs=3, batch_size=8, validation_data=(Xv, yv),
                      progress=False, plan=plan, seed=1)
        runs.append((history, model))
    (h_plan, planned), (h_eager, eager) = runs
    assert h_plan.loss == h_eager.loss and h_plan.val_loss == h_eager.val_loss
    same_arrays(planned, eager)
    assert int(eager.buffers()["6.num_batches_tracked"]) == 9


@pytest.mark.filterwarnings("ignore:SGD. the model has no parameters")  # affine=False in an image model alone
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
@pytest.mark.parametrize("form", ["NC", "NCHW"])
def test_a_planned_step_allocates_no_array(options, form):
    # activations of 512 KiB (float64): an eager step allocates several; a planned one allocates
    # none, only what is freed at once: NumPy's ufunc buffer where a broadcast operation casts
    # (getbufsize() float64 elements) and a few KiB of Python objects
    if form == "NC":
        layers, shape = [gpubp.Dense(32, 256), BatchNorm(256, **options), gpubp.ReLU(), gpubp.Dense(256, 4)], (256, 32)
        y_shape = (256, 4)
    else:
        layers, shape = [BatchNorm(8, **options), gpubp.ReLU()], (64, 8, 8, 16)
        y_shape = shape
    model = gpubp.Sequential(layers, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=shape), rng.normal(size=y_shape)
    plan = StepPlan(model, "mse", SGD(lr=0.01, momentum=0.9), X.shape, y.shape)
    bound = np.getbufsize() * 8 + 16 * 1024
    activation = 256 * 256 * 8
    assert bound < activation / 4
    planned_peak, planned_left = allocation_peak(lambda: plan.step(X, y))
    assert planned_peak <= bound, planned_peak
    assert planned_left <= 4 * 1024, planned_left

    loss, opt = MSE(), SGD(lr=0.01, momentum=0.9)

    def eager():
        model.zero_grad()
        loss.forward(model.forward(X), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step(model)
    assert allocation_peak(eager)[0] > activation  # the measure sees arrays when they are allocated


def test_the_work_arrays_are_made_once_per_shape_and_kept_for_a_few():
    layer = BatchNorm(3, backend=gpubp.get_backend("cpu", "float64"))
    X = np.random.default_rng(0).normal(size=(4, 3))
    layer.forward(X)
    work = layer._work(X.shape, X.dtype)
    layer.backward(np.ones_like(X))
    layer.forward(X)
    assert layer._work(X.shape, X.dtype) is work and layer.x_hat is work.x_hat
    for n in range(5, 9):  # four other shapes: the first one's arrays are let go
        layer.forward(np.ones((n, 3)))
    assert layer._work(X.shape, X.dtype) is not work
    layer.to(gpubp.get_backend("cpu", "float32"))
    assert "_kept_work" not in vars(layer)


@pytest.mark.parametrize("form", SHAPES)
def test_out_buffers_that_do_not_fit_are_refused_by_name_before_any_work(form):
    backend = gpubp.get_backend("cpu", "float64")
    layer = BatchNorm(5, momentum=None, backend=backend)
    shape = SHAPES[form]
    X = np.random.default_rng(0).normal(size=shape)
    wrong = [(np.empty(shape[:1] + (6,) + shape[2:]), ShapeError, r"BatchNorm\.forward out: the buffer has shape"),
             (np.empty(shape, np.float32), DTypeError, "BatchNorm.forward out"),
             (np.empty(shape).tolist(), gpubp.DeviceError, "BatchNorm.forward out: expected an array on cpu")]
    read_only = np.empty(shape)
    read_only.flags.writeable = False
    wrong.append((read_only, InvalidValueError, r"BatchNorm\.forward out: the buffer is read-only"))
    for out, error, words in wrong:
        with pytest.raises(error, match=words):
            layer.forward(X, out=out)
    assert int(layer.buffers["num_batches_tracked"]) == 0 and layer.X is None  # nothing done
    Y = layer.forward(X, out=np.empty(shape))
    for out, error, words in wrong:
        with pytest.raises(error, match=words.replace("forward", "backward")):
            layer.backward(np.ones(shape), out=out)
    dX = layer.backward(np.ones(shape), out=np.empty(shape))
    assert dX.shape == shape and Y.shape == shape
    # a bound core trusts its buffers but still says which do not fit, naming the layer
    forward, backward = layer.bind(X, np.empty(shape[:1] + (6,) + shape[2:]), np.ones(shape), np.empty(shape))
    with pytest.raises(ShapeError, match=r"BatchNorm\(5, .*\) forward"):
        forward()
    assert int(layer.buffers["num_batches_tracked"]) == 1  # the refused core counted nothing


def test_out_may_be_the_input():
    """X is read whole before Y is written, dY before dX: in place gives what new arrays give."""
    backend = gpubp.get_backend("cpu", "float64")
    rng = np.random.default_rng(0)
    X, dY = rng.normal(size=(6, 5, 3, 4)), rng.normal(size=(6, 5, 3, 4))
    a, b = BatchNorm(5, backend=backend), BatchNorm(5, backend=backend)
    Y, dX = a.forward(X), a.backward(dY)
    Xc, dYc = X.copy(), dY.copy()
    assert b.forward(Xc, out=Xc) is Xc and b.backward(dYc, out=dYc) is dYc
    same(Xc, Y), same(dYc, dX), same(b.grads["gamma"], a.grads["gamma"])


def test_a_new_eps_or_momentum_counts_as_a_change_of_the_layer():
    """A captured graph holds them as recorded: a change makes it record again (as a replaced array does)."""
    layer = BatchNorm(3)
    start = layer.generation
    layer.eps, layer.momentum = 1e-5, 0.1  # the same values: nothing changed
    assert layer.generation == start
    layer.eps = 1e-3
    layer.momentum = 0.5
    assert layer.generation == start + 2 and (layer.eps, layer.momentum) == (1e-3, 0.5)
    with pytest.raises(InvalidValueError, match="BatchNorm eps must be a finite number > 0"):
        layer.eps = 0
    assert layer.generation == start + 2 and layer.eps == 1e-3


def test_a_batchnorm_model_can_be_captured():
    model = gpubp.Sequential([gpubp.Dense(6, 8), BatchNorm(8), gpubp.ReLU(), gpubp.Dense(8, 3)])
    assert graph_problem(model) is None and BatchNorm.capturable


# ---------------------------------------------------------------- on the GPU (or the CuPy stand-in)

def graphed_fit(cuda_graph, options, epochs=3):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(70, 6)), rng.integers(0, 3, 70)
    model = gpubp.Sequential([gpubp.Dense(6, 8), BatchNorm(8, **options), gpubp.ReLU(), gpubp.Dense(8, 3)],
                             backend="cuda:0", dtype="float64", seed=3)
    with model.backend.graph_arithmetic():  # the eager run computes as the graph does
        history = fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=epochs, batch_size=16, seed=1,
                      progress=False, cuda_graph=cuda_graph)
    return model, history


@needs_gpu
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_a_graphed_fit_equals_the_eager_fit_bit_for_bit(options):
    # 70 samples in batches of 16: a short last batch, so two graphs, each captured with nothing
    # allocated, read to the host or sent to cuBLAS inside (the stand-in refuses each, as CUDA does)
    eager, h_eager = graphed_fit(False, options)
    graphed, h_graphed = graphed_fit(True, options)
    assert h_graphed.loss == h_eager.loss
    same_arrays(graphed, eager)


@needs_gpu
@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_a_graphed_step_equals_the_eager_step_with_its_statistics(options):
    """Step by step: the model output, the loss, BatchNorm's gradients and running statistics."""
    backend = gpubp.get_backend("cuda:0", "float64")
    models = [gpubp.Sequential([gpubp.Dense(6, 8), BatchNorm(8, **options), gpubp.ReLU(), gpubp.Dense(8, 3)],
                               backend=backend, seed=3) for _ in range(2)]
    opts = [SGD(lr=0.05, momentum=0.9), SGD(lr=0.05, momentum=0.9)]
    graphed = GraphedStep(StepPlan(models[0], "mse", opts[0], (16, 6)))
    loss = MSE()
    rng = np.random.default_rng(1)
    with backend.graph_arithmetic():
        for _ in range(4):
            X, y = (backend.asarray(rng.normal(size=s)) for s in ((16, 6), (16, 3)))
            out, value = graphed.step(X, y)
            eager = models[1]
            eager.zero_grad()
            Y = eager.forward(X)
            expected = loss.forward(Y, y)
            eager.backward(loss.backward(), input_grad=False)
            opts[1].step(eager)
            same(out, Y, "output"), same(value, expected, "loss")
            for k, v in state(eager.layers[1]).items():
                same(state(models[0].layers[1])[k], v, k)
    for k, v in models[1].parameters().items():
        same(models[0].parameters()[k], v, k)


@needs_gpu
@pytest.mark.parametrize("options", [OPTIONS[0], OPTIONS[-1]], ids=[IDS[0], IDS[-1]])
def test_a_graphed_image_model_fit_equals_the_eager_fit_bit_for_bit(options):
    """Conv2D -> BatchNorm over (N, C, H, W) -> ReLU -> MaxPool2D -> ... (Conv2D and the pools are capturable too)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(22, 2, 6, 6)), rng.integers(0, 3, 22)
    runs = []
    for cuda_graph in (False, True):
        model = image_model(**options).to(gpubp.get_backend("cuda:0", "float64"))
        with model.backend.graph_arithmetic():
            history = fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=2, batch_size=8, seed=1, progress=False,
                          cuda_graph=cuda_graph)
        runs.append((history, model))
    (h_eager, eager), (h_graphed, graphed) = runs
    assert h_graphed.loss == h_eager.loss
    same_arrays(graphed, eager)


@needs_gpu
def test_planning_and_capturing_leave_the_running_statistics_as_they_were():
    """The plan's dry forward and the graph's warm-up step run BatchNorm in training: both put the
    model's buffers back (plan/step.py, plan/graph.py)."""
    model = gpubp.Sequential([gpubp.Dense(6, 8), BatchNorm(8, momentum=None), gpubp.ReLU(), gpubp.Dense(8, 3)],
                             backend="cuda:0", dtype="float64", seed=3)
    model.layers[1].load_buffers({"running_mean": np.arange(8.0), "running_var": np.full(8, 2.0),
                                  "num_batches_tracked": 3})
    before = {k: model.backend.to_numpy(v) for k, v in model.buffers().items()}
    GraphedStep(StepPlan(model, "mse", SGD(), (16, 6)))
    for k, v in model.buffers().items():
        same(v, before[k], k)


@needs_gpu
def test_a_graph_follows_a_new_eps_and_momentum():
    backend = gpubp.get_backend("cuda:0", "float64")
    models = [gpubp.Sequential([gpubp.Dense(6, 8), BatchNorm(8), gpubp.ReLU(), gpubp.Dense(8, 3)],
                               backend=backend, seed=3) for _ in range(2)]
    opts = [SGD(lr=0.05), SGD(lr=0.05)]
    graphed, loss = GraphedStep(StepPlan(models[0], "mse", opts[0], (16, 6))), MSE()
    rng = np.random.default_rng(2)
    with backend.graph_arithmetic():
        for step in range(4):
            if step == 2:
                for model in models:
                    model.layers[1].eps, model.layers[1].momentum = 0.5, 0.7
            X, y = (backend.asarray(rng.normal(size=s)) for s in ((16, 6), (16, 3)))
            out, _ = graphed.step(X, y)
            models[1].zero_grad()
            Y = models[1].forward(X)
            loss.forward(Y, y)
            models[1].backward(loss.backward(), input_grad=False)
            opts[1].step(models[1])
            same(out, Y, f"step {step} output")
            for k, v in state(models[1].layers[1]).items():
                same(state(models[0].layers[1])[k], v, f"step {step} {k}")


@needs_gpu
def test_a_gpu_layer_refuses_a_host_out_buffer():
    backend = gpubp.get_backend("cuda:0", "float64")
    layer = BatchNorm(5, backend=backend)
    X = backend.asarray(np.ones((4, 5)))
    with pytest.raises(gpubp.DeviceError, match="BatchNorm.forward out"):
        layer.forward(X, out=np.empty((4, 5)))
    layer.forward(X)
    with pytest.raises(gpubp.DeviceError, match="BatchNorm.backward out"):
        layer.backward(X, out=np.empty((4, 5)))
