"""NumpyBackend: the CPU path, and the reference every other backend is tested against."""
from __future__ import annotations

import functools

import numpy as np

from . import huge_pages
from ._blocks import LENT_BLOCK, in_blocks, sizes, workers
from .kernels.scratch import lent
from .base import Backend
from .operands import FOREIGN, MATMUL, allocation_error, given, operand_error

_matmul = np.matmul
_FOREIGN = tuple(FOREIGN)  # ndarrays whose operators mean other things


class NumpyBackend(Backend):
    xp = np
    name = "numpy"
    device = "cpu"

    def matmul(self, a, b, out=None):
        try:  # free while nothing is raised: no check runs before the product
            return _matmul(a, b, out=out)
        except (TypeError, ValueError) as exc:
            raise operand_error("matmul", exc, self, MATMUL, a=a, b=b, **given(out=out)) from None

    def flat_zeros(self, sizes) -> list:
        try:
            return huge_pages.zeros([int(n) for n in sizes], self.dtype)
        except (OSError, ValueError, OverflowError, MemoryError) as exc:  # the mapping refused
            raise allocation_error("zeros", (sum(sizes),), self.dtype, exc) from None

    def is_own(self, x) -> bool:
        """A NumPy array, or a subclass that computes as one (a memmap); not a masked array or a
        matrix (``foreign``): a kernel would read through the mask, ``*`` would be a matrix product."""
        return type(x) is np.ndarray or (isinstance(x, np.ndarray) and not isinstance(x, _FOREIGN))

    def _to_device(self, host, dtype):
        return np.array(host, dtype=dtype, copy=True, order="C")

    def launch(self, kernel, *args) -> None:
        if getattr(kernel, "overflows", False):  # an expected overflow (``Kernel.overflows``), not warned of
            with np.errstate(over="ignore"):
                return super().launch(kernel, *args)
        return super().launch(kernel, *args)

    def bind(self, kernel, *args):
        # a kernel that ``overflows`` runs under its caller's np.errstate (a step plan's, one per step)
        args = self._refuse_read_only(kernel, self._arguments(kernel, args))
        if args[0].size <= (sizes()[0] if not kernel.scratch else LENT_BLOCK):  # one pass wherever it runs:
            return functools.partial(kernel.numpy, *args)  # the NumPy body itself, with nothing in between
        return self._launcher(kernel, args)

    def run(self, kernel, args) -> None:
        try:
            launch = self._launcher(kernel, args)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            self._refuse_run(kernel, args, exc)
        launch()

    def _launcher(self, kernel, args):
        """``kernel`` on ``args`` (checked) as a function of no arguments. Large arrays go through in
        cache-sized blocks: each in-place pass of the NumPy path then re-reads data from cache instead
        of from memory. A 0-d array is a scalar (a learning rate read at each launch), the same for
        every block. Where scratch is lent (a step plan's update) the blocks are of ``LENT_BLOCK``, each
        reusing the same piece of the lent buffer (``_blocks.sizes``); each block's arguments are cut
        once per block size, so a bound launch repeated every step only calls the body on them."""
        n = args[0].size  # the first argument is always an array
        blocked = [isinstance(a, np.ndarray) and a.ndim > 0 for a in args]
        whole = not all(a.size == n and a.flags.c_contiguous for a, b in zip(args, blocked) if b)  # one pass
        flat = [a.reshape(-1) if b and not whole else a for a, b in zip(args, blocked)]
        cuts = {}  # block size -> each block's (arguments, keywords)

        def pieces(block):
            cut = cuts.get(block)
            if cut is None:  # an index-aware body is told where its block starts
                cut = cuts[block] = [([a[lo:lo + block] if b else a for a, b in zip(flat, blocked)],
                                      {"start": lo} if kernel.indexed else {}) for lo in range(0, n, block)]
            return cut

        def launch():
            try:
                lender, count = lent() if kernel.scratch else None, workers(n)  # each thread a piece of what is lent
                one_pass, block = sizes(kernel.scratch, None if lender is None else lender.buffer.size // count)
                if n <= one_pass or whole:
                    kernel.numpy(*args)
                    return
                cut = pieces(block)
                if count == 1:  # in this thread, in what it has lent (if any)
                    for piece, keywords in cut:
                        kernel.numpy(*piece, **keywords)
                    return
                in_blocks(lambda lo, hi: kernel.numpy(*cut[lo // block][0], **cut[lo // block][1]), n, block,
                          None if lender is None else lender.shares(count))
            except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
                self._refuse_run(kernel, args, exc)
        return launch
