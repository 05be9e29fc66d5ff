"""PyTorch tensors NumPy cannot read (one that requires grad, a bfloat16 or a sparse one), given where gpubp
takes arrays from any source (predict, load_parameters, fit, gradcheck), are refused naming where, passing on
what PyTorch says is needed. Was: PyTorch's RuntimeError "Can't call numpy() on Tensor that requires grad" (or
its TypeError) raised from inside NumPy."""
import numpy as np
import pytest

import gpubp
from gpubp.errors import GpubpError
from gpubp.tools.gradcheck import gradcheck_layer

torch = pytest.importorskip("torch")

TENSORS = {
    "requires grad": (lambda: torch.ones(2, 4, requires_grad=True), r"Tensor that requires grad.*detach"),
    "bfloat16": (lambda: torch.ones(2, 4, dtype=torch.bfloat16), "BFloat16"),
    "sparse": (lambda: torch.ones(2, 4).to_sparse(), "to_dense"),
}
USES = {
    "predict": (lambda t: gpubp.Sequential([gpubp.Dense(4, 3)]).predict(t), "Sequential.predict X: "),
    "load_parameters": (lambda t: gpubp.Dense(2, 4).load_parameters({"W": t, "b": np.zeros(4)}),
                        r"Dense\(2, 4\) parameter W: "),
    "fit": (lambda t: gpubp.fit(gpubp.Sequential([gpubp.Dense(4, 3)]), t, np.ones((2, 3)), loss="mse", epochs=1,
                                progress=False), "fit: X "),
    "gradcheck_layer": (lambda t: gradcheck_layer(gpubp.Dense(4, 3), t), "gradcheck_layer: the input X: "),
    "asarray": (lambda t: gpubp.get_backend("cpu").asarray(t), ""),
}


@pytest.mark.parametrize("use", list(USES))
@pytest.mark.parametrize("tensor", list(TENSORS))
def test_a_tensor_numpy_cannot_read_is_refused_by_name(tensor, use):
    make, says = TENSORS[tensor]
    call, where = USES[use]
    with pytest.raises(GpubpError, match=f"{where}.*Tensor.*{says}"):
        call(make())


def test_a_plain_tensor_is_still_read():
    layer = gpubp.Dense(2, 4, backend="cpu/float64")
    layer.load_parameters({"W": torch.ones(2, 4), "b": torch.zeros(4)})
    np.testing.assert_array_equal(layer.params["W"], np.ones((2, 4)))
