"""Puts tests/fake_cupy.py in place of CuPy in every Python process a test starts (the commands and
mpiexec workers of a ``GPUBP_FAKE_CUPY=1`` run): tests/conftest.py prepends this folder to PYTHONPATH."""
import os
import sys

if os.environ.get("GPUBP_FAKE_CUPY") == "1":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fake_cupy
    fake_cupy.install()
