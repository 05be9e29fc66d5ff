"""The flavours of arrays users hold, given to fit/predict, the Scaler, split, checkpoints and
gradcheck: the result of the plain C-ordered native-endian array, or a gpubp error naming the
argument; the user's arrays never written."""
import numpy as np
import pytest

import gpubp
from gpubp.datasets import Scaler, split
from gpubp.errors import InvalidValueError

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

rng = np.random.default_rng(0)
X0 = rng.normal(size=(12, 4))
Y0 = np.arange(12) % 3


def read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


FLAVOURS = {
    "read-only": read_only,
    "frombuffer": lambda a: np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape),
    "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    "reversed": lambda a: np.ascontiguousarray(a[::-1])[::-1],
    "fortran": np.asfortranarray,
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "object": lambda a: a.astype(object),
    "matrix": lambda a: np.asmatrix(a) if a.ndim == 2 else a,
    "list": lambda a: a.tolist(),
}


def trained(X, y, dtype):
    model = gpubp.Sequential([gpubp.Dense(4, 5), gpubp.Tanh(), gpubp.Dense(5, 3)], dtype=dtype, seed=0)
    gpubp.fit(model, X, y, epochs=2, batch_size=4, progress=False, seed=0)
    return model, {k: np.array(v) for k, v in model.parameters().items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_fit_and_predict_take_every_flavour_as_the_plain_array(flavour, dtype):
    """Before: an object array of floats (a table's .values) was refused; the others pin down
    that each flavour trains exactly as the plain array and is left as it was."""
    X, y = FLAVOURS[flavour](X0), FLAVOURS[flavour](Y0)
    X_copy, y_copy = np.array(X), np.array(y)
    model, params = trained(X, y, dtype)
    reference, expected = trained(X0, Y0, dtype)
    assert all(np.array_equal(params[k], expected[k]) for k in expected)
    assert np.array_equal(gpubp.predict(model, X), gpubp.predict(reference, X0))
    assert np.array_equal(np.array(X), X_copy) and np.array_equal(np.array(y), y_copy)


def test_a_broadcast_view_and_a_memory_map_train_as_their_copies(tmp_path):
    np.save(tmp_path / "X.npy", X0)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    rows = np.broadcast_to(X0[:1], X0.shape)
    assert all(np.array_equal(a, b) for a, b in zip(trained(mapped, Y0, "float32")[1].values(),
                                                    trained(X0, Y0, "float32")[1].values()))
    assert all(np.array_equal(a, b) for a, b in zip(trained(rows, Y0, "float32")[1].values(),
                                                    trained(np.array(rows), Y0, "float32")[1].values()))


def test_editing_the_data_after_fit_leaves_the_model_alone():
    X = X0.copy()
    model, params = trained(X, Y0, "float32")
    X[...] = 0
    assert all(np.array_equal(v, params[k]) for k, v in model.parameters().items())


def test_scaler_fits_a_fortran_array_as_its_c_ordered_copy():
    """Before: the column means and stds of a Fortran-ordered (or transposed) array were summed in
    another order, a few ulps away from those of the same values C-ordered."""
    X = rng.normal(size=(1000, 7)) * 3 + 1
    assert Scaler.fit(np.asfortranarray(X)).to_dict() == Scaler.fit(X).to_dict()
    assert Scaler.fit(np.ascontiguousarray(X.T).T).to_dict() == Scaler.fit(X).to_dict()


def masked():
    return np.ma.masked_array(X0, mask=np.eye(12, 4, dtype=bool))


@pytest.mark.parametrize("call,named", [
    (lambda: Scaler.fit(masked()), "Scaler.fit: X holds 4 masked"),
    (lambda: Scaler.fit(X0)(masked()), "Scaler: X holds 4 masked"),
    (lambda: Scaler.fit(X0).inverse(masked()), "Scaler.inverse: X holds 4 masked"),
    (lambda: split(masked(), Y0, 0.25, 0), "split: X holds 4 masked"),
    (lambda: split(X0, np.ma.masked_array(Y0, mask=Y0 == 1), 0.25, 0, stratify=True), "split: y holds 4 masked"),
])
def test_masked_values_are_refused_by_the_data_helpers(call, named):
    """Before: np.asarray dropped the mask, so the values under it were scaled, fitted on or split
    as data (and split returned plain arrays, the mask lost)."""
    with pytest.raises(InvalidValueError, match=named):
        call()


def test_a_checkpoint_extra_refuses_masked_values(tmp_path):
    """Before: tolist() wrote a masked value as null, so the extra came back with None in its place."""
    model = gpubp.Sequential([gpubp.Dense(4, 3)], seed=0)
    with pytest.raises(InvalidValueError, match="checkpoint extra holds 1 masked"):
        gpubp.checkpoint.save(tmp_path / "m.npz", model, extra={"w": np.ma.masked_array([1.0, 2.0], mask=[0, 1])})
    assert not (tmp_path / "m.npz").exists()


def test_gradcheck_names_the_input_that_holds_masked_values():
    """Before: the backend's message reached the user without saying which input it was about."""
    model = gpubp.Sequential([gpubp.Dense(4, 3)], dtype="float64", seed=0)
    with pytest.raises(InvalidValueError, match="gradcheck: the input X: 4 masked"):
        gpubp.gradcheck(model, "softmax_cross_entropy", masked(), Y0)
