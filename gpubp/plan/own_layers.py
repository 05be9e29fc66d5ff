"""A layer of one's own in a step plan, held to what it returns as ``Sequential`` holds it eagerly
(network/checks.py): its forward's Y and its backward's dX are checked (an array of the plan's
dtype on its device, of the buffer's shape) and copied into the plan's buffer where the layer
returned a new array instead of writing ``out``, and its backward must write its gradients.
gpubp's own layers write their buffers, as their tests prove: their steps run as bound.
"""
from __future__ import annotations

from ..network.checks import check_gradients_written, check_returned, gpubp_layer


def held_to_returns(backend, layer, index, forward, backward, Y, dX):
    """``(forward, backward)``, the bound steps of layer ``index`` (``Layer.bind``) writing ``Y`` and
    ``dX`` (None: a buffer the plan does not have), as they are for one of gpubp's layers, else
    wrapped: what a layer of one's own returns is checked and copied into the buffer (was: a
    layer that left ``out`` unused had its buffer keep the dry run's values, read by the layers
    after it every step, without a word)."""
    if gpubp_layer(layer):
        return forward, backward

    def forward_into():
        got = forward()
        if Y is not None and got is not Y:
            check_returned(backend, layer, "forward", got, Y.shape, index)
            Y[...] = got

    def backward_into():
        got = backward()
        if dX is not None and got is not dX:
            check_returned(backend, layer, "backward", got, dX.shape, index)
            dX[...] = got
        check_gradients_written(layer, index)
    return forward_into, backward_into
