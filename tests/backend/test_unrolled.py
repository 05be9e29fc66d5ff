"""The four-elements-per-thread form of every registry kernel (backend/kernels/unrolled.py), the
text CuPy compiles on a GPU, computes what the plain body computes, bit for bit: compiled as host
C++ with CuPy's raw arrays and indexer stood in for by two small structs and the launch by a loop
over its threads, on sizes that are and are not multiples of four, against the body run element by
element (kernel_truth.HostBuild). NVRTC compiles the same text in test_cupy_api.py."""
import ctypes
import subprocess

import numpy as np
import pytest

from gpubp.backend import KERNELS
from gpubp.backend.kernels import HOST_PRELUDE, Kernel, sample_arguments
from gpubp.backend.kernels.unrolled import PER_THREAD, threads, unrolled

from kernel_truth import CTYPES, FLAGS, HostBuild, compiler

STANDINS = """#include <cstddef>
template <typename T> struct Raw {  // CuPy's CArray of a contiguous array, as a raw parameter
    T* p; std::ptrdiff_t n;
    std::ptrdiff_t size() const { return n; }
    T& operator[](std::ptrdiff_t j) const { return p[j]; }
};
struct Indexer { std::ptrdiff_t n; std::ptrdiff_t size() const { return n; } };  // CuPy's _ind
"""


def host_unrolled(kernel, ctype) -> str:
    """``unrolled(kernel)`` as host function ``unrolled_<ctype>(arrays..., n)``: the kernel's threads in a loop."""
    ins, outs, operation = unrolled(kernel)
    arrays = [n for n in kernel.input_names + kernel.output_names if n not in kernel.scalars]
    params = [f"{kernel.ctype(n, ctype)} {n}" if n in kernel.scalars else f"{ctype}* {n}_p" for n in kernel.input_names]
    params += [f"{ctype}* {n}_p" for n in kernel.output_names]
    return "\n".join([
        f'extern "C" void unrolled_{ctype}({", ".join(params)}, const std::ptrdiff_t n) {{',
        f"    typedef {ctype} T;",
        *(f"    const Raw<T> {n}_{{{n}_p, n}};" for n in arrays),
        "    const Indexer _ind{(n + %d - 1) / %d};" % (PER_THREAD, PER_THREAD),
        "    for (std::ptrdiff_t i = 0; i < _ind.size(); ++i) {",
        *("        " + line for line in operation.splitlines()),
        "    }",
        "}",
    ])


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if compiler() is None:
        pytest.skip("no C++ compiler (g++/c++ or $CXX) on this machine: CUDA text cannot run on the host")
    return tmp_path_factory.mktemp("unrolled")


def unrolled_library(kernel, workdir):
    source = HOST_PRELUDE + STANDINS + "\n".join(host_unrolled(kernel, ct) for ct in ("float", "double")) + "\n"
    cpp = workdir / f"{kernel.name}_unrolled.cpp"
    cpp.write_text(source)
    done = subprocess.run([compiler(), *FLAGS, "-Wno-maybe-uninitialized", str(cpp), "-o", str(cpp.with_suffix(".so"))],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"unrolled {kernel.name} does not compile as host C++:\n{done.stderr}\n{source}"
    return ctypes.CDLL(str(cpp.with_suffix(".so")))


def run_unrolled(library, kernel, dtype, ins, outs):
    ctype = "float" if np.dtype(dtype) == np.float32 else "double"
    scalar = ctypes.c_float if ctype == "float" else ctypes.c_double
    fn = getattr(library, f"unrolled_{ctype}")
    typed = {n: CTYPES.get(kernel.types[n], scalar) for n in kernel.scalars}
    fn.argtypes = [typed[n] if n in kernel.scalars else ctypes.c_void_p for n in kernel.input_names]
    fn.argtypes += [ctypes.c_void_p] * len(outs) + [ctypes.c_ssize_t]
    fn.restype = None
    args = [typed[n](a.item()) if n in kernel.scalars else a.ctypes.data for n, a in zip(kernel.input_names, ins)]
    fn(*args, *[o.ctypes.data for o in outs], len(outs[0]))


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_four_elements_per_thread_compute_what_one_does(name, dtype, host):
    kernel = KERNELS[name]
    library, plain = unrolled_library(kernel, host), HostBuild(host)
    for n in (1, 3, 4, 5, 8, 37, 1001):
        ins, outs = sample_arguments(kernel, dtype, np.random.default_rng(n), n)
        mine, theirs = [o.copy() for o in outs], [o.copy() for o in outs]
        run_unrolled(library, kernel, dtype, ins, mine)
        plain.run(kernel, dtype, ins, theirs)
        for out, a, b in zip(kernel.output_names, mine, theirs):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}.{out} ({dtype}, n={n})")


def test_an_output_read_in_place_is_loaded_and_one_only_written_is_not():
    sgd, sigmoid = KERNELS["sgd"], KERNELS["sigmoid"]
    assert "param_4[_k] = param_[_j]" in unrolled(sgd)[2]  # param -= ...: its old value read
    assert "s_4" not in unrolled(sigmoid)[2]  # s = ...: nothing read, a store only
    momentum = Kernel("reads_test", "T g", "T buf", "buf = (T)0.9 * buf + g", None, None)
    assert momentum.reads("buf") and not sigmoid.reads("s")


def test_threads_cover_every_element_once():
    for n in range(0, 50):
        m = threads(n)
        covered = sorted(i + k * m for i in range(m) for k in range(PER_THREAD) if i + k * m < n)
        assert covered == list(range(n))
