"""Numerical self-test: registry kernels against their references, and backprop against
finite differences, on any backend. Used by ``gpubp check``; no pytest needed."""
from __future__ import annotations

import numpy as np

from .backend import KERNELS, get_backend
from .tolerance import POLICY, compare


def sample_arguments(kernel, dtype, rng, n=257):
    """Host arguments for ``kernel``: array inputs in [-1, 1], scalar inputs (hyperparameters
    such as lr or slope, ``kernel.scalars``) in [0.1, 0.9], outputs (state read in place,
    e.g. Adam's v) in [0, 1]."""
    dtype = np.dtype(dtype)
    ins = [dtype.type(rng.uniform(0.1, 0.9)) if name in kernel.scalars else rng.uniform(-1, 1, n).astype(dtype)
           for name in kernel.input_names]
    return ins, [rng.uniform(0, 1, n).astype(dtype) for _ in kernel.output_names]


def kernel_mismatches(backend, seed=0) -> list[str]:
    """Run every registry kernel on ``backend`` against its NumPy reference formula.

    Non-finite reference values (a formula outside its domain) must be non-finite on
    the backend too; the rest must agree within the policy of the backend's dtype.
    """
    rng, bad = np.random.default_rng(seed), []
    for kernel in KERNELS.values():
        ins, outs = sample_arguments(kernel, backend.dtype, rng)
        with np.errstate(all="ignore"):  # a NaN outside a formula's domain is compared, not warned
            expected = kernel.reference(*ins, *[o.copy() for o in outs])
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = [backend.asarray(o) for o in outs]
        with backend.activate():
            backend.launch(kernel.name, *[backend.asarray(a) if np.ndim(a) else a for a in ins], *got)
        for name, want, have in zip(kernel.output_names, expected, got):
            have = backend.to_numpy(have)
            want = np.broadcast_to(want, have.shape)
            finite = np.isfinite(want)
            if (np.isfinite(have) != finite).any() or not compare(want[finite], have[finite],
                                                                 POLICY[backend.dtype]).ok:
                bad.append(f"{kernel.name}.{name} on {backend.device}/{backend.dtype.name}")
    return bad


def small_net(backend, seed=0):
    from .layers import Dense, LeakyReLU, ReLU, Sigmoid, Tanh
    from .network import Sequential
    # ReLU first (fed by raw inputs, so not all dead); every kernel is on the path
    layers = [Dense(3, 6), ReLU(), Dense(6, 5), Tanh(), Dense(5, 4), Sigmoid(), Dense(4, 4), LeakyReLU(0.1),
              Dense(4, 2)]
    return Sequential(layers, backend=backend, seed=seed)


def gradient_error(device="cpu", eps=1e-6) -> float:
    """Worst ratio (|backprop - central difference| / allowed) over a small float64 net's parameters.

    dL/dp ~ (L(p + eps) - L(p - eps)) / (2 eps), allowed 1e-7 + 1e-5 * max|dL/dp| per array.
    """
    from .losses import MSE
    backend = get_backend(device, "float64")
    rng = np.random.default_rng(1)
    model, loss = small_net(backend), MSE()
    X, T = backend.asarray(rng.normal(size=(8, 3))), backend.asarray(rng.normal(size=(8, 2)))
    model.zero_grad()
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    worst = 0.0
    for key, p in model.parameters().items():
        numeric = np.zeros(p.shape)
        for idx in np.ndindex(*p.shape):
            saved = float(p[idx])
            values = []
            for shift in (eps, -eps):
                p[idx] = saved + shift
                values.append(float(loss.forward(model.forward(X), T)))
            p[idx] = saved
            numeric[idx] = (values[0] - values[1]) / (2 * eps)
        analytic = backend.to_numpy(model.gradients()[key])
        allowed = 1e-7 + 1e-5 * np.abs(numeric).max()
        worst = max(worst, float(np.abs(analytic - numeric).max() / allowed))
    return worst
