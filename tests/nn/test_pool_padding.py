"""MaxPool2D and AvgPool2D with PyTorch's padding, ceil_mode, count_include_pad and divisor_override:
forward and dX against torch.nn.functional in float64 over a grid of windows and odd shapes (the
same inputs refused where PyTorch refuses them), central differences, MaxPool2D's NaN and tie
routing beside padding, AvgPool2D's float32 sums near float32's largest value, the errors,
config/repr through a checkpoint, a step plan, and CPU/GPU parity on the device fixture."""
import itertools
import json

import numpy as np
import pytest

import gpubp
from gpubp import checkpoint
from gpubp.nn import AvgPool2D, MaxPool2D, layer_from_config
from gpubp.plan import plan_problem

from helpers import assert_planned_fit_is_eager, stable_id, torch_reference

F64 = gpubp.get_backend("cpu", "float64")
SHAPES = [(5, 7), (4, 4), (1, 3), (7, 2), (2, 9), (6, 6)]  # odd, even, one row, one column's worth
WINDOWS = [  # (kernel_size, stride, padding): PyTorch's default stride, overlapping, non-square, padded by axis
    (2, None, 0), (2, None, 1), (2, 1, 1), (3, 2, 1), (3, 1, 1), (3, 3, 1), (3, None, 0),
    ((2, 3), (1, 2), (1, 1)), ((3, 2), 2, (1, 0)), ((3, 1), (2, 1), (0, 0)), (1, 2, 0), (4, 3, 2),
]
AVG_OPTIONS = [dict(count_include_pad=c, divisor_override=d) for c, d in itertools.product((True, False), (None, 5))]


def torch_pool(F, kind, X, k, s, p, ceil_mode, options):
    """(Y, dX, dY) of PyTorch's pool at X (float64, dY drawn from a fixed seed), or None where PyTorch refuses."""
    def module(tX):
        if kind == "max":
            return F.max_pool2d(tX, k, s, p, ceil_mode=ceil_mode)
        return F.avg_pool2d(tX, k, s, p, ceil_mode, **options)
    try:
        return torch_reference(module, X, seed=3)
    except RuntimeError:  # "Output size is too small"
        return None


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k, s, p", WINDOWS, ids=[f"k{k}_s{s}_p{p}".replace(" ", "") for k, s, p in WINDOWS])
def test_matches_torch(kind, k, s, p):
    """Y and dX to 1e-12, ceil_mode on and off, AvgPool2D's four divisor rules, every shape; an input
    PyTorch finds too small for the windows is a ShapeError here."""
    F = pytest.importorskip("torch.nn.functional")
    rng, compared = np.random.default_rng(0), 0
    for ceil_mode, options, hw in itertools.product((False, True), AVG_OPTIONS if kind == "avg" else [{}], SHAPES):
        X = rng.normal(size=(2, 3, *hw))
        expected = torch_pool(F, kind, X, k, s, p, ceil_mode, options)
        layer = (MaxPool2D(k, s, p, ceil_mode=ceil_mode, backend=F64) if kind == "max" else
                 AvgPool2D(k, s, p, ceil_mode, backend=F64, **options))
        if expected is None:
            with pytest.raises(gpubp.ShapeError, match="MaxPool2D|AvgPool2D"):
                layer(X)
            continue
        Y, dX, dY = expected
        where = f"{layer!r} on {hw}"
        np.testing.assert_allclose(layer(X), Y, rtol=0, atol=1e-12, err_msg=where)
        np.testing.assert_allclose(layer.backward(dY), dX, rtol=0, atol=1e-12, err_msg=where)
        compared += 1
    assert compared >= len(SHAPES)  # most inputs do fit


def test_pytorch_s_ceil_mode_rule():
    """The last window must start inside the input or its top/left padding: 5 rows, kernel 2,
    stride 2, padding 1 give ceil((5 + 2 - 2) / 2) + 1 = 4 windows, less the one starting at row 6
    (past 5 + 1); a kernel larger than the input fits in ceil mode when the stride is large."""
    assert MaxPool2D(2, 2, 1, ceil_mode=True).output_shape((1, 1, 5, 5)) == (1, 1, 3, 3)
    assert MaxPool2D(2, 2, 1).output_shape((1, 1, 5, 5)) == (1, 1, 3, 3)
    assert AvgPool2D(2, 2, ceil_mode=True).output_shape((1, 1, 5, 4)) == (1, 1, 3, 2)
    assert MaxPool2D(3, ceil_mode=True).output_shape((1, 1, 2, 2)) == (1, 1, 1, 1)
    with pytest.raises(gpubp.ShapeError, match=r"3x3 window with stride \(1, 1\) leaves no output .* even in ceil"):
        MaxPool2D(3, 1, ceil_mode=True).output_shape((1, 1, 2, 2))


def test_avg_divisors_as_pytorch_counts():
    """Ones in, so Y is the share of each window that counts: padding counts with count_include_pad,
    ceil mode's overhang past the padded input never does, divisor_override replaces the count."""
    ones = np.ones((1, 1, 6, 6))
    Y = AvgPool2D(3, 2, 1, ceil_mode=True, backend=F64)(ones)[0, 0]
    np.testing.assert_allclose(Y[1:3, 1:3], 1.0)  # inside
    np.testing.assert_allclose(Y[0, 1:3], 6 / 9)  # the top padding row counts
    np.testing.assert_allclose(Y[3, 1:3], 1 / 2)  # 1 input row + 1 padding row counted, the overhang not
    np.testing.assert_allclose(Y[3, 3], 1 / 4)
    Y = AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False, backend=F64)(ones)
    np.testing.assert_allclose(Y, 1.0)
    Y = AvgPool2D(3, 2, 1, divisor_override=4, backend=F64)(ones)[0, 0]
    np.testing.assert_allclose(Y[1, 1], 9 / 4)
    np.testing.assert_allclose(Y[0, 0], 4 / 4)


def test_count_include_pad_means_nothing_without_padding():
    X = np.random.default_rng(1).normal(size=(2, 3, 7, 5))
    for ceil_mode in (False, True):
        a, b = (AvgPool2D(3, 2, ceil_mode=ceil_mode, count_include_pad=c, backend=F64) for c in (True, False))
        np.testing.assert_array_equal(a(X), b(X))
        np.testing.assert_array_equal(a.backward(np.ones(a(X).shape)), b.backward(np.ones(b(X).shape)))


def distinct(shape, seed=0):
    """Values at least 1e-2 apart (no ties for finite differences to break), shuffled."""
    n = int(np.prod(shape))
    return ((np.random.default_rng(seed).permutation(n) - n / 2) * 1e-2).reshape(shape)


@pytest.mark.parametrize("make", [
    lambda be: MaxPool2D(3, 2, 1, backend=be), lambda be: MaxPool2D((2, 3), (1, 2), (1, 1), ceil_mode=True, backend=be),
    lambda be: AvgPool2D(3, 2, 1, ceil_mode=True, backend=be),
    lambda be: AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False, backend=be),
    lambda be: AvgPool2D(2, 1, 1, divisor_override=3, backend=be),
], ids=["max_k3_s2_p1", "max_k2x3_ceil", "avg_ceil", "avg_ceil_no_pad_count", "avg_divisor_3"])
def test_gradients(make, device):
    backend = gpubp.get_backend(device, "float64")
    report = gpubp.gradcheck_layer(make(backend), backend.asarray(distinct((2, 2, 5, 6))), atol=1e-8, rtol=1e-6)
    assert report.ok and [r.name for r in report.rows] == ["dX"]


@pytest.mark.parametrize("k, s, p, ceil_mode", [(3, 2, 1, False), (2, 2, 1, True), ((2, 3), (1, 2), (1, 1), True),
                                                (3, 1, 1, False)], ids=["k3_s2_p1", "k2_p1_ceil", "k2x3_ceil", "k3_s1"])
def test_max_nan_ties_and_infinities_beside_padding_route_as_pytorch(k, s, p, ceil_mode, device):
    """The padding (-inf) never wins, not even a tie with -inf: a window of X's -inf and padding sends
    its gradient to X's first entry in it, as PyTorch's windows (which skip the padding) do; ties go
    to the first maximum, NaN to the window's last NaN, beside the padding as inside."""
    torch = pytest.importorskip("torch")
    backend, nan, inf = gpubp.get_backend(device, "float64"), np.nan, np.inf
    X = np.random.default_rng(7).normal(size=(2, 2, 5, 7))
    X[0, 0, :2, :3] = -inf                                  # corners of -inf only (with the padding)
    X[0, 0, 3:, 5:] = -inf
    X[0, 1, 0, :4] = [nan, 1.0, nan, 2.0]                   # NaN in the first row, beside the top padding
    X[0, 1, 4, 4:] = [nan, 3.0, nan]
    X[1, 0, :2, :2] = [[2.0, 2.0], [2.0, 2.0]]              # ties in a corner
    X[1, 0, 3:, :] = 1.5
    X[1, 1, :, 0] = [inf, nan, -inf, inf, nan]              # the first column
    ours = MaxPool2D(k, s, p, ceil_mode=ceil_mode, backend=backend)
    Y, dX, dY = torch_reference(torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil_mode), X, seed=8)
    assert np.isnan(Y).any() and np.isneginf(Y).any()
    np.testing.assert_array_equal(backend.to_numpy(ours(backend.asarray(X))), Y)
    # overlapping windows add in another order: a misrouted dY would be off by O(1), not 1e-15
    np.testing.assert_allclose(backend.to_numpy(ours.backward(backend.asarray(dY))), dX, rtol=1e-12, atol=1e-12)


def test_max_all_minus_inf_image_sends_each_window_to_its_first_input_entry():
    X = np.full((1, 1, 3, 3), -np.inf)
    layer = MaxPool2D(2, 2, 1, backend=F64)
    np.testing.assert_array_equal(layer(X), np.full((1, 1, 2, 2), -np.inf))
    dX = layer.backward(np.arange(1.0, 5.0).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(dX, [[[[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]])


def test_avg_float32_near_its_largest_value_as_pytorch():
    """PyTorch sums a float32 window in float32, then divides: a window summing past 3.4e38 is inf
    there, and here; a window holding one such value over a divisor of one, or values whose sum
    stays in range, is finite in both."""
    torch = pytest.importorskip("torch")
    big = np.finfo(np.float32).max
    be32 = gpubp.get_backend("cpu", "float32")
    cases = [(np.full((1, 1, 3, 3), big, np.float32), dict(kernel_size=2, stride=2, ceil_mode=True)),
             (np.full((1, 1, 4, 4), 0.8e38, np.float32), dict(kernel_size=2)),
             (np.full((1, 1, 4, 4), 0.9e38, np.float32), dict(kernel_size=3, stride=2, padding=1)),
             (np.array([[[[3e38, -3e38], [3e38, -3e38]]]], np.float32), dict(kernel_size=2)),
             (np.full((1, 1, 3, 3), -big, np.float32), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                             count_include_pad=False))]
    with np.errstate(over="ignore"):
        for X, kw in cases:
            expected = torch.nn.functional.avg_pool2d(torch.from_numpy(X), **kw).numpy()
            np.testing.assert_array_equal(AvgPool2D(**kw, backend=be32)(X), expected, err_msg=str(kw))
        assert np.isinf(AvgPool2D(2, 2, ceil_mode=True, backend=be32)(cases[0][0])).sum() == 3


@pytest.mark.parametrize("make, words", [
    (lambda: MaxPool2D(3, 2, 2), r"MaxPool2D padding must be at most half the kernel size \(PyTorch's rule\), got "
                                 r"padding=2 for kernel_size=3"),
    (lambda: AvgPool2D((2, 3), padding=(1, 2)), r"AvgPool2D padding must be at most half.*padding=\(1, 2\) for "
                                                r"kernel_size=\(2, 3\)"),
    (lambda: MaxPool2D(1, padding=1), "MaxPool2D padding must be at most half"),
    (lambda: MaxPool2D(3, padding=-1), "MaxPool2D padding must be >= 0, got -1"),
    (lambda: AvgPool2D(3, padding=1.5), "AvgPool2D padding must be an int or a pair of ints, got 1.5"),
    (lambda: AvgPool2D(3, padding="same"), "AvgPool2D padding must be an int or a pair of ints, got 'same'"),
    (lambda: MaxPool2D(2, ceil_mode="True"), "MaxPool2D ceil_mode must be True or False, got 'True'"),
    (lambda: AvgPool2D(2, count_include_pad=0), "AvgPool2D count_include_pad must be True or False, got 0"),
    (lambda: AvgPool2D(2, divisor_override=0), "AvgPool2D divisor_override must be a whole number >= 1, got 0"),
    (lambda: AvgPool2D(2, divisor_override=-2), "AvgPool2D divisor_override must be a whole number >= 1, got -2"),
    (lambda: AvgPool2D(2, divisor_override=True), "AvgPool2D divisor_override must be a whole number >= 1, got True"),
    (lambda: AvgPool2D(2, divisor_override=2.5), "AvgPool2D divisor_override must be a whole number >= 1, got 2.5"),
    (lambda: MaxPool2D(2, dilation=2), "MaxPool2D does not support dilation=2: its windows are contiguous"),
    (lambda: MaxPool2D(2, 2, 0, (1, 2)), r"MaxPool2D does not support dilation=\(1, 2\)"),
    (lambda: MaxPool2D(2, return_indices=True), "MaxPool2D does not support return_indices=True"),
    (lambda: MaxPool2D(2, count_include_pad=True), "MaxPool2D got an unexpected keyword argument 'count_include_pad'$"),
    (lambda: AvgPool2D(2, dilation=1), "AvgPool2D got an unexpected keyword argument 'dilation'$"),
])
def test_bad_arguments_are_refused_naming_layer_and_argument(make, words):
    with pytest.raises(gpubp.InvalidValueError, match=words):
        make()


def test_inputs_no_window_fits_are_refused():
    with pytest.raises(gpubp.ShapeError, match=r"MaxPool2D\(kernel_size=2, stride=2, padding=1\) needs inputs with "
                                               r"H, W >= 1, got shape \(1, 1, 0, 4\)"):
        MaxPool2D(2, 2, 1, backend=F64)(np.zeros((1, 1, 0, 4)))  # else one window of padding alone
    with pytest.raises(gpubp.ShapeError, match=r"the 5x5 window is larger than the padded input 4x4"):
        AvgPool2D(5, padding=1, backend=F64)(np.zeros((1, 1, 2, 2)))


def test_repr_names_the_options_not_at_their_defaults_and_they_are_fixed():
    assert repr(MaxPool2D(3, 2, 1)) == "MaxPool2D(kernel_size=3, stride=2, padding=1)"
    assert repr(MaxPool2D(3, 2, (1, 0), ceil_mode=True)) == \
        "MaxPool2D(kernel_size=3, stride=2, padding=(1, 0), ceil_mode=True)"
    assert repr(AvgPool2D(2, 1, 1, True, False, 3)) == \
        "AvgPool2D(kernel_size=2, stride=1, padding=1, ceil_mode=True, count_include_pad=False, divisor_override=3)"
    assert repr(AvgPool2D(2, padding=0, ceil_mode=False, count_include_pad=True)) == \
        "AvgPool2D(kernel_size=2, stride=2)"
    layer = AvgPool2D(3, 2, 1)
    for name, value in [("padding", (0, 0)), ("ceil_mode", True), ("count_include_pad", False), ("divisor_override", 2)]:
        with pytest.raises(gpubp.InvalidValueError, match=f"AvgPool2D {name} is fixed when it is made"):
            setattr(layer, name, value)


LAYERS = [MaxPool2D(3, 2, 1), MaxPool2D((3, 2), 1, (1, 0), ceil_mode=True), AvgPool2D(3, 2, 1, True),
          AvgPool2D(2, count_include_pad=False), AvgPool2D(2, 1, 1, divisor_override=7), MaxPool2D(2), AvgPool2D(2)]


@pytest.mark.parametrize("layer", LAYERS, ids=stable_id)
def test_config_rebuilds_the_layer(layer):
    config = json.loads(json.dumps(layer.config()))
    again = layer_from_config(config)
    assert again.config() == layer.config() and repr(again) == repr(layer)
    for name in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"):
        assert getattr(again, name, None) == getattr(layer, name, None)


def test_defaults_are_left_out_of_config_as_older_checkpoints_hold_them():
    """An older config ({type, kernel_size, stride}) is what a default pool writes, and builds it."""
    for layer in (MaxPool2D(2), AvgPool2D(3, 2), MaxPool2D(3, padding=0, ceil_mode=False),
                  AvgPool2D(2, count_include_pad=True, divisor_override=None)):
        assert set(layer.config()) == {"type", "kernel_size", "stride"}
    old = layer_from_config({"type": "AvgPool2D", "kernel_size": [2, 2], "stride": [2, 2]})
    assert old.padding == (0, 0) and not old.ceil_mode and old.count_include_pad and old.divisor_override is None


def padded_model(**kw):
    return gpubp.Sequential([gpubp.Conv2D(1, 2, 3, padding=1), gpubp.ReLU(), MaxPool2D(3, 2, 1, ceil_mode=True),
                             AvgPool2D(2, 1, 1, True, False), AvgPool2D(3, 2, 1, divisor_override=4),
                             gpubp.Flatten(), gpubp.Dense(2 * 3 * 3, 3)], **kw)


def test_checkpoint_of_padded_pools_loads_back(tmp_path):
    model = padded_model(dtype="float64", seed=0)
    X = np.random.default_rng(0).normal(size=(4, 1, 6, 7))
    path = checkpoint.save(tmp_path / "m.npz", model)
    ck = checkpoint.load(path, "cpu")
    assert ck.model.config() == model.config()
    assert [repr(a) for a in ck.model.layers] == [repr(b) for b in model.layers]
    np.testing.assert_array_equal(ck.model.predict(X), model.predict(X))
    checkpoint.load_into(path, padded_model(dtype="float64", seed=1))  # the same architecture


def test_checkpoint_of_default_pools_keeps_the_older_config(tmp_path):
    model = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), MaxPool2D(2), AvgPool2D(2, 1), gpubp.Flatten(),
                              gpubp.Dense(2, 3)], dtype="float64", seed=0)
    path = checkpoint.save(tmp_path / "old.npz", model)
    ck = checkpoint.load(path, "cpu")
    assert [sorted(c) for c in ck.model.config()[1:3]] == [["kernel_size", "stride", "type"]] * 2
    X = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    np.testing.assert_array_equal(ck.model.predict(X), model.predict(X))


def test_a_step_plan_runs_padded_pools_like_the_eager_step():
    """The plan binds forward(X, out=) and backward(dY, out=) to its buffers: the same numbers bit for bit."""
    model = padded_model(dtype="float64", seed=0)
    assert plan_problem(model) is None
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 1, 6, 7)), rng.integers(0, 3, 20)  # batches of 8, 8 and 4
    assert_planned_fit_is_eager(model, X, y)


@pytest.mark.parametrize("layer", LAYERS[:5], ids=stable_id)
def test_out_buffers_are_written_and_returned(layer, device):
    """Buffers holding junk (NaN) are written whole: no padding entry or stale value left in them."""
    backend = gpubp.get_backend(device, "float64")
    layer = layer_from_config(layer.config(), backend)
    rng = np.random.default_rng(5)
    X = backend.asarray(rng.normal(size=(2, 3, 7, 6)))
    Y_ref = backend.to_numpy(layer(X))
    dY = backend.asarray(rng.normal(size=Y_ref.shape))
    dX_ref = backend.to_numpy(layer.backward(dY))
    Y_buf, dX_buf = backend.asarray(np.full(Y_ref.shape, np.nan)), backend.asarray(np.full(X.shape, np.nan))
    assert layer.forward(X, out=Y_buf) is Y_buf and layer.backward(dY, out=dX_buf) is dX_buf
    np.testing.assert_array_equal(backend.to_numpy(Y_buf), Y_ref)
    np.testing.assert_array_equal(backend.to_numpy(dX_buf), dX_ref)
