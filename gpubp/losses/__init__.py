"""Losses: ``forward(Y, T)`` returns the mean loss over the batch, ``backward(out=None)`` dL/dY.

Modules: ``base.py`` (Loss: the checks of predictions, targets and ``out`` every loss runs, and
the buffers a step plan lends), ``mse.py`` (MSE), ``cross_entropy.py`` (BinaryCrossEntropy and
SoftmaxCrossEntropy from logits, in stable forms). A loss by name: ``get_loss``.
"""
from .._checks import named
from ..errors import InvalidValueError
from .base import Loss
from .cross_entropy import BinaryCrossEntropy, SoftmaxCrossEntropy
from .mse import MSE

LOSSES = {"mse": MSE, "bce": BinaryCrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
          "softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy}


def get_loss(loss) -> Loss:
    """A Loss instance from a name (in any case) or an instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        raise InvalidValueError(f"loss: got the class {loss.__name__}; pass an instance, {loss.__name__}()")
    try:
        return LOSSES[loss.lower() if isinstance(loss, str) else loss]()  # any case, as optimizers and schedules
    except (KeyError, TypeError):  # TypeError: an unhashable value such as a list
        raise InvalidValueError(f"unknown loss {named(loss)}; choose one of {sorted(LOSSES)} or give a Loss") from None


__all__ = ["Loss", "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "LOSSES", "get_loss"]
