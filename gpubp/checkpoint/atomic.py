"""Writing a file so that a crash leaves the old one or the new one, never half of one: an
open temp file in the same folder, fsync, ``os.replace``, fsync of the folder; an existing
file keeps its permissions; temp files of saves that were killed are removed by the next."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import time

from ..errors import GpubpError

HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


TEMP = re.compile(r"^\.gpubp-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


LEGACY_TEMP = re.compile(r"^\.gpubp-[a-z0-9_]{8}\.tmp$")  # tempfile.mkstemp names of gpubp <= 0.x


def write_atomically(path, write, by_name=False):
    """``write(f)`` into a temp file in ``path``'s folder, then fsync, ``os.replace`` onto ``path``
    and fsync of the folder: ``path`` holds the old file or the new one, never half of one (the
    temp file is removed if ``write`` fails; an existing file's permissions are kept). With
    ``by_name``, ``write(temp_path)`` writes it by its name (for a library that opens it itself)."""
    folder = os.path.dirname(path)
    remove_orphans(folder)
    tmp = os.path.join(folder, f".gpubp-{HOST}-{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):
                if hasattr(os, "fchmod"):  # an existing checkpoint keeps its permissions
                    os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(tmp if by_name else f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_folder(folder)


def describe(exc) -> str:
    """What stopped a write or a run, in words: a gpubp error's message, else the exception's kind
    and reason (and its file), e.g. ``OSError: No space left on device: /data/run.npz``."""
    if isinstance(exc, GpubpError):
        return str(exc)
    text = getattr(exc, "strerror", None) or str(exc) or "no detail"
    filename = getattr(exc, "filename", None)
    if filename and TEMP.match(os.path.basename(os.fsdecode(filename))):
        filename = None  # our temp file: the caller names the file it stood for
    return f"{type(exc).__name__}: {text}" + (f": {filename}" if filename else "")


def fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_orphans(folder, legacy_age=3600.0):
    """Delete temp files left in ``folder`` by saves that were killed: ours from this host whose
    process is gone, and unnamed ones (older gpubp) untouched for ``legacy_age`` seconds."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = TEMP.match(entry.name)
            if m and m["host"] == HOST and not alive(int(m["pid"])) or \
                    LEGACY_TEMP.match(entry.name) and time.time() - entry.stat().st_mtime > legacy_age:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def alive(pid) -> bool:
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True
