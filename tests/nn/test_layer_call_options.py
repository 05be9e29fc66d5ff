"""``layer(X, out=buffer)`` is ``layer.forward(X, out=buffer)``, as PyTorch's ``module(x, ...)`` passes its
arguments on. Was: TypeError "Layer.__call__() got an unexpected keyword argument 'out'"."""
import numpy as np

import gpubp


def test_a_layer_called_with_an_out_buffer_writes_its_output_there():
    layer = gpubp.Dense(4, 2, seed=0)
    X, out = np.ones((3, 4), np.float32), np.empty((3, 2), np.float32)
    Y = layer(X, out=out)
    assert Y is out
    np.testing.assert_array_equal(out, gpubp.Dense(4, 2, seed=0).forward(X))


def test_a_layer_called_with_a_buffer_of_another_shape_is_refused_by_forward():
    layer = gpubp.Sigmoid()
    try:
        layer(np.ones((3, 4), np.float32), out=np.empty((3, 2), np.float32))
    except gpubp.GpubpError as exc:
        assert "Sigmoid.forward out" in str(exc)
    else:
        raise AssertionError("a buffer of another shape was taken")
