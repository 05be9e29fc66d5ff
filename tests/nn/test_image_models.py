"""Image layers in whole models: fit, evaluate and predict on (N, C, H, W) data, and a
CNN's architecture and weights surviving a checkpoint (its layers are in the registry)."""
import numpy as np
import pytest

import gpubp
from gpubp.datasets import load_digits
from gpubp.layers import LAYERS, Layer, layer_from_config


def cnn(backend="cpu", seed=0):
    return gpubp.Sequential([gpubp.Conv2D(1, 4, 3, padding=1), gpubp.ReLU(), gpubp.MaxPool2D(2),
                             gpubp.Flatten(), gpubp.Dense(4 * 4 * 4, 10)], backend=backend, seed=seed)


def images():
    X, y, Xt, yt = load_digits()
    return X.reshape(-1, 1, 8, 8)[:600], y[:600], Xt.reshape(-1, 1, 8, 8), yt


def test_fit_evaluate_and_predict_take_images():
    X, y, Xt, yt = images()
    model = cnn()
    history = gpubp.fit(model, X, y, epochs=3, batch_size=32, lr=0.01, progress=False,
                        validation_data=(Xt, yt))
    assert history.epochs == 3 and history.loss[-1] < history.loss[0]
    result = gpubp.evaluate(model, Xt, yt)
    assert result["accuracy"] > 0.8
    assert gpubp.predict(model, Xt).shape == (len(Xt), 10)


def test_a_cnn_round_trips_through_a_checkpoint(tmp_path):
    X, y, Xt, _ = images()
    model = cnn()
    gpubp.fit(model, X, y, epochs=1, progress=False)
    gpubp.checkpoint.save(tmp_path / "cnn.npz", model)
    loaded = gpubp.checkpoint.load(tmp_path / "cnn.npz", "cpu").model
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(gpubp.predict(loaded, Xt), gpubp.predict(model, Xt))


def test_every_gpubp_layer_is_registered_and_a_users_layer_is_not():
    for name in ("Dense", "Sigmoid", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten",
                 "Dropout", "BatchNorm"):
        assert name in LAYERS
    assert "Activation" not in LAYERS and "_Pool2D" not in LAYERS  # abstract bases

    class Mine(Layer):
        def forward(self, X):
            return X
    assert "Mine" not in LAYERS
    with pytest.raises(gpubp.InvalidValueError, match="unknown layer type 'Mine'"):
        layer_from_config({"type": "Mine"})
    conv = gpubp.Conv2D(2, 3, (3, 2), stride=2, padding=1)
    assert layer_from_config(conv.config()).config() == conv.config()
