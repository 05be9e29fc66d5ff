"""The ``gpubp`` command. Each subcommand lives in ``gpubp/commands/<name>.py``
and provides ``HELP``, ``add_arguments(parser)`` and ``run(args) -> exit code``."""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "check", "info", "parity", "bench", "gradcheck", "vanishing")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(prog="gpubp", description="Backpropagation on NumPy or CuPy.")
    parser.add_argument("--version", action="version", version=f"gpubp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"gpubp.commands.{name}")
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from .errors import GpubpError
    try:
        return int(args.run(args) or 0)
    except GpubpError as exc:  # a user mistake or a device problem: one clear line, no traceback
        print(f"gpubp {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gpubp {args.command}: interrupted", file=sys.stderr)
        return 130
