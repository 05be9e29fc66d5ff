"""Moving a layer to another backend (``LayerMoves``, a base of ``Layer``): every array it holds
per device converted and checked first, then swapped in, so a refusal leaves it as it was."""
from __future__ import annotations

import numpy as np

from ..backend import Backend, default_device, get_backend, parse_spec
from .arrays import values


class LayerMoves:
    """``Layer.to`` and ``moved_arrays``: what a layer holds per device, on another backend."""

    def to(self, backend, dtype=None):
        """Move every array this layer holds per device (``moved_arrays``) to ``backend`` (Backend or
        spec; None: the default device; a dtype alone, PyTorch's ``layer.to(torch.float64)``: this
        device in it; ``dtype`` re-types, as ``Sequential.to``); returns self. Without a dtype a spec
        keeps the layer's. All or nothing: each is converted and checked before any is swapped in, so
        a refusal (a value beyond the new dtype's range, named) leaves the layer as it was. Parameters
        not drawn yet are drawn later, there."""
        named, dtype = dtype_named(backend), dtype_named(dtype, dtype)
        if named is not None and dtype is None:
            backend, dtype = self.backend.device, named
        if isinstance(backend, Backend):
            backend = backend if dtype is None else get_backend(backend, dtype)
        else:
            device, spec_dtype = parse_spec(default_device() if backend is None else backend)
            backend = get_backend(device if spec_dtype is None else f"{device}/{spec_dtype}",
                                  dtype or (None if spec_dtype else self.backend.dtype))
        if backend != self.backend:
            self._take_moved(backend, self.moved_arrays(backend))
        return self

    def moved_arrays(self, backend: Backend, prefix="") -> dict:
        """New arrays holding, as ``backend`` would, what this layer keeps per device:
        ``{"parameter": ..., "gradient": ..., "buffer": ...}``, each ``{name: array}`` (parameters and
        gradients None while not drawn; the buffers of the layer's dtype on its device, not host
        counters such as Dropout's). A value the new dtype cannot hold is refused, named (``prefix``:
        e.g. "0."), and this layer is left as it was: ``to`` swaps the arrays in (``_take_moved``)."""
        def moved(kind, arrays):
            return {k: values(backend, a, f"{self!r} {kind} {prefix}{k}") for k, a in arrays.items()}
        params = grads = None
        if self._params is not None:
            params = moved("parameter", self._params)
            with backend.activate():
                grads = ({k: backend.zeros(p.shape) for k, p in params.items()} if self._grads_stale  # read as zeros
                         else moved("gradient", self._grads))
        own = {k: b for k, b in self.buffers.items() if self.backend.is_own(b) and b.dtype == self.backend.dtype}
        return {"parameter": params, "gradient": grads, "buffer": moved("buffer", own)}

    def _take_moved(self, backend: Backend, arrays: dict) -> None:
        """Live on ``backend`` with ``arrays`` (``moved_arrays(backend)``); nothing here can be refused."""
        self.backend = backend
        self._take(arrays)
        self._clear_cache()

    def _clear_cache(self):
        for name in ("X", "Y"):
            if hasattr(self, name):
                setattr(self, name, None)
        self.__dict__.pop("_kept_work", None)  # work arrays on the old device (arrays.kept)


def dtype_named(x, otherwise=None):
    """The NumPy dtype ``x`` names where a device or a dtype goes ('float64', np.float64, or PyTorch's
    torch.float64, as ported code writes ``model.to(torch.float64)``), else ``otherwise`` (a device, a
    Backend, None: no dtype)."""
    if x is None or isinstance(x, Backend):
        return otherwise
    if type(x).__module__ == "torch" and type(x).__name__ == "dtype":  # torch.float64: NumPy's float64
        x = str(x).rpartition(".")[2]
    try:
        return np.dtype(x)
    except (TypeError, ValueError):
        return otherwise
