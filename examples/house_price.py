"""Seed 000: one weight, one house, the chain rule, and when the loss converges.

Model ``y_hat = w x`` with squared error ``L = (y_hat - y)^2``; by the chain rule

    dL/dw = dL/dy_hat * dy_hat/dw = 2 (y_hat - y) * x.

Here it runs through gpubp: ``Dense(1, 1, bias=False)`` is ``y_hat = x w``, ``MSE`` on a
single sample is ``(y_hat - y)^2`` and ``SGD`` is ``w -= lr dL/dw``. With x = 2, y = 100,
lr = 0.01 each step maps the error ``e = y_hat - y`` to ``(1 - 2 lr x^2) e = 0.92 e``,
so the loss shrinks by 0.92^2 per epoch: fast while the error is big, then ever
smaller steps (asymptotic convergence). The table below is computed, not copied; it
is compared with the figures printed in the seed note: all four are right, two of
them truncated rather than rounded (404.0076 for 404.00765, 0.00008 for 0.0000878).
The wrong figure in the seeds is seed 002's sigmoid neuron (see sigmoid_neuron.py).
"Converged" means the loss is below ``tol`` = 1e-4: first at epoch 112, as the note says.
"""
import math

from gpubp import MSE, SGD, Dense, Sequential, get_backend

# Figures the seed note prints: epoch -> loss, as printed
SEED_FIGURES = {20: "404.0076", 50: "2.7143", 100: "0.0006", 112: "0.00008"}


def train(x=2.0, y=100.0, w=1.0, lr=0.01, epochs=125, device="cpu"):
    """Per-epoch (loss before the step, weight after it), as in the seed's loop."""
    backend = get_backend(device, "float64")
    model = Sequential([Dense(1, 1, bias=False)], backend=backend, seed=None)
    model.layers[0].params["W"][...] = w
    loss, opt = MSE(), SGD(lr=lr)
    X, T = backend.asarray([[x]]), backend.asarray([[y]])
    losses, weights = [], []
    for _ in range(epochs):
        value = loss.forward(model.forward(X), T)
        model.zero_grad()
        model.backward(loss.backward())
        opt.step(model)
        losses.append(float(value))
        weights.append(float(model.layers[0].params["W"][0, 0]))
    return losses, weights


def verdict(value, printed):
    """"rounded", "truncated" or "wrong": how ``printed`` relates to ``value`` at its precision."""
    digits = len(printed.split(".")[1])
    if f"{value:.{digits}f}" == printed:
        return "rounded"
    if f"{math.floor(value * 10**digits) / 10**digits:.{digits}f}" == printed:
        return "truncated"
    return "wrong"


def main(epochs=125, tol=1e-4, verbose=True):
    losses, weights = train(epochs=epochs)
    converged = next((k + 1 for k, v in enumerate(losses) if v < tol), None)
    rows = []
    for epoch, printed in SEED_FIGURES.items():
        ours = losses[epoch - 1]
        rows.append((epoch, ours, printed, verdict(ours, printed)))
    if verbose:
        print(f"{'epoch':>5}  {'weight':>10}  {'loss':>14}")
        for k in (0, 9, 19, 49, 99, 110, 111, epochs - 1):
            print(f"{k + 1:>5}  {weights[k]:>10.4f}  {losses[k]:>14.8f}")
        print(f"loss < {tol:g} first at epoch {converged}; final weight {weights[-1]:.6f} (exact: 50)")
        print("seed note vs computed:")
        for epoch, ours, printed, same in rows:
            print(f"  epoch {epoch:>3}: printed {printed:<9} computed {ours:.8f}  {same}")
    return {"losses": losses, "weights": weights, "converged_epoch": converged, "seed_check": rows}


if __name__ == "__main__":
    main()
