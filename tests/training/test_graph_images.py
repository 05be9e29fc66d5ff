"""Image models captured as one CUDA graph (gpubp/plan/graph.py): Conv2D, MaxPool2D, AvgPool2D,
GlobalAvgPool2D and Flatten are capturable, so a LeNet's training step is one replay. On a GPU a
graphed step equals the planned step run eagerly in the capture's arithmetic (``graph_arithmetic``:
gpubp's GEMM, no CUB) bit for bit, step after step, by ``fit`` and by ``GraphedStep`` itself.
Rehearsed without a GPU under the CuPy stand-in (``GPUBP_FAKE_CUPY=1``, tests/fake_cupy.py), which
refuses an allocation, a host read or cuBLAS inside a capture as CuPy and CUDA do."""
import numpy as np
import pytest

import gpubp
from gpubp._compat import has_cupy
from gpubp.bench import conv as lenet
from gpubp.nn.arrays import KEPT_SHAPES
from gpubp.optim import SGD, Adam
from gpubp.plan import GraphedStep, StepPlan, graph_problem
from gpubp.train import fit

from helpers import needs_gpu

MODELS = {  # (layers, input side): each image layer, padded and not, strided and not, overlapping, ceil mode
    "lenet": (lambda: [gpubp.Conv2D(1, 4, 5, padding=2), gpubp.ReLU(), gpubp.MaxPool2D(2),
                       gpubp.Conv2D(4, 6, 3, stride=2, padding=1), gpubp.ReLU(), gpubp.MaxPool2D(3, stride=1, padding=1),
                       gpubp.AvgPool2D(2, padding=1, ceil_mode=True, count_include_pad=False), gpubp.Flatten(),
                       gpubp.Dense(6 * 3 * 3, 5), gpubp.ReLU(), gpubp.Dense(5, 3)], 16),
    "global-pool": (lambda: [gpubp.Conv2D(1, 4, 3), gpubp.Tanh(), gpubp.AvgPool2D(2), gpubp.Conv2D(4, 4, 2, stride=2),
                             gpubp.ReLU(), gpubp.Conv2D(4, 6, 3, padding=1), gpubp.Sigmoid(),
                             gpubp.MaxPool2D(3, stride=1), gpubp.AvgPool2D(2, stride=1, padding=1), gpubp.GlobalAvgPool2D(),
                             gpubp.Dense(6, 3)], 14),
}
OPTIMIZERS = {"sgd": lambda: SGD(lr=0.05), "momentum": lambda: SGD(lr=0.05, momentum=0.9),
              "adam": lambda: Adam(lr=1e-2)}


def images(n, side, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, side, side)), rng.integers(0, 3, n)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_image_layer_can_be_captured(name):
    model = gpubp.Sequential(MODELS[name][0]())
    assert graph_problem(model) is None
    assert all(layer.capturable for layer in model.layers)


def test_a_moved_layer_drops_its_work_arrays_and_makes_them_anew_there():
    conv, pool = gpubp.Conv2D(1, 2, 3, padding=1), gpubp.MaxPool2D(3, stride=1, padding=1)
    X = np.random.default_rng(0).normal(size=(2, 1, 5, 5)).astype(np.float32)
    pool.forward(conv.forward(X))
    assert conv.__dict__["_kept_work"] and pool.__dict__["_kept_work"]
    for layer in (conv, pool):
        layer.to("cpu/float64")
        assert "_kept_work" not in layer.__dict__
    Y = pool.forward(conv.forward(X.astype(np.float64)))
    assert Y.dtype == np.float64 and all(a.dtype in (np.float64, bool) for a in pool.__dict__["_kept_work"].values())


def test_work_arrays_are_kept_for_the_last_few_shapes_only():
    """Before: one set of work arrays per batch size a layer ever saw, for its life (a model answering
    requests of every size held them all); now the last KEPT_SHAPES per name, the others let go."""
    model = gpubp.Sequential(MODELS["lenet"][0](), dtype="float64", seed=0)
    side = MODELS["lenet"][1]
    for n in range(1, 12):
        model.forward(images(n, side, seed=n)[0])
    for layer in model.layers:
        kept = vars(layer).get("_kept_work", {})
        names = {key[0] for key in kept}
        assert all(sum(key[0] == name for key in kept) <= KEPT_SHAPES for name in names), layer
    conv = model.layers[0]
    recent = dict(vars(conv)["_kept_work"])
    model.forward(images(11, side)[0])  # the last shape: the same arrays
    assert all(vars(conv)["_kept_work"][key] is a for key, a in recent.items())
    assert not any(key[1][0][0] == 1 for key in vars(conv)["_kept_work"])  # the first shape's: let go
    np.testing.assert_array_equal(model.forward(images(1, side, seed=1)[0]),  # made anew, the same numbers
                                  gpubp.Sequential(MODELS["lenet"][0](), dtype="float64", seed=0).forward(
                                      images(1, side, seed=1)[0]))


@pytest.mark.skipif(not has_cupy, reason="the CuPy stand-in reads CuPy's names: CuPy is not installed")
def test_the_stand_in_takes_a_sliding_window_view_for_the_view_cupy_makes():
    # CuPy's sliding_window_view is as_strided, a view: nothing from the pool, nothing refused in a
    # capture. NumPy's keeps its array behind a DummyArray base, which the stand-in follows.
    import fake_cupy
    cp = fake_cupy.module
    X = cp.zeros((2, 3, 6, 6), dtype=np.float32)
    used = cp.get_default_memory_pool().used_bytes()
    win = cp.lib.stride_tricks.sliding_window_view(X, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    assert win.shape == (2, 3, 2, 2, 3, 3) and cp.get_default_memory_pool().used_bytes() == used
    sums = win.sum(axis=(4, 5))  # a new array: from the pool
    assert sums.shape == (2, 3, 2, 2) and cp.get_default_memory_pool().used_bytes() > used


def train(name, cuda_graph, optimizer, dtype="float64", epochs=2):
    layers, side = MODELS[name]
    model = gpubp.Sequential(layers(), backend="cuda:0", dtype=dtype, seed=3)
    with model.backend.graph_arithmetic():  # the planned steps compute as the graph does
        history = fit(model, *images(22, side), optimizer=optimizer, epochs=epochs, batch_size=8, seed=1,
                      progress=False, cuda_graph=cuda_graph)
    return model, history


@needs_gpu
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_graphed_fit_of_an_image_model_equals_the_planned_fit_bit_for_bit(name, opt):
    # 22 samples in batches of 8: a short last batch, so two plans and two graphs per model; the
    # layers keep work arrays per shape, and each graph writes its own
    planned, h_planned = train(name, False, OPTIMIZERS[opt]())
    graphed, h_graphed = train(name, True, OPTIMIZERS[opt]())
    assert h_graphed.loss == h_planned.loss
    for key, p in planned.parameters().items():
        np.testing.assert_array_equal(graphed.backend.to_numpy(graphed.parameters()[key]),
                                      planned.backend.to_numpy(p), err_msg=key)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_graphed_step_equals_the_planned_step_bit_for_bit_step_after_step(name, dtype):
    layers, side = MODELS[name]
    model = gpubp.Sequential(layers(), backend="cuda:0", dtype=dtype, seed=0)
    twin = gpubp.Sequential.from_config(model.config(), backend=model.backend)
    twin.load_parameters(model.parameters())
    backend, shape = model.backend, (8, 1, side, side)
    graphed = GraphedStep(StepPlan(model, "softmax_cross_entropy", Adam(lr=1e-2), shape, (8,), np.int64))
    plan = StepPlan(twin, "softmax_cross_entropy", Adam(lr=1e-2), shape, (8,), np.int64)
    for step in range(4):  # a new batch each step: the graph reads it from the plan's buffers
        if step == 2:  # the layers called on other batch sizes let the graph's work arrays go: it holds them
            for n in range(1, KEPT_SHAPES + 2):
                model.forward(backend.asarray(images(n, side, seed=n)[0]))
        X, y = images(8, side, seed=step)
        X, y = backend.asarray(X), backend.xp.asarray(y)
        out, value = graphed.step(X, y)
        with backend.graph_arithmetic():
            plan.model.zero_grad()
            out_eager, value_eager = plan.run(X, y)
            np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(out_eager), err_msg=f"step {step}")
            plan.update()
        assert backend.to_numpy(value) == backend.to_numpy(value_eager), step
        for key, p in twin.parameters().items():
            np.testing.assert_array_equal(backend.to_numpy(model.parameters()[key]), backend.to_numpy(p),
                                          err_msg=f"step {step}: {key}")


@needs_gpu
def test_the_benchmark_lenet_step_replays_as_a_graph_with_the_planned_steps_numbers():
    cfg = dict(lenet.QUICK_LENET, batch=8)
    runs = []
    for graphed in (False, True):
        step, backend, model = lenet.gpubp_lenet_step(cfg, "cuda:0", dtype="float64", planned=True, graphed=graphed)
        with backend.graph_arithmetic():  # the planned steps compute as the graph does
            for _ in range(3):
                step()
        backend.synchronize()
        runs.append({key: backend.to_numpy(p) for key, p in model.parameters().items()})
    for key, p in runs[0].items():
        np.testing.assert_array_equal(runs[1][key], p, err_msg=key)
