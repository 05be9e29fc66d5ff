"""A model's train and eval modes (``TrainingModes``, a base of ``Sequential``): every layer's
``training`` set at once, for a block, or read as one."""
from __future__ import annotations

import contextlib

from .. import _checks
from .checks import checked_layers


class TrainingModes:
    """``train``, ``eval``, ``mode`` and ``training`` over ``self.layers`` (``_layers()``: the layers
    checked as the constructor checks them)."""

    def train(self, mode=True):
        """Training mode (``mode=True``, the default) or eval mode (False) for every layer; returns self.

        In training Dropout drops units and BatchNorm normalises by batch statistics (and
        updates its running ones); in eval both are deterministic: Dropout is the identity and
        BatchNorm uses its running statistics.
        """
        mode = _checks.flag("Sequential.train mode", mode)
        for layer in checked_layers(self.layers):  # appended to since? checked as the constructor checks them
            layer.training = mode
        return self

    def eval(self):
        """Eval mode for every layer (``train(False)``); returns self."""
        return self.train(False)

    @contextlib.contextmanager
    def mode(self, training: bool):
        """A block in training (True) or eval (False) mode; each layer's mode before is put back after,
        layer by layer, not by position: a layer inserted, replaced or removed inside the block (a
        callback of fit's) leaves the others their modes, and a layer new since keeps its own."""
        before = [(layer, layer.training) for layer in self._layers()]
        self.train(training)
        try:
            yield self
        finally:
            for layer, was in before:
                layer.training = was

    @property
    def training(self) -> bool:
        """True unless ``eval()`` (or ``train(False)``) was called since the last ``train()``."""
        return all(layer.training for layer in self._layers())

    @training.setter
    def training(self, mode):
        self.train(mode)
