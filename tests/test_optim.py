"""Optimizers against textbook updates written out independently here (float64)."""
import numpy as np
import pytest

import gpubp
from gpubp.optim import SGD, Adam, AdamW, RMSprop, get_optimizer
from gpubp.schedules import Constant, Cosine, StepDecay, get_schedule


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
    ("rmsprop", lambda: RMSprop(lr=0.01), {}),
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


def test_schedules():
    assert Constant(0.1)(7) == 0.1
    assert StepDecay(1.0, 2, 0.5)(5) == pytest.approx(0.25)
    cos = Cosine(1.0, 10, min_lr=0.1)
    assert cos(0) == pytest.approx(1.0) and cos(10) == pytest.approx(0.1) and cos(5) == pytest.approx(0.55)
    assert get_schedule("cosine", 1.0, 10)(10) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="schedule"):
        get_schedule("warmup", 1.0, 10)
