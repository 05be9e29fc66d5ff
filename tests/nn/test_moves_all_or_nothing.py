"""A move to another dtype or device is all or nothing: every array a layer holds per device
(parameters, gradients, BatchNorm's running statistics) is converted and checked before any is
swapped in, so a refused move (a value beyond float32's range) leaves the model or layer exactly
as it was: the model's and each layer's backend, and every array's dtype, bytes and identity.
Also the relatives of that defect: arrays handed to ``keep_parameters_in`` are all checked before
any is written, and a seeded model says when it replaces a Dropout's seed and step."""
import warnings

import numpy as np
import pytest

import gpubp
from gpubp.nn import BatchNorm, Dense, Dropout

F64 = gpubp.get_backend("cpu", "float64")
F32 = gpubp.get_backend("cpu", "float32")


def trained(layers):
    """A float64 model of ``layers`` after one training forward and backward (gradients, statistics)."""
    model = gpubp.Sequential(layers, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    model.forward(rng.normal(size=(5, 3)))
    model.backward(rng.normal(size=(5, 2)))
    return model


def state(model):
    """Each layer's backend and every array (dtype, bytes, the array object) of the model."""
    arrays = {f"{kind} {name}": a for kind, named in (("parameter", model.parameters()), ("gradient", model.gradients()),
                                                    ("buffer", model.buffers())) for name, a in named.items()}
    return (model.backend, [layer.backend for layer in model.layers],
            {k: (a.dtype, np.asarray(a).tobytes(), id(a)) for k, a in arrays.items()})


def layer_state(layer):
    arrays = {**{f"p {k}": a for k, a in layer.params.items()}, **{f"g {k}": a for k, a in layer.grads.items()},
              **{f"b {k}": a for k, a in layer.buffers.items()}}
    return layer.backend, {k: (a.dtype, np.asarray(a).tobytes(), id(a)) for k, a in arrays.items()}


def test_a_model_whose_batchnorm_statistics_float32_cannot_hold_stays_float64():
    """Was: the first Dense had become float32 (and the model's backend too) before BatchNorm refused."""
    model = trained([Dense(3, 4), BatchNorm(4), Dense(4, 2)])
    model.layers[1].buffers["running_var"] = np.array([1.0, 2e39, 3.0, 4.0])
    before, flat = state(model), model.flat
    with pytest.raises(gpubp.NumericalError, match=r"BatchNorm\(4.*\) buffer 1\.running_var: holds values up to 2e\+39, "
                                                    r"beyond float32's range"):
        model.to("cpu", "float32")
    assert state(model) == before and model.flat is flat is not None
    assert model.forward(np.ones((5, 3))).dtype == np.float64  # the layers still chain: nothing half moved


@pytest.mark.parametrize("kind, name", [("parameter", "W"), ("gradient", "W"), ("parameter", "b")])
def test_a_model_whose_last_layer_refuses_is_left_as_it_was(kind, name):
    """Only the last layer holds a value float32 cannot hold: the layers before it are not moved."""
    model = trained([Dense(3, 4), BatchNorm(4), Dense(4, 2)])
    arrays = model.layers[2].params if kind == "parameter" else model.layers[2].grads
    arrays[name][0] = 1e300
    before = state(model)
    with pytest.raises(gpubp.NumericalError, match=rf"Dense\(4, 2\) {kind} 2\.{name}: holds values up to 1e\+300"):
        model.to(F32)
    assert state(model) == before


def test_a_layer_whose_weight_float32_cannot_hold_keeps_its_backend():
    """Was: Layer.to set the float32 backend first, leaving it holding float64 parameters."""
    for layer in (Dense(3, 4, backend=F64), BatchNorm(4, backend=F64)):
        name = next(iter(layer.params))
        layer.params[name][1] = -5e38
        before = layer_state(layer)
        with pytest.raises(gpubp.NumericalError, match=rf"{type(layer).__name__}\(.*\) parameter {name}: holds values "
                                                        r"up to 5e\+38, beyond float32's range"):
            layer.to("cpu/float32")
        assert layer_state(layer) == before


def test_a_move_that_succeeds_keeps_every_value_in_the_new_dtype():
    """Parameters, accumulated gradients and statistics all arrive, rounded once; the model is flat again."""
    model = trained([Dense(3, 4), BatchNorm(4), Dense(4, 2)])
    values = {kind: {k: np.array(a) for k, a in named().items()}
              for kind, named in (("parameter", model.parameters), ("gradient", model.gradients), ("buffer", model.buffers))}
    model.to("cpu", "float32")
    assert model.flat is not None
    assert all(layer.backend == F32 for layer in model.layers)
    for kind, named in (("parameter", model.parameters), ("gradient", model.gradients), ("buffer", model.buffers)):
        for k, a in named().items():
            assert a.dtype == np.float32, (kind, k)
            np.testing.assert_array_equal(a, values[kind][k].astype(np.float32))


def test_gradients_read_as_zeros_after_zero_grad_still_do_after_a_move():
    layer = Dense(3, 2, backend=F64)
    layer.forward(np.ones((2, 3)))
    layer.backward(np.ones((2, 2)))
    layer.grads["W"][0, 0] = 1e300  # stale after zero_grad: never read, so never refused
    layer.zero_grad()
    layer.to(F32)
    assert all(g.dtype == np.float32 and not g.any() for g in layer.grads.values())


def test_keep_parameters_in_checks_every_array_before_writing_any():
    """Was: the arrays before a refused one had been overwritten with the layer's values."""
    layer = Dense(3, 2, backend=F64)
    W, b = np.full((3, 2), 7.0), np.zeros(3)  # b of the wrong shape
    with pytest.raises(gpubp.ShapeError, match=r"Dense\(3, 2\) parameter b is float64 \(2,\), got float64 \(3,\)"):
        layer.keep_parameters_in({"W": W, "b": b})
    np.testing.assert_array_equal(W, np.full((3, 2), 7.0))
    assert layer.params["W"] is not W


def test_a_seeded_model_says_it_replaces_a_dropouts_chosen_seed_or_its_step():
    """Was: silent, while drawn parameters were warned about; a new Dropout's defaults are not."""
    chosen, stepped = Dropout(0.5, seed=7), Dropout(0.2)
    stepped.step = 3
    with pytest.warns(gpubp.GpubpWarning, match=r"Sequential\(seed=0\) redraws the seed and step that layers "
                                                r"1 Dropout\(p=0\.5\), 2 Dropout\(p=0\.2\) already hold; "
                                                r"pass seed=None to keep them"):
        gpubp.Sequential([Dense(3, 4), chosen, stepped])
    assert chosen.seed != 7 and stepped.step == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gpubp.Sequential([Dense(3, 4), Dropout(0.5)])
        kept = Dropout(0.5, seed=7)
        gpubp.Sequential([Dense(3, 4), kept], seed=None)
    assert kept.seed == 7
