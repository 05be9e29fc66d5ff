"""GradientRecorder and vanishing_experiment: norms checked against an independent NumPy backprop."""
import numpy as np
import pytest

from gpubp import MSE, Dense, Sequential, Sigmoid, fit, get_backend
from gpubp.tools.diagnostics import GradientRecorder, format_table, record_gradients, vanishing_experiment
from gpubp.errors import GpubpError


def small_net(backend, seed=3):
    return Sequential([Dense(3, 5), Sigmoid(), Dense(5, 2)], backend=backend, seed=seed)


def data(n=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 2))


def numpy_backprop(W1, b1, W2, b2, X, T):
    """Dense-Sigmoid-Dense + MSE by hand: returns (dW1, dW2), the dY each layer receives."""
    s = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    Y = s @ W2 + b2
    d_out = 2.0 * (Y - T) / Y.size          # received by layer 2 (Dense)
    d_s = d_out @ W2.T                      # received by layer 1 (Sigmoid)
    delta1 = d_s * s * (1.0 - s)            # received by layer 0 (Dense)
    return (X.T @ delta1, s.T @ d_out), (delta1, d_s, d_out)


def test_recorded_norms_match_independent_backprop(device):
    backend = get_backend(device, "float64")
    model = small_net(backend)
    X, T = data()
    rec = record_gradients(model, X, T, MSE())
    p = {k: backend.to_numpy(v) for k, v in model.parameters().items()}
    dWs, received = numpy_backprop(p["0.W"], p["0.b"], p["2.W"], p["2.b"], X, T)
    assert rec.dense == [0, 2] and rec.names == ["Dense", "Sigmoid", "Dense"]
    np.testing.assert_allclose(rec.dW_norms[0], [np.linalg.norm(d) for d in dWs], rtol=1e-10)
    np.testing.assert_allclose(rec.delta_norms[0], [np.linalg.norm(d) for d in received], rtol=1e-10)
    rows = rec.rows()
    assert rows[1][2] is None and rows[0][2] == pytest.approx(np.linalg.norm(dWs[0]))
    table = rec.table().splitlines()
    assert len(table) == 4 and table[2].split()[:3] == ["1", "Sigmoid", "-"] and table[-1].endswith("(output)")
    assert float(table[1].split()[2]) == pytest.approx(np.linalg.norm(dWs[0]), rel=1e-3)


def test_wrappers_are_removed_after_recording():
    model = small_net(get_backend("cpu", "float64"))
    record_gradients(model, *data(), MSE())
    for layer in model.layers:
        assert "backward" not in vars(layer) and "backward_params" not in vars(layer)


def test_fit_callback_one_batch_per_epoch_equals_single_pass():
    """With the whole set as one batch, epoch 1's record is the gradient at initialisation,
    including the first Dense layer, which fit() backpropagates through backward_params."""
    backend = get_backend("cpu", "float64")
    X, T = data(n=16)
    reference = record_gradients(small_net(backend), X, T, MSE())
    rec, model = GradientRecorder(), small_net(backend)
    history = fit(model, X, T, loss="mse", optimizer="sgd", lr=0.1, epochs=3, batch_size=16,
                  shuffle=False, progress=False, callbacks=[rec])
    assert len(rec.dW_norms) == len(rec.delta_norms) == history.epochs == 3
    np.testing.assert_allclose(rec.dW_norms[0], reference.dW_norms[0], rtol=1e-10)
    np.testing.assert_allclose(rec.delta_norms[0], reference.delta_norms[0], rtol=1e-10)
    assert rec.dW_norms[2] != rec.dW_norms[0]  # the weights moved, so did the gradients


def test_fit_callback_averages_over_batches():
    backend = get_backend("cpu", "float64")
    X, T = data(n=12)
    rec, model = GradientRecorder(), small_net(backend)
    seen = []

    class Spy:  # runs after the recorder in the same on_batch_end
        def on_batch_end(self, step, model, value):
            seen.append(np.linalg.norm(backend.to_numpy(model.layers[2].grads["W"])))

    fit(model, X, T, loss="mse", optimizer="sgd", lr=0.1, epochs=1, batch_size=4,
        shuffle=False, progress=False, callbacks=[rec, Spy()])
    assert len(seen) == 3
    assert rec.dW_norms[0][1] == pytest.approx(np.mean(seen), rel=1e-12)


def test_table_before_recording_is_an_error():
    with pytest.raises(GpubpError, match="no epoch"):
        GradientRecorder().table()


def test_vanishing_sigmoid_vs_relu(device):
    result = vanishing_experiment(depth=10, width=32, seed=0, backend=get_backend(device, "float32"))
    sig, relu = result["sigmoid"].dW_norms[0], result["relu"].dW_norms[0]
    assert len(sig) == len(relu) == 11
    assert result["ratio"]["sigmoid"] < 1e-4           # first layer 4+ orders below the last
    assert result["ratio"]["relu"] > 1e-1
    assert sig[0] < 1e-3 * relu[0]
    assert all(a < b for a, b in zip(sig, sig[1:]))    # shrinks at every sigmoid layer on the way down
    assert "sigmoid" in format_table(result)


def test_vanishing_with_training_records_each_epoch():
    result = vanishing_experiment(depth=4, width=8, epochs=2, n_samples=64,
                                  backend=get_backend("cpu", "float32"))
    for act in ("sigmoid", "relu"):
        assert len(result[act].dW_norms) == 3          # initialisation + 2 epochs
        assert all(np.isfinite(v) and v > 0 for row in result[act].dW_norms for v in row)


@pytest.mark.parametrize("input_grad", [True, False])
def test_recorder_is_an_observer_attached_and_detached_by_hand(input_grad):
    """attach() joins model.observers, detach() (via on_epoch_end) leaves it empty; the norms are
    those of a float64 backprop by hand, for the first layer too when it skips dX."""
    backend = get_backend("cpu", "float64")
    model = small_net(backend, seed=5)
    X, T = data(n=9, seed=2)
    rec = GradientRecorder()
    rec.attach(model)
    assert model.observers == [rec]
    for layer in model.layers:
        assert "backward" not in vars(layer) and "backward_params" not in vars(layer)
    loss = MSE()
    model.zero_grad()
    loss.forward(model.forward(backend.asarray(X)), backend.asarray(T))
    model.backward(loss.backward(), input_grad=input_grad)
    rec.on_batch_end(0, model, None)
    rec.on_epoch_end(0, model)
    assert model.observers == []
    model.forward(backend.asarray(X))  # no longer watched: nothing recorded, nothing raised
    model.backward(backend.asarray(T), input_grad=input_grad)
    p = {k: backend.to_numpy(v) for k, v in model.parameters().items()}
    dWs, received = numpy_backprop(p["0.W"], p["0.b"], p["2.W"], p["2.b"], X, T)
    np.testing.assert_allclose(rec.delta_norms[0], [np.linalg.norm(d) for d in received], rtol=1e-12)
    np.testing.assert_allclose(rec.dW_norms[0], [np.linalg.norm(d) for d in dWs], rtol=1e-12)
    assert len(rec.delta_norms) == 1


def test_attaching_elsewhere_leaves_the_first_model():
    backend = get_backend("cpu", "float64")
    a, b = small_net(backend), small_net(backend)
    rec = GradientRecorder()
    rec.attach(a)
    rec.attach(b)
    assert a.observers == [] and b.observers == [rec]
    rec.detach()
    rec.detach()  # twice is harmless
    assert b.observers == []
