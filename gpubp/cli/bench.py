"""``gpubp bench`` (also ``python scripts/bench.py``): the benchmarks of gpubp/bench."""
from ..bench import add_arguments as _bench_arguments, main as _bench_main
from .._checks import writable_target
from . import args as flags

HELP = "benchmark kernels, MLP and LeNet steps against PyTorch, and scaling (JSON + table)"


def add_arguments(p):
    _bench_arguments(p)
    for action in p._actions:  # counts refused by argparse, in the commands' words
        if action.dest in ("repeat", "threads"):
            action.type = flags.positive_int
        elif action.dest == "json":  # not empty, not a folder
            action.type = flags.output_file


def run(args) -> int:
    args.device = flags.device_spec(args)
    if args.json:  # refused now, not after minutes of measuring
        writable_target("--json", args.json)
        flags.distinct_files({"--json": args.json})
    return _bench_main(args)
