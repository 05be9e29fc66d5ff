"""Path arguments of the ``gpubp`` command, taken as the shell left them: not empty, not a folder
for a file to write, no name longer than the file system takes, and nothing the shell expands
($NAME, ${NAME}, a leading ~) that it did not (a quoted path, an exec-form CMD, a config file)."""
from __future__ import annotations

import argparse
import os
import re


def file_path(text):
    """argparse type: a path, not empty nor blank: ``--save "$OUT"`` with $OUT unset was taken for no
    --save at all (``--data ""`` trained on the built-in digits, ``--out ""`` printed); nor holding a
    part the shell expands (``unexpanded``). A leading ~ that names a folder there is that folder
    (``./~``), as the shell left it: the library, which expands ~, would read another file."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r} (an empty shell variable?)")
    _name_lengths(text)
    word = unexpanded(text)
    if word:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {word} was not expanded (the path was quoted, or no shell ran: a config file, an exec-form "
            f"CMD), and no file or folder is named so; {_shell_would(word, text)}")
    return os.path.join(os.curdir, text) if os.path.expanduser(text) != text else text  # a marked default kept


def _name_lengths(text):
    """Refuse a name in the path ``text`` longer than its file system takes (255 bytes on most): it
    failed at the first write, after the work (a --log: after an epoch, naming no file)."""
    folder = os.path.abspath(text)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no answer
        limit = 255
    if not limit or limit < 0:  # no limit said
        return
    seps = re.escape(os.sep + (os.altsep or ""))
    for name in re.split(f"[{seps}]", text):
        if len(os.fsencode(name)) > limit:
            raise argparse.ArgumentTypeError(f"{text[:40]!r}...: a name of {len(os.fsencode(name))} bytes, over the "
                                             f"{limit} a file name may have here; give a shorter one")


VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\})")  # what a shell expands in a word


def unexpanded(text) -> str | None:
    """The first $NAME, ${NAME} or leading ~ (``~user``) of the path ``text`` that a shell would have
    expanded, in a part that names nothing on disk as written; None when there is none."""
    seps = re.escape(os.sep + (os.altsep or ""))
    for part in re.finditer(f"[^{seps}]+", text):
        tilde = part.start() == 0 and os.path.expanduser(part.group()) != part.group()
        word = part.group() if tilde else next((m.group() for m in VARIABLE.finditer(part.group())), None)
        if word and not os.path.lexists(text[:part.end()]):
            return word
    return None


def _shell_would(word, text) -> str:
    """What a shell would have made of ``word`` here, and of the whole path ``text`` when it can."""
    if word.startswith("~"):
        now = f"{word} is {os.path.expanduser(word)} here"
    else:
        name = word.strip("${}")
        now = f"${name} is {os.environ[name]} here" if name in os.environ else f"${name} is not set here"
    expanded = os.path.expandvars(os.path.expanduser(text))
    return now + ("" if VARIABLE.search(expanded) else f": did you mean {expanded}?")


def output_file(text):
    """argparse type: a ``file_path`` to write, not ending in a separator (``--save runs/`` wrote a file
    named runs, not one inside the folder runs/ meant)."""
    if file_path(text).endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}, a folder; name a file inside it")
    return text
