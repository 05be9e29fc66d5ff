"""The arrays that cross into a layer, checked where they enter: a parameter or gradient put
under a name (``Arrays``), values loaded from any device (``values``), and the ``out`` buffer a
step plan lends to a forward or backward (``check_out``; ``into`` writes a result into it).
Losses check their ``out`` buffers with the same ``check_out``. Arrays a layer cannot take, found
only once NumPy or CuPy failed on them, are named by ``shape_error`` and ``core_error``.
"""
from __future__ import annotations

from ..backend.operands import operand_error
from ..errors import GpubpError, InvalidValueError, ShapeError


class Arrays(dict):
    """A layer's ``{name: array}`` of parameters or of gradients. Putting an array under a name
    (``layer.params["W"] = W``) checks it against the one it replaces (shape, dtype, device) and
    counts a replacement (``Layer.generation``), so that an optimizer update or a CUDA graph bound
    to the old array is bound anew; ``load_parameters`` instead copies values into the arrays."""

    def __init__(self, layer, what, arrays):
        super().__init__(arrays)
        self.layer, self.what = layer, what

    def __setitem__(self, name, array):
        if dict.get(self, name) is array:  # ``grads[name] += g`` puts the same array back: nothing replaced
            return
        check_replacement(self.layer, self.what, self, name, array)
        super().__setitem__(name, array)
        self.layer.generation += 1

    def update(self, *arrays, **named):
        """Each array put under its name as ``arrays[name] = array`` puts it (checked), all checked first."""
        given = dict(*arrays, **named)
        for name, array in given.items():
            if dict.get(self, name) is not array:
                check_replacement(self.layer, self.what, self, name, array)
        for name, array in given.items():
            self[name] = array

    def __ior__(self, arrays):
        self.update(arrays)
        return self

    def setdefault(self, name, array=None):
        if name not in self:
            self[name] = array  # refused: every name is the layer's already
        return self[name]

    def _fixed_names(self, *args, **kw):
        raise InvalidValueError(f"{self.layer!r} {self.what}s are {sorted(self)}: none can be removed (the layer's "
                                f"forward and backward read each); replace one with layer.{'params' if self.what == 'parameter' else 'grads'}"
                                f"[name] = array")

    __delitem__ = pop = popitem = clear = _fixed_names

    def __reduce__(self):  # copies and pickles rebuild it whole (not item by item, which would be refused)
        return type(self), (self.layer, self.what, dict(self))


class Buffers(dict):
    """A layer's ``{name: array}`` of non-trainable state (``Layer.buffers``: BatchNorm's running
    statistics, Dropout's counters). An array put under a name (``bn.buffers["running_mean"] = m``,
    a port of another library's statistics) is written as ``load_buffers`` writes it: checked (shape,
    dtype, values, as a checkpoint's are) and copied into the layer's own array, which stays the
    same (whoever holds it sees the change). Names are the layer's: none added or removed."""

    def __init__(self, layer, arrays):
        super().__init__(arrays)
        self.layer = layer

    def __setitem__(self, name, array):
        if dict.get(self, name) is not array:  # ``buffers[name] += x`` puts the same array back
            self.layer.load_buffers({**self, name: array})

    def _fixed_names(self, *args, **kw):
        raise InvalidValueError(f"{self.layer!r} buffers are {sorted(self)}: none can be added or removed; set "
                                f"values with buffers[name] = array or load_buffers")

    __delitem__ = pop = popitem = clear = setdefault = update = __ior__ = _fixed_names

    def __reduce__(self):  # copies and pickles rebuild it whole (not item by item, which would load)
        return type(self), (self.layer, dict(self))


def check_replacement(layer, what, store, name, array):
    """Refuse ``array`` as the new ``store[name]``, a ``layer``'s parameter or gradient (``what``),
    before anything changes: ``name`` must be in ``store`` and ``array`` an array on the layer's
    device of the dtype and shape of the one it replaces."""
    old = store.get(name)
    if old is None:
        raise InvalidValueError(f"{layer!r} has no {what} {name!r}; its {what}s are {sorted(store)}")
    layer.backend.check_array(array, f"{layer!r} {what} {name}")
    if tuple(array.shape) != tuple(old.shape) or array.dtype != old.dtype:
        raise ShapeError(f"{layer!r} {what} {name} is {old.dtype} {tuple(old.shape)}, "
                         f"got {array.dtype} {tuple(array.shape)}")
    if not getattr(array.flags, "writeable", True):  # NumPy's flag; CuPy arrays are always writable
        raise InvalidValueError(f"{layer!r} {what} {name}: the array is read-only (a memory map, a broadcast "
                                f"view?), but {'backward adds into' if what == 'gradient' else 'an optimizer writes'} "
                                f"it in place; give a writable copy (a.copy())")


def values(backend, a, what):
    """``a`` (an array on any device, or a list) as a new array of ``backend``'s dtype on it;
    the backend's refusal (no numbers, not rectangular) naming ``what``."""
    try:
        return backend.asarray(a, backend.dtype)
    except GpubpError as exc:
        raise type(exc)(f"{what}: {exc}") from None


def check_out(backend, out, shape, where, of):
    """Refuse an ``out`` buffer (None: none given) unless it is a writable ``shape`` array of
    ``backend``'s dtype on its device: the shape of ``of``, named in the message with ``where``."""
    if out is None:
        return
    backend.check_array(out, where)
    if tuple(out.shape) != tuple(shape):
        raise ShapeError(f"{where}: the buffer has shape {tuple(out.shape)}, expected {tuple(shape)} "
                         f"(the shape of the {of})")
    if not getattr(out.flags, "writeable", True):  # NumPy's read-only arrays (CuPy has none)
        raise InvalidValueError(f"{where}: the buffer is read-only")


KEPT_SHAPES = 4  # the shapes a layer keeps work arrays of, per name: a batch, an epoch's short last one, eval's two


def work(layer, name, shape, dtype, init=None):
    """``layer``'s work array ``name`` of ``shape`` and ``dtype``, made once and kept (never handed to a
    caller): what a step reuses, so that a step plan's step allocates nothing. ``init(array)`` runs once,
    when it is made (a padding of -inf, a constant mask); after that it holds what was last written, and
    nothing a step reads was written by an earlier step. ``kept``'s rules: the last ``KEPT_SHAPES`` shapes
    per name; moving the layer (``Layer.to``) drops them all (plans made before are stale then)."""
    dtype = layer.backend.xp.dtype(dtype)

    def make():
        a = layer.backend.empty(shape, dtype)
        if init is not None:
            init(a)
        return a
    return kept(layer, name, (shape, dtype), make)


def kept(layer, name, key, make):
    """``make()`` for ``(name, key)``, made once and kept by ``layer``: the work arrays of a shape.
    For each ``name`` the last ``KEPT_SHAPES`` keys used are kept (so that a model called on ever new
    batch sizes, e.g. by ``predict`` on requests, does not hold one set of arrays per size); one let go
    while a CUDA graph uses it stays alive, held by the graph (``GraphedStep`` keeps what it recorded)."""
    store = layer.__dict__.setdefault("_kept_work", {})
    value = store.pop((name, key), None)
    if value is None:
        value = make()
        same = [k for k in store if k[0] == name]
        for k in same[:max(0, len(same) + 1 - KEPT_SHAPES)]:  # the least recently used
            del store[k]
    store[name, key] = value  # the most recently used: last
    return value


def into(out, value):
    """``value``; with a buffer ``out`` given (a step plan's), ``value`` written into it and ``out``."""
    if out is None:
        return value
    out[...] = value
    return out


FAILURES = (TypeError, ValueError, IndexError, AttributeError, KeyError)  # what NumPy or Python raise on junk


def shape_error(layer, shape, exc) -> GpubpError:
    """The error of ``layer.output_shape(shape)`` that failed with ``exc`` (raised by Python or
    NumPy, looked at only then): gpubp's own passes through, anything else is a ShapeError saying
    what a shape is."""
    if isinstance(exc, GpubpError):
        return exc
    return ShapeError(f"{layer!r}: an input shape is a tuple of whole numbers >= 0, got {shape!r:.80} ({exc})")


def core_error(layer, what, exc, **operands) -> GpubpError:
    """The error of a layer's unchecked core (``_forward``, ``_backward``, ...) that failed with
    ``exc`` on ``operands`` (a step plan's buffers, say): their shapes and dtypes named."""
    given = {k: v for k, v in operands.items() if not (k == "out" and v is None)}  # out=None: none lent
    return operand_error(f"{layer!r} {what}", exc, layer.backend, **given)
