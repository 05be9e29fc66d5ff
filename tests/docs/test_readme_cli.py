"""The `gpubp` command lines the docs show are ones the command takes: every flag in a row of the
README's command table is an option of that row's subcommand, and every `gpubp <subcommand> ...`
the README or docker/README.md writes (inline or in a bash block) parses as written, values and
choices included, with its placeholders (N, PATH, MODEL, ...) filled in."""
import argparse
import contextlib
import io
import re
import shlex

import pytest

from gpubp.cli import COMMANDS, build_parser
from helpers import ROOT

DOCS = {name: (ROOT / name).read_text() for name in ("README.md", "docker/README.md")}
PLACEHOLDERS = {"N": "2", "[PATH]": "x.npz", "PATH": "x.npz", "COLUMN": "y", "MODEL": "m.npz", "DATA": "d.csv", "A": "cpu", "B": "gpu"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def subparsers():
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def options(command):
    return {s for a in subparsers()[command]._actions for s in a.option_strings}


def table_rows():
    """(subcommand, row text) of each row of the README's command table."""
    table = re.search(r"## The command\n(.*?)\n\n", DOCS["README.md"], re.S)[1]
    return re.findall(r"^\| `gpubp (\w+)[^`]*` \|(.*)\|$", table, re.M)


def command_lines(text):
    """Each `gpubp <subcommand> ...` of a doc: in inline code, and in bash blocks (comments cut)."""
    bash = re.findall(r"```bash\n(.*?)```", text, re.S)
    prose = " ".join(re.sub(r"```.*?```", " ", text, flags=re.S).split())
    lines = [line.split("  #")[0] for block in bash for line in block.replace("\\\n", " ").splitlines()]
    spans = re.findall(r"`([^`]+)`", prose)
    found = re.compile(r"\bgpubp ((?:%s)\b[^`#&|]*)" % "|".join(COMMANDS))
    return [m.strip() for chunk in lines + spans for m in found.findall(chunk)]


def test_the_table_has_a_row_for_every_subcommand():
    assert sorted(name for name, _ in table_rows()) == sorted(COMMANDS)


def unknown_flags(command, row):
    return sorted(set(FLAG.findall(row)) - options(command))


@pytest.mark.parametrize("command,row", table_rows(), ids=[name for name, _ in table_rows()])
def test_every_flag_in_a_table_row_is_an_option_of_its_subcommand(command, row):
    assert not unknown_flags(command, row), f"gpubp {command} has no {unknown_flags(command, row)}"


def parse_failures(lines):
    """Each line that the `gpubp` parser refuses, with argparse's reason."""
    failed = []
    for line in lines:
        argv = [PLACEHOLDERS.get(token, token) for token in shlex.split(line)]
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                build_parser().parse_args(argv)
        except SystemExit:
            failed.append(f"gpubp {line}: {err.getvalue().strip().splitlines()[-1]}")
    return failed


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_line_in_the_docs_parses_as_written(doc):
    lines = command_lines(DOCS[doc])
    assert len(lines) >= 5
    assert not parse_failures(lines), "\n".join(parse_failures(lines))


def test_a_wrong_flag_or_value_is_caught():
    """The checks above fail where they should: an unknown flag in a row, a bad choice or flag in a line."""
    assert unknown_flags("train", "`--epochs 3 --no-such-flag`, `gpubp info --json`") == ["--json", "--no-such-flag"]
    text = "Run `gpubp train --activation softplus` or\n```bash\ngpubp predict m.npz d.csv --outt p.csv\n```\n"
    lines = command_lines(text)
    assert sorted(lines) == ["predict m.npz d.csv --outt p.csv", "train --activation softplus"]
    failed = parse_failures(lines)
    assert len(failed) == 2 and "softplus" in " ".join(failed) and "--outt" in " ".join(failed)
