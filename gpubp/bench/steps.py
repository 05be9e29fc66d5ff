"""A training step as a closure, for gpubp (eager, planned, graphed) and for PyTorch, the peer
(torch, optional, is imported only where it is timed)."""
from __future__ import annotations

from ..plan import GraphedStep, StepPlan


def eager_step(model, loss, optimizer, X, T):
    """One gpubp training step on (X, T): forward, loss, zero_grad, backward, update."""
    def step():
        loss.forward(model.forward(X), T)
        model.zero_grad()
        model.backward(loss.backward(), input_grad=False)
        optimizer.step(model)
    return step


def planned_step(model, loss, optimizer, X, T, graphed=False):
    """The same step run by a step plan, the batch in the plan's buffers as fit gathers it there;
    ``graphed``: that plan's step captured as one CUDA graph."""
    plan = StepPlan(model, loss, optimizer, X.shape, T.shape, T.dtype)
    plan.X[...], plan.y[...] = X, T
    run = GraphedStep(plan).step if graphed else plan.step
    return lambda: run(plan.X, plan.y)


def torch_device(device) -> str:
    """PyTorch's device for a gpubp device (``cuda:N``, ``gpu``): "cuda" or "cpu"."""
    return "cuda" if device.startswith("cuda") or device == "gpu" else "cpu"


def torch_sync(torch, dev):
    """What waits for PyTorch's work on ``dev`` (nothing on the CPU)."""
    return torch.cuda.synchronize if dev == "cuda" else (lambda: None)


def torch_in_float32(torch):
    """TF32 off for PyTorch's matrix products and cuDNN's convolutions: a float32 peer computes in
    float32, as gpubp does (PyTorch's default lets cuDNN convolutions round inputs to TF32)."""
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False


def torch_sgd_step(model, loss_fn, X, T, lr, dev, graphed=False):
    """One PyTorch SGD training step on (X, T) as a closure, and the sync that waits for it. A
    ``graphed`` model (torch.compile's CUDA graphs) is told where each step begins: else its next
    replay overwrites outputs that the step still reads, a RuntimeError (seen on an H200)."""
    import torch
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step():
        if graphed:
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=graphed)  # a graph's gradients are its outputs: accumulated into, they were overwritten
        loss_fn(model(X), T).backward()
        opt.step()
    return step, torch_sync(torch, dev)
