"""Atomic file writes: a temporary name in the target's folder, then ``os.replace``.

A reader (another task, another process) therefore sees either the old file or the whole new
one, never a half-written file. The temporary is hidden (its name starts with ``.``) and is
removed when the writer fails. It is created with the mode a plain ``open(path, "w")`` would
give (``0o666`` less the umask), so the published file looks like one written in place.

Directory ``fsync`` is separate (:func:`fsync_dir`): the writers that need the rename to be
durable across a power loss (the product store) call it themselves.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_dir"]


def _create_temporary(path: Path, suffix: str) -> Path:
    """Create an empty, new, hidden file ``.<name>.<random><suffix>`` beside ``path``.

    Not ``tempfile.mkstemp``: that creates the file with mode 0600, which the rename would
    then give the published file."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
        os.close(fd)
        return tmp


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a fresh temporary file path beside ``path`` for a writer that needs a file name
    (rasterio, PIL, pyarrow, a streamed download); when the block ends normally the temporary
    replaces ``path``, when it raises the temporary is removed.

    ``suffix`` ends the temporary's name: give the format's extension where a reader or GDAL
    looks at it (``".part.tif"``, ``".part.zip"`` for ``/vsizip/``). The folder must exist."""
    path = Path(path)
    tmp = _create_temporary(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
