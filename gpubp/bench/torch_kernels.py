"""PyTorch's own kernel for the op of each registry kernel: the peer of its bandwidth figure.

Activations and their backwards are the ATen ops autograd itself calls (``sigmoid_backward``,
``threshold_backward``, ...), each into a preallocated output; dropout is ``native_dropout``; an update is one ``step()`` of
``torch.optim``'s optimizer over a single parameter tensor, ``fused=True`` where PyTorch has a
fused kernel on the device (SGD, Adam) and ``foreach=True`` where it has not (RMSprop) — its
Python per step included, as a user pays it. Run in a worker process (``mlp.run_isolated``),
like every PyTorch measurement here; torch is imported only there.
"""
from __future__ import annotations

from .steps import torch_device, torch_sync
from .timing import median_seconds

SLOPE = 0.01  # leaky ReLU's negative slope
# the torch.optim optimizer and its arguments for each update kernel
OPTIMIZERS = {
    "sgd": ("SGD", {"lr": 0.01}),
    "sgd_momentum": ("SGD", {"lr": 0.01, "momentum": 0.9}),
    "rmsprop": ("RMSprop", {"lr": 1e-3}),
    "rmsprop_centered": ("RMSprop", {"lr": 1e-3, "centered": True}),
    "rmsprop_momentum": ("RMSprop", {"lr": 1e-3, "momentum": 0.9}),
    "rmsprop_centered_momentum": ("RMSprop", {"lr": 1e-3, "centered": True, "momentum": 0.9}),
    "adam": ("Adam", {"lr": 1e-3}),
    "adam_amsgrad": ("Adam", {"lr": 1e-3, "amsgrad": True}),
}


def activation_ops(torch, a, b, out) -> dict:
    """Each activation kernel's op as PyTorch computes it: forward from ``a``, backward from the
    incoming gradient ``a`` and the saved ``b``, into ``out``."""
    aten = torch.ops.aten
    return {
        "sigmoid": lambda: torch.sigmoid(a, out=out),
        "sigmoid_backward": lambda: aten.sigmoid_backward.grad_input(a, b, grad_input=out),
        "tanh": lambda: torch.tanh(a, out=out),
        "tanh_backward": lambda: aten.tanh_backward.grad_input(a, b, grad_input=out),
        "relu": lambda: torch.clamp_min(a, 0.0, out=out),
        "relu_backward": lambda: aten.threshold_backward.grad_input(a, b, 0.0, grad_input=out),
        "leaky_relu": lambda: aten.leaky_relu.out(a, SLOPE, out=out),
        "leaky_relu_backward": lambda: aten.leaky_relu_backward.grad_input(a, b, SLOPE, False, grad_input=out),
    }


def dropout_ops(torch, a, p=0.5) -> dict:
    """Dropout's op as PyTorch's autograd runs it in training: ``native_dropout``, the output and
    its mask from ``a`` in one kernel (new arrays each call: it has no out= form), keeping 1 - p."""
    return {"dropout": lambda: torch.ops.aten.native_dropout(a, p, True)}


def optimizer_step(torch, name, n, device, dtype):
    """``step()`` of the torch.optim optimizer for update kernel ``name`` over one parameter of
    ``n`` elements with its gradient set, and how it runs ("fused" or "foreach")."""
    cls, kwargs = OPTIMIZERS[name]
    param = torch.nn.Parameter(torch.rand(n, device=device, dtype=dtype))
    param.grad = torch.rand(n, device=device, dtype=dtype)
    for mode in ("fused", "foreach"):
        try:
            opt = getattr(torch.optim, cls)([param], **kwargs, **{mode: True})
            opt.step()  # fails here on a device the mode does not support; makes the state
            return opt.step, mode
        except (RuntimeError, TypeError, ValueError):
            continue
    opt = getattr(torch.optim, cls)([param], **kwargs)
    opt.step()
    return opt.step, "for-loop"


def measure_all(names, n, device, dtype, repeat) -> dict:
    """ms of PyTorch's op for each kernel name on ``n`` elements: {name: {"ms", "how"}} (an
    op PyTorch lacks: {"error"})."""
    import torch
    dev = torch_device(device)
    tdtype = getattr(torch, dtype)
    sync = torch_sync(torch, dev)
    a, b = (torch.rand(n, device=dev, dtype=tdtype) * 2 - 1 for _ in range(2))
    out = torch.empty_like(a)
    ops, rows = {**activation_ops(torch, a, b, out), **dropout_ops(torch, a)}, {}
    for name in names:
        try:
            fn, how = (ops[name], "ATen op") if name in ops else optimizer_step(torch, name, n, dev, tdtype)
            rows[name] = {"ms": median_seconds(fn, sync, repeat=repeat) * 1e3, "how": how}
        except Exception as exc:  # recorded, so that one missing op does not lose the others
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return rows
