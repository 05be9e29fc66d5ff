"""CPU/GPU parity of a full forward + backward + update on a 3-layer net.

Tolerances (helpers.TOL): float64 ~1e-10 relative, float32 ~1e-5; both devices start
from bit-identical weights (drawn on the host) and see the same data. The CPU half
(same-seed determinism, CPU against itself across dtypes) runs everywhere.
"""
import numpy as np

import gpubp
from helpers import TOL


def run(device, dtype, steps=3):
    backend = gpubp.get_backend(device, dtype)
    model = gpubp.Sequential([gpubp.Dense(6, 16), gpubp.Sigmoid(), gpubp.Dense(16, 8), gpubp.ReLU(),
                              gpubp.Dense(8, 3)], backend=backend, seed=11)
    initial = {k: backend.to_numpy(v).copy() for k, v in model.parameters().items()}
    rng = np.random.default_rng(5)
    X, y = backend.asarray(rng.normal(size=(32, 6))), backend.asarray(rng.integers(0, 3, 32))
    loss, opt = gpubp.SoftmaxCrossEntropy(), gpubp.SGD(lr=0.1, momentum=0.9)  # linear in the gradients: no amplified rounding
    out = {}
    for step in range(steps):
        Y = model.forward(X)
        out[f"loss{step}"] = float(loss.forward(Y, y))
        model.zero_grad()
        dX = model.backward(loss.backward())
        # copies: on the CPU to_numpy passes the live arrays through, and the next step writes over them
        out[f"Y{step}"], out[f"dX{step}"] = backend.to_numpy(Y).copy(), backend.to_numpy(dX).copy()
        out.update({f"grad{step}:{k}": backend.to_numpy(g).copy() for k, g in model.gradients().items()})
        opt.step(model)
    out.update({f"param:{k}": backend.to_numpy(v) for k, v in model.parameters().items()})
    return initial, out


def test_same_seed_same_initial_weights_in_every_dtype():
    w32, _ = run("cpu", "float32", steps=0)
    w64, _ = run("cpu", "float64", steps=0)
    for k in w32:
        np.testing.assert_array_equal(w32[k], w64[k].astype(np.float32))


def test_cpu_runs_are_deterministic_and_float32_tracks_float64():
    _, a = run("cpu", "float32")
    _, b = run("cpu", "float32")
    _, c = run("cpu", "float64")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_allclose(a[k], c[k], rtol=1e-3, atol=1e-4, err_msg=k)


def test_every_device_matches_the_cpu(device, dtype, monkeypatch):
    monkeypatch.setenv("CUPY_TF32", "0")  # true float32 matmuls (CuPy's default; made explicit)
    w_cpu, cpu = run("cpu", dtype)
    w_dev, dev = run(device, dtype)
    for k in w_cpu:
        np.testing.assert_array_equal(w_cpu[k], w_dev[k])  # bit-identical start
    for k in cpu:
        np.testing.assert_allclose(dev[k], cpu[k], **TOL[np.dtype(dtype)], err_msg=k)
