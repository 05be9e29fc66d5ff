"""The ``gpubp`` command. Each subcommand lives in ``gpubp/cli/<name>.py`` and
provides ``HELP``, ``add_arguments(parser)`` and ``run(args) -> exit code``; the
flags they share are defined once, in ``gpubp/cli/args.py``."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings

from .._version import __version__
from ..checkpoint.atomic import describe
from ..errors import GpubpError, GpubpWarning
from . import bench, check, evaluate, gradcheck, info, parity, predict, train, vanishing
from .args import HelpFormatter

COMMANDS = {"train": train, "predict": predict, "evaluate": evaluate, "check": check, "info": info,
            "parity": parity, "bench": bench, "gradcheck": gradcheck, "vanishing": vanishing}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpubp", description="Backpropagation on NumPy or CuPy.")
    parser.add_argument("--version", action="version", version=f"gpubp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=HelpFormatter)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    terminated = []
    try:
        with warnings.catch_warnings(), _term_as_ctrl_c(terminated):  # gpubp's warnings in one line, as its errors
            warnings.showwarning = _one_line(args.command)
            code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return 128 + signal.SIGTERM if terminated and code == 130 else code
    except GpubpError as exc:  # a user mistake or a device problem: one clear line, no traceback
        print(f"gpubp {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError as exc:  # NumPy's, for a model or data this machine cannot hold
        print(f"gpubp {args.command}: error: out of memory ({exc}); ask for a smaller model, batch or data",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gpubp {args.command}: {'terminated (SIGTERM)' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    except BrokenPipeError:  # `gpubp check | head -2`: the reader left; stop quietly
        _silence_stdout()
        return 1
    except OSError as exc:  # a full disk, a file the system refuses: its reason, and the path when there is one
        print(f"gpubp {args.command}: error: {describe(exc)}", file=sys.stderr)
        _silence_stdout()  # stdout may be what failed: the flush at exit must not fail again
        return 1


@contextlib.contextmanager
def _term_as_ctrl_c(terminated):
    """SIGTERM (``docker stop``, ``kill``, a batch scheduler's notice) is taken as Ctrl-C while the
    command runs: training stops at the end of its step and keeps what it made (``--save``), where
    the default action ended the process at once, and a process 1 in a container (as
    ``docker run IMAGE gpubp train``) ignored it until killed. ``terminated`` gets an entry, so the
    exit status says SIGTERM (143). Left alone where SIGTERM already has a handler."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def on_term(signum, frame):
        terminated.append(signum)
        handler = signal.getsignal(signal.SIGINT)  # fit's, which stops at the step's end, or Python's
        if not callable(handler):  # SIGINT ignored (a background job): stop here
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    try:
        signal.signal(signal.SIGTERM, on_term)
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _one_line(command):
    previous = warnings.showwarning

    def show(message, category, *rest, **kwargs):
        if issubclass(category, GpubpWarning):
            print(f"gpubp {command}: warning: {message}", file=sys.stderr)
        else:
            previous(message, category, *rest, **kwargs)
    return show


def _silence_stdout():
    """Point stdout at /dev/null so the final flush at exit cannot fail again (Python docs, SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass
