"""fit given images of raw pixels (whole numbers 0..255, uint8 or not) warns once, naming the range
and the fix (X / 255): it takes X as given, and a model drawn for inputs of about unit scale trains
slowly or not at all on them (the command line standardises its own images for the same reason)."""
import warnings

import numpy as np
import pytest

import gpubp


def _fit(X, y, **kw):
    model = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.Flatten(), gpubp.Dense(8, 2)], seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gpubp.fit(model, X, y, epochs=2, batch_size=4, progress=False, **kw)
    return [str(w.message) for w in caught if issubclass(w.category, gpubp.GpubpWarning)]


def _pixels(dtype=np.uint8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(8, 1, 4, 4)).astype(dtype), rng.integers(0, 2, 8)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int64])
def test_raw_pixels_are_warned_of_once(dtype):
    """Was: taken without a word (a CNN on 0..255 digits ends at a loss of 1.9 where the same
    digits in 0..1 reach 0.13), while the command line standardises such images."""
    X, y = _pixels(dtype)
    hi = int(X.max())
    (message,) = _fit(X, y)
    assert f"X holds images whose values are whole numbers from 0 to {hi}" in message
    assert "X / 255" in message


def test_raw_validation_pixels_are_named():
    X, y = _pixels()
    messages = _fit(X / 255, y, validation_data=(X, y))
    assert len(messages) == 1 and "validation_data X holds images" in messages[0]


@pytest.mark.parametrize("X", [_pixels()[0] / np.float32(255), _pixels()[0] / 255 - 0.5, _pixels()[0] > 128,
                               (_pixels()[0] - 127.5) / 20.0],
                         ids=["unit", "centred", "binary", "large but not whole"])
def test_scaled_images_are_not_warned_of(X):
    assert _fit(X, _pixels()[1]) == []


def test_rows_of_whole_numbers_are_not_images():
    """Tabular data of whole numbers (ages, counts) is nothing to warn of."""
    X, y = _pixels()
    model = gpubp.Sequential([gpubp.Dense(16, 2)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gpubp.fit(model, X.reshape(8, 16).astype(np.float32), y, epochs=1, progress=False)


def _trained_on(X, y):
    model = gpubp.Sequential([gpubp.Conv2D(1, 2, 3), gpubp.Flatten(), gpubp.Dense(8, 2)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpubp.fit(model, X, y, epochs=1, batch_size=4, progress=False)
    return model


def _said(run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if issubclass(w.category, gpubp.GpubpWarning)]


@pytest.mark.parametrize("call", ["predict", "evaluate"])
def test_images_far_outside_what_fit_trained_on_are_warned_of(call):
    """Was: 0..255 pixels given to a model fit trained on 0..1 were answered with certainty, without a
    word (the command line refuses them, naming the file)."""
    X, y = _pixels()
    model = _trained_on(X / 255, y)
    run = (lambda: gpubp.predict(model, X)) if call == "predict" else (lambda: gpubp.evaluate(model, X, y))
    (message,) = _said(run)
    assert message.startswith(f"{call}: X's values run from 0 to 255, far outside the 0 to 1 of the images fit "
                              f"trained this model on (0..255 pixels for a model trained on 0..1? X / 255)")
    assert _said(lambda: gpubp.predict(model, X / 255)) == []


def test_images_spanning_a_small_part_of_it_are_warned_of():
    X, y = _pixels()
    model = _trained_on(X.astype(np.float32), y)
    (message,) = _said(lambda: gpubp.predict(model, X / 255))
    assert "a small part of the 0 to 255 of the images fit trained this model on (0..1 pixels for a model trained " \
           "on 0..255? X * 255)" in message


def test_validation_images_far_outside_the_training_images_are_warned_of():
    X, y = _pixels()
    messages = _fit(X / 255, y, validation_data=(X.astype(np.float32) * 4, y))
    assert any(m.startswith("fit: validation_data X's values run from 0 to 1020, far outside the 0 to 1 of the "
                            "images fit trained this model on") for m in messages)
