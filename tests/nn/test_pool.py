"""MaxPool2D, AvgPool2D, GlobalAvgPool2D and Flatten: forward and backward against direct
loops, gradients against central differences (float64), tie routing, CPU/GPU parity on
the device fixture, and errors that name the layer."""
import json

import numpy as np
import pytest

import gpubp
from gpubp.nn import AvgPool2D, Flatten, GlobalAvgPool2D, MaxPool2D

from helpers import TOL, torch_reference

# (kernel_size, stride, (H, W)): PyTorch's default stride = kernel, overlapping windows
# (stride < kernel), floor mode dropping rows/columns, non-square kernels and strides.
CASES = {
    "k2": (2, None, (6, 4)),
    "k2_odd_floor": (2, None, (5, 7)),
    "k3_s2_overlap": (3, 2, (7, 6)),
    "k3_s1_overlap": (3, 1, (5, 5)),
    "k2x3_s1x2": ((2, 3), (1, 2), (5, 8)),
    "k1": (1, None, (3, 2)),
    "k_whole": ((4, 3), None, (4, 3)),
}
POOLS = {"max": MaxPool2D, "avg": AvgPool2D}


def pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def distinct(shape, seed=0):
    """Values at least 1e-3 apart (no ties for finite differences to break), shuffled."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 1e-3 - n * 5e-4).reshape(shape) * 10


def naive_pool(kind, X, kernel, stride, dY):
    """(Y, dX) one window at a time; the max gradient goes to the first maximum (row-major)."""
    (kh, kw), (sh, sw) = pair(kernel), pair(stride or kernel)
    N, C, H, W = X.shape
    OH, OW = (H - kh) // sh + 1, (W - kw) // sw + 1
    Y, dX = np.zeros((N, C, OH, OW)), np.zeros_like(X)
    for n in range(N):
        for c in range(C):
            for y in range(OH):
                for x in range(OW):
                    rows, cols = slice(y * sh, y * sh + kh), slice(x * sw, x * sw + kw)
                    window = X[n, c, rows, cols]
                    if kind == "max":
                        i, j = divmod(int(np.argmax(window)), kw)
                        Y[n, c, y, x] = window[i, j]
                        dX[n, c, y * sh + i, x * sw + j] += dY[n, c, y, x]
                    else:
                        Y[n, c, y, x] = window.sum() / (kh * kw)
                        dX[n, c, rows, cols] += dY[n, c, y, x] / (kh * kw)
    return Y, dX


def pool(kind, case, backend):
    k, s, _ = CASES[case]
    return POOLS[kind](k, s, backend=backend)


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_loops(kind, case, device):
    backend = gpubp.get_backend(device, "float64")
    k, s, hw = CASES[case]
    X = np.random.default_rng(1).normal(size=(2, 3, *hw))
    layer = pool(kind, case, backend)
    Y = backend.to_numpy(layer(backend.asarray(X)))
    dY = np.random.default_rng(2).normal(size=Y.shape)
    Y_ref, dX_ref = naive_pool(kind, X, k, s, dY)
    np.testing.assert_allclose(Y, Y_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.backward(backend.asarray(dY))), dX_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients(kind, case, device):
    backend = gpubp.get_backend(device, "float64")
    X = backend.asarray(distinct((2, 2, *CASES[case][2])))
    report = gpubp.gradcheck_layer(pool(kind, case, backend), X, atol=1e-8, rtol=1e-6)
    assert report.ok and [r.name for r in report.rows] == ["dX"]


@pytest.mark.parametrize("make", [GlobalAvgPool2D, Flatten, lambda backend: Flatten(0, 2, backend=backend)],
                         ids=["global_avg", "flatten", "flatten_0_2"])
def test_reshaping_layer_gradients(make, device):
    backend = gpubp.get_backend(device, "float64")
    report = gpubp.gradcheck_layer(make(backend=backend), backend.asarray(distinct((2, 3, 4, 5))),
                                   atol=1e-8, rtol=1e-6)
    assert report.ok


def test_max_ties_go_to_the_first_maximum(device):
    """Equal values: one element wins, the first in row-major window order (as PyTorch)."""
    backend = gpubp.get_backend(device, "float64")
    X = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]])
    layer = MaxPool2D(2, backend=backend)
    np.testing.assert_array_equal(backend.to_numpy(layer(backend.asarray(X))), [[[[1.0, 2.0]]]])
    dX = backend.to_numpy(layer.backward(backend.asarray(np.array([[[[5.0, 7.0]]]]))))
    np.testing.assert_array_equal(dX, [[[[5.0, 0.0, 0.0, 7.0], [0.0, 0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), ((2, 3), (1, 2))], ids=["k2", "k3_s1", "k2x3_s1x2"])
def test_max_nan_routes_as_pytorch(kernel, stride, device):
    """A NaN makes its window's maximum NaN, and that window's gradient goes to the NaN PyTorch
    selects (its last NaN in row-major window order, on the CPU in float64): windows with one NaN,
    several, NaN beside ties and +-inf, overlapping windows; the other windows are unaffected."""
    torch = pytest.importorskip("torch")
    backend, nan, inf = gpubp.get_backend(device, "float64"), np.nan, np.inf
    X = np.random.default_rng(7).normal(size=(2, 2, 6, 7))
    X[0, 0, :2, :2] = [[1.0, nan], [3.0, 1.0]]          # one NaN
    X[0, 0, 2:4, :2] = [[nan, 5.0], [nan, 2.0]]         # two: the later one
    X[0, 1, :3, :3] = [[nan, 0.0, nan], [0.0, 0.0, nan], [4.0, nan, 1.0]]
    X[1, 0, :2, 2:6] = [[inf, nan, 2.0, 2.0], [nan, -inf, 2.0, 1.0]]
    X[1, 1] = nan                                       # every entry NaN
    ours = MaxPool2D(kernel, stride, backend=backend)
    Y, dX, dY = torch_reference(torch.nn.MaxPool2d(kernel, stride), X, seed=8)
    assert np.isnan(Y).any() and not np.isnan(Y).all()
    np.testing.assert_array_equal(backend.to_numpy(ours(backend.asarray(X))), Y)
    # overlapping windows add in another order: a misrouted dY would be off by O(1), not 1e-15
    np.testing.assert_allclose(backend.to_numpy(ours.backward(backend.asarray(dY))), dX, rtol=1e-12, atol=1e-12)


def test_max_backward_follows_its_own_forward(device):
    """Each backward routes dY by the winners of the latest forward, and neither the returned Y
    nor dX is written by later calls (no shared buffers are handed out)."""
    backend, rng = gpubp.get_backend(device, "float64"), np.random.default_rng(6)
    layer = MaxPool2D(2, backend=backend)
    X1, X2 = rng.normal(size=(2, 3, 6, 4)), rng.normal(size=(3, 3, 4, 4))
    dY1, dY2 = rng.normal(size=(2, 3, 3, 2)), rng.normal(size=(3, 3, 2, 2))
    Y1 = layer(backend.asarray(X1))
    dX1 = layer.backward(backend.asarray(dY1))
    kept = backend.to_numpy(Y1).copy(), backend.to_numpy(dX1).copy()
    Y2 = layer(backend.asarray(X2))
    dX2 = layer.backward(backend.asarray(dY2))
    for got, (Y_ref, dX_ref) in [((Y1, dX1), naive_pool("max", X1, 2, None, dY1)),
                                 ((Y2, dX2), naive_pool("max", X2, 2, None, dY2))]:
        np.testing.assert_array_equal(backend.to_numpy(got[0]), Y_ref)
        np.testing.assert_array_equal(backend.to_numpy(got[1]), dX_ref)
    np.testing.assert_array_equal(backend.to_numpy(Y1), kept[0])
    np.testing.assert_array_equal(backend.to_numpy(dX1), kept[1])


def test_overlapping_windows_add_up(device):
    """The centre of a 3x3 image wins all four 2x2 windows (stride 1) and collects all four dY."""
    backend = gpubp.get_backend(device, "float64")
    X = np.zeros((1, 1, 3, 3))
    X[0, 0, 1, 1] = 1.0
    layer = MaxPool2D(2, stride=1, backend=backend)
    layer(backend.asarray(X))
    dX = backend.to_numpy(layer.backward(backend.asarray(np.arange(1.0, 5.0).reshape(1, 1, 2, 2))))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dX, expected)


def test_global_avg_and_flatten_shapes(device):
    backend = gpubp.get_backend(device, "float64")
    X = distinct((2, 3, 4, 5))
    Y = GlobalAvgPool2D(backend=backend)(backend.asarray(X))
    np.testing.assert_allclose(backend.to_numpy(Y), X.mean(axis=(2, 3)), rtol=0, atol=1e-12)
    assert Flatten(backend=backend)(backend.asarray(X)).shape == (2, 60)
    assert Flatten(2, backend=backend)(backend.asarray(X)).shape == (2, 3, 20)
    assert Flatten(1, 2, backend=backend)(backend.asarray(X)).shape == (2, 12, 5)


@pytest.mark.parametrize("make", [lambda be: MaxPool2D(3, 2, backend=be), lambda be: AvgPool2D((2, 3), backend=be),
                                  lambda be: GlobalAvgPool2D(backend=be), lambda be: Flatten(backend=be),
                                  lambda be: MaxPool2D(3, 2, 1, backend=be),
                                  lambda be: MaxPool2D((2, 3), 2, (1, 1), ceil_mode=True, backend=be),
                                  lambda be: AvgPool2D(3, 2, 1, True, backend=be),
                                  lambda be: AvgPool2D((3, 2), 2, (1, 0), True, False, backend=be),
                                  lambda be: AvgPool2D(2, 1, 1, divisor_override=3, backend=be)],
                         ids=["max", "avg", "global_avg", "flatten", "max_p1", "max_ceil", "avg_ceil",
                              "avg_ceil_no_pad_count", "avg_divisor"])
def test_parity(make, device, dtype):
    """Forward and dX on ``device`` in ``dtype`` against the CPU in float64 (TOL by dtype), padded
    and ceil-mode pools too."""
    tol, rng = TOL[np.dtype(dtype)], np.random.default_rng(4)
    X = rng.normal(size=(3, 2, 7, 6)).astype(dtype).astype(np.float64)
    layer, ref = make(gpubp.get_backend(device, dtype)), make(gpubp.get_backend("cpu", "float64"))
    if isinstance(ref, MaxPool2D):
        X[0, 0, 0, :3] = -np.inf  # beside a padding: it must not win the tie
    be, Y_ref = layer.backend, ref(X)
    Y = be.to_numpy(layer(be.asarray(X)))
    np.testing.assert_allclose(Y, Y_ref, **tol)
    dY = rng.normal(size=Y_ref.shape).astype(dtype).astype(np.float64)
    dX = be.to_numpy(layer.backward(be.asarray(dY)))
    assert Y.dtype == dX.dtype == np.dtype(dtype)  # nothing promoted to float64
    np.testing.assert_allclose(dX, ref.backward(dY), **tol)


def test_config_and_repr():
    assert repr(MaxPool2D(2)) == "MaxPool2D(kernel_size=2, stride=2)"
    assert repr(AvgPool2D((2, 3), 1)) == "AvgPool2D(kernel_size=(2, 3), stride=1)"
    assert repr(GlobalAvgPool2D()) == "GlobalAvgPool2D()"
    assert repr(Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    for layer in (MaxPool2D(3, 2), AvgPool2D((2, 3)), GlobalAvgPool2D(), Flatten(2)):
        config = json.loads(json.dumps(layer.config()))
        cls = type(layer)
        assert config.pop("type") == cls.__name__
        assert cls(**config).config() == layer.config()
        assert layer.parameter_shapes() == {} and layer.params == {}


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_bad_arguments_and_inputs(kind):
    cls, name = POOLS[kind], POOLS[kind].__name__
    with pytest.raises(gpubp.InvalidValueError, match=f"{name} kernel_size must be >= 1"):
        cls(0)
    with pytest.raises(gpubp.InvalidValueError, match=f"{name} stride must be >= 1"):
        cls(2, stride=(1, 0))
    layer = cls(3, backend=gpubp.get_backend("cpu", "float64"))
    with pytest.raises(gpubp.ShapeError, match=f"{name} input: expected a 4-d array, got shape"):
        layer(np.zeros((4, 4)))
    with pytest.raises(gpubp.ShapeError, match=rf"{name}\(kernel_size=3, stride=3\): the 3x3 window is "
                                               r"larger than the padded input 2x5"):
        layer(np.zeros((1, 1, 2, 5)))
    with pytest.raises(gpubp.StateError, match=f"{name}.backward called before forward"):
        layer.backward(np.zeros((1, 1, 1, 1)))
    layer(np.zeros((1, 2, 6, 6)))
    with pytest.raises(gpubp.ShapeError, match=r"expected \(1, 2, 2, 2\)"):
        layer.backward(np.zeros((1, 2, 3, 3)))


def test_global_avg_and_flatten_errors():
    backend = gpubp.get_backend("cpu", "float64")
    with pytest.raises(gpubp.ShapeError, match="GlobalAvgPool2D input: expected a 4-d array"):
        GlobalAvgPool2D(backend=backend)(np.zeros((2, 3)))
    with pytest.raises(gpubp.ShapeError, match="GlobalAvgPool2D needs NCHW inputs with H, W >= 1"):
        GlobalAvgPool2D(backend=backend)(np.zeros((2, 3, 0, 4)))
    with pytest.raises(gpubp.ShapeError, match=r"Flatten\(start_dim=1, end_dim=-1\) cannot flatten a 1-d input"):
        Flatten(backend=backend)(np.zeros(3))
    with pytest.raises(gpubp.InvalidValueError, match=r"Flatten start_dim=3 comes after end_dim=1"):
        Flatten(3, 1, backend=backend)  # where it is made (tests/nn/test_flatten_dims.py)
    with pytest.raises(gpubp.InvalidValueError, match="Flatten start_dim must be a whole number, got 1.5"):
        Flatten(1.5)
    layer = Flatten(backend=backend)
    layer(np.zeros((2, 3, 4)))
    with pytest.raises(gpubp.ShapeError, match=r"Flatten.backward: dY has shape \(2, 11\), expected \(2, 12\)"):
        layer.backward(np.zeros((2, 11)))


def test_matches_torch():
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(3).normal(size=(2, 3, 7, 6))
    X[0, 0, :2, :2] = 1.5  # a tied window
    for ours, theirs in [(MaxPool2D(3, 2), torch.nn.MaxPool2d(3, 2)), (MaxPool2D(2), torch.nn.MaxPool2d(2)),
                         (AvgPool2D((2, 3), 1), torch.nn.AvgPool2d((2, 3), 1))]:
        ours.to(gpubp.get_backend("cpu", "float64"))
        Y, dX, dY = torch_reference(theirs, X, seed=4)
        np.testing.assert_allclose(ours(X), Y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours.backward(dY), dX, rtol=1e-12, atol=1e-12)
