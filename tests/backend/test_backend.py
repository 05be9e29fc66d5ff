"""Backend selection: "auto" with its reason, GPUBP_DEVICE, use_backend nesting, caching,
and same seed -> bit-identical initial weights on every backend and dtype."""
import numpy as np
import pytest

import gpubp
from gpubp.backend import auto_choice, backend_of, default_device, get_backend, parse_spec, use_backend

from helpers import DEVICES, GPU_OK, GPU_REASON, TOL, needs_no_gpu


def test_auto_gives_a_device_and_a_reason():
    device, reason = auto_choice()
    assert get_backend("auto").device == device
    if GPU_OK:
        assert device == "cuda:0" and "CUDA device" in reason
    else:
        assert device == "cpu" and GPU_REASON in reason and "NumPy" in reason


@pytest.mark.parametrize("spec, device", [("cpu", "cpu"), ("numpy", "cpu"), (" CPU ", "cpu"), ("gpu", "cuda:0"),
                                          ("cuda", "cuda:0"), ("cupy", "cuda:0"), ("cuda:2", "cuda:2"),
                                          ("cuda:02", "cuda:2")])
def test_parse_spec_device(spec, device):
    assert parse_spec(spec) == (device, None)


@pytest.mark.parametrize("spec, expected", [("cpu/float64", ("cpu", "float64")), ("cuda:1/float32", ("cuda:1", "float32")),
                                            (("cpu", "float64"), ("cpu", "float64")), ("gpu/", ("cuda:0", None))])
def test_parse_spec_dtype(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "cpu/float16", "cpu/int32"])
def test_parse_spec_refuses(spec):
    with pytest.raises(gpubp.GpubpError, match="cpu|dtype"):
        parse_spec(spec)


@pytest.mark.parametrize("dtype", ["bogus", 3, "float16", object()])
def test_a_dtype_that_is_no_float_dtype_is_named(dtype):
    # NumPy's np.dtype('float64') == None is True: a name NumPy does not know must not pass for float64
    with pytest.raises(gpubp.DTypeError, match="dtype must be float32 or float64, got"):
        get_backend("cpu", dtype)


def test_spec_dtype_and_argument_must_agree():
    assert get_backend("cpu/float64").dtype == np.float64
    assert get_backend("cpu/float64", "float64").dtype == np.float64
    with pytest.raises(gpubp.DeviceError, match="names dtype float64 but dtype=float32"):
        get_backend("cpu/float64", "float32")


def test_backends_are_cached_per_device_and_dtype():
    a, b = get_backend("cpu", "float32"), get_backend("cpu", np.float32)
    c = get_backend("cpu", "float64")
    assert a is b and a is not c and c.dtype == np.float64
    assert get_backend(a, "float64") is c and get_backend(c, "float64") is c


def test_env_var_sets_the_default(monkeypatch):
    monkeypatch.setenv("GPUBP_DEVICE", "cpu")
    assert default_device() == "cpu" and get_backend().device == "cpu"
    monkeypatch.setenv("GPUBP_DEVICE", "warp-drive")
    with pytest.raises(gpubp.DeviceError, match="warp-drive"):
        get_backend()
    monkeypatch.delenv("GPUBP_DEVICE")
    assert default_device() == "auto"


def test_use_backend_nests_and_beats_the_env_var(monkeypatch):
    monkeypatch.setenv("GPUBP_DEVICE", "not-a-device")
    with use_backend("cpu") as outer:
        assert outer.device == "cpu" and default_device() == "cpu"
        assert gpubp.Dense(2, 2).backend.device == "cpu"
        with use_backend(get_backend("cpu", "float64")):  # its dtype too (it was dropped: float32 models)
            assert default_device() == "cpu/float64" and gpubp.Dense(2, 2).backend.dtype == np.float64
            with use_backend("cpu"):
                assert default_device() == "cpu"
        assert default_device() == "cpu"
    assert default_device() == "not-a-device"


def test_use_backend_restores_on_error(monkeypatch):
    monkeypatch.delenv("GPUBP_DEVICE", raising=False)
    with pytest.raises(KeyError):
        with use_backend("cpu"):
            raise KeyError("inside")
    assert default_device() == "auto"
    with pytest.raises(gpubp.DeviceError):
        with use_backend("tpu"):
            pass
    assert default_device() == "auto"


@needs_no_gpu
def test_use_backend_gpu_without_gpu_fails_at_entry():
    with pytest.raises(gpubp.DeviceError, match="cuda:0 requested but unusable"):
        with use_backend("gpu"):
            pass


def test_backend_of(backend):
    a = backend.asarray([[1.0, 2.0]])
    assert backend_of(a) is backend
    labels = backend.asarray(np.array([0, 1]))
    assert labels.dtype.kind == "i"  # integer labels keep their dtype


def test_asarray_round_trip_keeps_dtype(backend):
    host = np.random.default_rng(0).normal(size=(3, 4))
    dev = backend.asarray(host)
    assert backend.is_own(dev) and dev.dtype == backend.dtype
    np.testing.assert_array_equal(backend.to_numpy(dev), host.astype(backend.dtype))
    assert backend.to_numpy(dev).__class__ is np.ndarray


@pytest.mark.parametrize("rows", [1, 3, 3, 257])
def test_sum_rows_is_the_column_sum(backend, rows):
    # db = 1^T delta as a GEMV; the repeated 3 reuses the cached ones vector
    host = np.random.default_rng(rows).normal(size=(rows, 5))
    out = backend.empty((5,))
    got = backend.sum_rows(backend.asarray(host), out=out)
    assert got is out and got.dtype == backend.dtype
    np.testing.assert_allclose(backend.to_numpy(got), host.astype(backend.dtype).sum(axis=0), **TOL[backend.dtype])


def test_float32_arithmetic_stays_float32():
    """NumPy 2 promotion: Python-float factors must not turn float32 into float64."""
    be = get_backend("cpu", "float32")
    m = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.LeakyReLU(0.1), gpubp.Dense(4, 2)], backend=be)
    X = be.asarray(np.ones((5, 3)))
    for loss, T in [(gpubp.MSE(), np.zeros((5, 2))), (gpubp.BinaryCrossEntropy(), np.ones((5, 2))),
                    (gpubp.SoftmaxCrossEntropy(), np.array([0, 1, 0, 1, 1]))]:
        value = loss.forward(m.forward(X), be.asarray(T))
        m.zero_grad()
        dX = m.backward(loss.backward())
        assert value.dtype == np.float32 and dX.dtype == np.float32, type(loss).__name__
        assert all(g.dtype == np.float32 for g in m.gradients().values())


def weights(device, dtype, seed):
    m = gpubp.Sequential([gpubp.Dense(5, 7), gpubp.Tanh(), gpubp.Dense(7, 3, init="he_normal")],
                         backend=get_backend(device, dtype), seed=seed)
    return {k: m.backend.to_numpy(v) for k, v in m.parameters().items()}


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_bit_identical_weights_everywhere(device):
    """Weights are drawn in float64 on the host: every device and dtype starts from the same
    numbers (float32 = the float64 draw rounded once)."""
    ref = weights("cpu", "float64", seed=3)
    assert any(not np.array_equal(ref[k], v) for k, v in weights("cpu", "float64", seed=4).items())
    for dtype in ("float32", "float64"):
        got = weights(device, dtype, seed=3)
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k].astype(dtype), err_msg=f"{device} {dtype} {k}")


def test_moving_a_model_keeps_its_weights():
    m = gpubp.Sequential([gpubp.Dense(4, 3)], dtype="float64", seed=1)
    before = {k: v.copy() for k, v in m.parameters().items()}
    m.to("cpu", "float32").to("cpu", "float64")
    for k, v in m.parameters().items():
        np.testing.assert_allclose(v, before[k], rtol=1e-7)  # float32 rounding, nothing else
        assert v.dtype == np.float64
