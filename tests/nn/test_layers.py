"""A layer's life: its parameters are drawn once, on first use, uploaded once; zero_grad
makes gradients read as zeros; loading parameters writes into the arrays in place."""
import numpy as np
import pytest

import gpubp
from gpubp.backend import NumpyBackend
from gpubp.errors import ShapeError
from gpubp.initializers import xavier_uniform


@pytest.fixture
def counted(monkeypatch):
    """Counts of initialiser draws and host-to-device copies while a test runs."""
    counts = {"draws": 0, "uploads": 0}

    def draw(rng, n_in, n_out):
        counts["draws"] += 1
        return xavier_uniform(rng, n_in, n_out)
    real = NumpyBackend._to_device

    def upload(self, host, dtype):
        counts["uploads"] += 1
        return real(self, host, dtype)
    monkeypatch.setattr(NumpyBackend, "_to_device", upload)
    return counts, draw


@pytest.mark.parametrize("backend", [None, "cpu", "cpu/float64"])
def test_two_dense_model_draws_and_uploads_each_weight_once(counted, backend):
    counts, draw = counted
    model = gpubp.Sequential([gpubp.Dense(2, 8, init=draw), gpubp.Sigmoid(), gpubp.Dense(8, 1, init=draw)],
                             backend=backend, seed=0)
    model.forward(model.backend.asarray(np.ones((3, 2))))
    model.parameters(), model.gradients()
    assert counts == {"draws": 2, "uploads": 2 + 1}  # W of each Dense, and the input


def test_mlp_draws_once_and_the_seed_fixes_the_weights(counted):
    counts, _ = counted
    a = gpubp.mlp(4, [16, 16], 3, "tanh", "cpu", seed=5)
    assert counts["uploads"] == 3
    b = gpubp.mlp(4, [16, 16], 3, "tanh", "cpu", "float64", seed=5)
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(v, b.parameters()[k].astype(np.float32))


def test_a_standalone_dense_draws_on_first_use_from_its_seed():
    a, b = gpubp.Dense(3, 4, seed=7), gpubp.Dense(3, 4, seed=7)
    assert a._params is None  # nothing drawn yet
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert a.grads["W"].shape == (3, 4) and not a.grads["W"].any()


def test_zero_grad_makes_gradients_read_zeros_and_the_next_backward_overwrites():
    model = gpubp.Sequential([gpubp.Dense(3, 4), gpubp.Tanh(), gpubp.Dense(4, 2)], dtype="float64")
    X, T = np.random.default_rng(0).normal(size=(5, 3)), np.zeros((5, 2))
    loss = gpubp.MSE()

    def step():
        loss.forward(model.forward(X), T)
        model.backward(loss.backward())
    step()
    once = {k: v.copy() for k, v in model.gradients().items()}
    assert any(v.any() for v in once.values())
    model.zero_grad()
    assert all(not v.any() for v in model.gradients().values())  # what a user reads is true
    step()
    for k, v in model.gradients().items():
        np.testing.assert_allclose(v, once[k], rtol=1e-12)  # overwritten, not added to zeros twice
    model.zero_grad()
    step()  # no read in between: the backward overwrites directly
    for k, v in model.gradients().items():
        np.testing.assert_allclose(v, once[k], rtol=1e-12)


def test_load_parameters_writes_in_place_and_checks_everything_first():
    model = gpubp.mlp(3, [4], 2, "relu", "cpu", seed=0)
    arrays = {k: np.full(v.shape, 0.5) for k, v in model.parameters().items()}
    held = model.parameters()
    model.load_parameters(arrays)
    for k, v in model.parameters().items():
        assert v is held[k] and np.all(v == 0.5)
    bad = dict(arrays, **{"2.W": np.zeros((5, 2))})
    with pytest.raises(ShapeError, match=r"parameter 2.W has shape \(5, 2\), the architecture says \(4, 2\)"):
        model.load_parameters(bad)
    assert np.all(model.parameters()["0.W"] == 0.5)  # nothing was written before the refusal
    with pytest.raises(ShapeError, match=r"missing \['2.b'\]"):
        model.load_parameters({k: v for k, v in arrays.items() if k != "2.b"})


def test_checkpoint_load_draws_nothing(counted, tmp_path):
    counts, draw = counted
    model = gpubp.Sequential([gpubp.Dense(2, 3, init=draw)], backend="cpu", seed=0)
    gpubp.checkpoint.save(tmp_path / "m.npz", model)
    counts["draws"] = 0
    loaded = gpubp.checkpoint.load(tmp_path / "m.npz", "cpu")
    np.testing.assert_array_equal(loaded.model.parameters()["0.W"], model.parameters()["0.W"])
    assert counts["draws"] == 0


def test_resume_loads_into_the_model_in_place(tmp_path):
    from gpubp.datasets import spirals
    X, y, _, _ = spirals(n=64)
    model = gpubp.mlp(2, [8], 2, "tanh", "cpu", seed=0)
    gpubp.fit(model, X, y, epochs=1, checkpoint_path=tmp_path / "c.npz", checkpoint_every=1, progress=False)
    fresh = gpubp.mlp(2, [8], 2, "tanh", "cpu", seed=1)
    held = fresh.parameters()
    with pytest.warns(gpubp.GpubpWarning, match="nothing is trained"):  # only the load: nothing left to train
        gpubp.fit(fresh, X, y, epochs=1, resume_from=tmp_path / "c.npz", progress=False)
    for k, v in fresh.parameters().items():
        assert v is held[k]
        np.testing.assert_array_equal(v, model.parameters()[k])


def test_moving_to_the_same_backend_copies_nothing():
    model = gpubp.mlp(3, [4], 2, "relu", "cpu", seed=0)
    held = model.parameters()
    model.to("cpu")
    assert all(v is held[k] for k, v in model.parameters().items())
    model.to("cpu", "float64")
    assert model.parameters()["0.W"].dtype == np.float64
    np.testing.assert_array_equal(model.parameters()["0.W"], held["0.W"].astype(np.float64))


ACCUMULATING = {  # a layer with parameters, and the shape of an input batch
    "Dense": (lambda: gpubp.Dense(4, 3, seed=1), (5, 4)),
    "Conv2D": (lambda: gpubp.Conv2D(3, 4, 3, stride=2, padding=1, seed=1), (2, 3, 7, 6)),
    "BatchNorm": (lambda: gpubp.BatchNorm(3), (4, 3, 5, 2)),
}


@pytest.mark.parametrize("name", sorted(ACCUMULATING))
def test_gradients_accumulate_until_zero_grad(name):
    """Two backward passes add up; after zero_grad the next one overwrites (the first layer's
    dW/db-only path too, where a layer has one)."""
    make, shape = ACCUMULATING[name]
    layer = make().to("cpu/float64")
    X = np.random.default_rng(0).normal(size=shape)
    dY = np.random.default_rng(1).normal(size=layer(X).shape)
    layer.backward(dY)
    once = {k: v.copy() for k, v in layer.grads.items()}
    assert once and all(v.any() for v in once.values())
    layer.backward(dY)
    for k, v in layer.grads.items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-14, err_msg=k)
    for path in ("backward", "backward_params"):
        if hasattr(layer, path):
            layer.zero_grad()
            getattr(layer, path)(dY)
            for k, v in layer.grads.items():
                np.testing.assert_allclose(v, once[k], rtol=1e-14, err_msg=f"{k} after zero_grad, {path}")


def test_gradients_can_live_in_given_arrays():
    """keep_gradients_in: backward then writes into the given arrays (views of one flat buffer),
    with their values carried over; arrays of another shape or dtype are refused."""
    model = gpubp.mlp(3, [4], 2, "tanh", "cpu", "float64", seed=0)
    X, T = np.random.default_rng(0).normal(size=(5, 3)), np.zeros((5, 2))
    loss = gpubp.MSE()
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    before = {k: v.copy() for k, v in model.gradients().items()}
    flat = np.zeros(sum(v.size for v in before.values()))
    views, lo = {}, 0
    for k, v in before.items():
        views[k] = flat[lo:lo + v.size].reshape(v.shape)
        lo += v.size
    model.keep_gradients_in(views)
    np.testing.assert_array_equal(flat, np.concatenate([v.ravel() for v in before.values()]))
    model.zero_grad()
    loss.forward(model.forward(X), T)
    model.backward(loss.backward())
    assert all(model.gradients()[k] is views[k] for k in views)
    np.testing.assert_allclose(flat, np.concatenate([v.ravel() for v in before.values()]), rtol=1e-14)
    with pytest.raises(ShapeError, match="gradient W is float64"):
        model.layers[0].keep_gradients_in({"W": np.zeros((4, 3))})
