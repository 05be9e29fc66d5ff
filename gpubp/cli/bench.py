"""``gpubp bench``: the benchmarks of scripts/bench.py, on ``--device auto`` like every command."""
from ..bench import add_arguments as _bench_arguments, main as _bench_main
from .._checks import writable_target
from . import args as flags

HELP = "benchmark kernels, MLP and LeNet steps against PyTorch, and scaling (JSON + table)"


def add_arguments(p):
    _bench_arguments(p)
    for action in p._actions:  # the one device vocabulary: auto by default, as everywhere
        if action.dest == "device":
            action.default = "auto"
            action.help = "auto (a working CUDA GPU, else the CPU; $GPUBP_DEVICE overrides auto), cpu, gpu or cuda:N"
        elif action.dest == "repeat" and not action.help:
            action.help = "timed repeats of each measurement (--quick: 1)"
        if action.dest in ("repeat", "threads"):
            action.type = flags.positive_int


def run(args) -> int:
    args.device = flags.device_spec(args)
    if args.json:  # refused now, not after minutes of measuring
        writable_target("--json", args.json)
        flags.distinct_files({"--json": args.json})
    return _bench_main(args)
