"""scripts/gpu_record.py points CuPy at a kernel cache it can write before CuPy is imported.

CuPy 14.1+ reads CUPY_CACHE_DIR once, at import: cupy/cuda/compiler.py (line 42 at v14.2.0) builds
``_kernel_cache_backend = DiskKernelCacheBackend()``, whose ``__init__`` (cupy/cuda/_compiler_cache.py,
lines 84-95) takes the folder from the environment and makes it then; CuPy 14.0 still read it per
compile (``get_cache_dir``). The record set the variable after ``import gpubp`` had imported CuPy, so
its own process (gpu_status's self-test, the parity phase) kept the unwritable folder: a PermissionError
at the first kernel, "no usable GPU", and a record of nothing; a folder CuPy could not make failed
``import cupy`` itself."""
import subprocess
import sys
import tempfile

from helpers import ROOT

PROBE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("gpu_record", sys.argv[1])
record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record)  # what runs before main(): the folder chosen, gpubp (and CuPy) imported
from gpubp import _compat
where = ""
if _compat.has_cupy:
    backend = getattr(getattr(_compat.cupy.cuda, "compiler", None), "_kernel_cache_backend", None)
    where = getattr(backend, "_cache_dir", "")  # CuPy 14.1+'s folder, fixed at its import
print(record.KERNEL_CACHE)
print(_compat.has_cupy, _compat.cupy_import_error)
print(where)
"""


def test_an_unusable_kernel_cache_is_replaced_before_cupy_reads_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a file where the cache's parent folder should be: nothing can make it
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CUPY_CACHE_DIR": str(blocker / "cache"),
           "PYTHONPATH": str(ROOT), "TMPDIR": tempfile.gettempdir()}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "scripts" / "gpu_record.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    chosen, imported, where = proc.stdout.splitlines()[-3:]
    fallback = str(tempfile.gettempdir()) + "/gpubp-cupy-kernel-cache"
    assert chosen == fallback
    assert "cache" not in imported.split(" ", 1)[-1].lower(), imported  # CuPy did not fail on the folder
    assert where in ("", fallback), where  # CuPy 14.1+ took the folder gpu_record chose


def test_a_writable_kernel_cache_is_kept(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CUPY_CACHE_DIR": str(tmp_path / "mine" / "cache"),
           "PYTHONPATH": str(ROOT), "TMPDIR": tempfile.gettempdir()}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "scripts" / "gpu_record.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-3] == str(tmp_path / "mine" / "cache")
