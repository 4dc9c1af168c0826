"""Patch folders that appear whole or not at all, written by processes that may be killed.

A patch folder is assembled under a hidden temporary name beside its final place
(``.<name>.tmp-<host>-<pid>-<random>``) and renamed into place; :func:`clean_temporaries`
removes what killed writers left (their process is gone, or the folder is old). Both archive
layouts write their patches through :func:`write_patch_folder`.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bigearthnet_s1.errors import ArchiveError
from bigearthnet_s1.grid import PATCH_PX

__all__ = ["write_patch_folder", "clean_temporaries", "check_patch_array", "holds_files"]

_TMP_MARK = ".tmp-"


def _tmp_dir_name(name: str) -> str:
    return f".{name}{_TMP_MARK}{_hostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname().replace("-", "_")


def check_patch_array(arr: np.ndarray, what: str, name: str, *, values: bool = True) -> np.ndarray:
    a = np.asarray(arr)
    if a.shape != (PATCH_PX, PATCH_PX):
        raise ArchiveError(f"patch {name}: {what} has shape {a.shape}, expected (120, 120)")
    if a.dtype.kind not in "fiu":
        raise ArchiveError(f"patch {name}: {what} has dtype {a.dtype}, expected dB floats")
    if values and a.dtype.kind == "f":
        if np.isinf(a).any():
            raise ArchiveError(
                f"patch {name}: {what} has infinite dB values (log of zero power? floor them or "
                "set them to NaN)"
            )
        if np.isnan(a).all():
            raise ArchiveError(f"patch {name}: {what} has no valid pixel (all NaN)")
    return a


def write_patch_folder(parent: str, name: str, files: Iterable[tuple[str, Iterable[bytes]]]) -> str:
    """Create the folder ``parent/name`` holding ``files`` (file name, byte chunks) atomically:
    assembled in a hidden temporary folder beside it, then renamed into place (an existing
    folder of that name is replaced). Returns the folder's path."""
    final = os.path.join(parent, name)
    tmp = os.path.join(parent, _tmp_dir_name(name))
    published = False
    try:
        try:
            os.mkdir(tmp)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            os.mkdir(tmp)
        for fname, chunks in files:
            _write_file(os.path.join(tmp, fname), chunks)
        _publish(tmp, final)
        published = True
    except OSError as exc:
        raise ArchiveError(f"cannot write patch {final}: {exc}") from exc
    finally:
        if not published:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_file(path: str, chunks: Iterable[bytes]) -> None:
    """Create ``path`` and write ``chunks`` (unbuffered, one writev call when possible)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        chunks = list(chunks)
        total = sum(len(c) for c in chunks)
        written = os.writev(fd, chunks)
        if written != total:  # short write (rare): finish the rest plainly
            rest = b"".join(chunks)[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
    finally:
        os.close(fd)


def _publish(tmp: str, final: str) -> None:
    """Rename the finished temporary folder into place (atomic on POSIX for a new name)."""
    try:
        os.replace(tmp, final)  # fails if ``final`` exists (a non-empty folder)
        return
    except OSError:
        if not os.path.lexists(final):
            raise
    # overwrite (or an incomplete leftover from outside this module): move the old one aside
    # first; a folder cannot be replaced atomically when the target is not empty.
    parent, base = os.path.split(final)
    trash = os.path.join(parent, _tmp_dir_name(base + ".old"))
    os.replace(final, trash)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)


def clean_temporaries(root: str | os.PathLike[str], *, older_than: float = 6 * 3600.0) -> int:
    """Remove temporary folders left by killed writers: those of a dead process on this host,
    or older than ``older_than`` seconds. Returns how many were removed."""
    root = Path(root)
    if not root.is_dir():
        return 0
    host = _hostname()
    removed = 0
    now = time.time()
    for entry in os.scandir(root):
        if not (entry.name.startswith(".") and _TMP_MARK in entry.name and entry.is_dir()):
            continue
        owner = entry.name.rsplit(_TMP_MARK, 1)[1]
        parts = owner.rsplit("-", 2)
        dead = False
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            dead = not _pid_alive(int(parts[1]))
        try:
            old = now - entry.stat().st_mtime > older_than
        except OSError:
            continue
        if dead or old:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holds_files(folder: str, names: Iterable[str]) -> bool:
    """True if ``folder`` holds every file of ``names``, each non-empty. Patch folders only
    appear whole (atomic rename), so this is a cheap completeness check, not a validation."""
    try:
        return all(os.stat(os.path.join(folder, f)).st_size > 0 for f in names)
    except OSError:
        return False
