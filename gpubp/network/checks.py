"""What Sequential holds its layers to: the list it is given (layers, each once, whose forms
chain: ``Layer.output_form``), their configs as a checkpoint's JSON gives them back, and what a
user's layer returns from forward and backward and writes into its gradients, checked as it runs.
"""
from __future__ import annotations

import numpy as np

from ..errors import DeviceError, InvalidValueError, ShapeError, StateError
from ..nn import LAYERS, Layer
from ..nn.base import defining_class, set_up


def checked_layers(layers) -> list:
    """``layers`` as a list of Layer objects whose forms chain (``_check_forms``: checked here, with
    the layer index, rather than at the first forward)."""
    if isinstance(layers, Layer):
        raise InvalidValueError(f"Sequential takes a list of layers, got one layer ({layers!r}); "
                                f"write Sequential([{layers!r}])")
    try:
        layers = list(layers)
    except TypeError:
        raise InvalidValueError(f"Sequential takes a list of layers, got a {type(layers).__name__}") from None
    if not layers:
        raise ShapeError("Sequential needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            kind = type(layer).__name__
            raise InvalidValueError(f"Sequential: item {i} is {'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind} "
                                    f"({layer!r:.60}), not a gpubp layer")
        set_up(layer, f"Sequential: item {i} ")
        if defining_class(type(layer), "forward") is Layer:  # nothing a model could run
            raise InvalidValueError(f"Sequential: item {i} {type(layer).__name__} defines no forward(X); a Layer "
                                    f"of one's own returns its output Y from forward(X)")
        same = [j for j, other in enumerate(layers[:i]) if other is layer]
        if same:  # its backward would read the input saved by its later use, and it would be updated twice
            raise InvalidValueError(f"Sequential: item {i} {layer!r} is the same layer object as item {same[0]}; "
                                    f"a layer can appear once (create a second one)")
    _check_forms(layers)
    return layers


def config_of(i, layer) -> dict:
    """Layer ``i``'s ``config()`` as JSON gives it back, refused naming the layer unless it is a dict
    naming its type under "type" whose values JSON holds."""
    config = layer.config()
    where = f"Sequential.config: layer {i} {layer!r}.config()"
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise InvalidValueError(f"{where} must return a dict naming the layer's type, like "
                                f"{{'type': '{type(layer).__name__}', ...}}, got {config!r:.80}")
    return plain(config, where)


def plain(x, where):
    """``x`` as JSON stores it and reads it back; what it cannot hold, or not as itself, refused: a
    non-string key (read back as a string), NaN (read back, it equals nothing, so a resume would find
    "a different architecture"), any other object."""
    if isinstance(x, dict):
        for key in x:
            if not isinstance(key, str):
                raise InvalidValueError(f"{where}: the key {key!r} is a {type(key).__name__}, which a checkpoint "
                                        f"reads back as a string; use string keys")
        return {k: plain(v, where) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v, where) for v in x]
    if isinstance(x, np.generic):  # an np.int64 from a shape, an np.float64 from arithmetic
        x = x.item()
    if isinstance(x, float) and x != x:
        raise InvalidValueError(f"{where} holds NaN, which equals nothing, itself included: a resume from a "
                                f"checkpoint of this model would find a different architecture; give a number or None")
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise InvalidValueError(f"{where} holds a {type(x).__name__} ({x!r:.40}), which a checkpoint cannot store "
                            f"(JSON); give numbers, strings, None, lists and dicts")


def gpubp_layer(layer) -> bool:
    """Whether ``layer`` is of a class gpubp defines (registered), whose returns its own checks and
    tests vouch for; a user's class, a subclass of gpubp's too, is checked as it runs (``check_returned``)."""
    return LAYERS.get(type(layer).__name__) is type(layer)


def check_returned(backend, layer, method, array, shape, index=None) -> None:
    """Refuse what a user's ``layer`` (layer ``index`` of a model) returned from ``method``, Y or dX, unless
    it is an array of ``backend``'s dtype on its device, of ``shape`` (None: not known), before the layer
    below, an observer or the loss reads it: they would name themselves, or use it (a first layer's dX
    is the model's dL/dX). gradcheck_layer checks a layer so too."""
    if array is not None and backend.is_own(array) and array.dtype == backend.dtype and (
            shape is None or tuple(array.shape) == tuple(shape)):
        return  # the step's path: nothing named, nothing formatted
    what = "Y" if method == "forward" else "dX"
    where = f"{_named(layer, index)}.{method} returned {what}"
    if array is None:
        raise DeviceError(f"{where}: expected an array on {backend.device}, got a NoneType; "
                          + ("forward returns the layer's output Y" if what == "Y" else
                             "backward returns dX = dL/dX for the layer below (a first layer may return None "
                             "only under backward(input_grad=False), as fit runs it)"))
    backend.check_array(array, where)
    if shape is not None and tuple(array.shape) != tuple(shape):
        said = (f"its output_shape says {tuple(shape)}" if what == "Y" else
                f"dX = dL/dX has the shape of the layer's input, {tuple(shape)}")
        raise ShapeError(f"{where} of shape {tuple(array.shape)}, but {said}")


def check_gradients_written(layer, index=None) -> None:
    """Refuse a backward of a user's ``layer`` (layer ``index`` of a model) with parameters that wrote none
    of its gradients since ``zero_grad`` (it never read ``layer.grads``): they would read as zeros, and its
    parameters never move."""
    if layer.grads_stale and layer.parameters_drawn and layer.params:
        raise StateError(f"{_named(layer, index)}.backward wrote none of its gradients {sorted(layer.params)}: since "
                         f"zero_grad they read as zeros, so no optimizer would move its parameters; write dL/dp "
                         f"into layer.grads[name] (e.g. self.grads[name][...] = ...), not into a copy or _grads")


def _named(layer, index) -> str:
    return repr(layer) if index is None else f"layer {index} {layer!r}"


def _check_forms(layers) -> None:
    """Refuse, naming both layers, a layer that cannot take what the layer before it gives, as far as the
    layers tell before any data (``Layer.output_form``: a Dense after images, widths or channels that
    do not chain); a user's class that says its own ``output_shape`` is taken as unknown."""
    form, source = (None, None), None  # (axes, axis 1) flowing on, and the layer that fixed it
    for i, layer in enumerate(layers):
        stated = defining_class(type(layer), "output_form")
        if not issubclass(stated, defining_class(type(layer), "output_shape")):
            form = (None, None)  # its own output_shape below gpubp's output_form: its form unknown
            continue
        try:
            after = tuple(layer.output_form(form))
        except ShapeError as exc:
            j, before = source
            raise ShapeError(f"Sequential: layer {i} {layer!r} {exc}, but layer {j} {before!r} outputs "
                             f"{_described(form)}") from None
        if after != form:
            source = (i, layer)
        form = after


def _described(form) -> str:
    """A form (``Layer.output_form``) in words: 'width 8', 'images (N, 4, H, W)'."""
    ndim, size = form
    if ndim == 2:
        return "rows (N, features)" if size is None else f"width {size}"
    if ndim == 4:
        return f"images (N, {'C' if size is None else size}, H, W)"
    return f"{ndim}-d arrays" if ndim is not None else f"axis 1 of size {size}"
