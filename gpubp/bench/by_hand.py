"""The floor for an array-library training step: the delta rule written by hand.

One function, no layers, no checks, every buffer allocated once, the fewest
in-place passes NumPy/CuPy allow (forward ``z = a W + b``, ``a = f(z)``; output
delta ``2 (y - t) / N``; ``dW = a^T delta``, ``db = 1^T delta``,
``delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l)``; ``W -= lr dW``). It is about
the best that plain ``xp`` calls can do on these shapes, so gpubp/by-hand is
gpubp's own overhead (below 1 where its fused kernels beat separate calls) and
by-hand/PyTorch is what the array library and its BLAS allow at all.
"""
from __future__ import annotations

import numpy as np


def by_hand_step(widths, activation, batch, backend, weights, X, T, lr=0.01):
    """A closure doing one SGD step of an MSE-trained MLP on ``X``, ``T`` (``backend`` arrays).

    ``weights`` are host ``(W, b)`` pairs; the closure's parameters are ``params``.
    """
    xp, dt = backend.xp, backend.dtype
    params = [(backend.asarray(W), backend.asarray(b)) for W, b in weights]
    n = len(params)
    Z = [xp.empty((batch, w), dt) for w in widths[1:]]       # pre-activations, then scratch
    A = [X] + [xp.empty((batch, w), dt) for w in widths[1:-1]]  # layer inputs
    D = [xp.empty((batch, w), dt) for w in widths[1:]]       # deltas
    grads = [(xp.empty_like(W), xp.empty_like(b)) for W, b in params]
    ones, lr, scale = xp.ones(batch, dt), dt.type(lr), dt.type(2 / (batch * widths[-1]))
    sigmoid = activation == "sigmoid"

    def step():
        with np.errstate(over="ignore"):              # exp(-z) = inf gives a = 0, as it should
            forward()
        backward()
        for (W, b), (dW, db) in zip(params, grads):
            dW *= lr
            W -= dW
            db *= lr
            b -= db

    def forward():
        for i, (W, b) in enumerate(params):
            xp.matmul(A[i], W, out=Z[i])
            Z[i] += b
            if i < n - 1 and sigmoid:                 # a = 1 / (1 + exp(-z))
                xp.negative(Z[i], out=A[i + 1])
                xp.exp(A[i + 1], out=A[i + 1])
                A[i + 1] += 1
                xp.reciprocal(A[i + 1], out=A[i + 1])
            elif i < n - 1:
                xp.maximum(Z[i], 0, out=A[i + 1])

    def backward():
        xp.subtract(Z[-1], T, out=D[-1])
        D[-1] *= scale                                # dL/dy of mean((y - t)^2)
        for i in range(n - 1, -1, -1):
            dW, db = grads[i]
            xp.matmul(A[i].T, D[i], out=dW)
            xp.matmul(ones, D[i], out=db)
            if i:
                xp.matmul(D[i], params[i][0].T, out=D[i - 1])
                if sigmoid:                           # f' = a (1 - a)
                    xp.subtract(1, A[i], out=Z[i - 1])
                    Z[i - 1] *= A[i]
                else:                                 # f' = [z > 0]
                    xp.greater(Z[i - 1], 0, out=Z[i - 1])
                D[i - 1] *= Z[i - 1]
    return step, params
