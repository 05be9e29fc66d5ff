"""The flavours of NumPy arrays users hold (big-endian, Fortran-ordered, object, masked, matrix,
memmap) through the backend's conversion and checks: the values of the plain array, or a gpubp
error naming the argument, never a silently different computation."""
import re

import numpy as np
import pytest

import gpubp
from gpubp.errors import DTypeError, InvalidValueError

pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

X = np.random.default_rng(0).normal(size=(6, 4))


@pytest.mark.parametrize("given,want", [(">i8", np.int64), (">i4", np.int32), (">u2", np.uint16)])
def test_big_endian_labels_arrive_native_endian(backend, given, want):
    """Before: '>i8' labels stayed '>i8' on the device (CuPy has no big-endian arrays)."""
    labels = np.arange(5).astype(given)
    out = backend.asarray(labels)
    assert out.dtype == np.dtype(want) and backend.to_numpy(out).tolist() == [0, 1, 2, 3, 4]


def test_a_big_endian_dtype_asked_for_gives_native_endian(backend):
    """Before: asarray(x, dtype='>f4') made a big-endian array that every layer then refused."""
    out = backend.asarray(X, dtype=np.dtype(backend.dtype).newbyteorder(">"))
    assert out.dtype == backend.dtype
    assert np.array_equal(backend.to_numpy(out), X.astype(backend.dtype))


def test_big_endian_features_are_read_as_numbers(backend):
    out = backend.to_numpy(backend.asarray(X.astype(">f8")))
    assert np.array_equal(out, X.astype(backend.dtype))


@pytest.mark.parametrize("flavour", ["fortran", "transpose", "reversed", "strided"])
def test_every_layout_arrives_c_contiguous(flavour):
    """Before: a Fortran-ordered array stayed Fortran-ordered on the CPU (kernels then run unblocked)."""
    backend = gpubp.get_backend("cpu", "float64")
    given = {"fortran": np.asfortranarray(X), "transpose": np.ascontiguousarray(X.T).T,
             "reversed": np.ascontiguousarray(X[::-1])[::-1], "strided": np.repeat(X, 2, axis=1)[:, ::2]}[flavour]
    out = backend.asarray(given)
    assert out.flags.c_contiguous and np.array_equal(out, X)


def test_an_object_array_of_numbers_is_read_as_those_numbers(backend):
    """A table's .values of mixed columns is an object array of floats: before, refused."""
    out = backend.to_numpy(backend.asarray(X.astype(object)))
    assert np.array_equal(out, X.astype(backend.dtype))
    labels = backend.asarray(np.array([0, 2, 1], dtype=object))
    assert labels.dtype.kind == "i" and backend.to_numpy(labels).tolist() == [0, 2, 1]


@pytest.mark.parametrize("entry,named", [(None, "None (a missing value?)"), ("a", "str 'a'")])
def test_an_object_array_names_what_is_not_a_number(backend, entry, named):
    with pytest.raises(DTypeError, match=re.escape(f"holding {named}")):
        backend.asarray(np.array([1.0, entry], dtype=object))


def test_a_memmap_is_an_array_of_the_backend(tmp_path):
    backend = gpubp.get_backend("cpu", "float64")
    np.save(tmp_path / "x.npy", X)
    a = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert backend.is_own(a) and backend.check_array(a) is a
    assert np.array_equal(gpubp.Sigmoid(backend=backend).forward(a), gpubp.Sigmoid(backend=backend).forward(X))


def masked(a):
    return np.ma.masked_array(a, mask=np.zeros(a.shape, bool))


@pytest.mark.parametrize("kind,named", [(masked, "MaskedArray"), (np.asmatrix, "matrix")])
def test_a_layer_refuses_masked_arrays_and_matrices(backend, kind, named):
    """Before: Sigmoid read through the mask (returning a MaskedArray), Dense called a masked
    array a shape mismatch and a matrix passed as a plain array."""
    Xb = kind(X.astype(backend.dtype))
    for layer in (gpubp.Sigmoid(backend=backend), gpubp.Dense(4, 3, seed=0, backend=backend)):
        with pytest.raises(InvalidValueError, match=f"{type(layer).__name__} input: got a NumPy {named}"):
            layer.forward(Xb)


def test_backward_refuses_a_matrix_gradient():
    """Before: NumPy's ValueError 'shapes (6,5) and (6,5) not aligned' from matrix.__mul__."""
    model = gpubp.Sequential([gpubp.Dense(4, 5), gpubp.Tanh(), gpubp.Dense(5, 3)], seed=0)
    model.forward(X.astype(np.float32))
    with pytest.raises(InvalidValueError, match="backward dY: got a NumPy matrix"):
        model.backward(np.asmatrix(np.ones((6, 3), np.float32)))


def test_a_loss_refuses_masked_labels():
    """Before: SoftmaxCrossEntropy used the label under the mask."""
    labels = np.ma.masked_array([0, 1, 2, 0, 1, 2], mask=[0, 1, 0, 0, 0, 0])
    with pytest.raises(InvalidValueError, match="SoftmaxCrossEntropy labels: got a NumPy MaskedArray"):
        gpubp.SoftmaxCrossEntropy().forward(X[:, :3].astype(np.float32), labels)


def test_a_loss_refuses_matrix_predictions():
    """Before: TypeError 'matrix.max() got an unexpected keyword argument keepdims'."""
    with pytest.raises(InvalidValueError, match="predictions: got a NumPy matrix"):
        gpubp.SoftmaxCrossEntropy().forward(np.asmatrix(X[:, :3].astype(np.float32)), np.array([0, 1, 2] * 2))


@pytest.mark.parametrize("n", [10, 100_000])  # one block, and the blocked path
def test_a_kernel_refuses_a_read_only_output(n):
    """Before: NumPy's ValueError 'output array is read-only' from inside the kernel's NumPy body."""
    backend = gpubp.get_backend("cpu", "float32")
    x, out = np.zeros(n, np.float32), np.zeros(n, np.float32)
    out.flags.writeable = False
    with pytest.raises(InvalidValueError, match="kernel sigmoid: s is read-only"):
        backend.launch(gpubp.KERNELS["sigmoid"], x, out)
    with pytest.raises(InvalidValueError, match="kernel sigmoid: s is read-only"):
        backend.bind(gpubp.KERNELS["sigmoid"], x, out)


def test_a_read_only_parameter_is_refused_before_an_optimizer_could_step_it():
    """A parameter set from a read-only array (np.load(mmap_mode='r'), a broadcast view): before,
    the update's NumPy ValueError; now a gpubp error when it is set, nothing changed."""
    model = gpubp.Sequential([gpubp.Dense(4, 3)], seed=0)
    W = np.array(model.parameters()["0.W"])
    W.flags.writeable = False
    with pytest.raises(InvalidValueError, match="parameter W: the array is read-only"):
        model.layers[0].params["W"] = W
    loss, optimizer = gpubp.MSE(), gpubp.SGD(lr=0.1)
    out = model.forward(X.astype(np.float32))
    loss.forward(out, np.zeros_like(out))
    model.backward(loss.backward())
    optimizer.step(model)
    assert optimizer.t == 1 and not np.array_equal(model.parameters()["0.W"], W)


def test_a_loss_given_the_other_byte_order_says_so_and_how_to_convert():
    """Was: 'dtype must be float32 or float64, got dtype('>f4')', which a float32 array seemed to be."""
    other = ">f4" if np.little_endian else "<f4"
    with pytest.raises(gpubp.errors.DTypeError, match=r"float32 of the other byte order .*a\.astype\('float32'\)"):
        gpubp.MSE().forward(np.ones((2, 2), other), np.ones((2, 2), np.float32))
