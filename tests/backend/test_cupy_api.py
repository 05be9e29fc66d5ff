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


def test_every_cupy_and_xp_name_gpubp_uses_exists():
    missing = []
    for path in SOURCES:
        for root, parts in chains(path):
            if not parts:
                continue
            if root == "xp" and not (hasattr(cupy, parts[0]) and (hasattr(np, parts[0]) or
                                                                  parts[0] == "get_default_memory_pool")):
                missing.append(f"{path.relative_to(ROOT)}: xp.{parts[0]}")
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
    assert [p.name for p in built.params[:built.nin + built.nout]] == kernel.input_names + kernel.output_names


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


def test_the_tf32_switch_is_found_in_this_cupy():
    """tools/parity/tolerance.py reads CuPy's compute-type switch (CuPy's only one)."""
    from gpubp.tools.parity.tolerance import _linalg
    linalg = _linalg()
    assert linalg is not None, "cupy._core._routines_linalg lost get/set_compute_type: TF32 control is gone"
    assert callable(linalg.compute_type_to_str)
