"""A model's layer list changed in place after it was made (``model.layers.append(x)``, not checked as it
happens) is checked by every method that reads the layers, naming the item: before, all but forward, train
and to failed inside with Python's AttributeError ('str' object has no attribute 'params')."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import InvalidValueError
from gpubp.plan import StepPlan

CALLS = {
    "parameters": lambda m: m.parameters(),
    "gradients": lambda m: m.gradients(),
    "buffers": lambda m: m.buffers(),
    "parameter_shapes": lambda m: m.parameter_shapes(),
    "config": lambda m: m.config(),
    "zero_grad": lambda m: m.zero_grad(),
    "reset_parameters": lambda m: m.reset_parameters(1),
    "draw_parameters": lambda m: m.draw_parameters(),
    "flatten_": lambda m: m.flatten_(),
    "flat": lambda m: m.flat,
    "generation": lambda m: m.generation,
    "training": lambda m: m.training,
    "mode": lambda m: m.mode(False).__enter__(),
    "predict": lambda m: m.predict(np.ones((2, 3))),
    "backward": lambda m: m.backward(np.ones((2, 2), np.float32)),
    "output_shape": lambda m: m.output_shape((2, 3)),
    "load_parameters": lambda m: m.load_parameters({}),
    "load_buffers": lambda m: m.load_buffers({}),
    "keep_gradients_in": lambda m: m.keep_gradients_in({}),
    "StepPlan": lambda m: StepPlan(m, "mse", "sgd", (2, 3)),
}


@pytest.mark.parametrize("junk, kind", [("relu", "a str"), (None, "a NoneType"), (3, "an int")])
@pytest.mark.parametrize("call", list(CALLS.values()), ids=list(CALLS))
def test_an_item_that_is_no_layer_is_named_by_every_method(call, junk, kind):
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.ReLU(), gpubp.Dense(4, 2)])
    model.forward(np.ones((2, 3), np.float32))
    model.layers.append(junk)
    with pytest.raises(InvalidValueError, match=f"item 3 is {kind} .*not a gpubp layer"):
        call(model)


@pytest.mark.parametrize("call", [CALLS["parameters"], CALLS["config"], CALLS["zero_grad"]],
                         ids=["parameters", "config", "zero_grad"])
def test_a_layer_put_in_twice_is_named_before_its_arrays_are_listed_twice(call):
    """Was: parameters() listed layer 0's arrays under 0.W and 3.W, the same arrays twice."""
    model = gpubp.Sequential([gpubp.Dense(3, 3), gpubp.ReLU(), gpubp.Dense(3, 3)])
    model.layers.append(model.layers[0])
    with pytest.raises(InvalidValueError, match="item 3 Dense.* same layer object as item 0"):
        call(model)


def test_an_item_put_where_a_dropped_layer_was_is_named_though_it_may_reuse_its_address():
    """The layers are checked again only when they are no longer those that last passed, compared by
    identity; the model keeps those alive, so an object made after one was dropped cannot take its id."""
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.ReLU(), gpubp.Dense(4, 2)])
    model.parameters()  # the layers pass
    junk = type("Junk", (), {})
    for _ in range(50):  # an object of a layer's size made where the dropped layer would be freed
        model.layers.pop(1)
        model.layers.insert(1, junk())
        with pytest.raises(InvalidValueError, match="item 1 is a Junk .*not a gpubp layer"):
            model.parameters()
        model.layers[1] = gpubp.ReLU()
        model.parameters()
