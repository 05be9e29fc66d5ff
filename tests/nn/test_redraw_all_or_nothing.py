"""A redraw is all or nothing: ``Sequential(layers, seed=)``, ``reset_parameters`` and
``draw_parameters`` draw every layer's new arrays (``Layer.drawn_arrays``, which sets nothing)
before any layer takes them, so a refused draw (an initialiser returning NaN or another shape,
a user's layer whose own reset raises) leaves every earlier layer's trained weights, the flat
parameter buffer, Dropout's seed and step and the layers' backend exactly as they were."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import NumericalError, ShapeError
from gpubp.nn import Dense, Dropout, Layer, Tanh


def nan_init(rng, n_in, n_out):
    return np.full((n_in, n_out), np.nan)


def trained(device, dtype="float64"):
    """A model Dense(3, 4) -> Tanh -> Dense(4, 2) after one step of gradient descent."""
    model = gpubp.Sequential([Dense(3, 4), Tanh(), Dense(4, 2)], backend=device, dtype=dtype, seed=0)
    rng = np.random.default_rng(1)
    model.forward(model.backend.asarray(rng.normal(size=(5, 3))))
    model.backward(model.backend.asarray(rng.normal(size=(5, 2))))
    for name, p in model.parameters().items():
        p -= 0.5 * model.gradients()[name]
    return model


def snapshot(model):
    """Each layer's backend and every parameter, gradient and buffer: its dtype, bytes and identity;
    and the model's flat parameter buffer (its identity and bytes)."""
    to_host = model.backend.to_numpy
    arrays = {f"{kind} {name}": a for kind, named in (("parameter", model.parameters()),
                                                    ("gradient", model.gradients()), ("buffer", model.buffers()))
              for name, a in named.items()}
    flat = model.flat
    return ([layer.backend for layer in model.layers],
            {k: (a.dtype, to_host(a).tobytes(), id(a)) for k, a in arrays.items()},
            None if flat is None else (id(flat[0]), to_host(flat[0]).tobytes()))


def test_a_refused_draw_in_a_seeded_model_keeps_the_trained_layers_before_it(device):
    model = trained(device)
    before = snapshot(model)
    assert before[2] is not None  # the parameters live in one flat buffer
    with pytest.raises(NumericalError) as info:
        gpubp.Sequential([*model.layers, Dense(2, 2, init=nan_init)], backend=device, dtype="float64", seed=1)
    assert snapshot(model) == before
    assert info.match(r"Dense\(2, 2\) parameter 3\.W: the weight initialiser returned NaN")


def test_a_refused_draw_keeps_the_layers_on_their_backend_and_dtype(device):
    model = trained(device)  # float64; a new model without dtype would make its layers float32
    before = snapshot(model)
    wrong = Dense(2, 2, init=lambda rng, n_in, n_out: np.zeros((n_out + 1, n_in)))
    with pytest.raises(ShapeError) as info:
        gpubp.Sequential([*model.layers, wrong], backend=device, seed=1)  # float32, the spec's default
    assert snapshot(model) == before
    assert model.flat is not None  # its layers' arrays still live in its flat buffer
    assert info.match(r"Dense\(2, 2\) parameter 3\.W: the weight initialiser returned shape")


def test_reset_parameters_refused_by_a_later_layer_keeps_the_model(device):
    calls = []

    def nan_the_second_time(rng, n_in, n_out):
        calls.append(1)
        return rng.uniform(-1, 1, size=(n_in, n_out)) if len(calls) == 1 else nan_init(rng, n_in, n_out)

    model = gpubp.Sequential([Dense(3, 4), Tanh(), Dense(4, 2, init=nan_the_second_time)], backend=device,
                             dtype="float64", seed=0)
    for p in model.parameters().values():
        p += 1  # trained
    before = snapshot(model)
    with pytest.raises(NumericalError) as info:
        model.reset_parameters(seed=3)
    assert snapshot(model) == before
    assert info.match(r"Dense\(4, 2\) parameter 2\.W")


class Scaled(Layer):
    """A user's layer with a parameter and its own reset_parameters (set by ``_set_parameters``)."""

    def __init__(self, fail=False, backend=None):
        super().__init__(backend)
        self.seed, self._params, self.fail, self.resets = 0, None, fail, 0

    def parameter_shapes(self):
        return {"s": (1,)}

    def reset_parameters(self, rng):
        self.resets += 1
        self._set_parameters({"s": self.backend.asarray(rng.uniform(size=(1,)))})
        if self.fail:
            raise ShapeError(f"{self!r}: a reset refused")

    def forward(self, X):
        return X * self.params["s"]


def test_a_users_layer_and_a_dropout_before_a_refused_draw_are_put_back(device):
    model = trained(device)
    user, drop = Scaled(backend=model.backend), Dropout(0.5, seed=7, backend=model.backend)
    user.params["s"][...] = 2.0
    drop.step = 5
    held = (id(user.params["s"]), user.backend.to_numpy(user.params["s"]).tobytes(), user.resets, drop.state)
    before = snapshot(model)
    with pytest.raises(NumericalError) as info:
        gpubp.Sequential([*model.layers, user, drop, Dense(2, 2, init=nan_init)], backend=device, dtype="float64",
                         seed=1)
    assert (id(user.params["s"]), user.backend.to_numpy(user.params["s"]).tobytes(), user.resets, drop.state) == held
    assert snapshot(model) == before
    assert info.match(r"Dense\(2, 2\) parameter 5\.W")


def test_a_users_layer_whose_reset_raises_leaves_the_layers_before_it(device):
    model = trained(device)
    before, drop = snapshot(model), Dropout(0.5, seed=7, backend=model.backend)
    failing = Scaled(fail=True, backend=model.backend)
    with pytest.raises(ShapeError) as info:
        gpubp.Sequential([drop, *model.layers, failing], backend=device, dtype="float64", seed=1)
    assert snapshot(model) == before
    assert drop.state == {"seed": 7, "step": 0}
    assert not failing.parameters_drawn and failing.resets == 0  # its own half-done reset undone too
    assert info.match("a reset refused")


def test_draw_parameters_refused_by_a_later_layer_draws_none(device):
    first = Dense(3, 4, seed=5)
    model = gpubp.Sequential([first, Tanh(), Dense(4, 2, init=nan_init)], backend=device, seed=None)
    with pytest.raises(NumericalError) as info:
        model.draw_parameters()
    assert not first.parameters_drawn and model.flat is None
    assert info.match(r"Dense\(4, 2\) parameter 2\.W")


def test_the_seeded_draws_are_those_of_one_rng_in_layer_order(device):
    """The same numbers as before the redraw was split: W of each Dense from one host RNG in layer
    order (drawn here by NumPy itself), Dropout's seed from a child of its seed sequence (no draw),
    a user's reset given the RNG at its place, and one of Dense's subclasses whose own reset calls
    Dense's (not redrawn twice)."""
    class Doubled(Dense):
        def reset_parameters(self, rng):
            super().reset_parameters(rng)
            self.params["W"] *= 2

    model = gpubp.Sequential([Dense(3, 4), Dropout(0.5), Scaled(), Doubled(4, 2, init="he_uniform")],
                             backend=device, dtype="float64", seed=11)
    rng = np.random.default_rng(11)
    W0 = rng.uniform(-np.sqrt(6 / 7), np.sqrt(6 / 7), size=(3, 4))
    s = rng.uniform(size=(1,))
    W3 = 2 * rng.uniform(-np.sqrt(6 / 4), np.sqrt(6 / 4), size=(4, 2))
    child = np.random.default_rng(11).bit_generator.seed_seq.spawn(1)[0]
    host = {k: model.backend.to_numpy(v) for k, v in model.parameters().items()}
    assert np.array_equal(host["0.W"], W0) and np.array_equal(host["2.s"], s) and np.array_equal(host["3.W"], W3)
    assert model.layers[1].state == {"seed": int(child.generate_state(1, np.uint32)[0]), "step": 0}
    assert model.flat is not None and model.layers[2].resets == 1
