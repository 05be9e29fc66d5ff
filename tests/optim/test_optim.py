"""Optimizers against textbook updates written out independently here (float64)."""
import numpy as np
import pytest

import gpubp
from gpubp.optim import SGD, Adam, AdamW, RMSprop, get_optimizer, optimizer_from_state

from helpers import TOL, needs_gpu


def textbook(name, p, grads, lr, **h):
    """The updates as PyTorch documents them, one parameter, step by step."""
    p = p.copy()
    buf = np.zeros_like(p); m = np.zeros_like(p); v = np.zeros_like(p)
    mu, wd = h.get("momentum", 0.0), h.get("weight_decay", 0.0)
    for t, g in enumerate(grads, start=1):
        if name == "adam":
            b1, b2, eps = 0.9, 0.999, 1e-8
            p = p * (1 - lr * wd)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
            continue
        g = g + wd * p
        if name == "rmsprop":
            v = 0.99 * v + 0.01 * g ** 2
            p = p - lr * g / (np.sqrt(v) + 1e-8)
            continue
        if mu:
            buf = mu * buf + g
            g = g + mu * buf if h.get("nesterov") else buf
        p = p - lr * g
    return p


CASES = [
    ("sgd", lambda: SGD(lr=0.1), {}),
    ("sgd", lambda: SGD(lr=0.1, weight_decay=0.01), {"weight_decay": 0.01}),
    ("sgd", lambda: SGD(lr=0.1, momentum=0.9), {"momentum": 0.9}),
    ("sgd", lambda: SGD(lr=0.1, momentum=0.9, nesterov=True), {"momentum": 0.9, "nesterov": True}),
    ("sgd", lambda: SGD(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1),
     {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1}),
    ("rmsprop", lambda: RMSprop(lr=0.01), {}),
    ("rmsprop", lambda: RMSprop(lr=0.01, weight_decay=0.05), {"weight_decay": 0.05}),
    ("adam", lambda: Adam(lr=0.01), {}),
    ("adam", lambda: AdamW(lr=0.01, weight_decay=0.1), {"weight_decay": 0.1}),
]


def run_steps(make_opt, backend, grads, W0):
    model = gpubp.Sequential([gpubp.Dense(*W0.shape)], backend=backend)
    model.layers[0].params["W"][...] = backend.asarray(W0)
    opt = make_opt()
    for g in grads:
        model.layers[0].grads["W"][...] = backend.asarray(g)
        model.layers[0].grads["b"][...] = 0
        opt.step(model)
    return backend.to_numpy(model.layers[0].params["W"]), opt, model


@pytest.mark.parametrize("name,make_opt,hyper", CASES)
def test_matches_textbook(name, make_opt, hyper, device, dtype):
    backend = gpubp.get_backend(device, dtype)
    rng = np.random.default_rng(1)
    W0 = rng.normal(size=(5, 3))
    grads = [rng.normal(size=(5, 3)) for _ in range(6)]
    got, _, _ = run_steps(make_opt, backend, grads, W0)
    expected = textbook(name, W0.astype(dtype).astype(np.float64), grads, make_opt().lr, **hyper)
    tol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    assert got.dtype == np.dtype(dtype)


@pytest.mark.parametrize("name,make_opt,hyper", CASES)
def test_state_dict_round_trip_continues_identically(name, make_opt, hyper):
    backend = gpubp.get_backend("cpu", "float64")
    rng = np.random.default_rng(2)
    W0, grads = rng.normal(size=(4, 2)), [rng.normal(size=(4, 2)) for _ in range(6)]
    straight, _, _ = run_steps(make_opt, backend, grads, W0)
    half, opt, model = run_steps(make_opt, backend, grads[:3], W0)
    resumed = make_opt()
    resumed.load_state_dict(opt.state_dict(), backend)
    for g in grads[3:]:
        model.layers[0].grads["W"][...] = g
        resumed.step(model)
    np.testing.assert_array_equal(backend.to_numpy(model.layers[0].params["W"]), straight)


def test_state_dict_refuses_other_type():
    with pytest.raises(ValueError, match="Adam"):
        SGD().load_state_dict(Adam().state_dict(), gpubp.get_backend("cpu"))


@pytest.mark.parametrize("bad", [dict(lr=0), dict(lr=-1), dict(momentum=1.5), dict(weight_decay=-0.1),
                                 dict(nesterov=True)])
def test_bad_hyperparameters_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad)) if "nesterov" not in bad else "momentum"):
        SGD(**bad)


def test_float32_state_stays_float32():
    backend = gpubp.get_backend("cpu", "float32")
    _, opt, model = run_steps(lambda: Adam(lr=1e-3), backend, [np.ones((3, 2))] * 2, np.zeros((3, 2)))
    assert all(a.dtype == np.float32 for st in opt.state.values() for a in st.values())


def test_state_follows_model_to_another_dtype():
    backend = gpubp.get_backend("cpu", "float32")
    _, opt, model = run_steps(lambda: Adam(lr=1e-3), backend, [np.ones((3, 2))], np.zeros((3, 2)))
    model.to("cpu", "float64")
    opt.step(model)
    assert all(a.dtype == np.float64 for st in opt.state.values() for a in st.values())


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_every_optimizer_reduces_a_loss(name):
    rng = np.random.default_rng(0)
    model = gpubp.Sequential([gpubp.Dense(4, 16), gpubp.Tanh(), gpubp.Dense(16, 3)], seed=0)
    X, y = model.backend.asarray(rng.normal(size=(64, 4))), model.backend.asarray(rng.integers(0, 3, 64))
    loss, opt = gpubp.SoftmaxCrossEntropy(), get_optimizer(name, lr=0.05)
    first = float(loss(model(X), y))
    for _ in range(40):
        model.zero_grad()
        model.backward(loss.backward())
        opt.step(model)
        last = float(loss(model(X), y))
    assert last < 0.9 * first


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("lbfgs")


@pytest.mark.parametrize("make,word", [
    (lambda: RMSprop(alpha=1.0), "alpha"), (lambda: RMSprop(eps=0), "eps"),
    (lambda: RMSprop(weight_decay=-1), "weight_decay"), (lambda: Adam(betas=(0.9, 1.0)), "beta2"),
    (lambda: Adam(betas=(-0.1, 0.9)), "beta1"), (lambda: Adam(eps=-1e-8), "eps"),
    (lambda: Adam(lr=float("nan")), "lr"), (lambda: AdamW(weight_decay=-0.01), "weight_decay"),
])
def test_bad_hyperparameters_of_rmsprop_and_adam(make, word):
    with pytest.raises(ValueError, match=word):
        make()


@pytest.mark.parametrize("name,make_opt,hyper", CASES)
def test_state_dict_is_a_host_copy_restored_exactly_in_float32(name, make_opt, hyper):
    backend = gpubp.get_backend("cpu", "float32")
    rng = np.random.default_rng(3)
    W0, grads = rng.normal(size=(4, 2)), [rng.normal(size=(4, 2)) for _ in range(4)]
    straight, _, _ = run_steps(make_opt, backend, grads, W0)
    _, opt, model = run_steps(make_opt, backend, grads[:2], W0)
    saved = opt.state_dict()
    assert saved["t"] == 2 and set(saved["hyper"]) >= {"lr"}
    for name_, st in saved["state"].items():
        for slot, arr in st.items():
            assert type(arr) is np.ndarray and arr.dtype == np.float32
            assert not np.shares_memory(arr, opt.state[name_][slot])
    resumed = optimizer_from_state(saved, "cpu")  # a device spec: dtype from the saved arrays
    for g in grads[2:]:
        model.layers[0].grads["W"][...] = g
        resumed.step(model)
    np.testing.assert_array_equal(backend.to_numpy(model.layers[0].params["W"]), straight)


def test_load_refuses_state_of_another_shape_of_optimizer():
    backend = gpubp.get_backend("cpu", "float64")
    _, momentum, _ = run_steps(lambda: SGD(momentum=0.9), backend, [np.ones((2, 2))], np.zeros((2, 2)))
    saved = momentum.state_dict()
    saved["state"]["0.W"] = {"m": saved["state"]["0.W"]["buf"]}
    plain = SGD(lr=0.3)
    with pytest.raises(ValueError, match="slots"):
        plain.load_state_dict(saved, backend)
    assert plain.lr == 0.3 and plain.hyper["momentum"] == 0.0  # unchanged after the refusal


def test_plain_sgd_takes_momentum_state_with_its_hyperparameters():
    backend = gpubp.get_backend("cpu", "float64")
    _, momentum, _ = run_steps(lambda: SGD(momentum=0.9), backend, [np.ones((2, 2))], np.zeros((2, 2)))
    opt = SGD()
    opt.load_state_dict(momentum.state_dict(), backend)
    assert opt.kernel.name == "sgd_momentum" and opt.slots == ("buf",)


def test_state_of_another_model_is_refused_before_any_update():
    backend = gpubp.get_backend("cpu", "float64")
    _, opt, _ = run_steps(lambda: Adam(), backend, [np.ones((3, 2))], np.zeros((3, 2)))
    other = gpubp.Sequential([gpubp.Dense(4, 2)], backend=backend)
    W = other.layers[0].params["W"].copy()
    with pytest.raises(gpubp.StateError, match="holds the slots .* of another model"):
        opt.step(other)
    np.testing.assert_array_equal(other.layers[0].params["W"], W)
    assert opt.t == 1


def test_a_gradient_of_the_wrong_dtype_is_refused():
    backend = gpubp.get_backend("cpu", "float32")
    model = gpubp.Sequential([gpubp.Dense(3, 2)], backend=backend)
    with pytest.raises(gpubp.DTypeError, match="gradient W"):  # refused as it is put there
        model.layers[0].grads["W"] = np.zeros((3, 2))  # float64 on a float32 model
    dict.__setitem__(model.layers[0].grads, "W", np.zeros((3, 2)))  # put there past that check
    with pytest.raises(gpubp.DTypeError, match="gradient 0.W"):  # the optimizer refuses it too
        SGD().step(model)


def test_moving_the_model_mid_run_carries_the_state_exactly():
    """Steps on float64, then the model moves to float32: the state follows, values kept."""
    rng = np.random.default_rng(4)
    W0, grads = rng.normal(size=(3, 2)), [rng.normal(size=(3, 2)) for _ in range(4)]
    cpu64, cpu32 = gpubp.get_backend("cpu", "float64"), gpubp.get_backend("cpu", "float32")
    _, opt, model = run_steps(lambda: Adam(lr=0.01), cpu64, grads[:2], W0)
    m_before = opt.state["0.W"]["m"].copy()
    model.to(cpu32)
    _, ref, ref_model = run_steps(lambda: Adam(lr=0.01), cpu64, grads[:2], W0)
    ref_model.to(cpu32)
    ref2 = Adam(lr=0.01)
    ref2.load_state_dict(ref.state_dict(), cpu32)
    for g in grads[2:]:
        for m, o in ((model, opt), (ref_model, ref2)):
            m.layers[0].grads["W"][...] = cpu32.asarray(g)
            o.step(m)
    np.testing.assert_array_equal(model.layers[0].params["W"], ref_model.layers[0].params["W"])
    assert opt.state["0.W"]["m"].dtype == np.float32 and not np.array_equal(opt.state["0.W"]["m"], m_before)


def test_numpy_update_allocates_no_parameter_sized_temporaries(monkeypatch):
    """The update runs in blocks with block-sized scratch, made at the first step and reused. One
    thread: where blocks are shared among threads, a thread the pool starts later makes its own then."""
    import tracemalloc
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    backend = gpubp.get_backend("cpu", "float32")
    model = gpubp.Sequential([gpubp.Dense(1024, 1024)], backend=backend)
    for grad in model.gradients().values():
        grad[...] = 0.5
    opt = Adam()
    opt.step(model)  # creates the state
    tracemalloc.start()
    opt.step(model)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    nbytes = model.parameters()["0.W"].nbytes
    assert peak < nbytes / 4, f"{peak} bytes allocated updating a {nbytes}-byte parameter"


@needs_gpu
@pytest.mark.parametrize("name,make_opt,hyper", CASES)
def test_gpu_matches_cpu(name, make_opt, hyper, dtype):
    """The same steps on cuda:0 and on the CPU, and the state moving CPU -> GPU mid-run."""
    rng = np.random.default_rng(5)
    W0, grads = rng.normal(size=(64, 33)), [rng.normal(size=(64, 33)) for _ in range(5)]
    cpu, gpu = gpubp.get_backend("cpu", dtype), gpubp.get_backend("cuda:0", dtype)
    on_cpu, _, _ = run_steps(make_opt, cpu, grads, W0)
    on_gpu, opt, _ = run_steps(make_opt, gpu, grads, W0)
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(on_gpu, on_cpu, **tol)
    _, opt, model = run_steps(make_opt, cpu, grads[:2], W0)
    model.to(gpu)
    for g in grads[2:]:
        model.layers[0].grads["W"][...] = gpu.asarray(g)
        opt.step(model)
    assert all(gpu.is_own(a) for st in opt.state.values() for a in st.values())
    np.testing.assert_allclose(gpu.to_numpy(model.layers[0].params["W"]), on_cpu, **tol)


def _model_with_gradients(backend, seed):
    model = gpubp.Sequential([gpubp.Dense(4, 3), gpubp.Sigmoid(), gpubp.Dense(3, 2)], backend=backend, seed=seed)
    for layer in (model.layers[0], model.layers[2]):
        for name, g in layer.grads.items():
            g[...] = backend.asarray(np.random.default_rng(seed).normal(size=g.shape))
    return model


@pytest.mark.parametrize("replace", ["keep_gradients_in", "load_state_dict", "swap_layer", "reset_parameters"])
def test_a_kept_preparation_follows_every_replacement_of_arrays(replace):
    """``step`` keeps the checked (gradient, parameter, slots) list between steps; after each
    way gpubp replaces those arrays, the next step must use the new ones: it equals the step
    of a fresh optimizer given the same state (a swapped layer's slots start anew: none for it)."""
    backend = gpubp.get_backend("cpu", "float64")
    model, opt = _model_with_gradients(backend, 0), Adam(lr=0.1)
    opt.step(model)
    opt.step(model)
    if replace == "keep_gradients_in":
        fresh = {k: backend.zeros(g.shape) for k, g in model.gradients().items()}
        model.keep_gradients_in(fresh)  # copies the current gradients in
        for g in fresh.values():
            g += 0.5
    elif replace == "load_state_dict":
        state = opt.state_dict()
        state["state"]["0.W"]["m"] = state["state"]["0.W"]["m"] + 1.0
        opt.load_state_dict(state, backend)
    elif replace == "swap_layer":
        model.layers[2] = _model_with_gradients(backend, 1).layers[2]
    else:
        model.reset_parameters(seed=3)
        _model_with_gradients(backend, 4)  # (only its RNG stream: grads of the new arrays below)
        for g in model.gradients().values():
            g[...] = 0.25
    reference, state = Adam(lr=0.1), opt.state_dict()
    if replace == "swap_layer":
        state["state"].update({name: {} for name in state["state"] if name.startswith("2.")})
    reference.load_state_dict(state, backend)
    twin = gpubp.Sequential.from_config(model.config(), backend=backend)
    twin.load_parameters(model.parameters())
    for name, g in twin.gradients().items():
        g[...] = model.gradients()[name]
    opt.step(model)
    reference.step(twin)
    for name, p in twin.parameters().items():
        np.testing.assert_array_equal(model.parameters()[name], p, err_msg=name)


def test_a_step_after_zero_grad_alone_reads_zero_gradients():
    backend = gpubp.get_backend("cpu", "float64")
    model, opt = _model_with_gradients(backend, 0), SGD(lr=0.5)
    opt.step(model)
    before = {k: v.copy() for k, v in model.parameters().items()}
    model.zero_grad()
    opt.step(model)  # zero_grad, no backward: the gradients are zero, so nothing moves
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(p, before[name], err_msg=name)


@pytest.mark.parametrize("name,make_opt,hyper", CASES)
def test_one_kernel_for_a_flat_model_updates_as_one_per_parameter(name, make_opt, hyper):
    """A Sequential keeps its parameters and gradients in one flat buffer each, so the update is
    one kernel over all of them: the same numbers, bit for bit, as one kernel per parameter."""
    backend = gpubp.get_backend("cpu", "float32")
    models = [_model_with_gradients(backend, 0) for _ in range(2)]
    separate = {k: backend.zeros(g.shape) for k, g in models[1].gradients().items()}
    models[1].keep_gradients_in(separate)  # no longer flat: one kernel per parameter
    assert models[0].flat is not None and models[1].flat is None
    opts = [make_opt(), make_opt()]
    for step in range(3):
        for model, opt in zip(models, opts):
            for k, g in model.gradients().items():
                g[...] = np.random.default_rng(step).normal(size=g.shape)
            opt.step(model)
    assert [len(opt.prepared(m).runs) for m, opt in zip(models, opts)] == [1, len(models[1].parameters())]
    for k, p in models[0].parameters().items():
        np.testing.assert_array_equal(p, models[1].parameters()[k], err_msg=k)
    for k, state in opts[0].state.items():  # the state stays per parameter (views of the flat slots)
        for slot, a in state.items():
            np.testing.assert_array_equal(a, opts[1].state[k][slot], err_msg=f"{k}.{slot}")


def test_a_model_stays_flat_through_moves_and_loads():
    model = gpubp.mlp(4, [8, 6], 3, seed=0)
    params, grads = model.flat
    assert params.size == sum(p.size for p in model.parameters().values())
    assert all(np.shares_memory(p, params) for p in model.parameters().values())
    model.to("cpu/float64")
    assert model.flat is not None and model.flat[0].dtype == np.float64
    lazy = gpubp.Sequential([gpubp.Dense(4, 3), gpubp.Tanh(), gpubp.Dense(3, 2)], seed=None)
    assert lazy.flat is None  # nothing drawn yet
    lazy.load_parameters({k: np.ones(s) for k, s in lazy.parameter_shapes().items()})
    assert lazy.flat is not None and float(lazy.flat[0].sum()) == lazy.flat[0].size


@pytest.mark.parametrize("draw", ["forward", "plan"])
def test_parameters_drawn_on_first_use_end_up_flat(draw):
    # seed=None: each layer draws its own parameters at its first use, one array each; the model
    # then keeps them flat (the values kept), so the update is still one kernel
    from gpubp.plan import StepPlan
    def model():
        return gpubp.Sequential([gpubp.Dense(4, 8, seed=1), gpubp.Tanh(), gpubp.Dense(8, 3, seed=2)], seed=None)
    lazy = model()
    assert lazy.flat is None
    X = lazy.backend.asarray(np.ones((5, 4)))
    drawn = {f"{i}.W": layer.params["W"].copy() for i, layer in enumerate(model().layers) if layer.params}
    if draw == "forward":
        lazy.forward(X)
    else:
        StepPlan(lazy, "mse", SGD(lr=0.1), (5, 4))
    assert lazy.flat is not None
    assert all(np.shares_memory(p, lazy.flat[0]) for p in lazy.parameters().values())
    for k, W in drawn.items():  # each layer's own seed: the same draw as unflattened
        np.testing.assert_array_equal(lazy.parameters()[k], W, err_msg=k)
    opt = SGD(lr=0.1)
    lazy.zero_grad()
    assert len(opt.prepared(lazy).runs) == 1


def test_a_deep_copied_model_is_not_taken_for_flat():
    # deepcopy turns each view into an array of its own: an update of the copied flat buffer
    # would reach no parameter (a silent no-op), so the copy must take one kernel per parameter
    import copy
    model = _model_with_gradients(gpubp.get_backend("cpu", "float64"), 0)
    twin = copy.deepcopy(model)
    assert model.flat is not None and twin.flat is None
    before = {k: v.copy() for k, v in twin.parameters().items()}
    SGD(lr=0.5).step(twin)
    assert all(not np.array_equal(v, before[k]) for k, v in twin.parameters().items())


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1, momentum=0.9), lambda: Adam(lr=0.01)], ids=["momentum", "adam"])
def test_a_parameter_replaced_by_assignment_is_the_one_the_optimizer_updates(make):
    """``layer.params["W"] = W2`` between two steps: the next steps update W2 (the optimizer's
    update, bound to the model's flat buffer, is bound anew), exactly as after loading W2's
    values in place; an array that cannot be W is refused by name."""
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(16, 5)), rng.normal(size=(16, 2))
    models = [gpubp.mlp(5, [6], 2, "tanh", "cpu", "float64", seed=1) for _ in range(2)]
    opts = [make(), make()]

    def step(model, opt):
        loss = gpubp.losses.MSE()
        loss.forward(model.forward(X), T)
        model.zero_grad()
        model.backward(loss.backward(), input_grad=False)
        opt.step(model)
    for model, opt in zip(models, opts):
        step(model, opt)
    W2 = rng.normal(size=(5, 6))
    models[0].layers[0].params["W"] = W2.copy()
    models[1].layers[0].load_parameters({"W": W2, "b": models[1].layers[0].params["b"]})
    for _ in range(3):
        for model, opt in zip(models, opts):
            step(model, opt)
    assert models[0].layers[0].params["W"] is not None and not np.allclose(models[0].layers[0].params["W"], W2)
    for (name, a), b in zip(models[0].parameters().items(), models[1].parameters().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    with pytest.raises(gpubp.errors.ShapeError, match=r"Dense\(5, 6\) parameter W is float64 \(5, 6\), got float64 \(6, 5\)"):
        models[0].layers[0].params["W"] = np.zeros((6, 5))
    with pytest.raises(gpubp.errors.DTypeError, match="parameter W"):
        models[0].layers[0].params["W"] = np.zeros((5, 6), np.float32)
