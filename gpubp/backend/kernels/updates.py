"""Fused optimizer updates: one elementwise pass per parameter and step.

Parameters and optimizer state are *outputs* of the kernels, read and written
in place (as thinc's ``adam_kernel`` does). Conventions follow PyTorch:
``g = grad + weight_decay * param`` (L2, coupled) for SGD, RMSprop and
``Adam(decoupled=False)``; AdamW's decoupled decay is ``param *= 1 - lr * wd``.

Scalars that are functions of hyperparameters (``1 - beta``, ``lr / (1 - beta1^t)``,
``sqrt(1 - beta2^t)``, ``1 - lr * wd``) are computed on the host in float64 by the
``*_scalars`` functions below and passed rounded once (in float32, ``1 - beta2``
from a rounded ``beta2 = 0.999`` is 1.3e-5 relative off). Moving averages are
lerps, ``avg += (1 - beta) (x - avg)``, as PyTorch's ``lerp_``: they need only
the rounded ``1 - beta``, never ``beta`` itself.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import Kernel, register
from .scratch import scratch


def one_minus_power(beta: float, t: int) -> float:
    """``1 - beta^t`` in float64 without cancellation (``-expm1(t log beta)``).

    ``1 - beta**t`` loses about ``1 / (1 - beta^t)`` ulps: 500 for beta = 0.999, t = 2.
    """
    return 1.0 if beta == 0 else -math.expm1(t * math.log1p(beta - 1.0))


# -- host scalars (float64), in each kernel's input order ------------------------

def sgd_momentum_scalars(lr, momentum, dampening, weight_decay, nesterov, t):
    """PyTorch's first step sets buf = g (no dampening): with buf = 0, factor 1 does that."""
    return (lr, momentum, 1.0 if t == 1 else 1.0 - dampening, weight_decay, float(nesterov))


def rmsprop_scalars(lr, alpha, eps, weight_decay, momentum=0.0):
    return (lr, 1.0 - alpha, eps, weight_decay) + ((momentum,) if momentum else ())


def adam_scalars(lr, beta1, beta2, eps, weight_decay, t, decoupled=True):
    """(lr / (1 - b1^t), 1 - b1, 1 - b2, eps, sqrt(1 - b2^t), l2, decay) for step ``t``:
    ``l2 = wd, decay = 1`` for PyTorch's Adam; ``l2 = 0, decay = 1 - lr wd`` for AdamW."""
    l2, decay = (0.0, 1.0 - lr * weight_decay) if decoupled else (weight_decay, 1.0)
    return (lr / one_minus_power(beta1, t), 1.0 - beta1, 1.0 - beta2, eps,
            math.sqrt(one_minus_power(beta2, t)), l2, decay)


# -- NumPy building blocks: in place, with scratch arrays the size of the parameter
# (the backend launches large arrays in cache-sized blocks, so in practice of a block)

def _scratch(like, k=0):
    """Scratch array ``k`` of ``like``'s shape and dtype (``scratch.scratch``: none allocated per step)."""
    return scratch(like.shape, like.dtype, k)


def _decayed(grad, wd, param, out):
    """out = grad + wd * param (a copy of grad when wd is 0): PyTorch's coupled L2 decay."""
    if wd:
        np.multiply(param, wd, out=out)
        out += grad
    else:
        np.copyto(out, grad)
    return out


def _lerp(avg, x, weight, tmp):
    """avg += weight * (x - avg): the moving average avg = (1 - weight) avg + weight x."""
    np.subtract(x, avg, out=tmp)
    tmp *= weight
    avg += tmp


def _lerp_square(avg, g, weight, tmp):
    """avg += weight * (g^2 - avg)."""
    np.multiply(g, g, out=tmp)
    tmp -= avg
    tmp *= weight
    avg += tmp


# -- SGD -------------------------------------------------------------------------

def _sgd_np(grad, lr, wd, param):
    if wd:
        step = _decayed(grad, wd, param, _scratch(param))  # g + wd param
        step *= lr
    else:
        step = np.multiply(grad, lr, out=_scratch(param))  # lr g in one pass (_decayed would first copy g)
    param -= step


def _sgd_ref(grad, lr, wd, param):
    return param - lr * (grad + wd * param)


def _momentum_np(grad, lr, mu, damp, wd, nesterov, param, buf):
    g = _decayed(grad, wd, param, _scratch(param))
    buf *= mu
    if damp != 1:
        buf += np.multiply(g, damp, out=_scratch(param, 1))  # a second scratch array, only with dampening
    else:
        buf += g                     # buf = mu buf + (1 - dampening) g
    if nesterov:                     # param -= lr (g + mu buf)
        g += np.multiply(buf, mu, out=_scratch(param, 1))
        g *= lr
    else:                            # param -= lr buf
        np.multiply(buf, lr, out=g)
    param -= g


def _momentum_ref(grad, lr, mu, damp, wd, nesterov, param, buf):
    g = grad + wd * param
    buf = mu * buf + damp * g
    step = g + mu * buf if nesterov else buf
    return param - lr * step, buf


# -- RMSprop ---------------------------------------------------------------------

def _rmsprop_np(centered, momentum):
    def update(grad, lr, oma, eps, wd, *rest):
        mu, (param, sq, *state) = (rest[0], rest[1:]) if momentum else (0, rest)
        g = _decayed(grad, wd, param, _scratch(param)) if wd else grad
        tmp = _scratch(param, 1)
        _lerp_square(sq, g, oma, tmp)            # sq = alpha sq + (1 - alpha) g^2
        if centered:
            avg = state[0]
            _lerp(avg, g, oma, tmp)              # avg = alpha avg + (1 - alpha) g
            np.multiply(avg, avg, out=tmp)
            np.subtract(sq, tmp, out=tmp)
            np.maximum(tmp, 0, out=tmp)          # rounding must not make sq - avg^2 < 0
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(sq, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)               # g / (sqrt(...) + eps)
        if momentum:
            buf = state[-1]
            buf *= mu
            buf += tmp                           # buf = mu buf + g / (...)
            np.multiply(buf, lr, out=tmp)
        else:
            tmp *= lr
        param -= tmp
    return update


def _rmsprop_ref(centered, momentum):
    def reference(grad, lr, oma, eps, wd, *rest):
        mu, (param, sq, *state) = (rest[0], rest[1:]) if momentum else (0, rest)
        g = grad + wd * param
        sq = sq + oma * (g * g - sq)
        new = [sq]
        if centered:
            avg = state[0] + oma * (g - state[0])
            new.append(avg)
            denom = np.sqrt(np.maximum(sq - avg * avg, 0)) + eps
        else:
            denom = np.sqrt(sq) + eps
        if momentum:
            buf = mu * state[-1] + g / denom
            new.append(buf)
            return (param - lr * buf, *new)
        return (param - lr * g / denom, *new)
    return reference


def _centered_state(ins, outs):
    """avg^2 <= sq, as the moving averages of g and g^2 always satisfy."""
    sq, avg = outs[1], outs[2]
    avg *= np.sqrt(sq)
    avg[::2] *= -1


def _rmsprop_kernel(centered, momentum):
    name = "rmsprop" + "_centered" * centered + "_momentum" * momentum
    denom = "sqrt(max(sq - avg * avg, (T)0)) + eps" if centered else "sqrt(sq) + eps"
    body = ("T g = grad + weight_decay * param; sq += one_minus_alpha * (g * g - sq); "
            + ("avg += one_minus_alpha * (g - avg); " if centered else "")
            + (f"buf = momentum * buf + g / ({denom}); param -= lr * buf" if momentum
               else f"param -= lr * (g / ({denom}))"))
    scalars = ("lr", "one_minus_alpha", "eps", "weight_decay") + ("momentum",) * momentum
    examples = [rmsprop_scalars(1e-2, 0.99, 1e-8, 0.0, 0.9), rmsprop_scalars(1e-3, 0.9, 1e-6, 0.01, 0.5),
                rmsprop_scalars(0.1, 0.999, 1e-8, 0.0, 0.99)]
    return register(Kernel(
        name, "T grad, " + ", ".join(f"T {s}" for s in scalars),
        "T param, T sq" + ", T avg" * centered + ", T buf" * momentum, body,
        _rmsprop_np(centered, momentum), _rmsprop_ref(centered, momentum),
        "sq = alpha sq + (1 - alpha) g^2; " + ("avg = alpha avg + (1 - alpha) g; " if centered else "")
        + (f"buf = mu buf + g / ({denom}); param -= lr buf" if momentum else f"param -= lr g / ({denom})"),
        scalars=scalars, examples=tuple(e[:len(scalars)] for e in examples), ulps=(4, 4),
        prepare=_centered_state if centered else None, scratch=2,
    ))


# -- Adam ------------------------------------------------------------------------

def _adam_np(amsgrad):
    def update(grad, step_size, omb1, omb2, eps, sqrt_bias2, l2, decay, param, m, v, *vmax):
        g = _decayed(grad, l2, param, _scratch(param)) if l2 else grad
        tmp = _scratch(param, 1)
        _lerp(m, g, omb1, tmp)                   # m = b1 m + (1 - b1) g
        _lerp_square(v, g, omb2, tmp)            # v = b2 v + (1 - b2) g^2
        if amsgrad:
            np.maximum(vmax[0], v, out=vmax[0])
        np.sqrt(vmax[0] if amsgrad else v, out=tmp)
        tmp /= sqrt_bias2
        tmp += eps
        np.divide(m, tmp, out=tmp)               # m / (sqrt(v) / sqrt(1 - b2^t) + eps)
        tmp *= step_size                         # lr / (1 - b1^t)
        if decay != 1:
            param *= decay                       # AdamW: param *= 1 - lr wd
        param -= tmp
    return update


def _adam_ref(amsgrad):
    def reference(grad, step_size, omb1, omb2, eps, sqrt_bias2, l2, decay, param, m, v, *vmax):
        g = grad + l2 * param
        m = m + omb1 * (g - m)
        v = v + omb2 * (g * g - v)
        vhat = np.maximum(vmax[0], v) if amsgrad else v
        param = decay * param - step_size * (m / (np.sqrt(vhat) / sqrt_bias2 + eps))
        return (param, m, v, vhat) if amsgrad else (param, m, v)
    return reference


def _adam_kernel(amsgrad):
    vhat = "vmax" if amsgrad else "v"
    body = ("T g = grad + l2 * param; m += one_minus_beta1 * (g - m); v += one_minus_beta2 * (g * g - v); "
            + ("vmax = max(vmax, v); " if amsgrad else "")
            + f"param = decay * param - step_size * (m / (sqrt({vhat}) / sqrt_bias2 + eps))")
    scalars = ("step_size", "one_minus_beta1", "one_minus_beta2", "eps", "sqrt_bias2", "l2", "decay")
    examples = (adam_scalars(1e-3, 0.9, 0.999, 1e-8, 0.0, 1), adam_scalars(1e-3, 0.9, 0.999, 1e-8, 0.01, 7),
                adam_scalars(1e-2, 0.9, 0.999, 1e-8, 0.1, 1000, decoupled=False),
                adam_scalars(3e-4, 0.8, 0.99, 1e-6, 0.0, 2))
    return register(Kernel(
        "adam" + "_amsgrad" * amsgrad, "T grad, " + ", ".join(f"T {s}" for s in scalars),
        "T param, T m, T v" + ", T vmax" * amsgrad, body, _adam_np(amsgrad), _adam_ref(amsgrad),
        "g = grad + l2 param; m, v moving averages of g, g^2" + ("; vmax = max(vmax, v)" if amsgrad else "")
        + f"; param = (1 - lr wd) param - lr / (1 - b1^t) * m / (sqrt({vhat} / (1 - b2^t)) + eps)",
        scalars=scalars, examples=examples, ulps=(2, 2), scratch=2,
    ))


sgd = register(Kernel(
    "sgd", "T grad, T lr, T weight_decay", "T param",
    "param -= lr * (grad + weight_decay * param)",
    _sgd_np, _sgd_ref,
    "param -= lr * (g + wd * param).", scalars=("lr", "weight_decay"),
    examples=((0.1, 0.0), (0.01, 1e-4), (1.0, 0.5)), ulps=(2, 2), scratch=1,
))

sgd_momentum = register(Kernel(
    "sgd_momentum", "T grad, T lr, T momentum, T one_minus_dampening, T weight_decay, T nesterov",
    "T param, T buf",
    "T g = grad + weight_decay * param; buf = momentum * buf + one_minus_dampening * g; "
    "param -= lr * (nesterov != 0 ? g + momentum * buf : buf)",
    _momentum_np, _momentum_ref,
    "buf = mu * buf + (1 - dampening) * g; param -= lr * (g + mu * buf if nesterov else buf).",
    scalars=("lr", "momentum", "one_minus_dampening", "weight_decay", "nesterov"),
    examples=(sgd_momentum_scalars(0.1, 0.9, 0.0, 0.0, False, 2), sgd_momentum_scalars(0.05, 0.9, 0.0, 1e-4, True, 5),
              sgd_momentum_scalars(0.01, 0.5, 0.1, 0.01, False, 3)), ulps=(2, 2), scratch=2,
))

rmsprop = _rmsprop_kernel(centered=False, momentum=False)
rmsprop_centered = _rmsprop_kernel(centered=True, momentum=False)
rmsprop_momentum = _rmsprop_kernel(centered=False, momentum=True)
rmsprop_centered_momentum = _rmsprop_kernel(centered=True, momentum=True)

adam = _adam_kernel(amsgrad=False)
adam_amsgrad = _adam_kernel(amsgrad=True)
