"""Sequential checks its chain once, where it is built (``Layer.output_form``): a layer that cannot
take what the one before it gives is named with that layer, before any data; what only data can
tell (image sizes, a Flatten's width) is left to the first forward, and a user's layer is unknown."""
import numpy as np
import pytest

import gpubp
from gpubp import BatchNorm, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU
from gpubp.errors import ShapeError


@pytest.mark.parametrize("layers, words", [
    (lambda: [Conv2D(1, 4, 3), ReLU(), Conv2D(8, 4, 3)],
     "layer 2 Conv2D(8, 4, kernel_size=(3, 3), stride=(1, 1)) expects images of 8 channels (N, 8, H, W), "
     "but layer 0 Conv2D(1, 4, kernel_size=(3, 3), stride=(1, 1)) outputs images (N, 4, H, W)"),
    (lambda: [Conv2D(1, 4, 3), MaxPool2D(2), Dense(36, 10)],
     "layer 2 Dense(36, 10) expects rows (N, 36) (a Flatten() before it makes images rows), but layer 0"),
    (lambda: [Conv2D(1, 4, 3), Dropout(0.5), BatchNorm(8)], "layer 2 BatchNorm(8, eps=1e-05, momentum=0.1) "
     "expects inputs (N, 8) or (N, 8, H, W), but layer 0 Conv2D"),
    (lambda: [Dense(4, 8), Conv2D(8, 4, 3)], "layer 1 Conv2D(8, 4, kernel_size=(3, 3), stride=(1, 1)) "
     "expects images of 8 channels (N, 8, H, W), but layer 0 Dense(4, 8) outputs width 8"),
    (lambda: [Flatten(), Conv2D(1, 4, 3)], "expects images of 1 channel (N, 1, H, W), but layer 0 "
     "Flatten(start_dim=1, end_dim=-1) outputs rows (N, features)"),
    (lambda: [Conv2D(1, 4, 3), GlobalAvgPool2D(), Dense(5, 2)],
     "layer 2 Dense(5, 2) expects inputs of width 5, but layer 1 GlobalAvgPool2D() outputs width 4"),
    (lambda: [Dense(3, 4), MaxPool2D(2)], "layer 1 MaxPool2D(kernel_size=2, stride=2) expects images "
     "(N, C, H, W), but layer 0 Dense(3, 4) outputs width 4"),
    (lambda: [Conv2D(1, 4, 3), BatchNorm(4), ReLU(), Conv2D(3, 2, 1)], "layer 3 Conv2D(3, 2, kernel_size=(1, 1), "
     "stride=(1, 1)) expects images of 3 channels (N, 3, H, W), but layer 0 Conv2D(1, 4, kernel_size=(3, 3), "
     "stride=(1, 1)) outputs images (N, 4, H, W)"),  # the layer that fixed the channels, not the BatchNorm
], ids=["channels", "dense-after-images", "batchnorm", "conv-after-rows", "conv-after-flatten",
        "global-pool-width", "pool-after-rows", "through-batchnorm"])
def test_a_chain_that_cannot_run_is_refused_where_it_is_built(layers, words):
    """Was: built, then refused at the first forward naming one layer only (a Dense after a Conv2D:
    'Dense input: expected a 2-d array', with no word of Flatten)."""
    with pytest.raises(ShapeError) as err:
        gpubp.Sequential(layers())
    assert str(err.value).startswith("Sequential: ") and words in str(err.value)


def test_appending_a_layer_that_does_not_chain_is_refused_at_the_next_forward():
    model = gpubp.Sequential([Conv2D(1, 4, 3), Flatten()])
    model.layers.append(Conv2D(4, 2, 3))
    with pytest.raises(ShapeError, match="layer 2 Conv2D.* expects images of 4 channels"):
        model.forward(np.zeros((2, 1, 8, 8)))


class Unflatten(gpubp.nn.Layer):
    """A user's reshape: rows back into images, its form unknown to gpubp."""

    def forward(self, X, out=None):
        self.shape = X.shape
        return X.reshape(len(X), 4, 6, 6)

    def backward(self, dY, out=None):
        return dY.reshape(self.shape)


class Squeezed(gpubp.nn.ReLU):
    """A user's ReLU that says an output shape of its own: its form is not taken from ReLU's."""

    def output_shape(self, shape):
        return None

    def forward(self, X, out=None):
        return super().forward(X).reshape(len(X), -1)

    def backward(self, dY, out=None):
        return super().backward(dY.reshape(self.X.shape)).reshape(self.X.shape)


@pytest.mark.parametrize("layers", [
    lambda: [Conv2D(1, 4, 3), Flatten(), Dense(144, 3)],
    lambda: [Conv2D(1, 4, 3), Flatten(), Unflatten(), Conv2D(4, 2, 3), GlobalAvgPool2D(), Dense(2, 3)],
    lambda: [Conv2D(1, 4, 3), Squeezed(), Dense(144, 3)],
    lambda: [Conv2D(1, 4, 3), BatchNorm(4), MaxPool2D(2), Flatten(), BatchNorm(36), Dense(36, 3)],
    lambda: [Flatten(start_dim=2), Flatten(), Dense(64, 3)],
], ids=["lenet-like", "user-reshape", "user-subclass", "batchnorm-both", "flatten-dims"])
def test_chains_that_run_are_built_and_run(layers):
    """What only data tells is left to it: each of these runs on (2, 1, 8, 8) images."""
    model = gpubp.Sequential(layers(), dtype="float64", seed=0)
    assert model.forward(np.random.default_rng(0).normal(size=(2, 1, 8, 8))).shape == (2, 3)
