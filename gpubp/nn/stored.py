"""What a layer stores and how new values get in (``StoredArrays``, a base of ``Layer``): parameters
and buffers loaded (every name, shape and value checked before anything is written, then written
in place), and parameters or gradients kept in arrays given from now on (views of a flat buffer)."""
from __future__ import annotations

import types

from ..errors import InvalidValueError, ShapeError
from .arrays import Arrays, Buffers, check_replacement, values


class StoredArrays:
    """``Layer``'s parameters, gradients and buffers as loaded, kept and taken in."""

    _buffers_kept = types.MappingProxyType({})  # none, unless a layer keeps some (keep_buffers)

    def load_parameters(self, arrays: dict) -> None:
        """Set every parameter from ``{name: array}`` (any device, lists too), in place once they
        exist: no random draw, and arrays an optimizer holds stay the same objects. Names, shapes
        and values (numbers, finite) are all checked before anything is written."""
        self._write_parameters(self.checked_parameters(arrays))

    def checked_parameters(self, arrays: dict, prefix="") -> dict:
        """``arrays`` as this layer's parameters would hold them (copies in its dtype on its device),
        or the error that ``load_parameters`` would raise (names given ``prefix``, e.g. "0.")."""
        if not isinstance(arrays, dict):
            raise InvalidValueError(f"{self!r}: parameters are loaded from a dict {{name: array}}, "
                                    f"got a {type(arrays).__name__}")
        checked = self._checked_arrays("parameter", arrays, self.stated_shapes(prefix), prefix)
        for name, a in checked.items():
            self.backend.check_finite(a, f"{self!r} parameter {prefix}{name}")
        return checked

    def _write_parameters(self, checked: dict) -> None:
        """Set the parameters from ``checked_parameters`` output."""
        if self._params is None:
            self._set_parameters(checked)
        else:
            for name, param in self._params.items():
                param[...] = checked[name]

    @property
    def buffers(self) -> dict:
        """Non-trainable state a checkpoint keeps, ``{name: array}`` (BatchNorm's running statistics,
        Dropout's counters): an array set under a name is checked and copied in (``Buffers``)."""
        return self._buffers_kept

    @buffers.setter
    def buffers(self, arrays) -> None:
        """Set once, by a layer's constructor (``keep_buffers``); then refused: values are loaded."""
        if "_buffers_kept" in self.__dict__:
            raise InvalidValueError(f"{self!r}.buffers cannot be replaced; set values with buffers[name] = array "
                                    f"or load_buffers({{name: array}})")
        if not isinstance(arrays, dict):
            raise InvalidValueError(f"{self!r}.buffers must be a dict {{name: array}}, got a {type(arrays).__name__}")
        self.keep_buffers(arrays)

    def keep_buffers(self, arrays: dict) -> None:
        """Make ``arrays`` (``{name: array}`` on this layer's device) the layer's buffers: what its
        constructor and ``to`` do. ``load_buffers`` writes new values into them."""
        self._buffers_kept = Buffers(self, arrays)

    def load_buffers(self, arrays: dict) -> None:
        """Set the ``buffers`` from ``{name: array}`` (any device), in place; names, shapes and
        values are all checked before anything is written."""
        self._write_buffers(self.checked_buffers(arrays))

    def checked_buffers(self, arrays: dict) -> dict:
        """``arrays`` as ``load_buffers`` writes them (the names of ``buffers``, each array of its
        buffer's shape, in this layer's dtype), or the error it raises; a layer whose buffers hold
        more (a range, integers) extends or overrides this."""
        return self._checked_arrays("buffer", arrays, {name: buf.shape for name, buf in self.buffers.items()})

    def _checked_arrays(self, kind, arrays, shapes: dict, prefix="") -> dict:
        """``arrays`` as new arrays of this layer's dtype on its device, refused unless it is a dict
        of exactly the names of ``shapes`` ({name: shape}), each array of its shape."""
        if not isinstance(arrays, dict) or set(arrays) != set(shapes):
            got = sorted(map(str, arrays)) if isinstance(arrays, dict) else repr(arrays)[:80]
            raise ShapeError(f"{self!r} has {kind}s {sorted(shapes)}, got {got}")
        checked = {}
        for name, shape in shapes.items():
            what = f"{self!r} {kind} {prefix}{name}"
            a = checked[name] = values(self.backend, arrays[name], what)
            if tuple(a.shape) != tuple(shape):
                raise ShapeError(f"{what} has shape {tuple(a.shape)}, the architecture says {tuple(shape)}")
        return checked

    def _write_buffers(self, checked: dict) -> None:
        """Write ``checked_buffers`` output into the buffers, in place."""
        for name, value in checked.items():
            self.buffers[name][...] = value

    def keep_gradients_in(self, arrays: dict) -> None:
        """Store the gradients in ``arrays`` from now on (``{name: array}`` of their shapes and
        dtype on this device, e.g. views of one flat buffer that a communicator reduces in
        place); their current values are copied in."""
        self._keep_in(self.grads, arrays, "gradient")

    def keep_parameters_in(self, arrays: dict) -> None:
        """Store the parameters in ``arrays`` from now on (views of a model's flat buffer,
        ``Sequential.flatten_``); their current values are copied in."""
        self._keep_in(self.params, arrays, "parameter")

    def _keep_in(self, store: dict, arrays: dict, what: str) -> None:
        """Every array checked before any is written: a refused one leaves the others' values as given."""
        if not isinstance(arrays, dict):
            raise InvalidValueError(f"{self!r}.keep_{what}s_in takes a dict {{name: array}}, got a {type(arrays).__name__}")
        for name, array in arrays.items():
            check_replacement(self, what, store, name, array)
        for name, array in arrays.items():
            array[...] = store[name]
        dict.update(store, arrays)  # checked above, one generation for them all
        self.generation += 1

    def _set_parameters(self, params: dict) -> None:
        self._params = Arrays(self, "parameter", params)
        self._grads = Arrays(self, "gradient", {k: self.backend.zeros(v.shape) for k, v in params.items()})
        self.generation += 1
        self._grads_zero, self._grads_stale = True, False

    def _take(self, arrays: dict) -> None:
        """Hold the new arrays of ``moved_arrays`` or ``drawn_arrays`` (None: the parameters kept)."""
        if arrays["parameter"] is not None:
            self._params = Arrays(self, "parameter", arrays["parameter"])
            self._grads = Arrays(self, "gradient", arrays["gradient"])
            self.generation += 1
        if arrays["buffer"]:
            self.keep_buffers({**self.buffers, **arrays["buffer"]})
