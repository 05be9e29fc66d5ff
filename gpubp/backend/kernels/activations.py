"""Activation kernels and their fused backward passes.

Each backward takes the upstream gradient ``g`` (= dL/dY) and the value saved
in the forward pass, and returns ``delta`` (= dL/dZ) in one pass:
``delta = g * s * (1 - s)`` for the sigmoid, computed from its *output* ``s``.
The NumPy paths write into ``out`` with no temporaries larger than a boolean
mask; the references are the textbook formulas.
"""
from __future__ import annotations

import numpy as np

from .registry import Kernel, register
from .scratch import scratch

def _sigmoid_np(z, s):
    # s = 1 / (1 + exp(-z)) in four in-place passes. Below z = -88.7 (float32) or
    # -709.8 (float64) exp(-z) overflows to inf and s = 1 / inf = 0, where the true
    # value is already below the smallest normal number: an expected overflow, not
    # warned of by whoever runs the kernel (``Kernel.overflows``).
    np.negative(z, out=s)
    np.exp(s, out=s)
    s += 1
    np.reciprocal(s, out=s)


def _sigmoid_ref(z, s):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_backward_np(g, s, delta):
    np.subtract(1, s, out=delta)
    delta *= s
    delta *= g


def _tanh_backward_np(g, t, delta):
    # 1 - t^2 as (1 - t)(1 + t): for t near +-1, 1 - t*t cancels after t*t was
    # rounded (thousands of ulps off); 1 - t is exact there (Sterbenz) and 1 + t
    # is rounded once. Same order as the CUDA body, so the two agree bit for bit.
    one_plus_t = np.add(t, 1, out=scratch(t.shape, t.dtype))  # this thread's block-sized scratch
    np.subtract(1, t, out=delta)
    delta *= one_plus_t
    delta *= g


def _relu_backward_np(g, z, delta):
    np.greater(z, 0, out=delta)  # 1.0 where z > 0, else 0.0
    delta *= g


def _leaky_relu_np(z, slope, y):
    # For 0 <= slope <= 1: max(z, slope * z) is z when z > 0, slope * z otherwise.
    np.multiply(z, slope, out=y)
    np.maximum(z, y, out=y)


def _leaky_relu_backward_np(g, z, slope, delta):
    np.greater(z, 0, out=delta)  # factor = [z > 0] (1 - slope) + slope
    delta *= 1 - slope
    delta += slope
    delta *= g


sigmoid = register(Kernel(
    "sigmoid", "T z", "T s",
    # one exp of -|z| whatever z's sign: a warp of mixed signs runs one exp and one division per
    # element, not both branches' (the H200 record's 75% of copy bandwidth was the two-branch form)
    "const T e = exp(-fabs(z)); s = z >= 0 ? 1 / (1 + e) : e / (1 + e)",
    _sigmoid_np, _sigmoid_ref,
    "s = 1 / (1 + exp(-z)), evaluated without overflow for any z.",
    overflows=True,
))

sigmoid_backward = register(Kernel(
    "sigmoid_backward", "T g, T s", "T delta",
    "delta = g * s * (1 - s)",
    _sigmoid_backward_np, lambda g, s, delta: g * s * (1 - s),
    "delta = g * s * (1 - s), from the sigmoid output s = sigmoid(z).",
))

tanh = register(Kernel(
    "tanh", "T z", "T t",
    "t = tanh(z)",
    lambda z, t: np.tanh(z, out=t), lambda z, t: np.tanh(z),
    "t = tanh(z).",
))

tanh_backward = register(Kernel(
    "tanh_backward", "T g, T t", "T delta",
    "delta = (1 - t) * (1 + t) * g",
    _tanh_backward_np, lambda g, t, delta: g * (1 - t * t),
    "delta = g * (1 - t^2), from the tanh output t = tanh(z), as (1 - t)(1 + t) g.", scratch=1,
))

relu = register(Kernel(
    "relu", "T z", "T y",
    "y = z > 0 ? z : (T)0",
    lambda z, y: np.maximum(z, 0, out=y), lambda z, y: np.where(z > 0, z, 0),
    "y = max(z, 0).", ulps=(0, 0),
))

relu_backward = register(Kernel(
    "relu_backward", "T g, T z", "T delta",
    "delta = z > 0 ? g : (T)0",
    _relu_backward_np, lambda g, z, delta: np.where(z > 0, g, 0),
    "delta = g * [z > 0].", ulps=(0, 0),
))

leaky_relu = register(Kernel(
    "leaky_relu", "T z, T slope", "T y",
    "y = z > 0 ? z : slope * z",
    _leaky_relu_np, lambda z, slope, y: np.where(z > 0, z, slope * z),
    "y = z if z > 0 else slope * z (0 <= slope <= 1).", scalars=("slope",),
    examples=((0.01,), (0.1,), (0.2,), (0.3,)), ulps=(2, 2),  # slope rounded once, one product
))

leaky_relu_backward = register(Kernel(
    "leaky_relu_backward", "T g, T z, T slope", "T delta",
    "delta = z > 0 ? g : slope * g",
    _leaky_relu_backward_np, lambda g, z, slope, delta: np.where(z > 0, g, slope * g),
    "delta = g if z > 0 else slope * g.", scalars=("slope",),
    examples=((0.01,), (0.1,), (0.2,), (0.3,)), ulps=(2, 2),  # slope rounded once, one product
))
