"""Losses: ``forward(Y, T)`` returns the mean loss over the batch, ``backward(out=None)`` dL/dY.

Modules: ``base.py`` (Loss: the checks of predictions, targets and ``out`` every loss runs, and
the buffers a step plan lends), ``mse.py`` (MSE), ``cross_entropy.py`` (BinaryCrossEntropy and
SoftmaxCrossEntropy from logits, in stable forms). A loss by name: ``get_loss``.
"""
from ..errors import InvalidValueError
from .base import Loss
from .cross_entropy import BinaryCrossEntropy, SoftmaxCrossEntropy
from .mse import MSE

LOSSES = {"mse": MSE, "bce": BinaryCrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
          "softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": SoftmaxCrossEntropy}


def get_loss(loss) -> Loss:
    """A Loss instance from a name or an instance."""
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]()
    except (KeyError, TypeError):  # TypeError: an unhashable value such as a list
        raise InvalidValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}") from None


__all__ = ["Loss", "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "LOSSES", "get_loss"]
