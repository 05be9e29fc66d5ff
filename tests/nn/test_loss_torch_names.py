"""A PyTorch loss given as the loss (its name, class or an instance) is refused saying which gpubp loss is
the same one, and where it takes logits instead of probabilities (BCELoss, NLLLoss) what to drop. Was:
"unknown loss" and the list of names only."""
import pytest

from gpubp.errors import InvalidValueError
from gpubp.losses import get_loss


class CrossEntropyLoss:  # what torch.nn.CrossEntropyLoss is called, without needing torch
    pass


class BCELoss:
    pass


@pytest.mark.parametrize("loss, words", [
    ("MSELoss", r"'mse', gpubp.MSE\(\)"), (CrossEntropyLoss(), r"'cross_entropy', gpubp.SoftmaxCrossEntropy\(\)"),
    (BCELoss, r"'bce', which takes logits: drop the model's final Sigmoid"),
    ("NLLLoss", "'cross_entropy', which takes logits: drop the model's final log-softmax"),
    ("BCEWithLogitsLoss", r"'bce', gpubp.BinaryCrossEntropy\(\)")])
def test_a_pytorch_loss_says_which_gpubp_loss_is_the_same(loss, words):
    with pytest.raises(InvalidValueError, match=rf"unknown loss .*\(PyTorch's \w+; in gpubp: {words}.*choose one of"):
        get_loss(loss)
    with pytest.raises(InvalidValueError, match=r"unknown loss 'nothing'; choose one of"):
        get_loss("nothing")
