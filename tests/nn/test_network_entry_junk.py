"""mlp's hidden widths and observing's observer (found by fuzzing): an empty string or dict is no
list of widths (it read as no hidden layer), and an object with neither forward nor backward
observes nothing (it was taken silently)."""
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.network import observing
from helpers import stable_id


@pytest.mark.parametrize("hidden", ["", "64", {}, {64: 1}, {3}], ids=stable_id)
def test_mlp_hidden_must_be_a_list_of_widths(hidden):
    with pytest.raises(InvalidValueError, match="mlp: hidden must be a list of widths"):
        gpubp.mlp(4, hidden, 2)


@pytest.mark.parametrize("observer", [None, "x", object(), [print]], ids=["None", "str", "object", "list"])
def test_observing_needs_a_forward_or_backward(observer):
    with pytest.raises(InvalidValueError, match="observing: the observer must have a forward"):
        with observing(observer):
            pass


def test_observing_takes_an_observer_with_only_a_backward():
    seen = []

    class Backward:
        def backward(self, model, i, layer, dY, dX):
            seen.append(i)

    model = gpubp.mlp(4, [3], 2, "tanh", "cpu", "float32", seed=0)
    with observing(Backward()):
        model.forward(model.backend.asarray([[1.0, 2.0, 3.0, 4.0]]))
        model.backward(model.backend.asarray([[1.0, 1.0]]))
    assert seen == list(range(len(model.layers)))[::-1]
