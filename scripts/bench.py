#!/usr/bin/env python
"""Benchmarks: ``python scripts/bench.py [--device gpu] [--json out.json]`` (see gpubp/bench)."""
import argparse
import sys

from gpubp.bench import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
