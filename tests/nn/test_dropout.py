"""Dropout: the mask is a function of (seed, step) alone (the same on every device, recomputed
here with NumPy), the fraction dropped and the 1 / (1 - p) scaling, backward through the
same mask, identity in eval and for p = 0, seeds derived from the model's seed, a resumed
run repeating an uninterrupted one, and errors naming p."""
import json

import numpy as np
import pytest

import gpubp
from gpubp.backend.kernels import dropout as dropout_kernels
from gpubp.nn import Dropout

from helpers import TOL


def keep_mask(seed, step, shape, p):
    """The documented mask: keep[i] = murmur3(i, key(seed, step)) >= round(p 2^32), by the kernel's
    plain reference formula (held to MurmurHash3's published values in test_dropout_counter.py)."""
    k0, k1 = dropout_kernels.key_words(seed, step)
    _, mask = dropout_kernels.dropout.reference(np.ones(shape), k0, k1, dropout_kernels.threshold(p), 0, 1.0)
    return mask == 1


@pytest.mark.parametrize("shape", [(8, 5), (3, 2, 4, 5)], ids=["2d", "4d"])
def test_mask_is_a_function_of_seed_and_step(shape, device, dtype):
    backend, p = gpubp.get_backend(device, dtype), 0.3
    layer = Dropout(p, seed=17, backend=backend)
    X = np.random.default_rng(0).normal(size=shape)
    Xd = backend.asarray(X)
    for step in range(3):
        Y = backend.to_numpy(layer(Xd))
        scale = np.asarray(1 / (1 - p), dtype)  # rounded once to the layer's dtype
        expected = np.where(keep_mask(17, step, shape, p), X.astype(dtype) * scale, 0)
        np.testing.assert_array_equal(Y, expected)  # one IEEE product per element: exact on any device
        assert Y.dtype == np.dtype(dtype) and layer.step == step + 1
    again = Dropout(p, seed=17, backend=backend)
    again.step = 1
    np.testing.assert_array_equal(backend.to_numpy(again(Xd)), np.where(keep_mask(17, 1, shape, p), X.astype(dtype) * scale, 0))


def test_same_mask_on_cpu_and_device(device):
    """Two layers with the same (seed, step), one on the CPU and one on ``device``, drop the same units."""
    X = np.random.default_rng(1).normal(size=(16, 32)) + 3.0  # no zeros of its own
    cpu = Dropout(0.5, seed=5, backend=gpubp.get_backend("cpu", "float32"))
    dev = Dropout(0.5, seed=5, backend=gpubp.get_backend(device, "float32"))
    cpu.step = dev.step = 41
    Y_cpu = cpu(cpu.backend.asarray(X))
    Y_dev = dev.backend.to_numpy(dev(dev.backend.asarray(X)))
    np.testing.assert_array_equal(Y_cpu == 0, Y_dev == 0)
    np.testing.assert_allclose(Y_dev, Y_cpu, **TOL[np.dtype("float32")])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_dropped_and_scaling(p):
    layer = Dropout(p, seed=3, backend=gpubp.get_backend("cpu", "float64"))
    X = np.ones((200, 500))
    Y = layer(X)
    n, dropped = X.size, float(np.mean(Y == 0))
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)  # five binomial standard deviations
    np.testing.assert_array_equal(np.unique(Y), [0.0, 1 / (1 - p)])
    assert abs(Y.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)  # inverted dropout keeps the mean


def test_backward_uses_the_forward_mask(device):
    """dX = dY * keep / (1 - p), by hand and by central differences with the step held fixed."""
    backend, p = gpubp.get_backend(device, "float64"), 0.4
    layer = Dropout(p, seed=9, backend=backend)
    rng = np.random.default_rng(2)
    X, dY = rng.normal(size=(4, 3, 3, 2)), rng.normal(size=(4, 3, 3, 2))
    layer.step = 6
    layer(backend.asarray(X))
    dX = backend.to_numpy(layer.backward(backend.asarray(dY)))
    np.testing.assert_allclose(dX, dY * keep_mask(9, 6, X.shape, p) / (1 - p), rtol=1e-15, atol=0)

    def f(Xv):  # L = sum(dY * Y) at the same (seed, step)
        layer.step = 6
        return float((backend.to_numpy(layer(backend.asarray(Xv))) * dY).sum())
    eps, numeric = 1e-6, np.empty(X.size)
    for i in range(X.size):
        e = np.zeros(X.size)
        e[i] = eps
        numeric[i] = (f(X + e.reshape(X.shape)) - f(X - e.reshape(X.shape))) / (2 * eps)
    np.testing.assert_allclose(numeric.reshape(X.shape), dX, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4, 3)], ids=["2d", "4d"])
def test_gradcheck_in_eval(shape, device):
    backend = gpubp.get_backend(device, "float64")
    layer = Dropout(0.5, backend=backend)
    layer.training = False
    report = gpubp.gradcheck_layer(layer, backend.asarray(np.random.default_rng(0).normal(size=shape)))
    assert report.ok and [r.name for r in report.rows] == ["dX"]


def test_eval_and_p0_are_identity():
    X, dY = np.random.default_rng(0).normal(size=(6, 7)), np.ones((6, 7))
    layer = Dropout(0.5, seed=1, backend=gpubp.get_backend("cpu", "float64"))
    layer.training = False
    np.testing.assert_array_equal(layer(X), X)
    np.testing.assert_array_equal(layer.backward(dY), dY)
    assert layer.step == 0  # eval takes no step
    zero = Dropout(0.0, backend=gpubp.get_backend("cpu", "float64"))
    np.testing.assert_array_equal(zero(X), X)
    np.testing.assert_array_equal(zero.backward(dY), dY)
    assert zero.step == 1  # training forwards are counted whatever p is


def test_model_seed_gives_each_dropout_its_own_seed():
    def model(seed):
        return gpubp.Sequential([gpubp.Dense(4, 8), Dropout(0.5), gpubp.ReLU(), Dropout(0.5),
                                 gpubp.Dense(8, 2)], seed=seed)
    a, b, c = model(0), model(0), model(1)
    seeds = lambda m: [m.layers[i].seed for i in (1, 3)]  # noqa: E731
    assert seeds(a) == seeds(b) and seeds(a) != seeds(c) and len(set(seeds(a))) == 2
    plain = gpubp.Sequential([gpubp.Dense(4, 8), gpubp.ReLU(), gpubp.Dense(8, 2)], seed=0)
    np.testing.assert_array_equal(a.layers[4].params["W"], plain.layers[2].params["W"])  # weights unchanged
    X = np.ones((3, 4), np.float32)
    a(X)
    a(X)
    assert a.layers[1].step == 2
    a.reset_parameters(0)
    assert a.layers[1].state == b.layers[1].state == {"seed": seeds(b)[0], "step": 0}
    np.testing.assert_array_equal(a(X), b(X))


def test_resumed_run_repeats_uninterrupted_one():
    X = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    straight = Dropout(0.5, seed=11)
    outputs = [straight(X) for _ in range(5)]
    first = Dropout(0.5, seed=11)
    first(X)
    first(X)
    saved = {k: v.copy() for k, v in first.buffers.items()}  # what a checkpoint holds
    resumed = Dropout(0.5)
    resumed.load_buffers(saved)
    assert resumed.state == {"seed": 11, "step": 2}
    for k in range(2, 5):
        np.testing.assert_array_equal(resumed(X), outputs[k])
    other = Dropout(0.5)
    other.state = {"seed": 11, "step": 4}
    np.testing.assert_array_equal(other(X), outputs[4])


def test_buffers_and_to():
    layer = Dropout(0.25, seed=3)
    assert set(layer.buffers) == {"seed", "step"} and layer.params == {}
    assert all(b.dtype == np.int64 and b.shape == () for b in layer.buffers.values())
    layer(np.ones((2, 3), np.float32))
    assert layer.to("cpu/float64") is layer and layer.state == {"seed": 3, "step": 1}
    assert layer.mask is None and layer(np.ones((2, 3))).dtype == np.float64


def test_config_repr_roundtrip():
    layer = Dropout(0.3)
    assert repr(layer) == "Dropout(p=0.3)" and repr(Dropout()) == "Dropout(p=0.5)"
    config = json.loads(json.dumps(layer.config()))
    assert config.pop("type") == "Dropout" and Dropout(**config).p == 0.3


@pytest.mark.parametrize("p", [1, 1.0, 1.5, -0.1, float("nan"), float("inf"), "0.5", None, True])
def test_p_outside_range_refused(p):
    with pytest.raises(gpubp.InvalidValueError, match=r"Dropout p must be a finite number >= 0"):
        Dropout(p)


@pytest.mark.parametrize("what,value,words", [
    ("seed", -1, "Dropout seed must be a whole number >= 0, got -1"),
    ("seed", 2**63, "Dropout seed must be a whole number >= 0 and < 2\\*\\*63"),
    ("step", 1.5, "Dropout step must be a whole number >= 0, got 1.5"),
    ("state", {"seed": 1}, "Dropout state must be a dict with keys 'seed' and 'step'"),
])
def test_bad_seed_step_state(what, value, words):
    with pytest.raises(gpubp.InvalidValueError, match=words):
        setattr(Dropout(0.5), what, value)
    with pytest.raises(gpubp.InvalidValueError, match="Dropout seed"):
        Dropout(0.5, seed=2.5)


def test_bad_buffers_and_inputs():
    layer = Dropout(0.5, backend=gpubp.get_backend("cpu", "float64"))
    with pytest.raises(gpubp.ShapeError, match=r"Dropout\(p=0.5\) has buffers \['seed', 'step'\]"):
        layer.load_buffers({"seed": np.array(1)})
    with pytest.raises(gpubp.ShapeError, match="0-d integer arrays, got step float64 of shape"):
        layer.load_buffers({"seed": np.array(1), "step": np.array(2.0)})
    with pytest.raises(gpubp.StateError, match="Dropout.backward called before forward"):
        layer.backward(np.ones((2, 2)))
    layer(np.ones((2, 2)))
    with pytest.raises(gpubp.ShapeError, match=r"dY has shape \(2, 3\), expected \(2, 2\)"):
        layer.backward(np.ones((2, 3)))
    with pytest.raises(gpubp.DTypeError, match="Dropout input"):
        layer(np.ones((2, 2), np.float32))
