"""The CuPy API gpubp calls exists, with the signatures used, in the installed CuPy.

No GPU needed: a misspelt CuPy name or a keyword CuPy does not take fails CPU CI
instead of the first GPU run. Checked: every ``cupy.<...>`` name and every ``xp.<name>``
in gpubp (``xp`` is NumPy or CuPy, so both must have it), the calls of the CuPy-only
paths (``cupy_backend.py``, ``_compat.py``, ``bench/mlp.py`` cuda_graph,
``bench/scaling.py``, ``tools/parity/tolerance.py``) bound to the real signatures,
and an ``ElementwiseKernel`` built for every registry kernel.
"""
import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from gpubp._compat import cupy, cupy_import_error, has_cupy
from gpubp.backend import KERNELS
from gpubp.backend.kernels import cuda_source

from helpers import ROOT

pytestmark = pytest.mark.skipif(not has_cupy, reason=f"CuPy is not installed ({cupy_import_error})")
SOURCES = sorted((ROOT / "gpubp").rglob("*.py"))


def signature(obj) -> inspect.Signature:
    """``inspect.signature``, or the one a Cython function states on its docstring's first line."""
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        first = (obj.__doc__ or "").strip().splitlines()[0]
        namespace = {}
        exec(f"def f({first[first.index('(') + 1:first.rindex(')')]}): pass", namespace)
        return inspect.signature(namespace["f"])


def binds(obj, *args, method=False, **kwargs):
    sig = signature(obj)
    if method and "self" in sig.parameters:
        args = (None, *args)
    sig.bind(*args, **kwargs)  # TypeError when CuPy does not take these arguments


def chains(path: Path):
    """Dotted names ``cupy.a.b`` and ``xp.name`` / ``<obj>.xp.name`` used in one module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or isinstance(getattr(node, "parent", None), ast.Attribute):
            continue
        parts, v = [node.attr], node.value
        while isinstance(v, ast.Attribute):
            parts.insert(0, v.attr)
            v = v.value
        if isinstance(v, ast.Name) and v.id == "cupy":
            yield "cupy", parts
        elif isinstance(v, ast.Name) and v.id == "xp" or "xp" in parts[:-1]:
            yield "xp", parts[parts.index("xp") + 1:] if "xp" in parts[:-1] else parts


def resolves(module, parts) -> bool:
    """Whether ``module.<parts[0]>.<parts[1]>...`` exists (each submodule imported as it is reached)."""
    import importlib
    obj = module
    for part in parts:
        if not hasattr(obj, part) and inspect.ismodule(obj):
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except ImportError:
                pass
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def test_every_cupy_and_xp_name_gpubp_uses_exists():
    missing = []
    for path in SOURCES:
        for root, parts in chains(path):
            if not parts:
                continue
            if root == "xp" and not (resolves(cupy, parts) and (resolves(np, parts) or
                                                                parts[0] == "get_default_memory_pool")):
                missing.append(f"{path.relative_to(ROOT)}: xp.{'.'.join(parts)}")  # xp.lib.stride_tricks... too
            if root == "cupy":
                obj = cupy
                for i, part in enumerate(parts):
                    if inspect.ismodule(obj) or inspect.isclass(obj):
                        if not hasattr(obj, part):
                            missing.append(f"{path.relative_to(ROOT)}: cupy.{'.'.join(parts[:i + 1])}")
                            break
                        obj = getattr(obj, part)
    assert not missing, "names the installed CuPy lacks:\n" + "\n".join(missing)


def test_the_scan_finds_the_cupy_only_calls():
    found = {".".join(p) for path in SOURCES for root, p in chains(path) if root == "cupy"}
    assert {"cuda.Stream", "cuda.Device", "cuda.memory.OutOfMemoryError", "ElementwiseKernel", "asnumpy",
            "cuda.runtime.getDeviceCount"} <= found


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_an_elementwise_kernel_is_built_for_every_registry_kernel(name, monkeypatch):
    from gpubp.backend import cupy_backend
    monkeypatch.setattr(cupy_backend, "_compiled", {})
    kernel = KERNELS[name]
    built = cupy_backend.elementwise_kernel(kernel)  # parses the parameters; compiling waits for a GPU
    assert isinstance(built, cupy.ElementwiseKernel)
    assert (built.nin, built.nout, built.name) == (len(kernel.input_names), len(kernel.output_names),
                                                   kernel.cuda_name)
    arrays = [n not in kernel.scalars for n in kernel.input_names + kernel.output_names]  # raw arrays named x_
    params = built.params[:built.nin + built.nout]
    assert [p.name for p in params] == [n + "_" * a for n, a in zip(kernel.input_names + kernel.output_names, arrays)]
    assert [p.raw for p in params] == arrays


def test_signatures_of_the_calls_gpubp_makes():
    binds(cupy.ElementwiseKernel, "T x", "T y", "y = x", "gpubp_copy")           # cupy_backend
    binds(cupy.asnumpy, cupy.ndarray)                                          # _compat.to_host
    binds(cupy.asarray, np.zeros(2))
    binds(cupy.cuda.runtime.getDeviceCount)                                    # _compat.gpu_status
    binds(cupy.cuda.Device, 0)
    binds(cupy.cuda.Device.synchronize, method=True)                           # backend.synchronize
    assert hasattr(cupy.cuda.Device, "__enter__") and hasattr(cupy.cuda.Device, "__exit__")
    assert issubclass(cupy.cuda.memory.OutOfMemoryError, MemoryError)          # backend.activate
    binds(cupy.cuda.Stream, non_blocking=True)                                 # bench/mlp.py cuda_graph
    for method in ("begin_capture", "end_capture", "synchronize"):
        binds(getattr(cupy.cuda.Stream, method), method=True)
    assert hasattr(cupy.cuda.Stream, "__enter__") and hasattr(cupy.cuda.Stream, "__exit__")
    binds(cupy.cuda.graph.Graph.launch, None, method=True)                     # graph.launch(stream)
    binds(cupy.get_default_memory_pool)                                        # bench/scaling.py, docs
    pool = cupy.get_default_memory_pool()  # no GPU needed to get the pool object
    binds(type(pool).free_all_blocks, method=True)
    binds(type(pool).total_bytes, method=True)


def test_signatures_of_the_calls_the_shared_layer_code_makes_on_cupy_arrays():
    """Calls in layers, losses, the step plan and the graph that run on CuPy arrays, with the keywords
    they pass (a keyword NumPy takes and CuPy does not is a TypeError on the first GPU only)."""
    nd = cupy.ndarray
    binds(nd.set, np.zeros(2), method=True)                                    # CupyBackend.write
    binds(nd.take, None, axis=0, out=None, method=True)
    binds(cupy.take, None, None, axis=0, out=None)                             # StepPlan.gather (no mode=)
    with pytest.raises(TypeError):
        binds(cupy.take, None, None, axis=0, out=None, mode="clip")            # why gather passes none on CuPy
    binds(cupy.copyto, None, None, where=None)                                 # BatchNorm running statistics
    binds(nd.mean, axis=(0,), dtype=np.float64, method=True)                   # BatchNorm statistics
    binds(nd.var, axis=(0,), dtype=np.float64, method=True)
    binds(nd.sum, axis=1, keepdims=True, out=None, method=True)                # losses
    binds(nd.sum, out=None, method=True)                                       # Loss._mean
    binds(nd.max, axis=1, keepdims=True, out=None, method=True)
    binds(nd.astype, np.float32, copy=True, method=True)                       # CupyBackend._to_device
    binds(nd.fill, 0, method=True)                                             # Layer.grads
    binds(nd.copy, method=True)
    binds(cupy.cuda.Stream.record, method=True)                                # GraphedStep
    binds(cupy.cuda.Stream.wait_event, None, method=True)
    binds(cupy.RawKernel.__call__, (1, 1, 1), (256,), (), method=True)        # kernels/gemm.py
    binds(cupy.cuda.MemoryHook.malloc_preprocess, device_id=0, size=8, mem_size=512, method=True)


def test_the_tf32_switch_is_found_in_this_cupy():
    """tools/parity/tolerance.py reads CuPy's compute-type switch (CuPy's only one)."""
    from gpubp.tools.parity.tolerance import _linalg
    linalg = _linalg()
    assert linalg is not None, "cupy._core._routines_linalg lost get/set_compute_type: TF32 control is gone"
    assert callable(linalg.compute_type_to_str)


# -- the CUDA text CuPy itself compiles ---------------------------------------------------------
# test_nvrtc.py compiles each body inside a stand-in kernel; CuPy's ElementwiseKernel wraps it in
# its own: CuPy's headers prepended (complex.cuh, carray.cuh...), inputs bound as `const T &x =
# _raw_x[_ind.get()]` inside its CUPY_FOR(i, ...) loop, scalars as kernel parameters or, as an
# optimizer binds them, 0-d arrays; compiled with CuPy's options (--std=c++17, its CCCL headers,
# the CUDA headers, -ftz=true). Here that very text is generated by CuPy's own code generator and
# compiled with NVRTC, so a body that clashes with CuPy's names or headers fails on a CPU machine.
# CuPy's generator is internal: if it moves, these tests skip and say so.
ARG_KIND_NDARRAY, ARG_KIND_INDEXER, ARG_KIND_SCALAR = 1, 2, 3  # cupy/_core/_kernel.pxd (CuPy 13, 14)


def cupy_elementwise_source(built, dtype, scalars, scalar_mode):
    """CuPy's source for ElementwiseKernel ``built`` on 1-d contiguous ``dtype`` arrays; the
    inputs named in ``scalars`` passed as NumPy scalars ("numbers") or as 0-d arrays ("arrays",
    raw parameters ``name_``)."""
    try:
        from cupy._core import _carray, _kernel, _scalar, core
        infos = [_kernel._ArgInfo(ARG_KIND_SCALAR, _scalar.CScalar, np.dtype(dtype), 0, True, True)
                 if p.name in scalars and scalar_mode == "numbers" else
                 _kernel._ArgInfo(ARG_KIND_NDARRAY, cupy.ndarray, np.dtype(dtype), 0 if p.name[:-1] in scalars else 1, True, True)
                 for p in built.params[:built.nin + built.nout]]
        infos.append(_kernel._ArgInfo(ARG_KIND_INDEXER, _carray.Indexer, None, 1, True, True))
        body = _kernel._get_elementwise_kernel_code(tuple(infos), _kernel._TypeMap((("T", np.dtype(dtype).type),)),
                                                    built.params, built.operation, built.name, built.preamble)
        headers = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)  # compile_with_cache prepends them
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        pytest.skip(f"CuPy's elementwise code generator moved ({type(exc).__name__}: {exc}); nothing to compile")
    return headers + body


def cupy_compile_log(source, arch=90) -> str:
    """NVRTC's log for ``source`` compiled with the options CuPy uses for every kernel ("" when it compiles)."""
    from test_nvrtc import require_nvrtc
    require_nvrtc()
    from cupy._core import core
    from cupy.cuda import nvrtc
    try:
        options = core.assemble_cupy_compiler_options(()) + ("-ftz=true", f"--gpu-architecture=compute_{arch}")
    except RuntimeError as exc:  # no CUDA headers: on a GPU machine every CuPy kernel would fail the same way
        pytest.skip(f"CuPy finds no CUDA headers to compile with ({exc})")
    prog = nvrtc.createProgram(source, "gpubp_cupy_kernel.cu", [], [])
    try:
        nvrtc.compileProgram(prog, list(options))
        return ""
    except nvrtc.NVRTCError:
        return nvrtc.getProgramLog(prog).strip() or "failed"
    finally:
        nvrtc.destroyProgram(prog)


def built_kernel(kernel, monkeypatch, array_scalars=()):
    from gpubp.backend import cupy_backend
    monkeypatch.setattr(cupy_backend, "_compiled", {})  # the kernel as CupyBackend builds it, not a cached one
    return cupy_backend.elementwise_kernel(kernel, array_scalars)


@pytest.mark.parametrize("name, dtype, scalar_mode", [
    (name, dtype, mode) for name in sorted(KERNELS) for dtype in ("float32", "float64")
    for mode in (("numbers", "arrays") if KERNELS[name].scalars else ("numbers",))])
def test_the_code_cupy_generates_for_every_registry_kernel_compiles(name, dtype, scalar_mode, monkeypatch):
    kernel = KERNELS[name]
    built = built_kernel(kernel, monkeypatch, tuple(kernel.scalars) if scalar_mode == "arrays" else ())
    source = cupy_elementwise_source(built, dtype, kernel.scalars, scalar_mode)
    log = cupy_compile_log(source)
    assert not log, f"NVRTC refuses the code CuPy generates for {name}:\n{log}\n--- source ---\n{source}"


def test_a_body_clashing_with_cupys_own_names_fails_that_check(monkeypatch):
    """`_ind` is CuPy's indexer, a parameter of every kernel it generates: a stand-in kernel compiles
    a hyperparameter of that name, CuPy's does not."""
    from gpubp.backend.kernels import Kernel
    from test_nvrtc import compile_ok
    clash = Kernel("clash_test", "T x, T _ind", "T y", "y = x + _ind", None, None, scalars=("_ind",))
    compile_ok(cuda_source(clash, "float"), "90")
    assert cupy_compile_log(cupy_elementwise_source(built_kernel(clash, monkeypatch), "float32", (), "numbers"))


def test_the_gemm_kernel_compiles_with_cupys_options():
    """RawKernel compiles gemm.SOURCE with CuPy's options (no headers prepended)."""
    from gpubp.backend.kernels import gemm
    log = cupy_compile_log(gemm.SOURCE)
    assert not log, log
