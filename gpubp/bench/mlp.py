"""MLP training step (forward + MSE + backward + SGD), gpubp against PyTorch eager; the one
runner (``measure``, ``run_isolated``) also times the LeNet step of conv.py (a config dict
whose ``kind`` is ``"lenet"``).

Each measurement runs in its own process (``python -m gpubp.bench.worker``) whose
environment fixes the BLAS/OpenMP thread count before NumPy or torch is imported: two
BLAS thread pools in one process interfere. Both sides start from the same host-drawn
weights; torch, optional, is imported only where it is timed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

from ..backend import get_backend
from ..nn import Dense
from ..losses import MSE
from ..network import mlp
from ..optim import SGD
from .by_hand import by_hand_step
from .conv import gpubp_lenet_step, is_lenet, torch_lenet_step
from .steps import eager_step, planned_step, torch_device, torch_in_float32, torch_sgd_step
from .memory import allocated_per_step
from .timing import median_seconds

CONFIGS = {  # name: (layer widths, activation, batch)
    "a": ([784, 256, 256, 10], "sigmoid", 256),
    "b": ([1024, 4096, 4096, 1024], "relu", 1024),
    "c": ([64] * 11, "sigmoid", 64),
}
IMPLS = ("gpubp", "gpubp-planned", "gpubp-graph", "by-hand", "torch", "torch-graph")
LENET_IMPLS = ("gpubp", "gpubp-planned", "gpubp-graph", "torch")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def initial_weights(widths, seed=0):
    """Host float64 weights (Glorot uniform) and zero biases, shared by both implementations."""
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, (a, b)) * np.sqrt(6 / (a + b)), np.zeros(b)) for a, b in zip(widths, widths[1:])]


def data(widths, batch, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, widths[0])), rng.normal(size=(batch, widths[-1]))


def gpubp_step(widths, activation, batch, device, lr=0.01, dtype="float32", planned=False, graphed=False):
    """A closure running one gpubp training step, its backend, and the model; ``planned``:
    the step of a step plan (gpubp/plan: every buffer allocated once), ``graphed``: that plan's
    step captured as one CUDA graph (gpubp/plan/graph.py), else the eager step."""
    backend = get_backend(device, dtype)
    model = mlp(widths[0], widths[1:-1], widths[-1], activation, backend=backend, seed=None)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    for layer, (W, b) in zip(dense, initial_weights(widths)):
        layer.params["W"][...] = backend.asarray(W)
        layer.params["b"][...] = backend.asarray(b)
    X, T = (backend.asarray(a) for a in data(widths, batch))
    loss, opt = MSE(), SGD(lr=lr)
    if planned or graphed:
        return planned_step(model, loss, opt, X, T, graphed), backend, model
    return eager_step(model, loss, opt, X, T), backend, model


def torch_step(widths, activation, batch, device, lr=0.01, graphed=False):
    """PyTorch eager (TF32 off), or with ``graphed`` the model under torch.compile(mode="reduce-overhead"),
    PyTorch's own CUDA-graph path: the peer of a graphed gpubp step."""
    import torch
    torch_in_float32(torch)
    dev = torch_device(device)
    mods = []
    for i, (W, b) in enumerate(initial_weights(widths)):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(widths) - 2:
            mods.append(torch.nn.Sigmoid() if activation == "sigmoid" else torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).to(dev).float()
    X, T = (torch.from_numpy(a).float().to(dev) for a in data(widths, batch))
    if graphed:
        model = torch.compile(model, mode="reduce-overhead")
    return torch_sgd_step(model, torch.nn.functional.mse_loss, X, T, lr, dev, graphed)


def measure(impl, config, device, repeat):
    """ms per step of ``impl`` (one of ``IMPLS``; ``LENET_IMPLS`` for a LeNet config) on ``config``
    (a name in ``CONFIGS``, (widths, activation, batch), or a LeNet dict of conv.py), in this process."""
    return median_seconds(*_step(impl, config, device), warmup=2, repeat=repeat, min_time=0.2) * 1e3


def measure_paired(impls, config, device, repeat, rounds=5) -> dict:
    """Two implementations of one array library (gpubp's planned step and by-hand) timed in this
    process in ``rounds`` alternating rounds (each a ``measure``-style median): ``{"ms": [a, b],
    "ratio": a / b}``, medians over the rounds. The speed of a shared machine drifts by more than
    their difference between separate processes; their ratio measured side by side does not."""
    steps = [_step(impl, config, device) for impl in impls]
    ms = [[], []]
    for _ in range(rounds):
        for times, (step, sync) in zip(ms, steps):
            times.append(median_seconds(step, sync, warmup=2, repeat=repeat, min_time=0.1) * 1e3)
    return {"ms": [float(np.median(t)) for t in ms], "ratio": float(np.median(np.divide(*ms)))}


def _step(impl, config, device):
    """``(step, sync)`` of ``impl`` on ``config`` (see ``measure``)."""
    impls = LENET_IMPLS if is_lenet(config) else IMPLS
    if impl not in impls:  # else a misspelt name would quietly time gpubp
        raise ValueError(f"unknown implementation {impl!r}; choose one of {impls}")
    if is_lenet(config):
        if impl == "torch":
            return torch_lenet_step(config, device)
        step, backend, _ = gpubp_lenet_step(config, device, planned=impl == "gpubp-planned",
                                            graphed=impl == "gpubp-graph")
        return step, backend.synchronize
    widths, activation, batch = CONFIGS[config] if isinstance(config, str) else config
    if impl in ("torch", "torch-graph"):
        return torch_step(widths, activation, batch, device, graphed=impl == "torch-graph")
    if impl == "by-hand":
        backend = get_backend(device, "float32")
        X, T = (backend.asarray(a) for a in data(widths, batch))
        step, _ = by_hand_step(widths, activation, batch, backend, initial_weights(widths), X, T)
        return step, backend.synchronize
    step, backend, _ = gpubp_step(widths, activation, batch, device, planned=impl == "gpubp-planned",
                                  graphed=impl == "gpubp-graph")
    return step, backend.synchronize


def allocations(impl, config, device) -> int | None:
    """Bytes one step of ``impl`` ("gpubp" or "gpubp-planned") allocates after warm-up (an MLP
    config; None for a LeNet one)."""
    if is_lenet(config):
        return None
    widths, activation, batch = CONFIGS[config] if isinstance(config, str) else config
    step, backend, _ = gpubp_step(widths, activation, batch, device, planned=impl == "gpubp-planned")
    return allocated_per_step(step, backend)


def run_isolated(impl, config, device, threads, repeat, deadline=None) -> dict:
    """``measure`` in a fresh process with ``threads`` BLAS threads; {"ms": ...} or {"error": ...}.
    ``impl`` "a,b": ``measure_paired`` of the two, {"ms": [a, b], "ratio": a / b}. With a
    ``deadline`` (a ``time.monotonic()`` value) a measurement that would pass it is stopped, or
    not started, and returns {"error": ..., "out_of_time": True}."""
    left = 1800 if deadline is None else deadline - time.monotonic()
    if left < 5:
        return {"error": "not run: the time budget was spent", "out_of_time": True}
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    args = [sys.executable, "-m", "gpubp.bench.worker", impl, json.dumps(config), device, str(threads), str(repeat)]
    try:
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=left)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the worker
        return {"error": f"stopped after {left:.0f} s: the time budget was spent", "out_of_time": True}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None

