"""Fused optimizer updates: one elementwise pass per parameter and step.

Parameters and optimizer state are *outputs* of the kernels, read and written
in place (as thinc's ``adam_kernel`` does). Conventions follow PyTorch:
``g = grad + weight_decay * param`` (L2, coupled) for SGD and RMSprop; Adam's
``weight_decay`` is AdamW's decoupled decay ``param -= lr * wd * param``.
Host-side scalars such as the bias corrections ``1 - beta^t`` are inputs.
"""
from __future__ import annotations

import numpy as np

from .registry import Kernel, register


def _decayed(grad, wd, param, out):
    """out = grad + wd * param (a copy of grad when wd is 0): PyTorch's coupled L2 decay."""
    if wd:
        np.multiply(param, wd, out=out)
        out += grad
    else:
        np.copyto(out, grad)
    return out


def _ema_of_square(g, beta, avg, tmp):
    """avg = beta avg + (1 - beta) g^2, as avg += (1 - beta) (g^2 - avg) in one scratch array."""
    np.multiply(g, g, out=tmp)
    tmp -= avg
    tmp *= 1 - beta
    avg += tmp


# The NumPy paths use one scratch array the size of the parameter (the backend
# launches large arrays in cache-sized blocks, so in practice a block).

def _sgd_np(grad, lr, wd, param):
    if wd:
        step = _decayed(grad, wd, param, np.empty_like(param))  # g + wd param
        step *= lr
    else:
        step = np.multiply(grad, lr)  # lr g in one pass (_decayed would first copy g)
    param -= step


def _sgd_ref(grad, lr, wd, param):
    return param - lr * (grad + wd * param)


def _momentum_np(grad, lr, mu, wd, nesterov, param, buf):
    g = _decayed(grad, wd, param, np.empty_like(param))
    buf *= mu
    buf += g                         # buf = mu buf + g
    if nesterov:                     # param -= lr g + lr mu buf
        g *= lr
        param -= g
        np.multiply(buf, lr * mu, out=g)
    else:                            # param -= lr buf
        np.multiply(buf, lr, out=g)
    param -= g


def _momentum_ref(grad, lr, mu, wd, nesterov, param, buf):
    g = grad + wd * param
    buf = mu * buf + g
    step = g + mu * buf if nesterov else buf
    return param - lr * step, buf


def _rmsprop_np(grad, lr, alpha, eps, wd, param, sq):
    g = _decayed(grad, wd, param, np.empty_like(param)) if wd else grad
    tmp = np.empty_like(param)
    _ema_of_square(g, alpha, sq, tmp)
    np.sqrt(sq, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)       # g / (sqrt(sq) + eps)
    tmp *= lr
    param -= tmp


def _rmsprop_ref(grad, lr, alpha, eps, wd, param, sq):
    g = grad + wd * param
    sq = alpha * sq + (1 - alpha) * g * g
    return param - lr * g / (np.sqrt(sq) + eps), sq


def _adam_np(grad, lr, beta1, beta2, eps, wd, bias1, bias2, param, m, v):
    m -= grad
    m *= beta1
    m += grad                        # m = grad + beta1 (m - grad) = beta1 m + (1 - beta1) grad
    step = np.empty_like(param)
    _ema_of_square(grad, beta2, v, step)
    np.divide(v, bias2, out=step)
    np.sqrt(step, out=step)
    step += eps
    np.divide(m, step, out=step)     # m / (sqrt(v / bias2) + eps)
    step *= lr / bias1
    if wd:
        param *= 1 - lr * wd
    param -= step


def _adam_ref(grad, lr, beta1, beta2, eps, wd, bias1, bias2, param, m, v):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    return param - lr * wd * param - lr * (m / bias1) / (np.sqrt(v / bias2) + eps), m, v


sgd = register(Kernel(
    "sgd", "T grad, T lr, T weight_decay", "T param",
    "param -= lr * (grad + weight_decay * param)",
    _sgd_np, _sgd_ref,
    "param -= lr * (g + wd * param).", scalars=("lr", "weight_decay"),
))

sgd_momentum = register(Kernel(
    "sgd_momentum", "T grad, T lr, T momentum, T weight_decay, T nesterov", "T param, T buf",
    "T g = grad + weight_decay * param; buf = momentum * buf + g; "
    "param -= lr * (nesterov != 0 ? g + momentum * buf : buf)",
    _momentum_np, _momentum_ref,
    "buf = mu * buf + g; param -= lr * (g + mu * buf if nesterov else buf).",
    scalars=("lr", "momentum", "weight_decay", "nesterov"),
))

rmsprop = register(Kernel(
    "rmsprop", "T grad, T lr, T alpha, T eps, T weight_decay", "T param, T sq",
    "T g = grad + weight_decay * param; sq = alpha * sq + (1 - alpha) * g * g; "
    "param -= lr * g / (sqrt(sq) + eps)",
    _rmsprop_np, _rmsprop_ref,
    "sq = alpha * sq + (1 - alpha) g^2; param -= lr * g / (sqrt(sq) + eps).",
    scalars=("lr", "alpha", "eps", "weight_decay"),
))

adam = register(Kernel(
    "adam", "T grad, T lr, T beta1, T beta2, T eps, T weight_decay, T bias1, T bias2",
    "T param, T m, T v",
    "m = beta1 * m + (1 - beta1) * grad; v = beta2 * v + (1 - beta2) * grad * grad; "
    "param -= lr * (weight_decay * param + (m / bias1) / (sqrt(v / bias2) + eps))",
    _adam_np, _adam_ref,
    "m, v moving averages; param -= lr * (wd * param + m_hat / (sqrt(v_hat) + eps)) (AdamW).",
    scalars=("lr", "beta1", "beta2", "eps", "weight_decay", "bias1", "bias2"),
))
