"""``gpubp bench``: the benchmarks of scripts/bench.py."""
from ..bench import add_arguments, main as run  # noqa: F401

HELP = "benchmark kernels, an MLP step against PyTorch, and scaling (JSON + table)"
