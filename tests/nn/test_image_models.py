"""Image layers in whole models: fit, evaluate and predict on (N, C, H, W) data, and a
CNN's architecture and weights surviving a checkpoint (its layers are in the registry)."""
import numpy as np
import pytest

import gpubp
from gpubp.datasets import load_digits
from gpubp.nn import LAYERS, Layer, layer_from_config


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


def regularised(seed=0):
    return gpubp.Sequential([gpubp.Dense(64, 32), gpubp.BatchNorm(32), gpubp.ReLU(), gpubp.Dropout(0.3),
                             gpubp.Dense(32, 10)], backend="cpu", dtype="float64", seed=seed)


def test_modes_buffers_and_resume_with_dropout_and_batchnorm(tmp_path):
    """fit trains in training mode and evaluates in eval mode (validation draws no Dropout mask);
    a checkpoint keeps BatchNorm's running statistics and Dropout's step, so a resumed run
    repeats an uninterrupted one bit for bit."""
    X, y, Xt, yt = load_digits()
    X, y = X[:300], y[:300]
    whole = regularised()
    gpubp.fit(whole, X, y, epochs=4, batch_size=50, validation_data=(Xt, yt), progress=False)
    assert whole.layers[3].step == 4 * 6 and whole.training  # 6 steps an epoch; the mode is restored
    first = regularised()
    gpubp.fit(first, X, y, epochs=2, batch_size=50, validation_data=(Xt, yt), progress=False,
              checkpoint_path=tmp_path / "c.npz", checkpoint_every=2)
    loaded = gpubp.checkpoint.load(tmp_path / "c.npz", "cpu")
    for k, v in first.buffers().items():
        np.testing.assert_array_equal(loaded.model.buffers()[k], v)
    resumed = regularised(seed=5)
    gpubp.fit(resumed, X, y, epochs=4, batch_size=50, validation_data=(Xt, yt), progress=False,
              resume_from=tmp_path / "c.npz")
    for k, v in whole.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)
    for k, v in whole.buffers().items():
        np.testing.assert_array_equal(resumed.buffers()[k], v)
    before = gpubp.predict(whole, Xt)
    np.testing.assert_array_equal(gpubp.predict(whole, Xt), before)  # eval: deterministic, no step taken
    assert whole.layers[3].step == 4 * 6


def test_gradcheck_holds_the_dropout_mask_fixed():
    X, y, _, _ = load_digits()
    model = regularised()
    with pytest.warns(gpubp.GpubpWarning, match="every checked gradient of 0.b"):  # Dense bias before BatchNorm
        report = gpubp.gradcheck(model, "softmax_cross_entropy", X[:16], y[:16], atol=1e-7)
    assert report.ok and model.layers[3].step == 0  # the caller's model is untouched
    assert report.vacuous == ["0.b"]
