"""The product store: one folder of Sentinel-1 products, addressed by product name.

Layout of ``root``::

    <name>.zip          verified product zip (exists only complete: renamed into place)
    <name>.SAFE/        its extraction (exists only complete: renamed into place)
    <name>.zip.part     unfinished download, resumed by the next fetch (see transfer.py)
    <name>.lock         claim of the process working on <name> (fcntl.flock; removed after)
    <name>.zip.bad      a product found bad after it was stored (moved out of the complete names)
    verified/<name>.json  stamp of a verified local product (its path and file signature)
    .<name>.SAFE.tmp*   unfinished extraction (flock-held while alive; swept by the next run)

Verification, whatever the origin: a download is checked against the hub's checksum, the zip
CRCs and the product layout (safe member names, ``<name>.SAFE/manifest.safe``, not another
product) before it gets its final name; a local zip gets the CRC and layout checks, a local
``.SAFE`` folder the sizes and MD5s its manifest lists (both once per file signature, stamped
in ``verified/``); an entry already in the store gets the cheap layout check on every fetch.
A product found bad later (extraction or reading fails) is renamed ``<name>.zip.bad`` /
``<name>.SAFE.bad`` by :meth:`ProductStore.quarantine`, so the next fetch downloads it again.

Several processes (Airflow workers, CLI runs) may share a store: a product is fetched under
an exclusive ``flock`` on ``<name>.lock``, so two workers asking for the same product download
it once (the second waits, then finds the zip). The kernel drops a dead holder's flock, so a
lock file left by a killed process is stale by construction: the next caller takes it over.

The hub side (URLs, credentials, offline products and their retrieval) is
:class:`bigearthnet_s1.hub.HubClient`, which the store holds as ``store.hub`` and downloads
through; an offline product's retrieval is requested, or waited for, through it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import requests

from bigearthnet_s1 import transfer
from bigearthnet_s1._time import format_iso
from bigearthnet_s1.atomic import atomic_write_text, fsync_dir, sweep, temporary_dir
from bigearthnet_s1.checksum import file_checksum, verify_zip
from bigearthnet_s1.errors import (
    ChecksumError,
    DownloadError,
    HttpStatusError,
    InputError,
    RetrievalPendingError,
    SafeError,
    StoreLockTimeout,
    UnsafeArchiveError,
)
from bigearthnet_s1.hub import HubClient, ProductLike, local_product_path
from bigearthnet_s1.manifest import data_objects, manifest_member
from bigearthnet_s1.redact import redact_url, register_auth
from bigearthnet_s1.retry import RetryPolicy
from bigearthnet_s1.transfer import DownloadOptions, ProgressCallback

log = logging.getLogger(__name__)


@dataclass
class FetchReport:
    """Outcome of :meth:`ProductStore.fetch_all`: name -> path, name -> exception."""

    paths: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def raise_for_errors(self, total: int | None = None) -> None:
        if self.errors:
            total = total if total is not None else len(self.paths) + len(self.errors)
            lines = "; ".join(_naming(n, e) for n, e in self.errors.items())
            raise DownloadError(f"{len(self.errors)} of {total} products failed: {lines}")


def _naming(name: str, exc: BaseException) -> str:
    """``exc``'s message, led by the product name unless the message names it already."""
    text = str(exc)
    return text if name in text else f"{name}: {text}"


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_product_name(name: str) -> str:
    """Product names address files: refuse anything that is not a plain file-name stem."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise InputError(f"invalid product name {name!r} (expected e.g. S1A_IW_GRDH_1SDV_..._7EEC)")
    for suffix in (".zip", ".SAFE"):
        if name.endswith(suffix):
            raise InputError(f"invalid product name {name!r}: give it without {suffix}")
    return name


# --------------------------------------------------------------------------------------------
# locking


class ProductLock:
    """Exclusive lock on ``path`` across processes and threads (``fcntl.flock``), removed on release.

    Removing a lock file is racy unless the holder re-checks, after locking, that the path
    still names the inode it locked: a waiter that locked an unlinked inode retries.
    The file holds ``{"pid", "host", "since"}`` of the holder for messages.
    """

    def __init__(self, path: Path, *, timeout: float, poll: float = 0.5, what: str = "") -> None:
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self.what = what or path.stem
        self._fd: int | None = None

    def holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text() or "{}"))
        except (OSError, ValueError, TypeError):
            return {}

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = min(0.05, self.poll)
        announced = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise DownloadError(f"{self.what}: cannot lock {self.path}: {exc}") from exc
                h = self.holder()
                if time.monotonic() >= deadline:
                    raise StoreLockTimeout(
                        f"{self.what}: {self.path} still locked after {self.timeout:.0f} s by pid "
                        f"{h.get('pid', '?')} on {h.get('host', '?')} (since {h.get('since', '?')})"
                    ) from None
                if not announced:
                    announced = True
                    log.info("%s: busy in pid %s on %s; waiting", self.what, h.get("pid", "?"), h.get("host", "?"))
                time.sleep(delay)
                delay = min(self.poll, delay * 2)
                continue
            if not self._names(fd):  # the previous holder removed it after we opened it: start over
                os.close(fd)
                continue
            previous = self.holder()
            if previous.get("pid") and (previous.get("pid"), previous.get("host")) != (os.getpid(), socket.gethostname()):
                log.info(
                    "%s: taking over the lock file left by pid %s on %s at %s (that process is gone)",
                    self.what, previous.get("pid"), previous.get("host"), previous.get("since"),
                )
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "since": format_iso(datetime.now(UTC), timespec="seconds", zone="+00:00")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self._fd = fd
            return

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding it: waiters re-check the inode
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def _names(self, fd: int) -> bool:
        """Whether ``self.path`` still names the inode open as ``fd`` (not removed or replaced)."""
        try:
            st_fd, st_path = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st_fd.st_ino, st_fd.st_dev) == (st_path.st_ino, st_path.st_dev)

    def clear_if_stale(self) -> None:
        """Remove the lock file if no live process holds it (left by a killed holder).

        A holder killed after renaming its result into place but before releasing leaves the
        file behind; fast paths that find the result call this so the store ends clean.
        """
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # held by a live process: theirs to remove
            return
        try:
            if self._names(fd):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> ProductLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------------------------
# zip extraction safety


def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted (None if it is fine)."""
    fn = info.filename
    if "\x00" in fn:
        return "has a NUL byte in its name"
    norm = fn.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "has an absolute path"
    if ".." in norm.split("/"):
        return "has a '..' path component (zip slip)"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a device, FIFO or socket"
    return None


# --------------------------------------------------------------------------------------------
# verification of products (downloaded, local, or found in the store)


def check_zip_layout(path: Path, name: str | None = None) -> None:
    """Raise unless the zip at ``path`` is laid out as product ``name``: every member name is
    safe to extract (:func:`unsafe_member_reason`), and it holds ``<name>.SAFE/manifest.safe``
    (or ``manifest.safe`` at its root), not another product's .SAFE folder. Reads only the
    zip's central directory (milliseconds); no CRC test (see ``checksum.verify_zip``)."""
    label = name or path.name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ChecksumError(f"{label}: {path.name} is not a readable zip file ({exc})") from exc
    for info in infos:
        reason = unsafe_member_reason(info)
        if reason:
            raise UnsafeArchiveError(f"{label}: refusing {path.name}: member {info.filename!r} {reason}")
    member = manifest_member([i.filename for i in infos], f"{label}: {path.name}")
    top = PurePosixPath(member.replace("\\", "/")).parent.name
    if name is not None and top not in ("", f"{name}.SAFE"):
        raise SafeError(f"{label}: the zip holds {top}, another product")


def check_safe_folder(path: Path, *, deep: bool = True) -> None:
    """Raise unless the .SAFE folder at ``path`` holds its manifest and every file the manifest
    lists, with the listed size and (``deep``) MD5. A manifest that lists no file is refused."""
    label = path.name.removesuffix(".SAFE")
    manifest = path / "manifest.safe"
    if not manifest.is_file():
        raise SafeError(f"{label}: {path} has no manifest.safe (not a SAFE product folder)")
    objects = data_objects(manifest.read_bytes(), f"{label}: {path.name}")
    if not objects:
        raise SafeError(f"{label}: manifest.safe lists no data file")
    for href, size, md5 in objects:
        rel = PurePosixPath(href)
        if rel.is_absolute() or ".." in rel.parts:
            raise UnsafeArchiveError(f"{label}: manifest.safe points outside the product: {href!r}")
        f = path / rel
        try:
            st = f.stat()
        except FileNotFoundError:
            raise SafeError(f"{label}: file {href} listed in manifest.safe is missing") from None
        if size is not None and st.st_size != size:
            raise ChecksumError(f"{label}: file {href} has {st.st_size} bytes, manifest.safe says {size} (truncated?)")
        if deep and md5 is not None:
            got = file_checksum(f, "md5")
            if got != md5:
                raise ChecksumError(f"{label}: file {href} fails its MD5 check (manifest.safe {md5}, file {got})")


def verify_product(path: Path, name: str | None = None, *, deep: bool = True) -> None:
    """Raise unless ``path`` (a product .zip or .SAFE folder) is a sound product ``name``.

    Zip: (``deep``) the CRC test of every member, then :func:`check_zip_layout`. Folder:
    :func:`check_safe_folder`. Errors name the product and the file at fault:
    ``ChecksumError`` (corrupt, truncated, empty), ``UnsafeArchiveError``, ``SafeError``."""
    if path.is_dir():
        check_safe_folder(path, deep=deep)
        return
    if deep:
        verify_zip(path, name or path.name)
    check_zip_layout(path, name)


# --------------------------------------------------------------------------------------------
# the store


class ProductStore:
    """A folder of verified products, safe for concurrent processes.

    ``hub``: the :class:`~bigearthnet_s1.hub.HubClient` downloads and retrievals go through
    (its session, credentials and endpoints; default: a plain one). ``max_parallel``:
    downloads this store instance runs at once (threads of one process; the DAG maps the
    limit across workers onto an Airflow pool). ``retry``: the download retry policy;
    ``test_zip``: CRC-test every downloaded zip before it gets its name; ``lock_timeout`` (s):
    how long to wait for another process working on the same product, polling every
    ``lock_poll`` s. ``transfer_options``: further options of ``transfer.download``
    (``timeout``, ``min_rate``, ``chunk_size``, ...).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        hub: HubClient | None = None,
        max_parallel: int = 2,
        retry: RetryPolicy | None = None,
        test_zip: bool = True,
        lock_timeout: float = 12 * 3600.0,
        lock_poll: float = 1.0,
        transfer_options: DownloadOptions | None = None,
    ) -> None:
        if max_parallel < 1:
            raise InputError(f"max_parallel must be >= 1, got {max_parallel}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hub = hub or HubClient()
        self.max_parallel = max_parallel
        self._slots = threading.BoundedSemaphore(max_parallel)
        self.retry = retry or RetryPolicy()
        self.test_zip = test_zip
        self.lock_timeout = lock_timeout
        self.lock_poll = lock_poll
        self.transfer_options: DownloadOptions = DownloadOptions(**(transfer_options or {}))

    def __repr__(self) -> str:
        return f"ProductStore({str(self.root)!r}, max_parallel={self.max_parallel})"

    # ---- paths

    def zip_path(self, name: str) -> Path:
        return self.root / f"{check_product_name(name)}.zip"

    def safe_path(self, name: str) -> Path:
        return self.root / f"{check_product_name(name)}.SAFE"

    def part_path(self, name: str) -> Path:
        return transfer.part_path(self.zip_path(name))

    def lock_path(self, name: str) -> Path:
        return self.root / f"{check_product_name(name)}.lock"

    def stamp_path(self, name: str) -> Path:
        """Where the verification of a local product is recorded."""
        return self.root / "verified" / f"{check_product_name(name)}.json"

    def has(self, name: str) -> bool:
        """True when the verified zip or its complete extraction is in the store."""
        return self.zip_path(name).is_file() or self.safe_path(name).is_dir()

    def names(self) -> list[str]:
        """Products held (zip or SAFE), sorted."""
        out = {p.name[: -len(".zip")] for p in self.root.glob("*.zip")}
        out |= {p.name[: -len(".SAFE")] for p in self.root.glob("*.SAFE") if p.is_dir()}
        return sorted(out)

    def lock(self, name: str) -> ProductLock:
        """The cross-process lock of one product (a context manager)."""
        return ProductLock(self.lock_path(name), timeout=self.lock_timeout, poll=self.lock_poll, what=name)

    def quarantine(self, name: str, reason: str) -> list[Path]:
        """Move a product found bad out of the store's complete names: ``<name>.zip`` ->
        ``<name>.zip.bad``, ``<name>.SAFE`` -> ``<name>.SAFE.bad`` (replacing older ones), so
        that it no longer looks verified and the next fetch downloads it again. Returns the new
        paths (kept for inspection). Takes the product's lock."""
        with self.lock(name):
            return self._move_aside(name, reason)

    def _move_aside(self, name: str, reason: str) -> list[Path]:
        """:meth:`quarantine` for a caller that holds the product's lock."""
        moved: list[Path] = []
        for p in (self.zip_path(name), self.safe_path(name)):
            if not p.exists():
                continue
            bad = p.with_name(p.name + ".bad")
            if bad.is_dir() and not bad.is_symlink():
                shutil.rmtree(bad, ignore_errors=True)
            elif p.is_dir():
                bad.unlink(missing_ok=True)
            os.replace(p, bad)
            moved.append(bad)
        fsync_dir(self.root)
        if moved:
            log.warning("%s: moved out of the store (%s): %s", name, ", ".join(m.name for m in moved), reason)
        return moved

    def verify_local(self, record: ProductLike) -> Path:
        """The path of a local product (``source == "local"``), verified (see the module doc).

        The outcome is stamped in ``verified/<name>.json`` with the files' signature, so an
        unchanged product is not read again; a changed one is verified again. Raises
        ``ChecksumError``/``SafeError``/``UnsafeArchiveError`` naming the product and file."""
        path = local_product_path(record)
        name = record.name
        stamp = self.stamp_path(name)
        sig = _signature(path)
        try:
            known = json.loads(stamp.read_text())
            if known.get("path") == str(path) and known.get("signature") == sig:
                return path
        except (OSError, ValueError, AttributeError):
            pass
        if path.is_file() and path.suffix.lower() != ".zip":
            raise SafeError(f"{name}: local product {path} is neither a .zip file nor a .SAFE folder")
        verify_product(path, name if path.suffix.lower() == ".zip" else None, deep=True)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        sweep(stamp.parent)
        atomic_write_text(stamp, json.dumps({"path": str(path), "signature": sig,
                                             "verified_at": format_iso(datetime.now(UTC), timespec="seconds", zone="+00:00")}) + "\n")
        log.info("%s: local product %s verified", name, path)
        return path

    def remove(self, name: str, *, zip: bool = True, safe: bool = True, partial: bool = True) -> None:
        """Delete a product's zip, extraction and/or unfinished download."""
        with self.lock(name):
            if zip:
                self.zip_path(name).unlink(missing_ok=True)
            if partial:
                self.part_path(name).unlink(missing_ok=True)
            if safe and self.safe_path(name).exists():
                shutil.rmtree(self.safe_path(name))

    # ---- fetching

    def fetch(
        self,
        record: ProductLike,
        *,
        session: requests.Session | None = None,
        auth: Any = None,
        progress: ProgressCallback | None = None,
        wait_offline: float = 0.0,
        poll: float = 60.0,
    ) -> Path:
        """The verified product: its zip path, downloading it once across processes.

        ``source == "local"``: the record's own path (a .SAFE folder or .zip), not copied, but
        verified (:meth:`verify_local`). If only the extraction is left in the store (zip
        deleted to save space), its .SAFE path. A stored entry that fails the cheap layout
        check is moved aside (:meth:`quarantine`) and fetched again.
        An offline product: its retrieval is requested; with ``wait_offline`` > 0 (s) this
        waits for it (polling every ``poll`` s), else raises ``RetrievalPendingError`` at once
        (an Airflow task defers on ``store.hub.retrieval_status`` instead of blocking a worker).
        """
        if record.source == "local":
            return self.verify_local(record)
        name = check_product_name(record.name)
        zp = self.zip_path(name)
        if zp.is_file() or self.safe_path(name).is_dir():
            found = self._stored(name)
            if found is not None:
                self.lock(name).clear_if_stale()
                return found
        register_auth(auth)
        sess = session or self.hub.session
        a = self.hub.auth_for(record, auth)
        with self.lock(name):
            if zp.is_file():  # a peer finished it while we waited
                log.info("%s: already in the store (fetched by another worker)", name)
                return zp
            sweep(self.root)
            if record.online is False and record.source in ("dhus", "cdse"):
                if not self.hub.check_online(record, session=sess, auth=a):
                    self._offline(record, sess, a, wait_offline, poll)
            url = self.hub.download_url(record)
            for round_ in (0, 1):
                try:
                    with self._slots:
                        return self._download(record, url, zp, sess, a, progress)
                except RetrievalPendingError:
                    if round_ or wait_offline <= 0:
                        raise
                    self.hub.wait_until_online(record, timeout=wait_offline, poll=poll, session=sess, auth=a)
                except HttpStatusError:
                    # CDSE answers an offline product's $value with an error status, not 202.
                    if round_ or record.source != "cdse" or self.hub.check_online(record, session=sess, auth=a):
                        raise
                    self._offline(record, sess, a, wait_offline, poll)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stored(self, name: str) -> Path | None:
        """The product's verified zip or .SAFE in the store, after the cheap layout check; an
        entry that fails it is quarantined (None is returned: fetch it again)."""
        zp, safe = self.zip_path(name), self.safe_path(name)
        try:
            if zp.is_file():
                check_zip_layout(zp, name)
                return zp
            if safe.is_dir():
                if not (safe / "manifest.safe").is_file():
                    raise SafeError(f"{name}: {safe} has no manifest.safe")
                return safe
        except (SafeError, ChecksumError) as exc:
            self.quarantine(name, str(exc))
        return None

    def _download(
        self, record: ProductLike, url: str, zp: Path, sess: requests.Session | None, a: Any, progress: ProgressCallback | None
    ) -> Path:
        log.info("%s: downloading from %s", record.name, redact_url(url))
        owned = sess is None
        s = sess or requests.Session()
        options: DownloadOptions = {
            "test_zip": self.test_zip, "retry": self.retry, "verify": lambda part: check_zip_layout(part, record.name),
            **self.transfer_options,
            "session": s, "auth": a, "expected_size": record.size, "checksum": record.checksum,
            "checksum_algorithm": record.checksum_algorithm, "progress": progress, "label": record.name,
        }
        try:
            return transfer.download(url, zp, **options)
        finally:
            if owned:
                s.close()

    def _offline(self, record: ProductLike, sess: requests.Session | None, a: Any, wait_offline: float, poll: float) -> None:
        if wait_offline > 0:
            self.hub.wait_until_online(record, timeout=wait_offline, poll=poll, session=sess, auth=a)
            return
        st = self.hub.request_retrieval(record, session=sess, auth=a)
        if st.online:
            return
        raise RetrievalPendingError(
            f"{record.name}: offline in the {record.source} long-term archive; retrieval requested"
            + (f" (order {st.order_id})" if st.order_id else "")
            + "; poll its retrieval status and fetch again when online"
        )

    def fetch_all(
        self,
        records: Iterable[ProductLike],
        *,
        session: requests.Session | None = None,
        auth: Any = None,
        progress: Callable[[str, transfer.TransferProgress], None] | None = None,
        wait_offline: float = 0.0,
        poll: float = 60.0,
        extract: bool = False,
    ) -> FetchReport:
        """Fetch (and optionally extract) several products, at most ``max_parallel`` at once.

        Every product is attempted; failures are collected in the report, not raised.
        ``progress(name, TransferProgress)`` is called from the worker threads.
        """
        records = list(records)
        report = FetchReport()

        def one(rec: ProductLike) -> None:
            cb = (lambda p, _n=rec.name: progress(_n, p)) if progress else None
            try:
                path = self.fetch(rec, session=session, auth=auth, progress=cb, wait_offline=wait_offline, poll=poll)
                if extract and rec.source != "local" and path.suffix == ".zip":
                    path = self.extract(rec.name)
                report.paths[rec.name] = path
            except Exception as exc:  # noqa: BLE001 - collected and reported
                log.error("%s", _naming(rec.name, exc))
                report.errors[rec.name] = exc

        with ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="fetch") as pool:
            list(pool.map(one, records))
        return report

    def fetch_many(self, records: Iterable[ProductLike], **kwargs: Any) -> dict[str, Path]:
        """Like :meth:`fetch_all`, but raise ``DownloadError`` naming every product that failed."""
        records = list(records)
        report = self.fetch_all(records, **kwargs)
        report.raise_for_errors(len(records))
        return report.paths

    # ---- extraction

    def extract(self, name: str) -> Path:
        """Unzip ``<name>.zip`` into ``<name>.SAFE`` (atomically) and return that folder.

        Refuses (``UnsafeArchiveError``, nothing written) a zip with a member that has an
        absolute path, a ``..`` component, or is a symlink/device; refuses a zip whose .SAFE
        folder has another product's name.
        """
        name = check_product_name(name)
        safe = self.safe_path(name)
        if safe.is_dir():
            self.lock(name).clear_if_stale()
            return safe
        zp = self.zip_path(name)
        with self.lock(name):
            if safe.is_dir():
                return safe
            if not zp.is_file():
                raise DownloadError(f"{name}: not in the store ({zp} missing); fetch it first")
            sweep(self.root)  # extractions of killed processes
            try:
                check_zip_layout(zp, name)
                # a plain folder's mode (umask applied): it may become the .SAFE itself (zip
                # with the manifest at its root), which other users must be able to read
                with zipfile.ZipFile(zp) as zf, temporary_dir(self.safe_path(name)) as tmp:
                    for info in zf.infolist():
                        zf.extract(info, tmp)
                    top = self._safe_top(name, tmp)
                    os.rename(top, safe)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a CRC or deflate error while reading
                self._move_aside(name, f"extraction failed: {exc}")
                raise ChecksumError(f"{name}: {zp.name} is corrupt ({type(exc).__name__}: {exc}); "
                                    f"moved to {zp.name}.bad, the next fetch downloads it again") from exc
            except (SafeError, ChecksumError) as exc:
                self._move_aside(name, str(exc))
                raise
            fsync_dir(self.root)
            log.info("%s: extracted to %s", name, safe)
            return safe

    @staticmethod
    def _safe_top(name: str, tmp: Path) -> Path:
        entries = [p for p in tmp.iterdir()]
        want = tmp / f"{name}.SAFE"
        if want.is_dir():
            return want
        safes = [p for p in entries if p.is_dir() and p.name.endswith(".SAFE")]
        if len(safes) == 1:
            raise SafeError(f"{name}: the zip holds {safes[0].name}, another product")
        if (tmp / "manifest.safe").is_file():
            return tmp
        raise SafeError(f"{name}: the zip has no {name}.SAFE folder and no manifest.safe")

    # ---- hub operations (see HubClient)


def _signature(path: Path) -> str:
    """Identifies the current content of a file or folder cheaply: paths, sizes, mtimes, inodes."""
    h = hashlib.sha1()
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for fn in sorted(filenames):
                st = os.stat(os.path.join(dirpath, fn))
                rel = os.path.relpath(os.path.join(dirpath, fn), path)
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    else:
        st = path.stat()
        h.update(f"{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode())
    return h.hexdigest()


__all__ = [
    "FetchReport",
    "ProductLock",
    "ProductStore",
    "StoreLockTimeout",
    "UnsafeArchiveError",
    "check_product_name",
    "check_safe_folder",
    "check_zip_layout",
    "unsafe_member_reason",
    "verify_product",
]
