"""Activations and Dense written as PyTorch's are (ReLU(inplace=False), LeakyReLU(negative_slope=0.2),
LeakyReLU(0.2, False), Linear(4, 3, True)) are met by name: PyTorch's arguments at their defaults taken,
other values refused saying what gpubp does, a bool in the place of PyTorch's inplace or bias named as
such (not 'unknown device' or 'unknown initialiser'); a Dense without bias says so in its repr."""
import pytest

import gpubp


@pytest.mark.parametrize("make, same", [
    (lambda: gpubp.ReLU(inplace=False), "ReLU()"), (lambda: gpubp.Sigmoid(inplace=False), "Sigmoid()"),
    (lambda: gpubp.Tanh(inplace=False), "Tanh()"), (lambda: gpubp.LeakyReLU(negative_slope=0.2), "LeakyReLU(0.2)"),
    (lambda: gpubp.LeakyReLU(0.2, inplace=False), "LeakyReLU(0.2)")])
def test_pytorch_s_arguments_at_their_defaults_are_taken(make, same):
    """Was: TypeError "Activation.__init__() got an unexpected keyword argument 'inplace'"."""
    assert repr(make()) == same


@pytest.mark.parametrize("make, words", [
    (lambda: gpubp.ReLU(inplace=True), r"ReLU does not support inplace=True: its forward never writes its input"),
    (lambda: gpubp.ReLU(True), r"ReLU got True where its backend goes \(PyTorch's ReLU takes inplace there; "
                               r"gpubp's never writes its input: leave it out\)"),
    (lambda: gpubp.LeakyReLU(0.01, False), r"LeakyReLU got False where its backend goes \(PyTorch's LeakyReLU "
                                           r"takes inplace there"),
    (lambda: gpubp.LeakyReLU(0.1, negative_slope=0.2), r"LeakyReLU: slope and negative_slope \(PyTorch's name\) "
                                                       r"are one argument, given twice"),
    (lambda: gpubp.Dense(4, 3, False), r"Dense got False where its init goes \(PyTorch's Linear takes bias there: "
                                       r"give bias=False by name\)")])
def test_other_values_and_pytorch_s_places_are_named(make, words):
    """Was: 'unknown device 'true'', 'unknown initialiser False'."""
    with pytest.raises(gpubp.InvalidValueError, match=words):
        make()


def test_a_dense_without_bias_says_so():
    """Was: repr 'Dense(4, 3)', as a Dense with bias, in a model's printout."""
    assert repr(gpubp.Dense(4, 3, bias=False)) == "Dense(4, 3, bias=False)"
    assert repr(gpubp.Dense(4, 3)) == "Dense(4, 3)"
