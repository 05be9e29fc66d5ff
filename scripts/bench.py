#!/usr/bin/env python
"""Benchmarks: ``python scripts/bench.py [--device gpu] [--json out.json]``, the same command as
``gpubp bench`` (its flags, ``--device auto`` by default; see gpubp/bench)."""
import sys

from gpubp.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
