"""A layer of another dtype or device put into a model after it was made (model.layers[i] = ..., in a
callback too) is named with its backend and the model's, and the fix (model.to(model.backend)), by the
optimizer's step as by the next forward: not a gradient's dtype error with a conversion to try."""
import numpy as np
import pytest

import gpubp


class PutsFloat32Layer:
    def on_batch_end(self, step, model, loss_value):
        if step == 1:
            model.layers[2] = gpubp.Dense(5, 3)  # made float32, the default


@pytest.mark.parametrize("plan", [True, False])
def test_a_float32_layer_put_into_a_float64_model_is_named(plan):
    """Was: 'gradient 2.W: expected float64 values, got a float32 array; convert it with
    backend.asarray(x, dtype='float64')', from the update that follows on_batch_end."""
    rng = np.random.default_rng(0)
    model = gpubp.Sequential([gpubp.Dense(4, 5), gpubp.ReLU(), gpubp.Dense(5, 3)], dtype="float64", seed=0)
    with pytest.raises(gpubp.DeviceError, match=r"layers 2 Dense\(5, 3\) \(cpu/float32\) do not live on this "
                                                r"model's backend \(cpu/float64\).*model.to\(model.backend\)"):
        gpubp.fit(model, rng.normal(size=(32, 4)), rng.integers(0, 3, 32), epochs=1, batch_size=8, plan=plan,
                  progress=False, callbacks=PutsFloat32Layer())


def test_the_optimizer_names_it_outside_fit_too():
    model = gpubp.Sequential([gpubp.Dense(4, 3)], dtype="float64", seed=0)
    model.layers = [gpubp.Dense(4, 3)]
    with pytest.raises(gpubp.DeviceError, match=r"layers 0 Dense\(4, 3\) \(cpu/float32\) do not live on this "
                                                r"model's backend \(cpu/float64\)"):
        gpubp.SGD(0.1).step(model)
    model.to(model.backend)
    gpubp.SGD(0.1).step(model)
    assert model.parameters()["0.W"].dtype == np.float64
