"""Atomic file writes and the project's hidden temporaries: created locked, removed always,
swept when their owner died.

Writes: a temporary name in the target's folder, then ``os.replace``. A reader (another task,
another process) therefore sees either the old file or the whole new one, never a
half-written file. The temporary is created with the mode a plain ``open(path, "w")`` would
give (``0o666`` less the umask), so the published file looks like one written in place.

Temporaries (files of :func:`atomic_path`, folders of :func:`temporary_dir`) are hidden and
named ``.<target name>.tmp<8 hex digits><suffix>``. Their creator holds an exclusive
``fcntl.flock`` on them for as long as it lives; they are removed when the block ends,
normally or by an exception. A process killed with SIGKILL cannot remove its temporary, but
the kernel drops its lock: :func:`sweep` removes every temporary in a folder that no live
process holds (also those of earlier versions of this module, which took no lock). The
pipeline sweeps the folders it owns at the start of a run and before each step writes.

Directory ``fsync`` is separate (:func:`fsync_dir`): the writers that need the rename to be
durable across a power loss (the product store) call it themselves.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "TemporaryDir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "is_temporary_name",
    "make_temporary_dir",
    "sweep",
    "sweep_tree",
    "temporary_dir",
]

log = logging.getLogger(__name__)

#: Names of this module's temporaries: ``.<target>.tmp<8 hex><suffix>``.
_TEMP_RE = re.compile(r"^\..+\.tmp[0-9a-f]{8}(?:\.[A-Za-z0-9]+)*$")
#: Names left by earlier versions (no lock): ``.<target>.<8 hex><suffix>`` (atomic_path),
#: ``.<name>.SAFE.tmp-<8>`` (store extraction), ``.<stem>.<8>`` folders (engine scratch).
_LEGACY_FILE_RE = re.compile(r"^\..+\.[0-9a-f]{8}(?:\.[A-Za-z0-9]+)+$")
_LEGACY_DIR_RE = re.compile(r"^\..+(?:\.SAFE\.tmp-[A-Za-z0-9_]+|\.[a-z0-9_]{8})$")


def is_temporary_name(name: str, *, is_dir: bool = False) -> bool:
    """Whether ``name`` is one of this module's temporaries (or an earlier version's)."""
    if _TEMP_RE.match(name):
        return True
    return bool((_LEGACY_DIR_RE if is_dir else _LEGACY_FILE_RE).match(name))


def _temporary_name(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.tmp{secrets.token_hex(4)}{suffix}")


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the inode open as ``fd``."""
    try:
        a, b = os.fstat(fd), os.lstat(path)
    except FileNotFoundError:
        return False
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


def _create_temporary(path: Path, suffix: str) -> tuple[Path, int]:
    """Create a new, empty, hidden file beside ``path`` and lock it; returns (path, fd).

    Not ``tempfile.mkstemp``: that creates the file with mode 0600, which the rename would
    then give the published file. The lock is taken after the exclusive create; a sweeper that
    removed the file in between is detected (the name no longer names our inode) and another
    name is taken."""
    while True:
        tmp = _temporary_name(path, suffix)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a sweeper inspects it
        if _names(tmp, fd):
            return tmp, fd
        os.close(fd)  # pragma: no cover - swept between create and lock


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a fresh temporary file path beside ``path`` for a writer that needs a file name
    (rasterio, PIL, pyarrow, a streamed download); when the block ends normally the temporary
    replaces ``path``, when it raises the temporary is removed.

    ``suffix`` ends the temporary's name: give the format's extension where a reader or GDAL
    looks at it (``".part.tif"``, ``".part.zip"`` for ``/vsizip/``). The folder must exist.
    The writer must write into the file, not replace it (all of GDAL, PIL and pyarrow do)."""
    path = Path(path)
    tmp, fd = _create_temporary(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, suffix: str = ".part") -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``. The folder must exist."""
    path = Path(path)
    with atomic_path(path, suffix=suffix) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8",
                      suffix: str = ".part") -> Path:
    """Write ``text`` to ``path`` atomically (``encoding``, newlines as given); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding), suffix=suffix)


class TemporaryDir:
    """A hidden, locked scratch folder beside ``target`` (see the module doc).

    ``path``: the folder; :meth:`cleanup` removes it (whatever is inside) and drops the lock.
    Use :func:`temporary_dir` as a context manager, or ``make_temporary_dir`` with
    ``try/finally: cleanup()``. Renaming the folder (or something in it) into place before
    ``cleanup`` publishes it; ``cleanup`` then removes what is left."""

    def __init__(self, target: str | os.PathLike[str], suffix: str = "") -> None:
        target = Path(target)
        while True:
            tmp = _temporary_name(target, suffix)
            try:
                os.mkdir(tmp, 0o777)
            except FileExistsError:  # pragma: no cover - 32 random bits
                continue
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _names(tmp, fd):
                break
            os.close(fd)  # pragma: no cover - swept between mkdir and lock
        self.path = tmp
        self._fd: int | None = fd

    def cleanup(self) -> None:
        """Remove the folder if it is still there, then release the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            if _names(self.path, self._fd):
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def make_temporary_dir(target: str | os.PathLike[str], suffix: str = "") -> TemporaryDir:
    """A :class:`TemporaryDir` beside ``target`` (the caller calls ``cleanup()``)."""
    return TemporaryDir(target, suffix)


def temporary_dir(target: str | os.PathLike[str], suffix: str = "") -> TemporaryDir:
    """``with temporary_dir(target) as tmp:`` a hidden locked folder beside ``target``,
    removed when the block ends (normally or not)."""
    return TemporaryDir(target, suffix)


def _remove_if_unlocked(path: Path, is_dir: bool) -> bool:
    """Remove ``path`` if no process holds a lock on it; True if removed."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_DIRECTORY if is_dir else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symbolic link, or changed type: litter
            with contextlib.suppress(OSError):
                os.unlink(path)
                return True
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False  # a live writer holds it
            raise
        if not _names(path, fd):
            return False
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def sweep(folder: str | os.PathLike[str]) -> int:
    """Remove the stale temporaries in ``folder`` (not recursive): those of this module (and
    of its earlier versions) that no live process holds. Returns how many were removed.

    Safe while other processes write into ``folder``: a live writer's temporary is locked."""
    folder = Path(folder)
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue
        is_dir = stat.S_ISDIR(mode)
        if not is_temporary_name(entry.name, is_dir=is_dir):
            continue
        if _remove_if_unlocked(Path(entry.path), is_dir):
            removed += 1
    if removed:
        log.info("removed %d stale temporar%s in %s", removed, "y" if removed == 1 else "ies", folder)
    return removed


def sweep_tree(root: str | os.PathLike[str], *, depth: int = 1) -> int:
    """:func:`sweep` ``root`` and its visible sub-folders down to ``depth`` levels."""
    root = Path(root)
    total = sweep(root)
    if depth > 0:
        try:
            subs = [Path(e.path) for e in os.scandir(root)
                    if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return total
        for sub in subs:
            total += sweep_tree(sub, depth=depth - 1)
    return total


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """``fsync`` a folder so that a rename inside it is durable; best effort (some file
    systems refuse to open or sync a folder: ignored)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
