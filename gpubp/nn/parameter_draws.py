"""How a layer's parameters are drawn (``ParameterDraws``, a base of ``Layer``): stated by
``parameter_shapes``, drawn by ``drawn_parameters`` from a host RNG, checked (naming the layer and
parameter), then swapped in; a user's own ``reset_parameters`` is run and undone so a model can
swap every layer's draw in at once."""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidValueError, ShapeError
from .arrays import values


class ParameterDraws:
    """``Layer``'s drawing of parameters: ``reset_parameters``, ``drawn_arrays`` and what a layer of
    one's own overrides (``parameter_shapes``, ``drawn_parameters``)."""

    _own_reset_running = False  # a subclass's own reset_parameters runs under drawn_arrays

    def parameter_shapes(self) -> dict:
        """``{name: shape}`` of the parameters, known without drawing them."""
        return {}

    def stated_shapes(self, prefix="") -> dict:
        """``parameter_shapes()`` checked where gpubp reads it (a draw, a load, a model's or checkpoint's
        ``parameter_shapes``): a dict of names (non-empty strings) to shapes (tuples of whole numbers >= 0;
        () for a scalar), refused naming the layer (and ``prefix``-ed parameter) otherwise, as
        ``{name: tuple of ints}``. (A layer of one's own writes it; gpubp's own always pass.) A layer of
        one's own that states none but holds parameters it drew (``drawn_parameters`` alone): their shapes,
        so that what ``parameters()`` lists is what a load or a checkpoint takes back."""
        shapes = self.parameter_shapes()
        held = self.__dict__.get("_params")
        if isinstance(shapes, dict) and not shapes and held and not defines_own(type(self), "parameter_shapes"):
            return {name: tuple(a.shape) for name, a in held.items()}
        if not isinstance(shapes, dict):
            raise InvalidValueError(f"{self!r}.parameter_shapes must return a dict {{name: shape}}, e.g. "
                                    f"{{'W': (4, 3)}}, got {type(shapes).__name__} {shapes!r:.60}")
        checked = {}
        for name, shape in shapes.items():
            if not isinstance(name, str) or not name:
                raise InvalidValueError(f"{self!r}.parameter_shapes: a parameter's name is a non-empty string "
                                        f"(it names the array in checkpoints), got {name!r:.40}")
            dims = tuple(shape) if isinstance(shape, (tuple, list)) else None
            if dims is None or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0 for d in dims):
                raise ShapeError(f"{self!r}.parameter_shapes: parameter {prefix}{name} has shape {shape!r:.40}; "
                                 f"a shape is a tuple of whole numbers >= 0, e.g. (4, 3), or () for a scalar")
            checked[name] = tuple(int(d) for d in dims)
        return checked

    def reset_parameters(self, rng=None):
        """Redraw parameters from the host RNG ``rng``: ``drawn_arrays(rng)`` swapped in (no-op for
        parameter-free layers). ``rng`` may also be a seed (a whole number >= 0), or None, as PyTorch's
        ``layer.reset_parameters()`` is called: the layer's own ``seed`` (a fresh draw where it has none)."""
        if not isinstance(rng, np.random.Generator):
            seed = getattr(self, "seed", None) if rng is None else rng
            if not (seed is None or isinstance(seed, np.random.Generator) or isinstance(seed, numbers.Integral)
                    and not isinstance(seed, (bool, np.bool_)) and seed >= 0):
                raise InvalidValueError(f"{self!r}.reset_parameters: rng must be a NumPy Generator, such as "
                                        f"np.random.default_rng(0), or a seed (a whole number >= 0), got {rng!r:.60}")
            rng = np.random.default_rng(seed)
        self._take_drawn(self.drawn_arrays(rng))

    def drawn_parameters(self, rng, prefix="") -> dict:
        """``{name: array}`` of new parameters drawn from ``rng`` on this layer's device, checked
        (a refusal names the layer and ``prefix``-ed parameter, e.g. "1.W"); nothing is set. A
        layer with parameters overrides this; {}: none."""
        return {}

    def drawn_arrays(self, rng, prefix="") -> dict:
        """What ``reset_parameters(rng)`` sets, as ``moved_arrays`` gives it (parameters and zero
        gradients, None when none are drawn; buffers), the layer left as it was: a model draws every
        layer's first and swaps them in only when all passed (``_take_drawn``). A class that keeps
        its own ``reset_parameters`` (a user's layer) is reset and then put back as it was, even when
        the reset raises; what it set travels under "reset"."""
        if defines_own(type(self), "reset_parameters") and not self._own_reset_running:
            return self._reset_undone(rng)
        params = self._checked_draw(self.drawn_parameters(rng, prefix), prefix)
        params = params or (None if self._params is not None else {})  # {}: drawn, none (stated none)
        grads = None
        if params is not None:
            with self.backend.activate():
                grads = {k: self.backend.zeros(p.shape) for k, p in params.items()}
        return {"parameter": params, "gradient": grads, "buffer": {}}

    def _checked_draw(self, drawn, prefix) -> dict:
        """What ``drawn_parameters`` returned, refused naming the layer and parameter unless it is a dict of
        the names ``parameter_shapes`` states (when it states any), each finite numbers of the stated shape;
        an array on the host or of another dtype (a user's layer drawing with NumPy) is taken into this
        layer's dtype on its device, as a callable initialiser's is."""
        if not isinstance(drawn, dict):
            raise InvalidValueError(f"{self!r}.drawn_parameters must return a dict {{name: array}}, got "
                                    f"{type(drawn).__name__} {drawn!r:.60}")
        shapes = self.stated_shapes(prefix)
        if shapes and set(drawn) != set(shapes):
            raise ShapeError(f"{self!r}.drawn_parameters drew {sorted(drawn)}, but parameter_shapes says "
                             f"{sorted(shapes)}; draw each of them (override drawn_parameters(rng, prefix))")
        checked = {}
        for name, a in drawn.items():
            what = f"{self!r} parameter {prefix}{name}"
            if not (self.backend.is_own(a) and a.dtype == self.backend.dtype):
                a = values(self.backend, a, what)
            if name in shapes and tuple(a.shape) != tuple(shapes[name]):
                raise ShapeError(f"{what} has shape {tuple(a.shape)}, parameter_shapes says {tuple(shapes[name])}")
            checked[name] = self.backend.check_finite(a, what)
        return checked

    def _reset_undone(self, rng) -> dict:
        """``drawn_arrays`` of a layer with its own ``reset_parameters``: run it, keep what it set
        (its attributes, and values it wrote into arrays it already held), put the layer back."""
        before = dict(self.__dict__)
        held = [a for arrays in (self._params or {}, self._grads if self._params else {}, self.buffers)
                for a in arrays.values()]
        saved = [a.copy() for a in held]
        try:
            self._own_reset_running = True  # its super().reset_parameters draws as Layer's does
            self.reset_parameters(rng)
            del self._own_reset_running
            after, written = dict(self.__dict__), [a.copy() for a in held]
        finally:
            for a, value in zip(held, saved):
                a[...] = value
            self.__dict__.clear()
            self.__dict__.update(before)
        params, grads = after.get("_params"), after.get("_grads")
        return {"parameter": None if params is None else dict(params),
                "gradient": None if params is None else dict(grads), "buffer": {},
                "reset": (after, list(zip(held, written)))}

    def _take_drawn(self, arrays: dict) -> None:
        """Hold ``arrays`` (``drawn_arrays``) from now on; nothing here can be refused."""
        if "reset" in arrays:
            after, written = arrays["reset"]
            self.__dict__.clear()
            self.__dict__.update(after)
            for a, value in written:
                a[...] = value
        elif arrays["parameter"] is not None:
            self._take(arrays)
            self._grads_zero, self._grads_stale = True, False

    def reset_replaces(self) -> str:
        """What ``reset_parameters`` would replace that this layer already holds, in words ("" for
        nothing; a seeded ``Sequential`` warns naming it): its parameters, once drawn."""
        return "parameters" if self.parameters_drawn and self.stated_shapes() else ""


def defines_own(cls, name) -> bool:
    """Whether a layer class (``cls`` or a class between it and Layer) defines ``name``, a method
    of ``ParameterDraws``, itself."""
    return next(c for c in cls.__mro__ if name in vars(c)) is not ParameterDraws
