"""gpubp's own GEMM, for training steps captured as one CUDA graph (issue #19).

CuPy refuses cuBLAS while a stream captures (``cupy.matmul`` raises
NotImplementedError), so a captured step multiplies with this kernel instead:

    C = A @ B,    C[i, j] = sum_{k = 0 .. K-1} A[i, k] * B[k, j]

for A (M x K), B (K x N), C (M x N) given by data pointers and element strides,
``X[i, j] = X_ptr[i * s0 + j * s1]``. A transposed view is only other strides, so a
dense layer's three products need no copy: ``Z = X @ W``, ``dW = X.T @ delta``,
``dX = delta @ W.T``. The bias gradient ``db = 1^T delta`` is the same kernel with a
row of ones: ``gemm(ones[None, :batch], delta, db[None, :])`` (the caller keeps the
ones; allocating them inside a capture would defeat it).

A stack of Z products is one launch (Conv2D's ``Y_n = W_col @ cols_n``, one per image):

    C[z] = A[z] @ B[z],    z = 0 .. Z-1,    X[z] = X_ptr + z * xz

with item strides az, bz, cz in elements; ``az = 0`` when A is one 2-d matrix shared by
every item (W_col), likewise B. ``blockIdx.z`` is the item: the grid is
(ceil(N/BN), ceil(M/BM), Z) blocks, each the 2-d kernel's block below on its item's
matrices, and a 2-d product is the stack of one item (grid z = 1, item strides 0).

Design (in the spirit of tiny-cuda-nn's fully fused layers, kept simple): a block of
``THREADS`` = 256 threads computes a BM x BN = 64 x 64 tile of C; thread t = (ty, tx)
owns the TM x TN = 4 x 4 outputs ``C[i0 + ty + 16 r, j0 + tx + 16 c]`` in registers.
For each slab of BK = 16 values of k, the block copies A[i0:i0+64, k0:k0+16] and
B[k0:k0+16, j0:j0+64] into shared memory (zero outside the matrices; consecutive threads
read consecutive addresses for C- and F-ordered inputs alike), then every thread adds
its 4 x 4 outer products in k order. Each output is accumulated in T by one thread in
the fixed order k = 0, 1, ..., K-1: the result is deterministic, the same on every
replay. Error bound, as for any dot product: ``|C - C_exact| <= K eps (|A| |B|)``.

The kernel is written as *phases*: ``GPUBP_PHASE(t) { ... }`` is a barrier, then the
body for thread t. On the GPU each thread runs its own t = threadIdx.x; compiled as
host C++ (``GPUBP_HOST``, see :func:`host_source`) the phase is a loop over every t of
the block, so one block runs as its threads would between barriers, and a driver loops
over the grid's z, y and x. Registers that outlive a phase are arrays indexed by
``GPUBP_SLOT(t)`` (one slot per thread on the host, slot 0 on the GPU); shared memory is
touched only inside phases, and every phase begins with a barrier, by construction. The host test
(tests/backend/test_gemm.py) therefore runs the very text NVRTC compiles.

:func:`gemm` is one launch per call, a stack included, on the current stream with no
allocation and no host sync, so it can be captured; the compiled kernels are cached per
dtype (CuPy caches per device).
"""
from __future__ import annotations

import numpy as np

from ..._compat import cupy, is_cupy_array
from ...errors import DeviceError, DTypeError, InvalidValueError, ShapeError

BM, BN, BK, TM, TN = 64, 64, 16, 4, 4  # block tile of C, k slab, outputs per thread
THREADS = (BM // TM) * (BN // TN)
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

SOURCE = r"""
namespace gpubp_gemm {
constexpr int BM = %(BM)d, BN = %(BN)d, BK = %(BK)d, TM = %(TM)d, TN = %(TN)d;
constexpr int TX = BN / TN, TY = BM / TM, THREADS = TX * TY;
static_assert(THREADS == %(THREADS)d && (BM * BK) %% THREADS == 0 && (BK * BN) %% THREADS == 0, "tiling");

#ifdef GPUBP_HOST
constexpr int SLOTS = THREADS;
#define GPUBP_PHASE(t) for (int t = 0; t < THREADS; ++t)
#define GPUBP_SLOT(t) (t)
#define GPUBP_UNROLL
#else
constexpr int SLOTS = 1;
__device__ __forceinline__ int barrier_then_thread() { __syncthreads(); return (int)threadIdx.x; }
#define GPUBP_PHASE(t) for (int t = barrier_then_thread(); t >= 0; t = -1)
#define GPUBP_SLOT(t) 0
#define GPUBP_UNROLL _Pragma("unroll")
#endif

// One block: C[i0:i0+BM, j0:j0+BN] with i0 = by BM, j0 = bx BN.
template <typename T>
__device__ void block(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,
                      const int M, const int N, const int K,
                      const long long as0, const long long as1, const long long bs0, const long long bs1,
                      const long long cs0, const long long cs1, const int bx, const int by) {
    __shared__ T As[BK][BM + 1];  // As[k][i] = A[i0 + i, k0 + k], 0 outside A (+1: no bank conflicts)
    __shared__ T Bs[BK][BN + 1];  // Bs[k][j] = B[k0 + k, j0 + j], 0 outside B
    T acc[SLOTS][TM][TN];         // thread t: acc[r][c] = C[i0 + ty + TY r, j0 + tx + TX c]
    const int i0 = by * BM, j0 = bx * BN;
    GPUBP_PHASE(t) {
        GPUBP_UNROLL for (int r = 0; r < TM; ++r)
            GPUBP_UNROLL for (int c = 0; c < TN; ++c) acc[GPUBP_SLOT(t)][r][c] = T(0);
    }
    for (int k0 = 0; k0 < K; k0 += BK) {
        GPUBP_PHASE(t) {  // load the slabs: element e of a tile goes to thread e mod THREADS
            GPUBP_UNROLL for (int q = 0; q < BM * BK / THREADS; ++q) {
                const int e = t + q * THREADS;
                const int i = as1 == 1 ? e / BK : e %% BM, k = as1 == 1 ? e %% BK : e / BM;
                As[k][i] = (i0 + i < M && k0 + k < K) ? A[(i0 + i) * as0 + (k0 + k) * as1] : T(0);
            }
            GPUBP_UNROLL for (int q = 0; q < BK * BN / THREADS; ++q) {
                const int e = t + q * THREADS;
                const int k = bs1 == 1 ? e / BN : e %% BK, j = bs1 == 1 ? e %% BN : e / BK;
                Bs[k][j] = (k0 + k < K && j0 + j < N) ? B[(k0 + k) * bs0 + (j0 + j) * bs1] : T(0);
            }
        }
        GPUBP_PHASE(t) {  // acc += As[k]^T Bs[k], k in order
            const int tx = t %% TX, ty = t / TX;
            GPUBP_UNROLL for (int k = 0; k < BK; ++k) {
                T a[TM], b[TN];
                GPUBP_UNROLL for (int r = 0; r < TM; ++r) a[r] = As[k][ty + TY * r];
                GPUBP_UNROLL for (int c = 0; c < TN; ++c) b[c] = Bs[k][tx + TX * c];
                GPUBP_UNROLL for (int r = 0; r < TM; ++r)
                    GPUBP_UNROLL for (int c = 0; c < TN; ++c) acc[GPUBP_SLOT(t)][r][c] += a[r] * b[c];
            }
        }
    }
    GPUBP_PHASE(t) {
        const int tx = t %% TX, ty = t / TX;
        GPUBP_UNROLL for (int r = 0; r < TM; ++r) {
            const int i = i0 + ty + TY * r;
            GPUBP_UNROLL for (int c = 0; c < TN; ++c) {
                const int j = j0 + tx + TX * c;
                if (i < M && j < N) C[i * cs0 + j * cs1] = acc[GPUBP_SLOT(t)][r][c];
            }
        }
    }
}
}  // namespace gpubp_gemm

// Item z = blockIdx.z of a stack: C[z] = A[z] @ B[z] with X[z] = X + z xz (item stride xz in elements;
// 0: one matrix shared by every item). A 2-d product is the stack of one item.
#define GPUBP_GEMM_ENTRY(T)                                                                        \
extern "C" __global__ void __launch_bounds__(gpubp_gemm::THREADS) gpubp_gemm_##T(                 \
        const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,                      \
        const int M, const int N, const int K,                                                    \
        const long long az, const long long as0, const long long as1,                             \
        const long long bz, const long long bs0, const long long bs1,                             \
        const long long cz, const long long cs0, const long long cs1) {                           \
    const long long z = (long long)blockIdx.z;                                                    \
    gpubp_gemm::block<T>(A + z * az, B + z * bz, C + z * cz, M, N, K,                             \
                         as0, as1, bs0, bs1, cs0, cs1, (int)blockIdx.x, (int)blockIdx.y);         \
}
GPUBP_GEMM_ENTRY(float)
GPUBP_GEMM_ENTRY(double)
""" % dict(BM=BM, BN=BN, BK=BK, TM=TM, TN=TN, THREADS=THREADS)

# What the CUDA text needs to compile as host C++: the qualifiers vanish, blockIdx is a
# variable the driver sets before running each block.
HOST_PRELUDE = r"""#define GPUBP_HOST 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__
#define __launch_bounds__(n)
struct gpubp_uint3 { unsigned x, y, z; };
static gpubp_uint3 blockIdx;
"""

HOST_DRIVER = r"""
#define GPUBP_GEMM_HOST(T)                                                                         \
extern "C" void gpubp_gemm_host_##T(const unsigned gx, const unsigned gy, const unsigned gz,       \
        const T* A, const T* B, T* C, const int M, const int N, const int K,                       \
        const long long az, const long long as0, const long long as1,                              \
        const long long bz, const long long bs0, const long long bs1,                              \
        const long long cz, const long long cs0, const long long cs1) {                            \
    for (unsigned z = 0; z < gz; ++z)                                                              \
        for (unsigned y = 0; y < gy; ++y)                                                          \
            for (unsigned x = 0; x < gx; ++x) {                                                    \
                blockIdx = gpubp_uint3{x, y, z};                                                   \
                gpubp_gemm_##T(A, B, C, M, N, K, az, as0, as1, bz, bs0, bs1, cz, cs0, cs1);        \
            }                                                                                      \
}
GPUBP_GEMM_HOST(float)
GPUBP_GEMM_HOST(double)
"""


def host_source(source: str = SOURCE) -> str:
    """``source`` as host C++ with ``gpubp_gemm_host_<float|double>(gx, gy, gz, *launch_args)``
    running every block of a ``(gx, gy, gz)`` grid, each block's threads phase by phase."""
    return HOST_PRELUDE + source + HOST_DRIVER


def _element_strides(x) -> tuple[int, int, int]:
    """``(item, row, column)`` strides of ``x`` in elements; item stride 0 for a 2-d ``x``,
    the one matrix every item of a stack multiplies."""
    strides = x.strides if x.ndim == 3 else (0, *x.strides)
    if any(s % x.itemsize for s in strides):
        raise ShapeError(f"gemm needs strides that are whole elements, got {x.strides} bytes")
    return tuple(s // x.itemsize for s in strides)


def _span(x, address) -> tuple[int, int]:
    """``[first, last]`` byte addresses a non-empty array touches."""
    ends = [(n - 1) * s for n, s in zip(x.shape, x.strides)]
    return address + sum(min(e, 0) for e in ends), address + sum(max(e, 0) for e in ends) + x.itemsize - 1


def _address(x) -> int:
    return x.data.ptr if is_cupy_array(x) else x.ctypes.data


def launch_arguments(a, b, out):
    """``(grid, args)`` of the kernel computing ``out = a @ b``, or a gpubp error.

    A 2-d ``out`` is one product of 2-d ``a`` and ``b``. A 3-d ``out`` is a stack of Z =
    ``out.shape[0]`` products, ``out[z] = a[z] @ b[z]``, where a 2-d ``a`` or ``b`` is the one
    matrix every item multiplies (at least one of them is a stack of Z); ``blockIdx.z`` is the
    item. A 2-d product is the stack of one item (grid z = 1, item strides 0).

    Works on any arrays with ``shape``/``strides``/``dtype`` (NumPy too, for the host
    tests). ``a`` and ``b`` may have any strides (C order and transposed views read
    coalesced); each item of ``out`` must be C- or F-contiguous, the items apart (one writer
    per element), and ``out`` must not overlap ``a`` or ``b``. ``grid`` is None when ``out``
    is empty.
    """
    ndims = (2, 3) if out.ndim == 3 else (2,)
    for name, x in (("a", a), ("b", b), ("out", out)):
        if x.ndim not in ndims:
            raise ShapeError(f"gemm: {name} must be 2-d, or 3-d (a stack) when out is, got shape {x.shape}")
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    items = out.shape[0] if out.ndim == 3 else 1
    stacks = {x.shape[0] for x in (a, b) if x.ndim == 3}
    if k != k2 or out.shape[-2:] != (m, n) or stacks != ({items} if out.ndim == 3 else set()):
        raise ShapeError(f"gemm: a {a.shape} @ b {b.shape} does not fit out {out.shape} (a stack of "
                         f"products takes 2-d operands or 3-d ones of out's stack size, one at least)")
    dtype = out.dtype
    if dtype not in CTYPES or a.dtype != dtype or b.dtype != dtype:
        raise DTypeError(f"gemm needs float32 or float64 arrays of one dtype, got a {a.dtype}, "
                         f"b {b.dtype}, out {out.dtype}")
    strides = [s for x in (a, b, out) for s in _element_strides(x)]  # (item, row, column) of a, b, out
    item = out[0] if out.ndim == 3 and items else out
    if not (item.flags.c_contiguous or item.flags.f_contiguous):
        raise ShapeError(f"gemm: out{'[z]' if out.ndim == 3 else ''} must be C- or F-contiguous, "
                         f"got strides {out.strides}")
    if items > 1 and abs(strides[6]) < m * n:  # contiguous items m n elements long, |item stride| apart
        raise ShapeError(f"gemm: out's items overlap (strides {out.strides}); each needs elements of its own")
    if max(m, n, k) >= 2**31 or -(-m // BM) > 65535 or items > 65535:
        raise ShapeError(f"gemm: a {a.shape} @ b {b.shape} is too large for this kernel")
    if m == 0 or n == 0 or items == 0:
        return None, ()
    low, high = _span(out, _address(out))
    for name, x in (("a", a), ("b", b)) if k else ():
        first, last = _span(x, _address(x))
        if first <= high and low <= last:
            raise InvalidValueError(f"gemm: out overlaps {name}; write the product to another array")
    grid = (-(-n // BN), -(-m // BM), items)
    return grid, (a, b, out, np.int32(m), np.int32(n), np.int32(k), *[np.int64(s) for s in strides])


_kernels: dict = {}


def kernel(dtype):
    """The ``cupy.RawKernel`` for ``dtype`` (float32 or float64), built once."""
    dtype = np.dtype(dtype)
    if dtype not in _kernels:
        _kernels[dtype] = cupy.RawKernel(SOURCE, f"gpubp_gemm_{CTYPES[dtype]}")
    return _kernels[dtype]


def gemm(a, b, out):
    """``out = a @ b`` for 2-d CuPy arrays, or a stack ``out[z] = a[z] @ b[z]`` for a 3-d ``out``
    (a 2-d ``a`` or ``b`` shared by every item), in one launch on the current stream; returns ``out``.

    No allocation and no host synchronisation, so it may run while a stream captures a
    CUDA graph (compile first: call it once before ``begin_capture``). ``a`` and ``b``:
    any strides, e.g. C-contiguous arrays or their transposes ``x.T``; ``out``: each item C-
    or F-contiguous, not overlapping ``a`` or ``b``. Same dtype (float32 or float64) for all.
    """
    for name, x in (("a", a), ("b", b), ("out", out)):
        if not is_cupy_array(x):
            raise DeviceError(f"gemm multiplies CuPy arrays; {name} is {type(x).__name__} "
                              f"(use numpy.matmul on the host)")
    device = cupy.cuda.runtime.getDevice()
    if not a.device.id == b.device.id == out.device.id == device:
        raise DeviceError(f"gemm: a, b and out must live on the current device cuda:{device}, got "
                          f"cuda:{a.device.id}, cuda:{b.device.id}, cuda:{out.device.id}")
    grid, args = launch_arguments(a, b, out)
    if grid is not None:
        kernel(out.dtype)(grid, (THREADS,), args)
    return out
