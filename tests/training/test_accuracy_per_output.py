"""BCE's accuracy counts each output as its own yes/no and each sample as the fraction of its outputs
that are right, whatever the outputs' shape: a fraction in [0, 1] for images of outputs too."""
import numpy as np
import pytest

import gpubp


@pytest.mark.parametrize("per_sample", [(3,), (2, 4, 4)])
def test_bce_accuracy_is_the_fraction_of_outputs_right(per_sample):
    """Was: 8.35 for outputs of (3, 4, 4) per sample (the right outputs of a sample divided by its
    3 channels, not its 48 outputs)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 1, 6, 6))
    layers = [gpubp.Conv2D(1, 2, 3)] if len(per_sample) == 3 else [gpubp.Flatten(), gpubp.Dense(36, 3)]
    model = gpubp.Sequential(layers, dtype="float64", seed=0)
    y = (rng.random((16, *per_sample)) > 0.5).astype(float)
    accuracy = gpubp.evaluate(model, X, y, loss="bce")["accuracy"]
    out = gpubp.predict(model, X)
    assert accuracy == pytest.approx(((out > 0) == (y > 0.5)).mean(), rel=1e-12)
    history = gpubp.fit(model, X, y, loss="bce", epochs=1, batch_size=5, progress=False)
    assert 0 <= history.metric[0] <= 1
