"""Numerical self-test on any backend: registry kernels against their reference formulas,
and the small net that ``gpubp check`` gradient-checks and parity-runs. No pytest needed."""
from __future__ import annotations

import numpy as np

from ...backend import KERNELS, use_backend
from ...backend.kernels import sample_arguments
from ...nn import Dense, LeakyReLU, ReLU, Sigmoid, Tanh
from ...network import Sequential
from ..parity.tolerance import POLICY, compare


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
            backend.launch(kernel, *[backend.asarray(a) if np.ndim(a) else a for a in ins], *got)
        for name, want, have in zip(kernel.output_names, expected, got):
            have = backend.to_numpy(have)
            want = np.broadcast_to(want, have.shape)
            finite = np.isfinite(want)
            if (np.isfinite(have) != finite).any() or not compare(want[finite], have[finite],
                                                                 POLICY[backend.dtype]).ok:
                bad.append(f"{kernel.name}.{name} on {backend.device}/{backend.dtype.name}")
    return bad


def small_net(backend, seed=0):
    """ReLU first (fed by raw inputs, so not all dead); every kernel is on the path. Built on
    ``backend`` itself, so the self-test does not read GPUBP_DEVICE (checked on its own)."""
    with use_backend(backend):
        layers = [Dense(3, 6), ReLU(), Dense(6, 5), Tanh(), Dense(5, 4), Sigmoid(), Dense(4, 4), LeakyReLU(0.1),
                  Dense(4, 2)]
        return Sequential(layers, backend=backend, seed=seed)
