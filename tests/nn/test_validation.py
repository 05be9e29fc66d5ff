"""Input validation at the public boundary: odd memory layouts work, wrong data is refused
with gpubp's own errors naming what was expected and what was found."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import GpubpError, NumericalError, ShapeError


def net(dtype="float64"):
    return gpubp.Sequential([gpubp.Dense(4, 6), gpubp.Sigmoid(), gpubp.Dense(6, 3)], dtype=dtype, seed=3)


def step(model, X, y):
    loss = gpubp.SoftmaxCrossEntropy()
    value = float(loss.forward(model.forward(X), y))
    model.zero_grad()
    dX = model.backward(loss.backward())
    return value, dX, {k: g.copy() for k, g in model.gradients().items()}


def layouts(X):
    """The same values as C-ordered, Fortran-ordered, a strided view and read-only."""
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    readonly = X.copy()
    readonly.setflags(write=False)
    return {"fortran": np.asfortranarray(X), "strided": wide[:, ::2], "readonly": readonly}


@pytest.mark.parametrize("kind", ["fortran", "strided", "readonly"])
def test_noncontiguous_and_readonly_inputs_give_the_same_results(kind):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 4)), rng.integers(0, 3, 10)
    want = step(net(), X, y)
    got = step(net(), layouts(X)[kind], y)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    for k in want[2]:
        np.testing.assert_array_equal(got[2][k], want[2][k])


def test_readonly_targets_and_labels():
    rng = np.random.default_rng(1)
    Y, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    T.setflags(write=False)
    assert float(gpubp.MSE().forward(Y, T)) == pytest.approx(np.mean((Y - T) ** 2))
    labels = np.array([0, 2, 1, 1, 0])
    labels.setflags(write=False)
    gpubp.SoftmaxCrossEntropy().forward(Y, labels)


def test_fit_accepts_noncontiguous_data():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    a, b = net(), net()
    gpubp.fit(a, X, y, epochs=2)
    gpubp.fit(b, np.asfortranarray(X), y, epochs=2)
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(v, b.parameters()[k])


@pytest.mark.parametrize("where,bad", [("X", np.nan), ("X", np.inf), ("y", np.nan)])
def test_nan_and_inf_in_data_are_refused_by_fit(where, bad):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    (X if where == "X" else y)[4, 1] = bad
    with pytest.raises(NumericalError, match=rf"{where} contains 1 NaN/Inf value\(s\); the first at index \(4, 1\)"):
        gpubp.fit(net(), X, y, loss="mse", epochs=1)


def test_nan_input_is_refused_by_predict():
    X = np.ones((3, 4))
    X[2, 3] = -np.inf
    with pytest.raises(NumericalError, match="X contains 1 NaN/Inf"):
        gpubp.predict(net(), X)


def test_batch_size_mismatch():
    with pytest.raises(ShapeError, match="10 samples but y has 9"):
        gpubp.fit(net(), np.zeros((10, 4)), np.zeros(9, dtype=int))
    with pytest.raises(ShapeError, match=r"5 predictions but labels of shape \(4,\)"):
        gpubp.SoftmaxCrossEntropy().forward(np.zeros((5, 3)), np.zeros(4, dtype=int))
    with pytest.raises(ShapeError, match=r"targets have shape \(4, 3\), predictions \(5, 3\)"):
        gpubp.MSE().forward(np.zeros((5, 3)), np.zeros((4, 3)))


def test_empty_batches():
    with pytest.raises(ShapeError, match="empty batch"):
        gpubp.MSE().forward(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ShapeError, match="no samples"):
        gpubp.fit(net(), np.zeros((0, 4)), np.zeros(0, dtype=int))


@pytest.mark.parametrize("bad", [np.array([["a", "b", "c", "d"]], dtype=object), np.ones((2, 4), dtype=np.int64),
                                 np.ones((2, 4), dtype=np.float32), [[1.0, 2.0, 3.0, 4.0]]])
def test_wrong_kinds_of_input_are_gpubp_errors(bad):
    with pytest.raises(GpubpError):
        net().forward(bad)


def test_object_arrays_cannot_be_converted():
    with pytest.raises(GpubpError, match="cannot turn an array of dtype object"):
        gpubp.get_backend("cpu").asarray(np.array([1.0, None], dtype=object))


def test_an_input_a_later_layer_refuses_is_refused_before_any_layer_moves_its_state():
    """Dropout draws and BatchNorm's running statistics move in forward: an input that a later
    layer cannot take is refused by the whole chain first, so nothing has moved and the next,
    right input gives what it would have given without the mistake."""
    def make():
        return gpubp.Sequential([gpubp.Dropout(0.5), gpubp.BatchNorm(3), gpubp.Flatten(),
                                 gpubp.Dense(12, 2)], dtype="float64", seed=0)
    model, twin = make(), make()
    X = np.random.default_rng(0).normal(size=(4, 3, 2, 2))
    wrong = np.random.default_rng(1).normal(size=(4, 3, 3, 2))  # 18 features after Flatten, not 12
    with pytest.raises(ShapeError, match=r"Dense\(12, 2\) expects inputs of width 12, got shape \(4, 18\)"):
        model.forward(wrong)
    assert model.layers[0].step == 0
    np.testing.assert_array_equal(model.layers[1].buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(model.forward(X), twin.forward(X))
    with pytest.raises(ShapeError, match="expects 3 input channels|BatchNorm"):  # checked again for a new shape
        model.forward(np.zeros((4, 2, 2, 2)))
    model.layers[3] = gpubp.Dense(18, 2, backend=model.backend)  # new layers: the chain is checked anew and takes it
    assert model.forward(wrong).shape == (4, 2)
