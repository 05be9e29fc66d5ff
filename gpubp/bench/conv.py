"""LeNet training step (forward + softmax cross-entropy + backward + SGD), gpubp against PyTorch.

Conv(C1, k) - ReLU - MaxPool(2) - Conv(C2, k) - ReLU - MaxPool(2) - Flatten - Dense - ReLU ...
- Dense(classes), float32, as PyTorch's nn.Conv2d/MaxPool2d/Linear. Both sides start from the
same host-drawn float64 weights and data; torch is imported only inside ``torch_lenet_step``.
Timed like the MLP step: ``mlp.measure`` in a fresh process (``mlp.run_isolated``) with a
config dict whose ``kind`` is ``"lenet"``; ``cudnn`` in it switches cuDNN on CUDA. On a GPU the
planned step can also be replayed as one captured CUDA graph (``gpubp_lenet_step(graphed=True)``).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from ..losses import SoftmaxCrossEntropy
from ..network import Sequential
from ..nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from ..optim import SGD
from .steps import eager_step, planned_step, torch_device, torch_in_float32, torch_sgd_step

LENET = {"kind": "lenet", "image": [1, 28, 28], "channels": [6, 16], "kernel": 5, "hidden": [120, 84],
         "classes": 10, "batch": 64}
QUICK_LENET = {"kind": "lenet", "image": [1, 12, 12], "channels": [2, 4], "kernel": 3, "hidden": [8],
               "classes": 4, "batch": 4}


def is_lenet(config) -> bool:
    return isinstance(config, dict) and config.get("kind") == "lenet"


def describe(cfg) -> str:
    """E.g. ``1x28x28 c6k5-p2-c16k5-p2-120-84-10 b64``."""
    convs = "-".join(f"c{c}k{cfg['kernel']}-p2" for c in cfg["channels"])
    return (f"{'x'.join(map(str, cfg['image']))} {convs}-{'-'.join(map(str, [*cfg['hidden'], cfg['classes']]))}"
            f" b{cfg['batch']}")


def layer_specs(cfg) -> list:
    """The layers in order as (kind, args): ("conv", (in, out, k)), ("relu",), ("pool",), ("flatten",),
    ("dense", (n_in, n_out)); the first Dense's n_in follows from the image size (floor mode)."""
    c, h, w = cfg["image"]
    k, specs = cfg["kernel"], []
    for out in cfg["channels"]:
        specs += [("conv", (c, out, k)), ("relu",), ("pool",)]
        c, h, w = out, (h - k + 1) // 2, (w - k + 1) // 2
        if h < 1 or w < 1:
            raise ValueError(f"LeNet config {cfg}: the image is too small for its convolutions")
    specs.append(("flatten",))
    widths = [c * h * w, *cfg["hidden"], cfg["classes"]]
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        specs += [("dense", (a, b))] + ([("relu",)] if i < len(widths) - 2 else [])
    return specs


def initial_weights(cfg, seed=0) -> dict:
    """Host float64 parameters named as gpubp's ``model.parameters()`` ("0.W", "0.b", ...): He uniform
    weights (fan-in = in_channels k k for a conv, n_in for a Dense) and small uniform biases. Conv W is
    (out, in, k, k), as PyTorch's; Dense W is (n_in, n_out), the transpose of nn.Linear's."""
    rng, params = np.random.default_rng(seed), {}
    for i, spec in enumerate(layer_specs(cfg)):
        if spec[0] == "conv":
            c, o, k = spec[1]
            shape, fan_in, n_out = (o, c, k, k), c * k * k, o
        elif spec[0] == "dense":
            shape, fan_in, n_out = spec[1], spec[1][0], spec[1][1]
        else:
            continue
        bound = np.sqrt(6.0 / fan_in)
        params[f"{i}.W"] = rng.uniform(-bound, bound, shape)
        params[f"{i}.b"] = rng.uniform(-0.1, 0.1, n_out)
    return params


def data(cfg, seed=1):
    """Host images (batch, *image) float64 and integer labels (batch,)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(cfg["batch"], *cfg["image"])), rng.integers(0, cfg["classes"], cfg["batch"])


def gpubp_model(cfg, backend):
    make = {"conv": lambda a: Conv2D(*a), "relu": lambda: ReLU(), "pool": lambda: MaxPool2D(2),
            "flatten": lambda: Flatten(), "dense": lambda a: Dense(*a)}
    model = Sequential([make[s[0]](*s[1:]) for s in layer_specs(cfg)], backend=backend, seed=None)
    model.load_parameters({k: backend.asarray(v) for k, v in initial_weights(cfg).items()})
    return model


def gpubp_lenet_step(cfg, device, lr=0.01, dtype="float32", planned=False, graphed=False):
    """A closure running one gpubp LeNet training step, its backend, and the model; ``planned``:
    the step of a step plan (the batch in its buffers, as fit gathers it), ``graphed``: that plan's
    step captured as one CUDA graph (on a GPU: every layer of the LeNet is capturable), else the
    eager one."""
    backend = get_backend(device, dtype)
    model = gpubp_model(cfg, backend)
    X, labels = data(cfg)
    X, T = backend.asarray(X), backend.xp.asarray(labels)
    loss, opt = SoftmaxCrossEntropy(), SGD(lr=lr)
    if planned or graphed:
        return planned_step(model, loss, opt, X, T, graphed), backend, model
    return eager_step(model, loss, opt, X, T), backend, model


def torch_model(cfg, dtype="float32"):
    """The same LeNet as torch.nn.Sequential on the CPU, from ``initial_weights`` (in ``dtype``)."""
    import torch
    weights, mods, dt = initial_weights(cfg), [], getattr(torch, dtype)
    for i, spec in enumerate(layer_specs(cfg)):  # made in dt: float64 weights are not rounded via float32
        if spec[0] == "conv":
            mod = torch.nn.Conv2d(*spec[1], dtype=dt)
        elif spec[0] == "dense":
            mod = torch.nn.Linear(*spec[1], dtype=dt)
        else:
            mods.append({"relu": torch.nn.ReLU, "pool": lambda: torch.nn.MaxPool2d(2),
                         "flatten": torch.nn.Flatten}[spec[0]]())
            continue
        W = weights[f"{i}.W"]
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T if spec[0] == "dense" else W)))
            mod.bias.copy_(torch.from_numpy(weights[f"{i}.b"]))
        mods.append(mod)
    return torch.nn.Sequential(*mods)


def torch_lenet_step(cfg, device, lr=0.01):
    """A closure running one PyTorch LeNet step, and a sync. On CUDA ``cfg["cudnn"]`` (default
    False) sets ``torch.backends.cudnn.enabled``; on the CPU there is no cuDNN (PyTorch uses oneDNN)."""
    import torch
    dev = torch_device(device)
    torch_in_float32(torch)
    if dev == "cuda":
        torch.backends.cudnn.enabled = bool(cfg.get("cudnn", False))
    model = torch_model(cfg).to(dev)
    X, labels = data(cfg)
    X, T = torch.from_numpy(X).float().to(dev), torch.from_numpy(labels).long().to(dev)
    return torch_sgd_step(model, torch.nn.functional.cross_entropy, X, T, lr, dev)
