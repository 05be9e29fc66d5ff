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


TORCH_LOSSES = {  # PyTorch's losses (by name, class or instance) and gpubp's same one
    "MSELoss": "'mse', gpubp.MSE()", "CrossEntropyLoss": "'cross_entropy', gpubp.SoftmaxCrossEntropy() (from logits)",
    "BCEWithLogitsLoss": "'bce', gpubp.BinaryCrossEntropy() (from logits)",
    "BCELoss": "'bce', which takes logits: drop the model's final Sigmoid (it applies the sigmoid itself)",
    "NLLLoss": "'cross_entropy', which takes logits: drop the model's final log-softmax"}


def get_loss(loss) -> Loss:
    """A Loss instance from a name (in any case) or an instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        raise InvalidValueError(f"loss: got the class {loss.__name__}; pass an instance, {loss.__name__}()")
    try:
        return LOSSES[loss.lower() if isinstance(loss, str) else loss]()  # any case, as optimizers and schedules
    except (KeyError, TypeError):  # TypeError: an unhashable value such as a list
        name = loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)
        hint = f" (PyTorch's {name}; in gpubp: {TORCH_LOSSES[name]})" if name in TORCH_LOSSES else ""
        raise InvalidValueError(f"unknown loss {named(loss)}{hint}; choose one of {sorted(LOSSES)} or give a "
                                f"Loss") from None


__all__ = ["Loss", "MSE", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "LOSSES", "get_loss"]
