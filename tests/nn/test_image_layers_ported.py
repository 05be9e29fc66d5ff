"""Image layers as a user porting PyTorch code meets them: PyTorch's keyword arguments (taken at
their defaults, refused otherwise, naming them), Conv2d's padding="same"/"valid" against
torch.nn.Conv2d in float64, and BatchNorm moved to a dtype that cannot hold its statistics."""
import numpy as np
import pytest

import gpubp
from gpubp.nn import AvgPool2D, BatchNorm, Conv2D, Dropout, GlobalAvgPool2D, MaxPool2D

from helpers import torch_reference

F64 = gpubp.get_backend("cpu", "float64")


def test_pytorch_keyword_arguments_at_their_defaults_are_taken():
    """Code ported from PyTorch that spells out a default (what gpubp does) builds the same layer."""
    pairs = [
        (Conv2D(3, 4, 3, dilation=1, groups=1, padding_mode="zeros", device=None, dtype=None), Conv2D(3, 4, 3)),
        (Conv2D(3, 4, 3, dilation=(1, 1)), Conv2D(3, 4, 3)),
        (MaxPool2D(2, padding=0, dilation=1, return_indices=False, ceil_mode=False), MaxPool2D(2)),
        (MaxPool2D(2, padding=(0, 0)), MaxPool2D(2)),
        (AvgPool2D(2, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None), AvgPool2D(2)),
        (AvgPool2D(2, count_include_pad=True), AvgPool2D(2)),
        (BatchNorm(3, affine=True, track_running_stats=True, device=None, dtype=None), BatchNorm(3)),
        (Dropout(0.2, inplace=False), Dropout(0.2)),
        (GlobalAvgPool2D(output_size=1), GlobalAvgPool2D()), (GlobalAvgPool2D(output_size=(1, 1)), GlobalAvgPool2D()),
    ]
    for ported, plain in pairs:
        assert ported.config() == plain.config()


@pytest.mark.parametrize("make, words", [
    (lambda: Conv2D(3, 4, 3, dilation=2), "Conv2D does not support dilation=2"),
    (lambda: Conv2D(3, 4, 3, dilation=True), "Conv2D does not support dilation=True"),
    (lambda: Conv2D(3, 4, 3, groups=3), "Conv2D does not support groups=3"),
    (lambda: Conv2D(3, 4, 3, padding_mode="reflect"), "Conv2D does not support padding_mode='reflect'.*zeros"),
    (lambda: Conv2D(3, 4, 3, device="cuda"), "Conv2D does not support device='cuda': give backend="),
    (lambda: Conv2D(3, 4, 3, dtype="float64"), "Conv2D does not support dtype='float64': give backend="),
    (lambda: Conv2D(3, 4, 3, bais=False), "Conv2D got an unexpected keyword argument 'bais'"),
    (lambda: MaxPool2D(2, ceil_mode="yes"), "MaxPool2D ceil_mode must be True or False, got 'yes'"),
    (lambda: MaxPool2D(3, padding=2), "MaxPool2D padding must be at most half the kernel size .PyTorch's rule."),
    (lambda: MaxPool2D(2, return_indices=True), "MaxPool2D does not support return_indices=True"),
    (lambda: MaxPool2D(2, dilation=2), "MaxPool2D does not support dilation=2"),
    (lambda: AvgPool2D(2, ceil_mode=1), "AvgPool2D ceil_mode must be True or False, got 1"),
    (lambda: AvgPool2D(2, divisor_override=0), "AvgPool2D divisor_override must be a whole number >= 1, got 0"),
    (lambda: AvgPool2D(2, dilation=1), "AvgPool2D got an unexpected keyword argument 'dilation'"),
    (lambda: BatchNorm(3, device="cuda"), "BatchNorm does not support device='cuda': give backend="),
    (lambda: BatchNorm(3, affine="no"), "BatchNorm affine must be True or False, got 'no'"),
    (lambda: Dropout(0.5, inplace=True), "Dropout does not support inplace=True"),
    (lambda: GlobalAvgPool2D(output_size=2), "GlobalAvgPool2D does not support output_size=2: it averages each"),
    (lambda: Dropout(0.5, True), "Dropout seed must be a whole number >= 0, got True .PyTorch's Dropout takes inplace"),
])
def test_pytorch_arguments_gpubp_does_not_implement_are_refused_naming_them(make, words):
    """Each used to be Python's bare TypeError (unexpected keyword argument), or a message that
    did not say what PyTorch's argument means (momentum=None, Dropout(p, inplace))."""
    with pytest.raises(gpubp.InvalidValueError, match=words):
        make()


@pytest.mark.parametrize("padding, kernel, hw", [("same", (3, 5), (6, 7)), ("same", 1, (2, 3)),
                                                  ("valid", (2, 3), (5, 4))])
def test_conv_padding_same_and_valid_match_torch(padding, kernel, hw):
    torch = pytest.importorskip("torch")
    layer = Conv2D(3, 4, kernel, padding=padding, backend=F64)
    layer.params["b"][...] = [0.1, -0.2, 0.3, 0.4]
    tconv = torch.nn.Conv2d(3, 4, kernel, padding=padding).double()
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(layer.params["W"]))
        tconv.bias.copy_(torch.from_numpy(layer.params["b"]))
    X = np.random.default_rng(1).normal(size=(2, 3, *hw))
    Y, dX, dY = torch_reference(tconv, X, seed=2)
    np.testing.assert_allclose(layer(X), Y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dY), dX, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tconv.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    again = gpubp.nn.layer_from_config(layer.config(), backend=F64)
    assert again.padding == layer.padding


@pytest.mark.parametrize("kwargs, words", [
    (dict(kernel_size=3, stride=2, padding="same"), "padding='same' needs stride 1 .as in PyTorch., got stride .2, 2."),
    (dict(kernel_size=(3, 2), padding="same"), "even kernel size .3, 2. pads one side more"),
    (dict(kernel_size=3, padding="full"), "Conv2D padding must be an int, a pair of ints, 'valid' or 'same', got 'full'"),
])
def test_conv_padding_words_it_cannot_do_are_refused(kwargs, words):
    with pytest.raises(gpubp.InvalidValueError, match=words):
        Conv2D(3, 4, **kwargs)


def test_batchnorm_moved_to_a_dtype_that_cannot_hold_its_statistics_stays_where_it_was():
    """float64 running statistics past float32's range: the move is refused naming the buffer, and
    the layer keeps its backend, parameters and statistics (it had moved the parameters to float32
    and kept float64 statistics, then refused its float64 inputs)."""
    layer = BatchNorm(3, backend=F64)
    layer.params["gamma"][...] = [1.0, 2.0, 1.0 + 1e-12]  # a value float32 would round
    layer.load_buffers({"running_mean": np.zeros(3), "running_var": np.array([1e39, 1.0, 4.0])})
    with pytest.raises(gpubp.NumericalError, match=r"BatchNorm\(3.*\) buffer running_var: holds values up to 1e\+39"):
        layer.to("cpu/float32")
    assert layer.backend.dtype == np.float64 and layer.params["gamma"].dtype == np.float64
    np.testing.assert_array_equal(layer.params["gamma"], [1.0, 2.0, 1.0 + 1e-12])
    np.testing.assert_array_equal(layer.buffers["running_var"], [1e39, 1.0, 4.0])
    layer.training = False
    assert layer(np.ones((2, 3))).dtype == np.float64
    layer.load_buffers({"running_mean": np.zeros(3), "running_var": np.array([9.0, 1.0, 4.0])})
    layer.to("cpu/float32")  # statistics it can hold: moved and re-typed
    assert layer.buffers["running_var"].dtype == np.float32 and layer.params["gamma"].dtype == np.float32
    np.testing.assert_array_equal(layer.buffers["running_var"], [9.0, 1.0, 4.0])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_weight_gradient_lands_in_a_gradient_array_of_any_memory_order(stride):
    """grads["W"] replaced by an array of its shape and dtype that is not C-ordered (a Fortran-
    ordered array, a strided view of a flat buffer): the first backward after zero_grad wrote
    dW into a reshaped copy of it, so the gradient stayed zero; a second backward adds to it."""
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(3).normal(size=(2, 2, 6, 5))
    for given in (np.zeros((2, 3, 2, 3)).T, np.zeros(2 * 36)[::2].reshape(3, 2, 3, 2)):
        layer = Conv2D(2, 3, (3, 2), stride=stride, backend=F64)
        tconv = torch.nn.Conv2d(2, 3, (3, 2), stride=stride).double()
        with torch.no_grad():
            tconv.weight.copy_(torch.from_numpy(layer.params["W"]))
        layer.grads["W"] = given
        Y, _, dY = torch_reference(tconv, X, seed=4)
        layer.zero_grad()
        for times in (1, 2):  # the sum of two backward calls, as PyTorch accumulates
            layer(X)
            layer.backward(dY)
            assert layer.grads["W"] is given
            np.testing.assert_allclose(given, times * tconv.weight.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("step, words", [(-1, "Dropout step must be a whole number >= 0, got -1"),
                                         (2**63, "Dropout step must be .* < 2\\*\\*63"), (1.5, "Dropout step")])
def test_a_dropout_state_refused_leaves_seed_and_step_as_they_were(step, words):
    """``layer.state = {"seed": s, "step": bad}`` set the seed, then refused the step: the mask
    sequence was silently another one's (seed 5's from step 4)."""
    layer = Dropout(0.5, seed=3)
    layer.step = 4
    with pytest.raises(gpubp.InvalidValueError, match=words):
        layer.state = {"seed": 5, "step": step}
    assert layer.state == {"seed": 3, "step": 4}
