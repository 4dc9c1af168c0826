"""Checksums of product files: the hubs' algorithm names, a hash that runs beside the
download, whole-file digests, and the zip CRC test.

Algorithms: MD5, SHA-256, SHA3-256 (``hashlib``) and BLAKE3 (when the ``blake3`` package is
importable); names as the hubs write them ("MD5", "SHA3-256", "BLAKE3"), normalised by
:func:`normalise_algorithm`. Digests are lower-case hex.
"""

from __future__ import annotations

import hashlib
import queue
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bigearthnet_s1.errors import ChecksumError, DownloadError, NotAZipError
from bigearthnet_s1.excerpt import body_excerpt, looks_like_html

__all__ = ["StreamHasher", "best_checksum", "checksum_supported", "file_checksum", "normalise_algorithm", "verify_zip"]

_MiB = 1 << 20


def normalise_algorithm(name: str | None) -> str | None:
    """Hub checksum algorithm name -> canonical name: "md5", "sha256", "sha3_256", "blake3".

    Returns None for None; raises ``DownloadError`` for an unknown name.
    """
    if name is None:
        return None
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    table = {"md5": "md5", "sha256": "sha256", "sha2256": "sha256", "sha3256": "sha3_256", "blake3": "blake3"}
    if key not in table:
        raise DownloadError(f"unsupported checksum algorithm {name!r} (known: MD5, SHA-256, SHA3-256, BLAKE3)")
    return table[key]


def checksum_supported(name: str | None) -> bool:
    """True if this Python can compute the algorithm (BLAKE3 needs the ``blake3`` package)."""
    try:
        algo = normalise_algorithm(name)
    except DownloadError:
        return False
    if algo == "blake3":
        try:
            import blake3  # noqa: F401 - only whether the package imports
        except ImportError:
            return False
    return algo is not None


def best_checksum(
    checksums: list[Mapping[str, Any]] | Mapping[str, Any] | None, *, verifiable_only: bool = True
) -> tuple[str, str] | None:
    """Pick ``(algorithm, value)`` from an OData ``Checksum`` field, or None.

    DHuS gives one ``{"Algorithm": "MD5", "Value": ...}``; CDSE a list of them (MD5, BLAKE3).
    Preference: MD5 (fast, everywhere), then SHA-256, SHA3-256, BLAKE3. With ``verifiable_only``
    (a download) only algorithms this Python can compute count; without it (a catalogue record,
    which describes the product whatever the machine) any named one does, a known one first.
    """
    if not checksums:
        return None
    items = [checksums] if isinstance(checksums, Mapping) else list(checksums)
    known: dict[str, tuple[str, str]] = {}
    other: list[tuple[str, str]] = []
    for item in items:
        alg, value = item.get("Algorithm"), item.get("Value")
        if not (alg and value):
            continue
        if checksum_supported(alg) or (not verifiable_only and _known(alg)):
            known.setdefault(str(normalise_algorithm(alg)), (str(alg), str(value)))
        elif not verifiable_only:
            other.append((str(alg), str(value)))
    for pref in ("md5", "sha256", "sha3_256", "blake3"):
        if pref in known:
            return known[pref]
    return other[0] if other else None


def _known(name: str) -> bool:
    try:
        normalise_algorithm(name)
    except DownloadError:
        return False
    return True


def _new_hash(algo: str) -> Any:
    if algo == "blake3":
        try:
            import blake3
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DownloadError("BLAKE3 checksum requested but the 'blake3' package is not installed") from exc
        return blake3.blake3()
    return hashlib.new(algo)


class StreamHasher:
    """Hashes the stream in a helper thread so hashing overlaps the network reads.

    hashlib releases the GIL on large buffers, so on two cores MD5 (~0.6 GB/s) no longer
    caps the download rate. The bounded queue keeps memory at a few chunks.
    """

    def __init__(self, algo: str) -> None:
        self.algo = algo
        self._h = _new_hash(algo)
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="hash", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            self._h.update(item)

    def update(self, data: bytes) -> None:
        self._q.put(data)

    def feed_file(self, path: Path, length: int) -> None:
        """Hash the first ``length`` bytes of ``path`` (the part kept from an earlier attempt)."""
        with open(path, "rb") as f:
            remaining = length
            while remaining > 0:
                block = f.read(min(8 * _MiB, remaining))
                if not block:
                    raise DownloadError(f"{path} shrank while hashing it")
                self.update(block)
                remaining -= len(block)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self._h.hexdigest()


def file_checksum(path: Path, algorithm: str) -> str:
    """Hex digest of a whole file (algorithm names as in :func:`normalise_algorithm`)."""
    algo = normalise_algorithm(algorithm)
    assert algo is not None
    h = _new_hash(algo)
    with open(path, "rb") as f:
        while block := f.read(8 * _MiB):
            h.update(block)
    return h.hexdigest()


def verify_zip(path: Path, label: str | None = None) -> None:
    """Raise ``ChecksumError`` unless ``path`` is a zip whose members all pass their CRC check."""
    label = label or path.name
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile as exc:
        head = _read_head(path, 2048)
        if looks_like_html(head[:512]):
            raise NotAZipError(f"{label}: the server sent an HTML page, not a zip: {body_excerpt(head, 200)!r}") from exc
        raise ChecksumError(f"{label}: not a valid zip file ({exc}); it starts with {head[:64]!r}") from exc
    except (OSError, EOFError, zipfile.LargeZipFile, NotImplementedError, zlib.error, ValueError, struct.error) as exc:
        # a broken deflate stream raises zlib.error ("invalid distance too far back"), a
        # damaged local header struct.error or ValueError: all mean a corrupted file
        raise ChecksumError(f"{label}: zip integrity test failed ({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise ChecksumError(f"{label}: zip member {bad!r} fails its CRC check (corrupted download)")


def _read_head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""
