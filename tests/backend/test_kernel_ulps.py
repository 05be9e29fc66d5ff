"""Kernel truth: every registry kernel within its ulp budget (``Kernel.ulps``) of the exact
value of its formula, in float32 and float64, on inputs from ordinary to extreme, for
(a) its NumPy path and (b) its CUDA body compiled as host C++ and run on the CPU.

The CUDA body runs on the host with g++ (``HOST_PRELUDE`` maps CUDA's math functions
to <cmath>; ``-Wdouble-promotion -Werror`` refuses a double literal in a float body).
Device math differs from glibc by at most CUDA's documented 2 ulp for expf/tanhf and by
FMA contraction; the GPU parity tests (tests/backend/test_kernels.py, ``gpu`` marker)
cover that. No body uses a device-only intrinsic (``__expf``...): one would fail to
compile here, and would then need to move to a GPU-marked test.
"""
import dataclasses

import numpy as np
import pytest

import gpubp
from gpubp.backend import KERNELS
from gpubp.backend.kernels import activations, updates

from kernel_truth import HostBuild, compiler, exact_outputs, extreme_arguments, rounded, ulp_errors, worst

DTYPES = ["float32", "float64"]


@pytest.fixture(scope="session")
def host_build(tmp_path_factory):
    if compiler() is None:
        pytest.skip("no C++ compiler (g++/c++ or $CXX) on this machine: CUDA bodies cannot run on the host")
    return HostBuild(tmp_path_factory.mktemp("host_cuda"))


def run_numpy(kernel, dtype, ins, outs):
    with np.errstate(all="ignore"):  # exp overflow below z = -88.7 is expected (see activations)
        gpubp.get_backend("cpu", dtype).launch(kernel, *ins, *outs)


def largest_error(kernel, dtype, run, seeds=(0, 1, 2)):
    """(ulps, output, where) of the worst element over every example and seed."""
    result = (0.0, "", "")
    for example in range(max(1, len(kernel.examples))):
        for seed in seeds:
            ins, outs = extreme_arguments(kernel, dtype, np.random.default_rng(seed), example)
            exact = exact_outputs(kernel, ins, outs)
            got = [o.copy() for o in outs]
            run(kernel, dtype, rounded(ins, kernel, dtype), got)
            ulps, name, i = worst(ulp_errors(kernel, dtype, got, exact, ins, outs))
            if ulps > result[0]:
                where = {n: a if np.ndim(a) == 0 else a[i] for n, a in
                         zip(kernel.input_names + kernel.output_names, [*ins, *outs])}
                result = (ulps, name, f"{where} -> {got[kernel.output_names.index(name)][i]!r}, "
                                      f"exact {exact[kernel.output_names.index(name)][i]!r}")
    return result


def assert_within_budget(kernel, dtype, run, what):
    ulps, name, where = largest_error(kernel, dtype, run)
    budget = kernel.ulp_budget(dtype)
    assert ulps <= budget, (f"{what} of {kernel.name}.{name} ({dtype}) is {ulps:.1f} ulp off the exact "
                            f"formula (budget {budget}) at {where}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_numpy_path_within_ulp_budget(name, dtype):
    assert_within_budget(KERNELS[name], dtype, run_numpy, "the NumPy path")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_cuda_body_on_the_host_within_ulp_budget(name, dtype, host_build):
    assert_within_budget(KERNELS[name], dtype, host_build.run, "the CUDA body (run on the host)")


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_cuda_body_and_numpy_path_agree_closely(name, host_build):
    """The twins are the same expression: within one budget of each other in float64."""
    kernel = KERNELS[name]
    ins, outs = extreme_arguments(kernel, "float64", np.random.default_rng(7))
    a, b = [o.copy() for o in outs], [o.copy() for o in outs]
    run_numpy(kernel, "float64", rounded(ins, kernel, "float64"), a)
    host_build.run(kernel, "float64", rounded(ins, kernel, "float64"), b)
    for out_name, x, y in zip(kernel.output_names, a, b):
        np.testing.assert_allclose(x, y, rtol=1e-14, atol=1e-300, err_msg=f"{name}.{out_name}")


def test_every_kernel_states_its_budget():
    for kernel in KERNELS.values():
        assert len(kernel.ulps) == 2 and all(0 <= u <= 4 for u in kernel.ulps), kernel.name
    for kernel in (activations.sigmoid, activations.tanh, activations.sigmoid_backward, activations.tanh_backward):
        assert kernel.ulp_budget("float32") <= 4


# A body differing from its NumPy twin must fail the host check: mutants of real kernels.
MUTANTS = {
    "wrong sign": (activations.sigmoid_backward, "delta = g * s * (1 - s)", "delta = g * s * (1 + s)"),
    "missing term": (updates.sgd_momentum, "grad + weight_decay * param", "grad"),
    "float64 literal": (activations.sigmoid_backward, "(1 - s)", "(1.0 - s)"),
    "integer division": (activations.leaky_relu, "slope * z", "(1 / 2) * z"),
    # the bug of issue 14: 1 - beta2 computed in float from a float-rounded beta2
    "1 - rounded beta": (updates.adam, "one_minus_beta2 * (g * g - v)",
                         "((T)1 - (T)(1 - (double)one_minus_beta2)) * (g * g - v)"),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_mutated_cuda_body_fails_the_host_check(mutant, host_build):
    kernel, old, new = MUTANTS[mutant]
    assert old in kernel.cuda
    broken = dataclasses.replace(kernel, name=f"{kernel.name}_mutant", cuda=kernel.cuda.replace(old, new))
    with pytest.raises(AssertionError):
        for dtype in DTYPES:
            assert_within_budget(broken, dtype, host_build.run, "the mutated CUDA body")


def test_the_old_in_kernel_one_minus_beta_fails_the_budget():
    """Adam's NumPy path as before issue 14 (1 - beta from the float32 beta) is out of budget."""
    adam = updates.adam

    def old(grad, step_size, omb1, omb2, eps, sqrt_bias2, l2, decay, param, m, v):
        beta2 = np.float32(1 - np.float64(omb2))       # what the kernel used to receive
        adam.numpy(grad, step_size, omb1, np.float32(1) - beta2, eps, sqrt_bias2, l2, decay, param, m, v)

    broken = dataclasses.replace(adam, numpy=old)
    with pytest.raises(AssertionError, match="adam.v"):
        assert_within_budget(broken, "float32", lambda k, d, i, o: k.numpy(*i, *o), "the old NumPy path")
