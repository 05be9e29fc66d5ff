"""Writing a file so that a crash leaves the old one or the new one, never half of one: an
open temp file in the same folder, fsync, ``os.replace``, fsync of the folder; an existing
file keeps its permissions; temp files of saves that were killed are removed by the next.
Two processes writing one file take turns (``locked``); the lock file of one killed while it wrote
is removed by the next write, or read (``clear_stale``), of that file."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import threading
import time
import warnings

from ..errors import CheckpointError, GpubpError, GpubpWarning

try:
    import fcntl
except ImportError:  # Windows: writes are not locked (``locked`` yields False)
    fcntl = None

HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:40] or "host"


TEMP = re.compile(r"^\.gpubp-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


LEGACY_TEMP = re.compile(r"^\.gpubp-[a-z0-9_]{8}\.tmp$")  # tempfile.mkstemp names of gpubp <= 0.x


def write_atomically(path, write, by_name=False):
    """``write(f)`` into a temp file in ``path``'s folder, then fsync, ``os.replace`` onto ``path``
    and fsync of the folder: ``path`` holds the old file or the new one, never half of one (the
    temp file is removed if ``write`` fails; an existing file's permissions are kept). With
    ``by_name``, ``write(temp_path)`` writes it by its name (for a library that opens it itself).
    The whole write holds ``path``'s lock (``locked``)."""
    folder = os.path.dirname(path)
    with locked(path):
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
    if filename and (TEMP.match(os.path.basename(os.fsdecode(filename))) or os.fsdecode(filename).endswith(LOCK)):
        filename = None  # our temp or lock file: the caller names the file it stood for
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


# -- one writer at a time ---------------------------------------------------------------------
LOCK = ".gpubp-lock"  # the ending of lock files' names
WAIT = 300.0  # seconds a write waits for another process's write of the same file, then gives up
SAY_AFTER = 2.0  # seconds of waiting after which the wait is said (a holder stopped with Ctrl-Z looked like a hang)
_held = threading.local()  # the files whose lock this thread holds: taken again within, it is not waited for
UNLOCKABLE = (getattr(errno, "ENOLCK", None), getattr(errno, "EOPNOTSUPP", None), getattr(errno, "ENOTSUP", None),
              errno.EINVAL)  # flock refused by the file system (some network or FUSE mounts)


def lock_path(path) -> str:
    """The lock file of ``path``: ``.<name>.gpubp-lock`` beside the file a write to it replaces; for a
    name within 14 bytes of the file system's limit (255), ``.<its start>-<hash of it>.gpubp-lock``,
    which the file system takes (was: refused, and the write with it)."""
    folder, name = os.path.split(os.path.realpath(path))
    lock = f".{name}{LOCK}"
    if len(os.fsencode(lock)) > 255:
        lock = f".{name[:40]}-{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}{LOCK}"
    return os.path.join(folder, lock)


@contextlib.contextmanager
def locked(path, wait=None):
    """Hold the lock of the file ``path`` names (through links) for a block; yields True, or False
    where nothing can lock (no ``fcntl``: Windows; a file system refusing ``flock``).

    The lock is an exclusive ``flock`` on ``lock_path(path)``, taken by one process (one thread) at
    a time; within the block the same thread takes it again at once. Another writer is waited for
    up to ``wait`` seconds (default ``WAIT``), then CheckpointError names it. The lock file is
    removed at the end; one left by a process killed while it held it (the kernel released its
    flock, the file stayed) is taken over with a GpubpWarning naming that process (a read of the
    file removes it: ``clear_stale``)."""
    key = os.path.realpath(path)
    mine = _held.__dict__.setdefault("paths", set())
    if key in mine:
        yield True
        return
    fd = _acquire(key, WAIT if wait is None else wait)
    mine.add(key)
    try:
        yield fd is not None
    finally:
        mine.discard(key)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(lock_path(key))  # still the file this lock is on: others unlink only while holding it
            os.close(fd)  # releases the flock


def _acquire(path, wait):
    """A descriptor of ``path``'s lock file, flocked by this process and still at its name; None
    where nothing can lock."""
    if fcntl is None:
        return None
    name, start, said = lock_path(path), time.monotonic(), False
    deadline = start + wait
    while True:
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another writer holds it
            holder = _holder(fd)
            os.close(fd)
            if time.monotonic() > deadline:
                raise CheckpointError(f"{path} is being written by {holder}, which has held its lock ({name}) for "
                                      f"over {wait:g} s; nothing was written (if no gpubp process writes it, "
                                      f"remove {name})") from None
            if not said and time.monotonic() - start > SAY_AFTER:
                said = True
                warnings.warn(f"{path}: waiting for {holder}, which is writing it (up to {wait:g} s)", GpubpWarning,
                              stacklevel=5)
            time.sleep(0.02)
            continue
        except OSError as exc:
            os.close(fd)
            if exc.errno in UNLOCKABLE:
                with contextlib.suppress(OSError):
                    os.unlink(name)
                return None
            raise
        if _still_at(fd, name):
            try:
                return _take_over(fd, path)
            except BaseException:  # a warning made an error: the lock let go, its file left for the next
                os.close(fd)
                raise
        os.close(fd)  # released and removed by its holder meanwhile: the next file at the name is the lock


def clear_stale(path):
    """Remove the lock file of ``path`` when no process holds it: one left by a writer killed while it
    held it (the file is whole: its last write, or the one before), with the temp files of writers
    gone from this host (``remove_orphans``); said in a GpubpWarning naming that writer. As a writer
    does it: only while this process holds the file's flock and the file is still at its name. A
    lock that is held (a write under way; this thread's own) is left alone, as is one that cannot be
    removed (a read-only folder)."""
    key = os.path.realpath(path)
    name = lock_path(key)
    if fcntl is None or key in getattr(_held, "paths", ()) or not os.path.lexists(name):
        return
    try:
        fd = os.open(name, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        left = _holder(fd, None) if _still_at(fd, name) else False
        if left is not False:
            os.unlink(name)
            remove_orphans(os.path.dirname(key))
        if left:  # none named: a writer that made the file and had not locked it yet (it tries again)
            warnings.warn(f"{path}: the lock left by {left}, which ended without releasing it (killed while writing "
                          f"it?), is removed ({name}); the file holds its last whole write", GpubpWarning, stacklevel=4)
    except OSError:  # held by a writer (BlockingIOError), unlockable, or not removable
        pass
    finally:
        os.close(fd)


def _still_at(fd, name) -> bool:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)


def _take_over(fd, path):
    """Write this process into the lock file ``fd`` just locked; a holder named there is one that
    was killed holding it (a live one removes the file before it lets go): said, and replaced."""
    left = _holder(fd, None)
    if left:
        warnings.warn(f"{path}: the lock left by {left}, which ended without releasing it (killed?), is taken "
                      f"over ({lock_path(path)})", GpubpWarning, stacklevel=5)
    with contextlib.suppress(OSError):  # the name is for messages only: a full disk does not stop the write
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{HOST} {os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd, unknown="another process"):
    """The process named in the lock file ``fd`` ("process <pid> on <host>"), else ``unknown``."""
    try:
        host, pid = os.pread(fd, 200, 0).decode().split()
    except (OSError, ValueError):
        return unknown
    return f"process {pid} on {host}"
