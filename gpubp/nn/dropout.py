"""Inverted dropout whose mask depends only on (seed, step): the same units drop on every device
and a run resumed from saved ``buffers`` repeats an uninterrupted one."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..errors import InvalidValueError, ShapeError
from .base import Layer
from .arrays import FAILURES, shape_error
from .windows import torch_options


class Dropout(Layer):
    """Y = X * keep / (1 - p) in training, keep ~ Bernoulli(1 - p) per element; Y = X in eval
    (inverted dropout, PyTorch's nn.Dropout). Backward goes through the same mask:
    dX = dY * keep / (1 - p) (training), dX = dY (eval).

    The mask is counter-based: keep = u >= p with u ~ U[0, 1) drawn on the host from
    ``np.random.default_rng([seed, step])`` and uploaded, so one (seed, step) gives one mask
    on NumPy and CuPy alike. Each training forward uses the current ``step`` and then adds 1.
    ``seed`` comes from the constructor (0 by default) or, in a seeded ``Sequential``, from the
    model's seed: ``reset_parameters(rng)`` takes a child of the model's seed sequence (one per
    Dropout, in layer order, without consuming the stream the weights are drawn from) and sets
    step to 0. ``buffers`` holds seed and step as 0-d int64 host arrays: what a checkpoint saves.
    PyTorch's ``inplace`` is taken by keyword as False only: Y is a new array, X is never written.
    """

    p = _checks.Checked(_checks.number, low=0, high=1, high_open=True)  # set later too: checked

    def __init__(self, p=0.5, seed=None, backend=None, **options):
        super().__init__(backend)
        torch_options("Dropout", options, {"inplace": ((False,), "its forward never writes its input (inplace=False)")})
        if isinstance(seed, (bool, np.bool_)):  # PyTorch's Dropout(p, inplace), ported as it is
            raise InvalidValueError(f"Dropout seed must be a whole number >= 0, got {seed!r} (PyTorch's Dropout takes "
                                    f"inplace in that place; gpubp's never writes its input: leave it out)")
        self.p = p
        self.keep_buffers({"seed": np.zeros((), np.int64), "step": np.zeros((), np.int64)})
        self.seed = 0 if seed is None else seed
        self._seed_set = seed is not None  # a seed the user chose (then set), not the default
        self.X = self.mask = None

    def __repr__(self):
        return f"Dropout(p={self.p:g})"

    def config(self):
        return {"type": "Dropout", "p": self.p}

    @property
    def seed(self) -> int:
        return int(self.buffers["seed"])

    @seed.setter
    def seed(self, value):
        self.buffers["seed"][...] = _counter("Dropout seed", value)
        self._seed_set = True

    @property
    def step(self) -> int:
        """The number of training forwards so far: the counter of the next mask."""
        return int(self.buffers["step"])

    @step.setter
    def step(self, value):
        self.buffers["step"][...] = _counter("Dropout step", value)

    @property
    def state(self) -> dict:
        """``{"seed": int, "step": int}``: set it to repeat a run from that point."""
        return {"seed": self.seed, "step": self.step}

    @state.setter
    def state(self, state):
        if not isinstance(state, dict) or set(state) != {"seed", "step"}:
            raise InvalidValueError(f"Dropout state must be a dict with keys 'seed' and 'step', got {state!r:.80}")
        seed, step = (_counter(f"Dropout {k}", state[k]) for k in ("seed", "step"))  # both checked, then set
        self.seed, self.step = seed, step

    def checked_buffers(self, arrays: dict) -> dict:
        """Seed and step from ``{"seed": array, "step": array}`` (0-d integer arrays, any device)."""
        if not isinstance(arrays, dict) or set(arrays) != set(self.buffers):
            super().checked_buffers(arrays)  # the error naming the buffers
        values = {k: self.backend.to_numpy(a) for k, a in arrays.items()}
        bad = {k: v for k, v in values.items() if v.shape != () or v.dtype.kind not in "iu"}
        if bad:
            raise ShapeError(f"{self!r} buffers seed and step are 0-d integer arrays, got "
                             + ", ".join(f"{k} {v.dtype} of shape {v.shape}" for k, v in bad.items()))
        return {k: _counter(f"Dropout {k}", int(v)) for k, v in values.items()}

    def drawn_arrays(self, rng, prefix=""):
        """What ``reset_parameters(rng)`` sets, nothing set yet: a seed from a child of ``rng``'s seed
        sequence (the model's seed; no draw from ``rng``) and step 0; no arrays."""
        _checks.generator("Dropout.reset_parameters: rng", rng)
        try:
            child = rng.bit_generator.seed_seq.spawn(1)[0]
            seed = int(child.generate_state(1, np.uint32)[0])
        except (AttributeError, NotImplementedError):  # NumPy < 1.25, or a generator without a seed sequence
            seed = int(rng.integers(2**32))
        return {"parameter": None, "gradient": None, "buffer": {}, "seed": seed}

    def _take_drawn(self, arrays):
        self.seed, self.step = arrays["seed"], 0

    def reset_replaces(self) -> str:
        """"seed and step" unless they are a new Dropout's (the default seed 0, step 0)."""
        return "" if not self._seed_set and self.state == {"seed": 0, "step": 0} else "seed and step"

    def output_shape(self, shape):
        try:
            return tuple(shape)
        except FAILURES as exc:
            raise shape_error(self, shape, exc) from None

    def forward(self, X):
        self.backend.check_array(X, "Dropout input")
        self.X, self.mask = X, None
        if not self.training:
            return X
        step, self.step = self.step, self.step + 1
        if self.p == 0:
            return X
        keep = np.random.default_rng([self.seed, step]).random(X.shape) >= self.p
        mask = self.backend.asarray(keep).astype(self.backend.dtype)  # uploaded as 1-byte bools
        mask *= 1 / (1 - self.p)  # a Python float, rounded once to the layer's dtype
        self.mask = mask
        return X * mask

    def backward(self, dY):
        self._check_dY(dY, () if self.X is None else self.X.shape)
        return dY if self.mask is None else dY * self.mask

    def bind(self, X, Y, dY, dX):
        """Refused: Dropout's forward and backward write no ``out`` buffer, so a step plan cannot bind them."""
        raise InvalidValueError(f"{self!r} cannot be bound to a step plan's buffers: its forward and backward "
                                f"take no out buffer; run it with forward and backward")

    def _clear_cache(self):
        self.X = self.mask = None


def _counter(name, value) -> int:
    """A seed or step: a whole number in [0, 2**63) (it is stored as int64)."""
    value = _checks.integer(name, value, minimum=0)
    if value >= 2**63:
        raise InvalidValueError(f"{name} must be a whole number >= 0 and < 2**63, got {value!r}")
    return value
