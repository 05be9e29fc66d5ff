"""Inverted dropout whose mask depends only on (seed, step): the same units drop on every device
and a run resumed from saved ``buffers`` repeats an uninterrupted one."""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..backend.kernels import dropout as kernels
from ..errors import InvalidValueError, ShapeError
from .base import ShapeKeeping
from .windows import torch_options


class Dropout(ShapeKeeping):
    """Y = X * keep / (1 - p) in training, keep ~ Bernoulli(1 - p) per element; Y = X in eval
    (inverted dropout, PyTorch's nn.Dropout). Backward goes through the same mask:
    dX = dY * keep / (1 - p) (training), dX = dY (eval).

    The mask is counter-based and computed on the device, one registry kernel
    (``backend/kernels/dropout.py``): keep[i] = murmur3(first * m + i, key) >= t, where i is the
    element's flat index in X, m the size of one sample (X.size / X.shape[0]), ``first`` where X's
    first sample sits in the batch the mask is drawn for (0, unless a data-parallel fit gives the
    layer its ``share`` of a global batch, ``nn.share.BatchShare``: the ranks' masks are then the
    rows of the single process's mask for the global batch, so N ranks drop what one process drops), the 64-bit key is SplitMix64's output for (seed, step) and t = min(round(p 2^32), 2^32 - 1),
    so keep is Bernoulli(1 - p) up to 2^-32, in integer arithmetic: one (seed, step) gives one mask,
    bit for bit, on NumPy and CuPy alike, with no host draw and no upload. (Before, the mask was drawn
    on the host from ``np.random.default_rng([seed, step])``: a seed now drops other units than it
    did then, with the same law.) Each training forward uses the current ``step`` and then adds 1.
    ``seed`` comes from the constructor (0 by default) or, in a seeded ``Sequential``, from the
    model's seed: ``reset_parameters(rng)`` takes a child of the model's seed sequence (one per
    Dropout, in layer order, without consuming the stream the weights are drawn from) and sets
    step to 0. ``buffers`` holds seed and step as 0-d int64 host arrays: what a checkpoint saves.

    The step's key, t and the scale 1 / (1 - p) reach the kernel through small device arrays that
    ``before_step`` writes on the host, so a step plan binds the kernel once and a CUDA graph replays
    it with each step's key (the plan calls ``before_step`` before every step and every replay,
    outside the capture). The mask is kept in a buffer of the layer's (one per plan binding), reused.
    PyTorch's ``inplace`` is taken by keyword as False only: Y is a new array, X is never written.
    """

    capturable = True  # one registry kernel and a product into the plan's buffers
    takes_share = True  # its mask drawn by element of a global batch (nn/share.py)

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
        self.share = None  # this process's share of a global batch (nn/share.py), set by fit for a step
        self._sample_size = 1
        self.X = self.mask = self._mask = self._device_draw = None

    def __repr__(self):
        return f"Dropout(p={self.p:g})"

    def config(self):
        return {"type": type(self).__name__, "p": self.p}

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

    def forward(self, X, out=None):
        """Y = X * mask (training; the mask of this step's key, then step + 1), Y = X (eval: X
        itself, or copied into ``out`` when given)."""
        self._check_forward(X, out)
        self.X, self.mask = X, None
        if not self.training:
            return X if out is None else self._copy(X, out)
        self._sample_size = _sample_size(X.shape)
        self.before_step()
        mask = self._mask
        if mask is None or not self.backend.is_own(mask) or mask.dtype != self.backend.dtype \
                or mask.shape != X.shape:
            mask = self._mask = self.backend.empty(X.shape)  # kept: the next step of this shape reuses it
        if out is None:
            out = self.backend.empty(X.shape)
        self.backend.launch(kernels.dropout, X, *self._draw(), out, mask)
        self.mask = mask
        return out

    def backward(self, dY, out=None):
        """dX = dY * mask (training), dX = dY (eval: dY itself, or copied into ``out`` when given)."""
        self._check_dY(dY, () if self.X is None else self.X.shape)
        self._check_out(out, dY.shape, "backward")
        if self.mask is None:
            return dY if out is None else self._copy(dY, out)
        with self.backend.activate():
            return self.backend.xp.multiply(dY, self.mask, out=out)

    def before_step(self):
        """In training, this step's draw into the device arrays the kernel reads (the key of
        (seed, step) and t, the first element's offset, the scale: one host write each), then
        step + 1; in eval, nothing.
        The eager forward calls it; a step plan calls it before each step and each replay of its CUDA
        graph (outside the capture), so the bound kernel reads each step's key."""
        if not self.training:
            return
        words, offset, scale = self._draw_arrays()
        self.backend.write(words, [*kernels.key_words(self.seed, self.step), kernels.threshold(self.p)])
        first = 0 if self.share is None else _counter("Dropout share.first", self.share.first)
        self.backend.write(offset, first * self._sample_size)
        self.backend.write(scale, 1 / (1 - self.p))  # a Python float, rounded once to the layer's dtype
        self.step += 1

    def idle_forward(self):
        """A step whose batch this process holds no sample of: its draw is taken all the same, so the
        step count stays that of the processes that hold samples (``nn/share.py``)."""
        self.before_step()

    def idle_backward(self):
        """Nothing: the mask's backward needs no other process."""

    def _draw_arrays(self):
        """``(words, offset, scale)``: uint32 (k0, k1, t), the uint64 offset and the scale, on the layer's
        device (made anew after a move)."""
        arrays = self._device_draw
        if arrays is None or not self.backend.is_own(arrays[2]) or arrays[2].dtype != self.backend.dtype:
            with self.backend.activate():
                arrays = self._device_draw = (self.backend.zeros(3, np.uint32), self.backend.zeros((), np.uint64),
                                              self.backend.zeros(()))
        return arrays

    def _draw(self):
        """The kernel's scalar arguments k0, k1, t, offset, scale: 0-d views of the draw arrays, read at each launch."""
        words, offset, scale = self._draw_arrays()
        return words[0, ...], words[1, ...], words[2, ...], offset, scale  # views (words[0] is a NumPy scalar: a copy)

    def _copy(self, a, out):
        with self.backend.activate():
            self.backend.xp.copyto(out, a)
        return out

    def bind(self, X, Y, dY, dX):
        """The kernel bound to the plan's buffers and a mask of this binding's own (a plan per batch
        shape); the mode is read at each call (eval: copies). ``before_step`` must run before each
        step (the plan calls it): the bound forward reads the key it wrote."""
        xp = self.backend.xp
        self._sample_size = _sample_size(X.shape)
        with self.backend.activate():
            mask = self.backend.zeros(X.shape)
        run = self.backend.bind(kernels.dropout, X, *self._draw(), Y, mask)

        def forward():
            if self.training:
                run()
            else:
                xp.copyto(Y, X)

        def backward():
            if self.training:
                xp.multiply(dY, mask, out=dX)
            else:
                xp.copyto(dX, dY)
        return forward, backward

    def _clear_cache(self):
        self.X = self.mask = self._mask = self._device_draw = None


def _sample_size(shape) -> int:
    """The elements of one sample of a batch of ``shape`` (1 for a vector: one element a sample)."""
    return int(np.prod(shape[1:], dtype=np.int64))


def _counter(name, value) -> int:
    """A seed or step: a whole number in [0, 2**63) (it is stored as int64)."""
    value = _checks.integer(name, value, minimum=0)
    if value >= 2**63:
        raise InvalidValueError(f"{name} must be a whole number >= 0 and < 2**63, got {value!r}")
    return value
