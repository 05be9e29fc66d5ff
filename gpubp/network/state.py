"""A model's arrays by name: parameters, gradients and buffers of every layer, named "i.name"
(``"0.W"`` is layer 0's weight), loaded checked, and kept in flat buffers.

Loading checks every name, shape and value of every layer before anything is written.
``flatten_`` keeps all parameters in one flat array and all gradients in another, each
layer's arrays views of them, so an optimizer updates every parameter in one kernel launch.
"""
from __future__ import annotations

import itertools
import math

from .. import _checks
from ..errors import InvalidValueError, ShapeError


class ModelState:
    """The named-array half of ``Sequential``: it needs ``self.layers`` and ``self.backend``."""

    _flat = None  # (parameters, gradients) once flatten_ has run

    def parameters(self) -> dict:
        """``{"i.name": array}`` for every parameter, in layer order."""
        return self._by_name(lambda layer: layer.params)

    def parameter_shapes(self) -> dict:
        """``{"i.name": shape}`` of every parameter, known without drawing any."""
        return self._by_name(lambda layer: layer.parameter_shapes())

    def gradients(self) -> dict:
        """``{"i.name": array}`` of accumulated gradients, same keys as ``parameters()``."""
        return self._by_name(lambda layer: layer.grads)

    def buffers(self) -> dict:
        """``{"i.name": array}`` of every layer's non-trainable state (BatchNorm's running
        statistics, Dropout's seed and step): what a checkpoint keeps beside the parameters."""
        return self._by_name(lambda layer: layer.buffers)

    def _by_name(self, arrays_of) -> dict:
        """``{"i.name": value}`` of the dict ``arrays_of(layer)`` of every layer i, in layer order."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in arrays_of(layer).items()}

    def load_parameters(self, arrays: dict) -> None:
        """Set every parameter from ``{"i.name": array}`` (as ``parameters()`` names them), in
        place where they exist; names, shapes and values (numbers, finite) are all checked before
        anything is written."""
        checked = self._checked(arrays, "load_parameters", "parameters", lambda layer: layer.parameter_shapes(),
                                lambda layer, share, i: layer.checked_parameters(share, f"{i}."))
        for layer, share in zip(self.layers, checked):
            layer._write_parameters(share)
        if self.flat is None:  # some were drawn just now, as separate arrays
            self.flatten_()

    def load_buffers(self, arrays: dict) -> None:
        """Set every buffer from ``{"i.name": array}`` (as ``buffers()`` names them); names, shapes and
        values are all checked before anything is written."""
        checked = self._checked(arrays, "load_buffers", "buffers", lambda layer: layer.buffers,
                                lambda layer, share, i: layer.checked_buffers(share))
        for layer, share in zip(self.layers, checked):
            layer._write_buffers(share)

    def _checked(self, arrays, method, what, names_of, check) -> list:
        """Each layer's share ``{name: array}`` of ``arrays`` checked by ``check(layer, share, i)``, in
        layer order; a ShapeError unless the names are exactly those ``what()`` gives."""
        names = set(self._by_name(names_of))
        if set(_named(arrays, method, what)) != names:
            raise ShapeError(f"{what} do not match the model: missing {sorted(names - set(arrays))}, "
                             f"unexpected {sorted(map(str, set(arrays) - names))}")
        return [check(layer, {k: arrays[f"{i}.{k}"] for k in names_of(layer)}, i)
                for i, layer in enumerate(self.layers)]

    def keep_gradients_in(self, arrays: dict) -> None:
        """Store every layer's gradients in ``arrays`` (``{"i.name": array}``, as ``gradients()``
        names them) from now on, e.g. views of the flat buffer a communicator reduces."""
        _named(arrays, "keep_gradients_in", "gradients")
        for i, layer in enumerate(self.layers):
            mine = {k: arrays[f"{i}.{k}"] for k in layer.params if f"{i}.{k}" in arrays}
            if mine:
                layer.keep_gradients_in(mine)

    @property
    def generation(self) -> tuple:
        """Changes whenever a layer is swapped or replaces its parameter or gradient arrays
        (not when their values change): an optimizer keeps what it checked until then."""
        return tuple((id(layer), layer.generation) for layer in self.layers)

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def reset_parameters(self, seed=0):
        rng = self.backend.host_rng(_checks.seed("seed", seed))
        for layer in self.layers:
            layer.reset_parameters(rng)
        return self.flatten_()

    def draw_parameters(self):
        """Draw now every parameter that waits for its first use (``seed=None``; each layer's
        own seed) and keep them flat (``flatten_``), as the first forward would; returns self."""
        for layer in self.layers:
            layer.params  # noqa: B018  (draws them)
        return self.flatten_() if self._flat is None else self

    def flatten_(self):
        """Keep every parameter in one flat buffer and every gradient in another, in the order of
        ``parameters()``, each array a view of it (values kept): what lets an optimizer update
        them all in one kernel launch (``flat``). Done when parameters are drawn, moved or
        loaded; a no-op while some layer has not drawn its parameters yet. Returns self."""
        if not all(layer.parameters_drawn for layer in self.layers):
            return self
        shapes = [p.shape for p in self.parameters().values()]
        sizes = [math.prod(s) for s in shapes]
        with self.backend.activate():
            flat = self.backend.zeros((sum(sizes),)), self.backend.zeros((sum(sizes),))
        ends = list(itertools.accumulate(sizes))
        views = [[f[e - n:e].reshape(s) for e, n, s in zip(ends, sizes, shapes)] for f in flat]
        k = 0
        for layer in self.layers:
            names = list(layer.params)
            layer.keep_parameters_in(dict(zip(names, views[0][k:k + len(names)])))
            layer.keep_gradients_in(dict(zip(names, views[1][k:k + len(names)])))
            k += len(names)
        self._flat = flat
        return self

    @property
    def flat(self):
        """``(parameters, gradients)``, each one flat array, while every parameter and gradient
        still lives in the buffers of ``flatten_`` (None once any was replaced)."""
        flat = self._flat
        if flat is None or not flat[0].size:
            return None
        lives_in = self.backend.lives_in  # by address: a copied model's arrays are no views any more
        same = lives_in(list(self.parameters().values()), flat[0]) and lives_in(list(self.gradients().values()), flat[1])
        return flat if same else None


def _named(arrays, method, like):
    """``arrays`` when it is a dict (of arrays by name, as ``like()`` gives), else an InvalidValueError."""
    if not isinstance(arrays, dict):
        raise InvalidValueError(f"Sequential.{method} takes a dict {{name: array}} like {like}() gives, "
                                f"got a {type(arrays).__name__}")
    return arrays
