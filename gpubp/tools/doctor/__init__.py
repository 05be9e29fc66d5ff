"""The doctor behind ``gpubp check`` and ``gpubp info``: facts about this machine
(``facts``), checks of it with a fix each (``checks``) and a numerical self-test
that needs no pytest (``selftest``)."""
from .checks import CHECKS, FAILURE, OK, WARNING, Item, exit_code, nvrtc_compile, run_checks
from .facts import cupy_distributions, devices, gpu_expected, machine, versions

__all__ = ["CHECKS", "OK", "WARNING", "FAILURE", "Item", "run_checks", "exit_code", "nvrtc_compile",
           "machine", "versions", "devices", "gpu_expected", "cupy_distributions"]
