"""Seed 001: backprop by hand through a 1-1-1 sigmoid net, then the same with gpubp.

    z1 = W1 x + b1, a1 = s(z1),  z2 = W2 a1 + b2, y_hat = s(z2),  L = 1/2 (y_hat - y)^2
    delta2 = (y_hat - y) s'(z2),          dL/dW2 = delta2 a1,  dL/db2 = delta2
    delta1 = W2 delta2 s'(z1),            dL/dW1 = delta1 x,   dL/db1 = delta1
    with s'(z) = s(z) (1 - s(z)).

The net is ``Sequential([Dense(1, 1), Sigmoid(), Dense(1, 1), Sigmoid()])``. gpubp's
``MSE`` is (y_hat - y)^2 without the 1/2, so its gradients are exactly twice the
seed's; main() shows both and checks gpubp's against ``gpubp.gradcheck``
(central finite differences in float64).
"""
import numpy as np

from gpubp import MSE, Dense, Sequential, Sigmoid, get_backend, gradcheck

SEED = {"x": 1.0, "W1": 0.5, "b1": 0.1, "W2": 1.5, "b2": 0.2, "y": 0.8}


def by_hand(x, W1, b1, W2, b2, y):
    """The seed's chain rule, scalar by scalar, for L = 1/2 (y_hat - y)^2."""
    def s(z):
        return 1.0 / (1.0 + np.exp(-z))
    a1 = s(W1 * x + b1)
    y_hat = s(W2 * a1 + b2)
    delta2 = (y_hat - y) * y_hat * (1 - y_hat)
    delta1 = W2 * delta2 * a1 * (1 - a1)
    return {"y_hat": y_hat, "loss": 0.5 * (y_hat - y) ** 2,
            "W1": delta1 * x, "b1": delta1, "W2": delta2 * a1, "b2": delta2}


def main(device="cpu", verbose=True):
    p = SEED
    backend = get_backend(device, "float64")
    net = Sequential([Dense(1, 1), Sigmoid(), Dense(1, 1), Sigmoid()], backend=backend, seed=None)
    for i, name in ((0, "1"), (2, "2")):
        net.layers[i].params["W"][...] = p["W" + name]
        net.layers[i].params["b"][...] = p["b" + name]
    X, T = backend.asarray([[p["x"]]]), backend.asarray([[p["y"]]])
    loss = MSE()
    mse = float(loss.forward(net.forward(X), T))
    net.zero_grad()
    net.backward(loss.backward())
    grads = {k: float(v[...].ravel()[0]) for k, v in net.gradients().items()}
    gpubp_half = {"W1": grads["0.W"] / 2, "b1": grads["0.b"] / 2, "W2": grads["2.W"] / 2, "b2": grads["2.b"] / 2}
    report = gradcheck(net, loss, X, T)
    hand = by_hand(**p)
    if verbose:
        print(f"y_hat = {hand['y_hat']:.6f}  seed loss 1/2 (y_hat - y)^2 = {hand['loss']:.6e}  "
              f"gpubp MSE = {mse:.6e}")
        for k in ("W1", "b1", "W2", "b2"):
            print(f"  dL/d{k}: by hand {hand[k]: .8e}   gpubp / 2 {gpubp_half[k]: .8e}")
        print(f"gpubp.gradcheck (finite differences): {'passed' if report.ok else 'FAILED'}")
    return {"by_hand": hand, "gpubp_mse": mse, "gpubp_half": gpubp_half, "gradcheck_ok": report.ok}


if __name__ == "__main__":
    main()
