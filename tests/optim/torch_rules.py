"""torch.optim's update rules written out in NumPy, operation by operation in PyTorch's
order (``_single_tensor_sgd/rmsprop/adam`` of torch 2.x), in any dtype: float64 is the
truth the optimizer tests compare with, float32 is what PyTorch's float32 would do.
Python-float hyperparameters enter each operation as PyTorch's do (one rounding).
"""
import math

import numpy as np


class TorchRule:
    def __init__(self, kind, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, alpha=0.99,
                 eps=1e-8, centered=False, betas=(0.9, 0.999), amsgrad=False, decoupled=False):
        self.kind, self.lr, self.mu, self.damp, self.nesterov = kind, lr, momentum, dampening, nesterov
        self.wd, self.alpha, self.eps, self.centered = weight_decay, alpha, eps, centered
        self.betas, self.amsgrad, self.decoupled = betas, amsgrad, decoupled
        self.state, self.t = {}, 0

    def step(self, params: dict, grads: dict) -> None:
        """One step, writing every ``params[name]`` in place."""
        self.t += 1
        for name, p in params.items():
            getattr(self, self.kind)(self.state.setdefault(name, {}), p, grads[name])

    def sgd(self, st, p, g):
        if self.wd:
            g = g + self.wd * p
        if self.mu:
            if "buf" not in st:
                st["buf"] = g.copy()
            else:
                st["buf"] = st["buf"] * self.mu + (1 - self.damp) * g
            g = g + self.mu * st["buf"] if self.nesterov else st["buf"]
        p += -self.lr * g

    def rmsprop(self, st, p, g):
        if self.wd:
            g = g + self.wd * p
        sq = st["sq"] = st.get("sq", np.zeros_like(p)) * self.alpha + (1 - self.alpha) * g * g
        if self.centered:
            ga = st.get("ga", np.zeros_like(p))
            ga = st["ga"] = ga + (1 - self.alpha) * (g - ga)          # lerp_, weight < 0.5
            avg = np.sqrt(sq + -1 * ga * ga)
        else:
            avg = np.sqrt(sq)
        avg = avg + self.eps
        if self.mu:
            buf = st["buf"] = st.get("buf", np.zeros_like(p)) * self.mu + g / avg
            p += -self.lr * buf
        else:
            p += -self.lr * (g / avg)

    def adam(self, st, p, g):
        b1, b2 = self.betas
        if self.wd and self.decoupled:
            p *= 1 - self.lr * self.wd
        elif self.wd:
            g = g + self.wd * p
        m = st.get("m", np.zeros_like(p))
        m = st["m"] = m + (1 - b1) * (g - m)                           # lerp_, weight < 0.5
        v = st["v"] = st.get("v", np.zeros_like(p)) * b2 + (1 - b2) * g * g
        step_size = self.lr / (1 - b1 ** self.t)
        bias2_sqrt = math.sqrt(1 - b2 ** self.t)
        if self.amsgrad:
            v = st["vmax"] = np.maximum(st.get("vmax", np.zeros_like(p)), v)
        denom = np.sqrt(v) / bias2_sqrt + self.eps
        p += -step_size * (m / denom)
