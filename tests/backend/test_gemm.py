"""gpubp's GEMM kernel (gpubp/backend/kernels/gemm.py), the one captured steps use.

On every machine: the CUDA text compiles with NVRTC (sm_80, sm_90; float and double),
and the *same text* compiled as host C++ (each block's threads run phase by phase
between barriers, the grid by a loop) matches NumPy's matmul over odd shapes, every
transpose combination and both dtypes, within the dot-product error bound
``K eps (|A| |B|)`` of the exact product (NumPy's matmul in long double). Mutants of
the body (a wrong index, a lost offset) must fail that check. A stack of products
(``C[z] = A[z] @ B[z]``, one launch, blockIdx.z the item; A or B shared by every item, or
both stacked) is bit for bit the kernel's 2-d launch on each item. Argument checks run on
NumPy arrays through ``launch_arguments``, which the host harness launches with too.
On a GPU: the kernel against ``cupy.matmul``, stacks as one launch of the backend's matmul,
and inside a CUDA graph capture.
"""
import ctypes
import hashlib
import os
import subprocess

import numpy as np
import pytest

import gpubp
from gpubp.backend.kernels import gemm as G
from gpubp.errors import DeviceError, DTypeError, InvalidValueError, ShapeError
from gpubp.tools.parity.tolerance import true_float32
from helpers import needs_gpu
from kernel_truth import FLAGS, compiler
from test_nvrtc import compile_ok, require_nvrtc

DTYPES = ["float32", "float64"]
# (M, N, K): single elements, odd sizes, exact tiles, M and N past one tile, K past one slab, K = 0
SHAPES = [(1, 1, 1), (3, 5, 7), (64, 64, 64), (65, 33, 17), (130, 70, 40), (128, 64, 16),
          (1, 200, 3), (70, 1, 33), (2, 3, 0)]
LAYOUTS = ["CC", "CF", "FC", "FF"]  # A's and B's order: C-contiguous, or F (a transposed view)


def operand(rng, shape, dtype, order, xp=np):
    """A ``shape`` matrix in [-1, 1]: C-contiguous, or the transpose of a C-contiguous one."""
    if order == "C":
        return xp.asarray(rng.uniform(-1, 1, shape).astype(dtype))
    return xp.asarray(rng.uniform(-1, 1, shape[::-1]).astype(dtype)).T


def operands(shape, dtype, layout, seed=0, xp=np):
    m, n, k = shape
    rng = np.random.default_rng(seed)
    return operand(rng, (m, k), dtype, layout[0], xp), operand(rng, (k, n), dtype, layout[1], xp)


def assert_within_bound(got, a, b, factor=1, exact=None):
    """``|got - exact| <= factor K eps (|A| |B|)`` elementwise; ``exact`` defaults to A B in long double."""
    a, b, got = (np.asarray(x) for x in (a, b, got))
    if exact is None:
        exact = np.matmul(a.astype(np.longdouble), b.astype(np.longdouble))
    bound = factor * a.shape[1] * np.finfo(a.dtype).eps * np.matmul(np.abs(a).astype(np.longdouble),
                                                                    np.abs(b).astype(np.longdouble))
    err = np.abs(got.astype(np.longdouble) - np.asarray(exact, dtype=np.longdouble))
    bad = ~(err <= bound)  # a NaN, e.g. an entry never written into an out filled with NaN, is bad too
    if bad.any():
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(f"{bad.sum()} of {err.size} entries exceed the bound, worst at {i}: "
                             f"got {got[i]!r}, exact {float(exact[i])!r}, bound {float(bound[i]):.3g}")


class HostGemm:
    """The kernel text as a host shared library (one per source), launched over its grid."""

    def __init__(self, workdir):
        self.workdir, self._libs = str(workdir), {}

    def library(self, source):
        key = hashlib.sha256(source.encode()).hexdigest()[:16]
        if key not in self._libs:
            cpp = os.path.join(self.workdir, f"gemm_{key}.cpp")
            with open(cpp, "w") as f:
                f.write(G.host_source(source))
            done = subprocess.run([compiler(), *FLAGS, cpp, "-o", cpp[:-4] + ".so"], capture_output=True, text=True)
            assert not done.returncode, f"the GEMM kernel does not compile as host C++:\n{done.stderr}"
            self._libs[key] = ctypes.CDLL(cpp[:-4] + ".so")
        return self._libs[key]

    def gemm(self, a, b, out, source=G.SOURCE):
        """``out = a @ b`` by the kernel (a stack when ``out`` is 3-d), with the grid and arguments
        ``gemm()`` would launch."""
        grid, args = G.launch_arguments(a, b, out)
        if grid is None:
            return out
        fn = getattr(self.library(source), f"gpubp_gemm_host_{G.CTYPES[out.dtype]}")
        fn.restype = None
        fn(*[ctypes.c_uint(g) for g in grid], *[
            ctypes.c_void_p(x.ctypes.data) if isinstance(x, np.ndarray)
            else ctypes.c_int(int(x)) if x.dtype == np.int32 else ctypes.c_longlong(int(x)) for x in args])
        return out


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if compiler() is None:
        pytest.skip("no C++ compiler (g++/c++ or $CXX) on this machine: the CUDA kernel cannot run on the host")
    return HostGemm(tmp_path_factory.mktemp("host_gemm"))


def host_product(host, shape, dtype, layout, source=G.SOURCE, out_order="C"):
    a, b = operands(shape, dtype, layout)
    out = np.full((shape[0], shape[1]), np.nan, dtype=dtype, order=out_order)
    return host.gemm(a, b, out, source), a, b


# -- the CUDA text run on the host ---------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_host_kernel_within_the_dot_product_bound(shape, layout, dtype, host):
    got, a, b = host_product(host, shape, dtype, layout)
    assert_within_bound(got, a, b)
    assert np.array_equal(got, host_product(host, shape, dtype, layout)[0])  # deterministic


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_kernel_on_strided_views_into_an_f_ordered_out(dtype, host):
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, (150, 90)).astype(dtype)[::-2, 1::3]  # 75 x 30, negative row stride
    b = rng.uniform(-1, 1, (30, 200)).astype(dtype)[:, ::3]      # 30 x 67
    out = np.full((75, 67), np.nan, dtype=dtype, order="F")
    assert_within_bound(host.gemm(a, b, out), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_column_sum_is_a_product_with_ones(dtype, host):
    """db = 1^T delta: the row of ones times delta, written into db viewed as 1 x N."""
    delta = operand(np.random.default_rng(4), (70, 33), dtype, "C")
    ones, db = np.ones(100, dtype=dtype), np.zeros(33, dtype=dtype)
    host.gemm(ones[None, :70], delta, db[None, :])
    assert_within_bound(db[None, :], ones[None, :70], delta)
    np.testing.assert_allclose(db, delta.sum(axis=0), rtol=70 * np.finfo(dtype).eps, atol=70 * np.finfo(dtype).eps)


# -- stacks: C[z] = A[z] @ B[z] in one launch, blockIdx.z the item -----------------------

# (Z, M, N, K): odd sizes, several blocks per item, one item, one row, K past one slab, K = 0
STACKS = [(3, 5, 7, 9), (2, 65, 33, 17), (1, 64, 64, 16), (4, 1, 70, 40), (2, 3, 4, 0)]
SHARING = {"A shared": (False, True), "B shared": (True, False), "both stacked": (True, True)}  # (A, B) stacked


def stack_operand(rng, items, shape, dtype, order):
    """A stack of ``items`` matrices of ``shape`` (C order, or transposed views of C-ordered ones), or
    with ``items`` None one 2-d matrix, shared by every item."""
    if items is None:
        return operand(rng, shape, dtype, order)
    if order == "C":
        return rng.uniform(-1, 1, (items, *shape)).astype(dtype)
    return rng.uniform(-1, 1, (items, *shape[::-1])).astype(dtype).transpose(0, 2, 1)


def stack_operands(stack, sharing, dtype, layout, seed=0):
    (z, m, n, k), (a_stacked, b_stacked) = stack, SHARING[sharing]
    rng = np.random.default_rng(seed)
    return (stack_operand(rng, z if a_stacked else None, (m, k), dtype, layout[0]),
            stack_operand(rng, z if b_stacked else None, (k, n), dtype, layout[1]))


def item(x, z):
    """Item z of a stack operand (a 2-d operand is every item)."""
    return x[z] if x.ndim == 3 else x


def assert_items_are_the_2d_launches(host, a, b, out):
    """Every item of ``out`` within the bound of its product, and bit for bit the kernel's 2-d launch
    on that item's matrices (one thread per output, k in order: the same arithmetic)."""
    for z in range(out.shape[0]):
        assert_within_bound(out[z], item(a, z), item(b, z))
        alone = host.gemm(item(a, z), item(b, z), np.full(out.shape[1:], np.nan, out.dtype))
        assert out[z].tobytes() == alone.tobytes(), f"item {z} differs from its own 2-d launch"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("sharing", sorted(SHARING))
@pytest.mark.parametrize("stack", STACKS, ids=lambda s: "x".join(map(str, s)))
def test_host_stack_is_its_items_2d_products_bit_for_bit(stack, sharing, layout, dtype, host):
    a, b = stack_operands(stack, sharing, dtype, layout)
    out = np.full((stack[0], stack[1], stack[2]), np.nan, dtype=dtype)
    assert G.launch_arguments(a, b, out)[0][2] == stack[0]  # one launch, an item per blockIdx.z
    host.gemm(a, b, out)
    assert_items_are_the_2d_launches(host, a, b, out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_stack_into_f_ordered_spaced_and_reversed_items(dtype, host):
    """out's items F-ordered, items spaced apart (every other item of a larger stack), items in
    reverse (a negative item stride); A a reversed stack, B shared."""
    rng = np.random.default_rng(7)
    Z, M, N, K = 3, 70, 45, 33
    a = rng.uniform(-1, 1, (Z, M, K)).astype(dtype)[::-1]
    b = operand(rng, (K, N), dtype, "F")
    outs = [np.full((Z, N, M), np.nan, dtype=dtype).transpose(0, 2, 1),
            np.full((2 * Z, M, N), np.nan, dtype=dtype)[::2],
            np.full((Z, M, N), np.nan, dtype=dtype)[::-1]]
    for out in outs:
        host.gemm(a, b, out)
        assert_items_are_the_2d_launches(host, a, b, out)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_stack_of_a_broadcast_operand_is_the_shared_one(dtype, host):
    """A stack that repeats one matrix (item stride 0) is that matrix shared, bit for bit."""
    a, b = stack_operands((4, 9, 11, 20), "A shared", dtype, "CF")
    shared = host.gemm(a, b, np.full((4, 9, 11), np.nan, dtype=dtype))
    repeated = host.gemm(np.broadcast_to(a, (4, 9, 20)), b, np.full((4, 9, 11), np.nan, dtype=dtype))
    assert shared.tobytes() == repeated.tobytes()
    assert_items_are_the_2d_launches(host, a, b, shared)


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_conv2d_products_as_stacks(dtype, host):
    """Conv2D's three products, one per image, as the layer makes them (conv.py): Y_n = W_col @ cols_n,
    dcols_n = W_col^T @ delta_n, dW_n^T = cols_n @ delta_n^T."""
    rng = np.random.default_rng(3)
    N, O, K, P = 5, 6, 75, 40
    W, cols, delta = (rng.uniform(-1, 1, s).astype(dtype) for s in ((O, K), (N, K, P), (N, O, P)))
    for a, b, shape in [(W, cols, (N, O, P)), (W.T, delta, (N, K, P)), (cols, delta.transpose(0, 2, 1), (N, K, O))]:
        assert_items_are_the_2d_launches(host, a, b, host.gemm(a, b, np.full(shape, np.nan, dtype=dtype)))


# (old, new) in the kernel text: each must make the host check fail (none reads or writes out of bounds)
MUTANTS = {
    "tile row index": ("a[r] = As[k][ty + TY * r]", "a[r] = As[k][ty * TM + r]"),
    "tile column index": ("b[c] = Bs[k][tx + TX * c]", "b[c] = Bs[k][tx * TN + c]"),
    "slab offset of A dropped": ("A[(i0 + i) * as0 + (k0 + k) * as1]", "A[(i0 + i) * as0 + k * as1]"),
    "block row offset dropped": ("const int i = i0 + ty + TY * r;", "const int i = ty + TY * r;"),
    "sum overwritten": ("acc[GPUBP_SLOT(t)][r][c] += a[r] * b[c]", "acc[GPUBP_SLOT(t)][r][c] = a[r] * b[c]"),
    "padding not zero": (": T(0);", ": T(1);"),  # both slabs padded with ones
    "item offset of A dropped": ("A + z * az", "A"),
    "item offset of B dropped": ("B + z * bz", "B"),
    "item offset of C dropped": ("C + z * cz", "C"),  # every item written into item 0, the others unwritten
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_mutated_kernel_fails_the_host_check(mutant, host):
    old, new = MUTANTS[mutant]
    assert old in G.SOURCE
    broken = G.SOURCE.replace(old, new)
    with pytest.raises(AssertionError, match="exceed the bound"):
        for layout in LAYOUTS:
            for shape in [(130, 70, 40), (65, 33, 17)]:
                assert_within_bound(*host_product(host, shape, "float64", layout, broken))
            a, b = stack_operands((3, 65, 33, 17), "both stacked", "float64", layout)
            out = host.gemm(a, b, np.full((3, 65, 33), np.nan), broken)
            for z in range(3):
                assert_within_bound(out[z], a[z], b[z])


# -- NVRTC: the text the GPU runs compiles without a GPU ------------------------------

@pytest.mark.parametrize("arch", ["80", "90"])
def test_kernel_compiles_with_nvrtc(arch):
    compile_ok(G.SOURCE, arch)


def test_ptx_has_both_dtypes_and_keeps_the_tile_in_registers():
    require_nvrtc()
    from cupy.cuda import nvrtc
    prog = nvrtc.createProgram(G.SOURCE, "gemm.cu", [], [])
    try:
        nvrtc.compileProgram(prog, ["--gpu-architecture=compute_90"])
        ptx = nvrtc.getPTX(prog)
    finally:
        nvrtc.destroyProgram(prog)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert ".entry gpubp_gemm_float(" in ptx and ".entry gpubp_gemm_double(" in ptx
    assert "%ctaid.z" in ptx, "the item of a stack is blockIdx.z"
    assert ".local" not in ptx, "the 4 x 4 accumulators spilled to local memory"


def test_a_kernel_syntax_error_fails_the_nvrtc_check():
    with pytest.raises(AssertionError, match="undefined_thing"):
        compile_ok(G.SOURCE.replace("T a[TM], b[TN];", "T a[TM], b[TN]; undefined_thing;"), "80")


# -- argument checks (on NumPy arrays: the same code gemm() runs before a launch) ------

def host_backed_cupy(a):
    """A CuPy array viewing NumPy array ``a``'s memory (no GPU needed to make one; only a kernel
    launch would need a device): CuPy's own strides, flags and data pointers, for argument checks."""
    cupy = pytest.importorskip("cupy")
    from cupy.cuda import memory
    mem = memory.UnownedMemory(a.ctypes.data, a.nbytes, a, device_id=0)
    return cupy.ndarray(a.shape, a.dtype, memptr=memory.MemoryPointer(mem, 0))


def test_launch_arguments_of_cupy_views_are_those_of_numpy_views():
    """A dense layer's four products as a captured step launches them, on CuPy arrays and their views
    (x.T, w.T, the newaxis row of ones, db viewed as 1 x N), and Conv2D's three stacks (W_col shared,
    W_col^T, delta_n^T): the grid and element strides NumPy views of the same layout give, which the
    host tests run."""
    shapes = {"x": (1000, 130), "w": (130, 257), "d": (1000, 257), "y": (1000, 257), "dw": (130, 257),
              "dx": (1000, 130), "ones": (1000,), "db": (257,), "W": (6, 75), "cols": (3, 75, 40),
              "delta": (3, 6, 40), "Y": (3, 6, 40), "dcols": (3, 75, 40), "dW": (3, 75, 6)}
    host = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    dev = {k: host_backed_cupy(a) for k, a in host.items()}
    for arrays in (host, dev):
        x, w, d, ones, db = (arrays[k] for k in ("x", "w", "d", "ones", "db"))
        W, cols, delta = (arrays[k] for k in ("W", "cols", "delta"))
        products = [(x, w, arrays["y"]), (x.T, d, arrays["dw"]), (d, w.T, arrays["dx"]), (ones[None, :], d, db[None, :]),
                    (W, cols, arrays["Y"]), (W.T, delta, arrays["dcols"]), (cols, delta.transpose(0, 2, 1), arrays["dW"])]
        got = [G.launch_arguments(*p) for p in products]
        if arrays is host:
            want = [(grid, [int(v) for v in args[3:]]) for grid, args in got]
        else:
            assert [(grid, [int(v) for v in args[3:]]) for grid, args in got] == want
            assert all(isinstance(args[0], type(x)) for _, args in got)  # the arrays themselves: RawKernel passes their pointers
    square = host_backed_cupy(np.zeros((130, 130), np.float32))
    with pytest.raises(InvalidValueError, match="overlaps"):  # CuPy data pointers are compared too
        G.launch_arguments(dev["x"], square, dev["x"])


def test_launch_arguments_describe_a_transposed_view():
    x, w = np.zeros((8, 3), np.float32), np.zeros((5, 3), np.float32)
    grid, args = G.launch_arguments(x, w.T, np.zeros((8, 5), np.float32))  # x @ w.T
    assert grid == (1, 1, 1)
    assert [int(v) for v in args[3:]] == [8, 5, 3, 0, 3, 1, 0, 1, 3, 0, 5, 1]


@pytest.mark.parametrize("shapes, dtypes, error", [
    (((3,), (3, 2), (1, 2)), "fff", ShapeError),
    (((4, 3), (2, 5), (4, 5)), "fff", ShapeError),
    (((4, 3), (3, 5), (5, 4)), "fff", ShapeError),
    (((4, 3), (3, 5), (4, 5)), "dff", DTypeError),
    (((4, 3), (3, 5), (4, 5)), "iii", DTypeError),
    (((4, 3), (3, 5), (4, 5)), "eee", DTypeError),
], ids=["1-d", "inner", "out shape", "mixed dtype", "integer", "float16"])
def test_bad_arguments_raise_gpubp_errors(shapes, dtypes, error):
    with pytest.raises(error):
        G.launch_arguments(*[np.zeros(s, dtype=d) for s, d in zip(shapes, dtypes)])


def test_out_must_be_contiguous_and_apart_from_the_inputs():
    a, b = np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32)
    with pytest.raises(ShapeError, match="contiguous"):
        G.launch_arguments(a, b, np.zeros((4, 8), np.float32)[:, ::2])
    for out in (a, a.T, b[:, :]):
        with pytest.raises(InvalidValueError, match="overlaps"):
            G.launch_arguments(a, b, out)
    big = np.zeros((8, 4), np.float32)
    assert G.launch_arguments(big[:4], b, big[4:])[0] == (1, 1, 1)  # neighbours, not overlapping


def test_launch_arguments_of_a_stack():
    """Conv2D's Y_n = W_col @ cols_n: W_col shared (item stride 0), one item per blockIdx.z; the
    2-d product is the stack of one item."""
    N, O, K, P = 64, 6, 25, 576
    W, cols, Y = np.zeros((O, K), np.float32), np.zeros((N, K, P), np.float32), np.zeros((N, O, P), np.float32)
    grid, args = G.launch_arguments(W, cols, Y)
    assert grid == (9, 1, 64) and all(x is y for x, y in zip(args, (W, cols, Y)))
    assert [int(v) for v in args[3:]] == [O, P, K, 0, K, 1, K * P, P, 1, O * P, P, 1]
    assert all(type(v) is np.int32 for v in args[3:6]) and all(type(v) is np.int64 for v in args[6:])
    grid, args = G.launch_arguments(cols[0].T, W.T, Y[0].T)  # a 2-d product: grid z 1, item strides 0
    assert grid == (1, 9, 1) and [int(v) for v in args[3:]] == [P, O, K, 0, 1, P, 0, 1, K, 0, 1, P]


@pytest.mark.parametrize("shapes, error, match", [
    (((4, 3), (3, 5), (2, 4, 5)), ShapeError, "stack"),       # a stack of nothing stacked
    (((2, 4, 3), (3, 5), (4, 5)), ShapeError, "3-d"),         # a stack into one matrix
    (((2, 4, 3), (3, 5), (3, 4, 5)), ShapeError, "stack"),    # stacks of two sizes
    (((2, 4, 3), (3, 3, 5), (3, 4, 5)), ShapeError, "stack"),
    (((2, 4, 3), (2, 2, 5), (2, 4, 5)), ShapeError, "fit"),   # inner sizes
    (((2, 4, 3), (3, 5), (2, 5, 4)), ShapeError, "fit"),
    (((1, 2, 4, 3), (3, 5), (1, 2, 4, 5)), ShapeError, "3-d"),
    (((2, 4, 3), (2, 3), (2, 4, 5)), ShapeError, "fit"),
], ids=["none stacked", "3-d into 2-d", "sizes differ", "sizes differ b", "inner", "out shape", "4-d",
        "b too small"])
def test_bad_stacks_raise_gpubp_errors(shapes, error, match):
    with pytest.raises(error, match=match):
        G.launch_arguments(*[np.zeros(s, np.float32) for s in shapes])


def test_stack_dtypes_contiguity_overlap_and_size_are_checked():
    a, b = np.zeros((3, 4, 4), np.float32), np.zeros((4, 4), np.float32)
    with pytest.raises(DTypeError):
        G.launch_arguments(a, b.astype(np.float64), np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ShapeError, match="contiguous"):  # each item must be
        G.launch_arguments(a, b, np.zeros((3, 4, 8), np.float32)[:, :, ::2])
    out = np.zeros((3, 4, 4), np.float32)
    assert G.launch_arguments(a, b, out.transpose(0, 2, 1))[0] == (1, 1, 3)  # F-ordered items
    assert G.launch_arguments(a, b, np.zeros((6, 4, 4), np.float32)[::-2])[0] == (1, 1, 3)  # items apart
    for twice in (np.lib.stride_tricks.as_strided(out, (3, 4, 4), (15 * 4, 16, 4)),  # item 1 starts in item 0
                  np.broadcast_to(out[0], (3, 4, 4))):                              # one matrix for every item
        with pytest.raises(ShapeError, match="items overlap"):
            G.launch_arguments(a, b, twice)
    big = np.zeros((6, 4, 4), np.float32)
    for x, y, o in ((big[:3], b, big[2:5]), (a, big[0], big[:3]), (big[::2], b, big[1::2])):
        with pytest.raises(InvalidValueError, match="overlaps"):  # the spans of a and out meet
            G.launch_arguments(x, y, o)
    assert G.launch_arguments(big[:3], b, big[3:])[0] == (1, 1, 3)  # neighbours
    one = np.zeros((65536, 1, 1), np.float32)
    with pytest.raises(ShapeError, match="too large"):  # gridDim.z <= 65535
        G.launch_arguments(one, np.zeros((1, 1), np.float32), np.zeros((65536, 1, 1), np.float32))
    assert G.launch_arguments(one[1:], np.zeros((1, 1), np.float32), np.zeros((65535, 1, 1), np.float32))[0] == \
        (1, 1, 65535)
    assert G.launch_arguments(a[:0], b, np.zeros((0, 4, 4), np.float32)) == (None, ())  # no items


def test_empty_products_launch_nothing_and_gemm_refuses_host_arrays():
    assert G.launch_arguments(np.zeros((0, 3)), np.zeros((3, 4)), np.zeros((0, 4))) == (None, ())
    with pytest.raises(DeviceError, match="CuPy arrays"):
        G.gemm(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)))


# -- on a GPU --------------------------------------------------------------------------

@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES + [(1024, 256, 64), (256, 1024, 512)], ids=lambda s: "x".join(map(str, s)))
def test_gpu_gemm_matches_cupy_matmul(shape, layout, dtype):
    import cupy
    a, b = operands(shape, dtype, layout, xp=cupy)
    out = cupy.full((shape[0], shape[1]), np.nan, dtype=dtype)
    got = cupy.asnumpy(G.gemm(a, b, out))
    assert_within_bound(got, cupy.asnumpy(a), cupy.asnumpy(b))
    with true_float32():  # cuBLAS in float32 even where CUPY_TF32=1 is set (10-bit TF32 would miss the bound)
        want = cupy.asnumpy(cupy.matmul(a, b))  # cuBLAS, also within the bound of the exact product
    assert_within_bound(got, cupy.asnumpy(a), cupy.asnumpy(b), factor=2, exact=want)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_gemm_in_a_captured_graph_is_the_eager_result_bit_for_bit(dtype):
    """A dense layer's products (X W, X^T delta, delta W^T, 1^T delta) captured as one graph."""
    import cupy
    batch, n_in, n_out = 1000, 130, 257
    rng = np.random.default_rng(5)
    x, delta = (cupy.asarray(rng.uniform(-1, 1, s).astype(dtype)) for s in ((batch, n_in), (batch, n_out)))
    w = cupy.asarray(rng.uniform(-1, 1, (n_in, n_out)).astype(dtype))
    ones = cupy.ones(batch, dtype=dtype)
    outs = [cupy.empty(s, dtype=dtype) for s in ((batch, n_out), (n_in, n_out), (batch, n_in), (1, n_out))]

    def step():
        G.gemm(x, w, outs[0])
        G.gemm(x.T, delta, outs[1])
        G.gemm(delta, w.T, outs[2])
        G.gemm(ones[None, :], delta, outs[3])

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        step()  # compiles the kernel and gives the eager result
        eager = [cupy.asnumpy(o) for o in outs]
        for o in outs:
            o.fill(np.nan)
        stream.begin_capture()
        step()
        graph = stream.end_capture()
        assert all(np.isnan(cupy.asnumpy(o)).all() for o in outs)  # captured, not run
        for _ in range(2):
            graph.launch(stream)
            stream.synchronize()
            assert all(np.array_equal(cupy.asnumpy(o), e) for o, e in zip(outs, eager))
        x *= 2  # the graph reads the live buffers
        graph.launch(stream)
        stream.synchronize()
        replayed = [cupy.asnumpy(o) for o in outs]
        step()
        assert all(np.array_equal(r, cupy.asnumpy(o)) for r, o in zip(replayed, outs))
    for got, a, b in zip(eager, (x / 2, (x / 2).T, delta, ones[None, :]), (w, delta, w.T, delta)):
        assert_within_bound(got, cupy.asnumpy(a), cupy.asnumpy(b))


@needs_gpu
def test_gpu_gemm_checks_its_arrays():
    import cupy
    a = cupy.zeros((4, 3), np.float32)
    with pytest.raises(DTypeError):
        G.gemm(a, cupy.zeros((3, 2), np.float64), cupy.zeros((4, 2), np.float32))
    with pytest.raises(DeviceError):
        G.gemm(a, np.zeros((3, 2), np.float32), cupy.zeros((4, 2), np.float32))


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sharing", sorted(SHARING))
@pytest.mark.parametrize("stack", STACKS + [(64, 6, 576, 25), (7, 300, 130, 90)], ids=lambda s: "x".join(map(str, s)))
def test_gpu_gemm_of_a_stack_is_its_items_2d_launches(stack, sharing, dtype):
    """A stack in one launch: each item within the bound of cuBLAS's product and bit for bit the
    kernel's 2-d launch on that item."""
    import cupy
    a, b = (cupy.asarray(x) for x in stack_operands(stack, sharing, dtype, "CF"))
    out = G.gemm(a, b, cupy.full(stack[:3], np.nan, dtype=dtype))
    with true_float32():
        want = cupy.asnumpy(cupy.matmul(a, b))  # cuBLAS, batched
    for z in range(stack[0]):
        a_z, b_z = cupy.asnumpy(item(a, z)), cupy.asnumpy(item(b, z))
        assert_within_bound(cupy.asnumpy(out[z]), a_z, b_z)
        assert_within_bound(cupy.asnumpy(out[z]), a_z, b_z, factor=2, exact=want[z])
        alone = G.gemm(item(a, z), item(b, z), cupy.full(stack[1:3], np.nan, dtype=dtype))
        assert cupy.asnumpy(out[z]).tobytes() == cupy.asnumpy(alone).tobytes()


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_matmul_of_stacks_in_graph_arithmetic_is_one_launch(dtype, monkeypatch):
    """Conv2D's products are stacks, one per image (W_col @ cols_n, W_col^T @ delta_n, cols_n @ delta_n^T):
    in a capture's arithmetic the backend's matmul runs each as one launch of gpubp's GEMM (blockIdx.z
    the image), the same bits as the kernel's 2-d launch per image; captured, a replay gives them again."""
    import cupy
    backend, rng = gpubp.get_backend("gpu", dtype), np.random.default_rng(3)
    N, O, K, P = 5, 6, 75, 40
    W, cols, delta = (cupy.asarray(rng.uniform(-1, 1, s).astype(dtype)) for s in ((O, K), (N, K, P), (N, O, P)))
    cases = [(W, cols, (N, O, P)), (W.T, delta, (N, K, P)), (cols, delta.transpose(0, 2, 1), (N, K, O))]
    outs = [cupy.full(shape, np.nan, dtype=dtype) for _, _, shape in cases]
    launches, compiled = [], G.kernel

    def counted(dt):
        kernel = compiled(dt)
        return lambda grid, block, args: (launches.append(grid), kernel(grid, block, args))
    monkeypatch.setattr(G, "kernel", counted)
    with backend.graph_arithmetic():
        for (a, b, _), out in zip(cases, outs):
            assert backend.matmul(a, b, out=out) is out
    assert launches == [(1, 1, N), (1, 2, N), (1, 2, N)]
    monkeypatch.undo()
    eager = [cupy.asnumpy(o) for o in outs]
    for (a, b, _), got in zip(cases, eager):
        for n in range(N):
            assert_within_bound(got[n], cupy.asnumpy(item(a, n)), cupy.asnumpy(b[n]))
            alone = G.gemm(item(a, n), b[n], cupy.full(got.shape[1:], np.nan, dtype=dtype))
            assert got[n].tobytes() == cupy.asnumpy(alone).tobytes()
    for o in outs:
        o.fill(np.nan)
    stream = backend.stream()
    graph = backend.capture(lambda: [backend.matmul(a, b, out=o) for (a, b, _), o in zip(cases, outs)], stream)
    with stream:
        graph.launch(stream)
        stream.synchronize()
    assert all(cupy.asnumpy(o).tobytes() == e.tobytes() for o, e in zip(outs, eager))
    with backend.graph_arithmetic():
        with pytest.raises(gpubp.ShapeError, match="matmul"):
            backend.matmul(W, cols, out=cupy.empty((N + 1, O, P), dtype=dtype))
        with pytest.raises(gpubp.ShapeError, match="matmul"):
            backend.matmul(W, W.T, out=cupy.empty((N, O, O), dtype=dtype))  # a stack of nothing stacked
