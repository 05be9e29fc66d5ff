"""A training step as a closure, for gpubp eager and for PyTorch, the peer (torch, optional,
is imported only where it is timed)."""
from __future__ import annotations


def eager_step(model, loss, optimizer, X, T):
    """One gpubp training step on (X, T): forward, loss, zero_grad, backward, update."""
    def step():
        loss.forward(model.forward(X), T)
        model.zero_grad()
        model.backward(loss.backward(), input_grad=False)
        optimizer.step(model)
    return step


def torch_sgd_step(model, loss_fn, X, T, lr, dev):
    """One PyTorch SGD training step on (X, T) as a closure, and the sync that waits for it."""
    import torch
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step():
        opt.zero_grad(set_to_none=False)
        loss_fn(model(X), T).backward()
        opt.step()
    return step, (torch.cuda.synchronize if dev == "cuda" else (lambda: None))
