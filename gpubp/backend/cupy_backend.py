"""CupyBackend: the CUDA path. Registry kernels become ``cupy.ElementwiseKernel``s of four elements per thread."""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from .._compat import cupy
from ..errors import OutOfMemoryError, StateError
from .base import Backend
from .operands import MATMUL, given, operand_error
from .kernels.gemm import gemm
from .kernels.unrolled import threads, unrolled

_compiled: dict[tuple, object] = {}  # (kernel name, array_scalars): its ElementwiseKernel


def elementwise_kernel(kernel, array_scalars=()):
    """The ``cupy.ElementwiseKernel`` of a registry kernel, four elements per thread (kernels/unrolled.py),
    its scalars ``array_scalars`` given as 0-d arrays; built once and cached; called with ``size=threads(n)``."""
    key = (kernel.name, array_scalars)
    if key not in _compiled:
        _compiled[key] = cupy.ElementwiseKernel(*unrolled(kernel, array_scalars), kernel.cuda_name)
    return _compiled[key]


def out_of_memory(device, exc) -> OutOfMemoryError:
    """gpubp's error for a CuPy allocation failure: how much was asked, and what to do."""
    return OutOfMemoryError(f"{device} ran out of memory: {exc}. Use a smaller batch size or model, "
                            f"free other arrays (cupy.get_default_memory_pool().free_all_blocks()), "
                            f"or pick another GPU with --device cuda:N")


def no_allocation(device):
    """A CuPy memory hook, entered as a context, that refuses every allocation from CuPy's memory
    pool in this thread while it is entered (a StateError naming the size and ``device``). Memory
    hooks are thread-local and called only when one is registered: nothing else pays for it."""
    return _no_allocation_hook()(device)


@functools.lru_cache(maxsize=None)
def _no_allocation_hook():
    class NoAllocation(cupy.cuda.MemoryHook):
        name = "gpubp_capture_allocates_nothing"

        def __init__(self, device):
            self.device = device

        def malloc_preprocess(self, **kwargs):
            raise StateError(f"cuda_graph: an operation of the captured step asked CuPy's memory pool on "
                             f"{self.device} for {kwargs.get('size', '?')} bytes while the stream captured; a "
                             f"replay would write into memory the pool lends out again once that array is "
                             f"dropped. A captured step must write only arrays made before the capture (a "
                             f"step plan's buffers); the traceback shows the operation")
    return NoAllocation


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, device_id: int = 0, dtype="float32"):
        super().__init__(dtype)
        self.xp = cupy
        self.device_id = device_id
        self.device = f"cuda:{device_id}"
        self._graph_arithmetic = False

    @staticmethod
    def address(a) -> int:
        return a.data.ptr

    def write(self, dst, host_values) -> None:
        """``dst[...] = host_values`` as on NumPy (broadcast, rounded once to ``dst``'s dtype), in one
        host-to-device copy in stream order. CuPy's ``set`` takes only a host array of ``dst``'s very
        shape and a contiguous ``dst``: a scalar for a vector is broadcast here, on the host, first."""
        try:
            host = np.asarray(host_values, dtype=dst.dtype)
            if host.shape != dst.shape:
                host = np.broadcast_to(host, dst.shape)
            with self.activate():
                if dst.flags.c_contiguous or dst.flags.f_contiguous:
                    dst.set(host)
                else:  # set refuses a strided dst (RuntimeError): a device copy, then an elementwise one
                    dst[...] = cupy.asarray(host)
        except (AttributeError, TypeError, ValueError) as exc:  # host_values are host numbers: not checked for a device
            if not self.is_own(dst):
                raise operand_error("write", exc, self, dst=dst) from None
            raise operand_error("write", exc, None, dst=dst, host_values=host_values) from None

    def matmul(self, a, b, out=None):
        """cuBLAS (``cupy.matmul``), except inside ``graph_arithmetic`` (a capture): gpubp's
        GEMM kernel (backend/kernels/gemm.py), as CuPy refuses cuBLAS while a stream captures.
        Operands that do not fit are a ShapeError or DTypeError naming their shapes and dtypes; one
        that is no CuPy array is refused first, as CuPy 14.2's matmul crashes the process on None."""
        try:
            for x in (a, b) if out is None else (a, b, out):
                if not isinstance(x, cupy.ndarray):
                    raise TypeError(f"{type(x).__name__} is not a CuPy array")
            if not self._graph_arithmetic or out is None:
                return cupy.matmul(a, b, out=out)
            if a.ndim == 1:  # 1^T D (sum_rows): a row vector times a matrix
                gemm(a[None, :], b, out[None, :])
            else:  # 2-d, or a stack of products (Conv2D's W_col @ cols_n) in one launch, blockIdx.z the item
                gemm(a, b, out)
            return out
        except (TypeError, ValueError, AttributeError) as exc:
            raise operand_error("matmul", exc, self, MATMUL, a=a, b=b, **given(out=out)) from None

    @contextlib.contextmanager
    def graph_arithmetic(self):
        """The arithmetic of a captured CUDA graph, also for an eager run to equal one bit for
        bit: matmul by gpubp's GEMM, reductions and elementwise operations by CuPy's own kernels
        (CUB and cuTENSOR off: they allocate scratch, and a captured graph must allocate nothing)."""
        accelerators = cupy._core._accelerator
        kinds = ("routine", "reduction", "elementwise")
        saved = [getattr(accelerators, f"get_{kind}_accelerators")() for kind in kinds]
        for kind in kinds:
            getattr(accelerators, f"set_{kind}_accelerators")([])
        before, self._graph_arithmetic = self._graph_arithmetic, True
        try:
            yield
        finally:
            self._graph_arithmetic = before
            for kind, accelerated in zip(kinds, saved):
                getattr(accelerators, f"set_{kind}_accelerators")(accelerated)

    def stream(self):
        """A new CUDA stream on this device (one that does not wait for the legacy default stream)."""
        with self.activate():
            return cupy.cuda.Stream(non_blocking=True)

    @staticmethod
    def current_stream():
        return cupy.cuda.get_current_stream()

    def capture(self, fn, stream):
        """The CUDA graph of the launches ``fn()`` makes on ``stream`` (nothing runs now), in
        ``graph_arithmetic``. An allocation from CuPy's memory pool inside ``fn`` is refused
        (StateError, raised where it happens): CuPy allows one during a capture, but the graph keeps
        its address, and once the array is dropped the pool lends that memory to the next array,
        which every replay would then overwrite."""
        with self.activate(), stream, self.graph_arithmetic(), no_allocation(self.device):
            stream.begin_capture()
            try:
                fn()
            except BaseException:
                try:  # end the capture, but report what went wrong inside it, not that it ended badly
                    stream.end_capture()
                except Exception:  # noqa: S110  (the capture is invalid after fn's error)
                    pass
                raise
            return stream.end_capture()

    def is_own(self, x) -> bool:
        return isinstance(x, cupy.ndarray) and x.device.id == self.device_id

    def _to_device(self, host, dtype):
        with self.activate():
            if isinstance(host, cupy.ndarray):
                return host.astype(dtype, copy=True)
            return cupy.asarray(np.asarray(host, dtype=dtype, order="C"))  # a scalar stays 0-d (ascontiguousarray: 1-d)

    def synchronize(self) -> None:
        cupy.cuda.Device(self.device_id).synchronize()

    @contextlib.contextmanager
    def activate(self):
        """This device, and CUDA out-of-memory turned into gpubp's OutOfMemoryError. The device is
        made current only when it is not: CuPy's ``Device`` block calls cudaSetDevice on leaving
        even then, a runtime call per launch that a captured CUDA graph is better without."""
        switch = cupy.cuda.runtime.getDevice() != self.device_id
        with cupy.cuda.Device(self.device_id) if switch else contextlib.nullcontext():
            try:
                yield
            except cupy.cuda.memory.OutOfMemoryError as exc:
                raise out_of_memory(self.device, exc) from exc

    def zeros(self, shape, dtype=None):
        with self.activate():
            return super().zeros(shape, dtype)

    def empty(self, shape, dtype=None):
        with self.activate():
            return super().empty(shape, dtype)

    def run(self, kernel, args) -> None:
        self._launcher(kernel, args)()

    def bind(self, kernel, *args):
        # the ElementwiseKernel and its thread count found once, not at every launch
        return self._launcher(kernel, self._refuse_read_only(kernel, self._arguments(kernel, args)))

    def _launcher(self, kernel, args):
        """A function of no arguments that launches ``kernel`` on ``args`` (checked): its
        ElementwiseKernel (the scalars given as 0-d arrays raw parameters) and ``size`` chosen now."""
        n = args[0].size
        size = threads(n)
        array_scalars = tuple(kernel.input_names[i] for i in kernel.scalar_positions if isinstance(args[i], cupy.ndarray))
        compiled = elementwise_kernel(kernel, array_scalars) if n else None

        def launch():
            with self.activate():
                try:
                    if n:
                        compiled(*args, size=size)
                except (TypeError, ValueError, AttributeError) as exc:
                    self._refuse_run(kernel, args, exc)
        return launch
