"""Seed 002: backprop through one sigmoid neuron, and the seed's one wrong printed figure.

    z = w . x + b,   a = sigmoid(z),   L = (a - t)^2
    dL/da = 2 (a - t),   da/dz = a (1 - a),   delta = dL/dz = dL/da * da/dz
    dL/dw = delta x,     dL/db = delta

Built from gpubp parts: ``Dense(3, 1)`` (z), ``Sigmoid`` (a) and ``MSE`` (on one value it
is exactly (a - t)^2). The seed note prints "Prediction: 0.9876, Loss: 0.00015" for
x = [2, -1, 3], w = [0.5, -0.3, 1.2], b = 0.6, t = 1. That is wrong: z = 1 + 0.3 + 3.6
+ 0.6 = 5.5, so a = sigmoid(5.5) = 0.9959 and L = 1.66e-05 (a = 0.9876 would need
z = 4.38). main() computes the values and reports the mismatch.
"""
import math

import numpy as np

from gpubp import MSE, Dense, Sequential, Sigmoid, get_backend

SEED_PRINTED = {"prediction": 0.9876, "loss": 0.00015}


def main(x=(2.0, -1.0, 3.0), w=(0.5, -0.3, 1.2), b=0.6, target=1.0, lr=0.1, device="cpu",
         verbose=True):
    backend = get_backend(device, "float64")
    neuron = Sequential([Dense(3, 1), Sigmoid()], backend=backend, seed=None)
    dense = neuron.layers[0]
    dense.params["W"][...] = backend.asarray(np.asarray(w).reshape(3, 1))
    dense.params["b"][...] = b
    loss = MSE()
    a = neuron.forward(backend.asarray([x]))
    value = float(loss.forward(a, backend.asarray([[target]])))
    neuron.zero_grad()
    neuron.backward(loss.backward())
    dw = backend.to_numpy(dense.grads["W"]).ravel()
    db = float(dense.grads["b"][0])
    res = {"z": float(np.dot(w, x) + b), "prediction": float(a[0, 0]), "loss": value,
           "dL_dw": dw, "dL_db": db, "w_new": np.asarray(w) - lr * dw, "b_new": b - lr * db}
    res["seed_prediction_wrong"] = abs(res["prediction"] - SEED_PRINTED["prediction"]) > 5e-5
    res["z_for_seed_prediction"] = math.log(SEED_PRINTED["prediction"] / (1 - SEED_PRINTED["prediction"]))
    if verbose:
        print(f"z = {res['z']:.4f}  Prediction: {res['prediction']:.4f}, Loss: {value:.3e}")
        print(f"dL/dw = {dw}  dL/db = {db:.6e}")
        print(f"after one step (lr {lr}): w = {res['w_new']}, b = {res['b_new']:.6f}")
        if res["seed_prediction_wrong"]:
            print(f"the seed note prints Prediction: {SEED_PRINTED['prediction']}, Loss: "
                  f"{SEED_PRINTED['loss']}: wrong; {SEED_PRINTED['prediction']} would need "
                  f"z = {res['z_for_seed_prediction']:.2f}, not {res['z']:.2f}")
    return res


if __name__ == "__main__":
    main()
