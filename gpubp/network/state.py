"""A model's arrays by name: parameters, gradients and buffers of every layer, named "i.name"
(``"0.W"`` is layer 0's weight), loaded checked, and kept in flat buffers.

Loading checks every name, shape and value of every layer before anything is written.
``flatten_`` keeps all parameters in one flat array and all gradients in another, each
layer's arrays views of them, so an optimizer updates every parameter in one kernel launch.
Every name owns its memory (``refuse_shared_memory``): tied weights are refused, not untied.
"""
from __future__ import annotations

import itertools
import math
import operator

import numpy as np

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from ..nn import Layer
from ..nn.arrays import check_replacement
from .checks import checked_layers

_GENERATION = operator.attrgetter("generation")


class ModelState:
    """The named-array half of ``Sequential``: it needs ``self.layers`` and ``self.backend``."""

    _flat = None  # (parameters, gradients) once flatten_ has run
    _passed = None  # (layers, their ids) as ``_layers`` last passed them

    def _layers(self) -> list:
        """``self.layers``, refused as the constructor refuses them (``checks.checked_layers``, naming the
        item) when the list was changed in place since (``model.layers.append(x)`` is not checked as it
        happens) so that it holds something that is no gpubp layer, or a layer twice: every method that reads
        the layers goes through here, so none fails inside on an item's missing attribute. (An emptied list
        passes: what each method does with no layers is its own, as fit's and a plan's refusals say.)"""
        layers = self.layers
        ids = list(map(id, layers))
        if self._passed is None or ids != self._passed[1]:  # not the layers as they last passed
            if len({id(layer) for layer in layers if isinstance(layer, Layer)}) != len(layers):
                checked_layers(layers)
            self._passed = list(layers), ids  # kept alive: none of their ids is another object's
        return layers

    def parameters(self) -> dict:
        """``{"i.name": array}`` for every parameter, in layer order."""
        return self._by_name(lambda layer: layer.params)

    def parameter_shapes(self) -> dict:
        """``{"i.name": shape}`` of every parameter, known without drawing any."""
        return {f"{i}.{k}": v for i, layer in enumerate(self._layers()) for k, v in layer.stated_shapes(f"{i}.").items()}

    def gradients(self) -> dict:
        """``{"i.name": array}`` of accumulated gradients, same keys as ``parameters()``."""
        return self._by_name(lambda layer: layer.grads)

    def buffers(self) -> dict:
        """``{"i.name": array}`` of every layer's non-trainable state (BatchNorm's running
        statistics, Dropout's seed and step): what a checkpoint keeps beside the parameters."""
        return self._by_name(lambda layer: layer.buffers)

    def _by_name(self, arrays_of) -> dict:
        """``{"i.name": value}`` of the dict ``arrays_of(layer)`` of every layer i, in layer order."""
        return {f"{i}.{k}": v for i, layer in enumerate(self._layers()) for k, v in arrays_of(layer).items()}

    def load_parameters(self, arrays: dict) -> None:
        """Set every parameter from ``{"i.name": array}`` (as ``parameters()`` names them), in
        place where they exist; names, shapes and values (numbers, finite) are all checked before
        anything is written, and so is that no two names share memory (one's values would be lost)."""
        refuse_shared_memory(self._memory(), "Sequential.load_parameters")
        checked = self._checked(arrays, "load_parameters", "parameters", lambda layer: layer.stated_shapes(),
                                lambda layer, share, i: layer.checked_parameters(share, f"{i}."))
        for layer, share in zip(self._layers(), checked):
            layer._write_parameters(share)
        if self.flat is None:  # some were drawn just now, as separate arrays
            self.flatten_()

    def load_buffers(self, arrays: dict) -> None:
        """Set every buffer from ``{"i.name": array}`` (as ``buffers()`` names them); names, shapes and
        values are all checked before anything is written."""
        checked = self._checked(arrays, "load_buffers", "buffers", lambda layer: layer.buffers,
                                lambda layer, share, i: layer.checked_buffers(share))
        for layer, share in zip(self._layers(), checked):
            layer._write_buffers(share)

    def _checked(self, arrays, method, what, names_of, check) -> list:
        """Each layer's share ``{name: array}`` of ``arrays`` checked by ``check(layer, share, i)``, in
        layer order; a ShapeError unless the names are exactly those ``what()`` gives."""
        names = set(self._by_name(names_of))
        if set(_named(arrays, method, what)) != names:
            raise ShapeError(f"{what} do not match the model: missing {sorted(names - set(arrays))}, "
                             f"unexpected {sorted(map(str, set(arrays) - names))}")
        return [check(layer, {k: arrays[f"{i}.{k}"] for k in names_of(layer)}, i)
                for i, layer in enumerate(self._layers())]

    def keep_gradients_in(self, arrays: dict) -> None:
        """Store every layer's gradients in ``arrays`` (``{"i.name": array}``, as ``gradients()``
        names them) from now on, e.g. views of the flat buffer a communicator reduces. Every name
        and array is checked before any layer changes: names the model lacks, arrays of another
        shape, dtype or device, and arrays that share memory with one another or with a parameter
        (one layer's backward would overwrite another's gradient) are refused."""
        _named(arrays, "keep_gradients_in", "gradients")
        unknown = sorted(map(str, set(arrays) - set(self.gradients())))
        if unknown:
            raise ShapeError(f"Sequential.keep_gradients_in: the model has no gradients {unknown}; "
                             f"its gradients are {list(self.gradients())}")
        shares = []
        for i, layer in enumerate(self._layers()):
            mine = {k: arrays[f"{i}.{k}"] for k in layer.params if f"{i}.{k}" in arrays}
            for k, array in mine.items():
                check_replacement(layer, "gradient", layer.grads, k, array)
            shares.append(mine)
        kept = [{**layer.grads, **mine} for layer, mine in zip(self._layers(), shares)]
        refuse_shared_memory(self._memory(grads=kept), "Sequential.keep_gradients_in")
        for layer, mine in zip(self._layers(), shares):
            if mine:
                layer.keep_gradients_in(mine)

    def _memory(self, grads=None) -> list:
        """``(kind, name, array, backend)`` of every parameter and gradient of the layers that have
        drawn theirs (``grads``: each layer's gradients to check instead of its own), for
        ``refuse_shared_memory``."""
        grads = [layer.grads if layer.parameters_drawn else {} for layer in self._layers()] if grads is None else grads
        return [(kind, f"{i}.{k}", a, layer.backend)
                for i, (layer, g) in enumerate(zip(self._layers(), grads)) if layer.parameters_drawn
                for kind, arrays in (("parameter", layer.params), ("gradient", g)) for k, a in arrays.items()]

    @property
    def generation(self) -> tuple:
        """Changes whenever a layer is swapped or replaces its parameter or gradient arrays
        (not when their values change): an optimizer keeps what it checked until then."""
        layers = self._layers()
        return tuple(map(id, layers)) + tuple(map(_GENERATION, layers))  # the layers, then their counts

    def zero_grad(self):
        for layer in self._layers():
            layer.zero_grad()

    def reset_parameters(self, seed=0):
        """Redraw every layer's parameters from one host RNG seeded by ``seed``, in layer order, and
        keep them flat; returns self. All or nothing: every layer draws (``Layer.drawn_arrays``) and
        the flat buffers are made before any layer changes, so a refused draw (named by its layer)
        leaves every parameter, and the flat buffer, as it was."""
        rng = self.backend.host_rng(_checks.seed("seed", seed))
        drawn = [layer.drawn_arrays(rng, f"{i}.") for i, layer in enumerate(self._layers())]
        return self._take_drawn(drawn, "Sequential.reset_parameters")

    def draw_parameters(self):
        """Draw now every parameter that waits for its first use (``seed=None``; each layer's
        own seed) and keep them flat (``flatten_``), as the first forward would; returns self.
        All or nothing, as ``reset_parameters``."""
        drawn = [None if layer.parameters_drawn else layer.drawn_arrays(layer.backend.host_rng(layer.seed), f"{i}.")
                 for i, layer in enumerate(self._layers())]
        return self._take_drawn(drawn, "Sequential.draw_parameters", flatten=self._flat is None)

    def _take_drawn(self, drawn: list, where: str, flatten=True):
        """Swap in each layer's ``drawn_arrays`` (None: kept), then keep every parameter flat
        (``flatten``); shared memory is refused and the flat buffers made before any layer changes."""
        params = [layer.params if arrays is None or arrays["parameter"] is None and layer.parameters_drawn
                  else arrays["parameter"] for layer, arrays in zip(self._layers(), drawn)]
        flat = None
        if flatten and all(p is not None for p in params):
            grads = [layer.grads if arrays is None or arrays["parameter"] is None else arrays["gradient"]
                     for layer, arrays in zip(self._layers(), drawn)]
            refuse_shared_memory(_entries(self._layers(), params, grads), where)
            flat = self._flat_views(params)
            for layer, p, (views, _) in zip(self._layers(), params, flat[1]):
                for name, view in views.items():
                    check_replacement(layer, "parameter", p, name, view)  # what keep_parameters_in checks
        for layer, arrays in zip(self._layers(), drawn):
            if arrays is not None:
                layer._take_drawn(arrays)
        return self if flat is None else self._keep_flat(*flat)

    def flatten_(self):
        """Keep every parameter in one flat buffer and every gradient in another, in the order of
        ``parameters()``, each array a view of it (values kept): what lets an optimizer update
        them all in one kernel launch (``flat``). Done when parameters are drawn, moved or
        loaded; a no-op while some layer has not drawn its parameters yet. Returns self."""
        if not all(layer.parameters_drawn for layer in self._layers()):
            return self
        refuse_shared_memory(self._memory(), "Sequential.flatten_")  # a copy each would untie them
        return self._keep_flat(*self._flat_views([layer.params for layer in self._layers()]))

    def _flat_views(self, params: list) -> tuple:
        """``((parameters, gradients), views)``: two new flat buffers for the layers' ``params``
        (``{name: array}`` each) and, per layer, ``({name: parameter view}, {name: gradient view})``."""
        shapes = [p.shape for arrays in params for p in arrays.values()]
        sizes = [math.prod(s) for s in shapes]
        with self.backend.activate():  # together: on the host on huge pages (``Backend.flat_zeros``)
            flat = tuple(self.backend.flat_zeros([sum(sizes)] * 2))
        ends = list(itertools.accumulate(sizes))
        views = [[f[e - n:e].reshape(s) for e, n, s in zip(ends, sizes, shapes)] for f in flat]
        k, per_layer = 0, []
        for arrays in params:
            names = list(arrays)
            per_layer.append(tuple(dict(zip(names, v[k:k + len(names)])) for v in views))
            k += len(names)
        return flat, per_layer

    def _keep_flat(self, flat, views):
        """Make ``_flat_views`` output the layers' parameters and gradients (values copied in)."""
        for layer, (params, grads) in zip(self._layers(), views):
            layer.keep_parameters_in(params)
            layer.keep_gradients_in(grads)
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


def _entries(layers, params, grads) -> list:
    """``(kind, "i.name", array, backend)`` of each layer's ``params`` and ``grads``, for ``refuse_shared_memory``."""
    return [(kind, f"{i}.{k}", a, layer.backend) for i, (layer, p, g) in enumerate(zip(layers, params, grads))
            for kind, arrays in (("parameter", p), ("gradient", g)) for k, a in arrays.items()]


def refuse_shared_memory(entries, where) -> None:
    """An InvalidValueError naming both, from ``where``, when two of ``entries`` share memory:
    ``(kind, name, array, backend)`` of a model's parameters and gradients and an optimizer's
    slots ("parameter", "0.W", W, backend). gpubp gives every name its own memory: an optimizer
    updates each name once (a tied weight would be stepped once per name, with a state for each),
    ``flatten_`` copies each name into a view of its own (untying them), and a backward writes
    each gradient whole (over the other's). Arrays not on their backend's device are skipped.

    An array spans the bytes [low, low + sum_d |(n_d - 1) s_d| + itemsize), low = address +
    sum_d min((n_d - 1) s_d, 0), from the backend's ``address`` and the strides ``s``, so NumPy
    and CuPy arrays are compared alike. Spans are swept in address order; two that overlap share
    memory when both are contiguous (each fills its span), else as NumPy's exact test on their
    addresses and strides says (interleaved views ``a[::2]``, ``a[1::2]`` share nothing)."""
    spans = sorted((span, n, entry) for n, entry in enumerate(entries)
                   if entry[3].is_own(entry[2]) and (span := _span(entry[2], entry[3])) is not None)
    reaching = []  # (high, entry) of the spans seen whose bytes may reach the next one
    for (low, high), _, entry in spans:
        reaching = [(end, other) for end, other in reaching if end > low]
        for _, other in reaching:
            if _overlap(other, entry):
                raise InvalidValueError(f"{where}: {_shared(other, entry)}")
        reaching.append((high, entry))


def _span(array, backend):
    """``(low, high)``: the bytes ``array`` touches lie in [low, high); None when it has none."""
    if not array.size:
        return None
    ends = [(n - 1) * s for n, s in zip(array.shape, array.strides)]
    low = backend.address(array) + sum(min(e, 0) for e in ends)
    return low, low + sum(abs(e) for e in ends) + array.itemsize


def _overlap(a, b) -> bool:
    """Whether entries ``a`` and ``b``, whose spans overlap, share a byte."""
    (_, _, x, xb), (_, _, y, yb) = a, b
    if all(z.flags.c_contiguous or z.flags.f_contiguous for z in (x, y)):
        return True
    return bool(np.shares_memory(_layout(x, xb), _layout(y, yb)))


def _layout(array, backend):
    """A NumPy array with ``array``'s address, shape, strides and dtype, for NumPy's overlap test,
    which computes with addresses only (never reads them: a device address is safe here)."""
    class Layout:
        __array_interface__ = {"shape": tuple(array.shape), "strides": tuple(array.strides), "version": 3,
                               "typestr": array.dtype.str, "data": (backend.address(array), False)}
    return np.asarray(Layout())


_HARM = {  # what goes wrong when two arrays of these kinds share memory
    ("parameter", "parameter"): " (tied weights): an optimizer would step the shared weight once per name, with "
                                "a state for each, and flatten_ would give each name a copy, untying them",
    ("gradient", "gradient"): ": one layer's backward would overwrite the other's gradient",
    ("gradient", "parameter"): ": a backward would write the gradient over the parameter",
}


def _shared(a, b) -> str:
    """The message for entries ``a`` and ``b`` that share memory: both named, the harm, the remedy."""
    (ka, na, *_), (kb, nb, *_) = sorted([a, b], key=lambda e: (e[0], e[1]))
    both = f"{ka}s {na} and {nb}" if ka == kb else f"{ka} {na} and {kb} {nb}"
    harm = _HARM.get((ka, kb), ": an update would write one over the other")
    if ka in ("gradient", "parameter") and kb in ("gradient", "parameter"):
        fix = "gpubp gives each layer its own arrays; give each name its own (e.g. layer.params['W'] = W.copy())"
    else:
        fix = "give each slot its own array, or set optimizer.state = {} to start afresh"
    return f"{both} share memory{harm}; {fix}"


def _named(arrays, method, like):
    """``arrays`` when it is a dict (of arrays by name, as ``like()`` gives), else an InvalidValueError."""
    if not isinstance(arrays, dict):
        raise InvalidValueError(f"Sequential.{method} takes a dict {{name: array}} like {like}() gives, "
                                f"got a {type(arrays).__name__}")
    return arrays
