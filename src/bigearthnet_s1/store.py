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

Offline (long-term archive) products: ``check_online``, ``request_retrieval`` (DHuS: the GET of
``$value`` answering 202 triggers the retrieval; CDSE: an ``OData.CSC.Order``), the
non-blocking ``retrieval_status`` (what an Airflow trigger polls), and the blocking
``wait_until_online``.

Records: anything with the fields name, uuid, size, checksum, checksum_algorithm, online, url
and source of ``bigearthnet_s1.catalog.ProductRecord`` (:class:`ProductRef` is a minimal one).
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
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import requests

from bigearthnet_s1 import transfer
from bigearthnet_s1.atomic import atomic_write_text, fsync_dir, sweep, temporary_dir
from bigearthnet_s1.earthdata import EDL_URL, EarthdataAuth
from bigearthnet_s1.errors import (
    ChecksumError,
    DownloadError,
    InputError,
    ProductOfflineError,
    SafeError,
    StoreLockTimeout,
    UnsafeArchiveError,
)
from bigearthnet_s1.redact import redact, redact_url, register_auth
from bigearthnet_s1.transfer import (
    CdseTokenAuth,
    ProgressCallback,
    RetrievalPendingError,
    RetryPolicy,
)

log = logging.getLogger(__name__)


@runtime_checkable
class ProductLike(Protocol):
    """The fields of ``catalog.ProductRecord`` the store uses."""

    # read-only properties, so that frozen dataclasses (ProductRecord, ProductRef) conform
    @property
    def name(self) -> str: ...
    @property
    def uuid(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...
    @property
    def checksum(self) -> str | None: ...
    @property
    def checksum_algorithm(self) -> str | None: ...
    @property
    def online(self) -> bool | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class ProductRef:
    """A minimal product record (for a bare URL or a local file); same field names as ProductRecord."""

    name: str
    url: str | None = None
    source: str = "http"  # "dhus" | "cdse" | "asf" | "local" | "http"
    uuid: str | None = None
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None
    online: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ProductRef:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class HubEndpoints:
    """Hub URLs (configurable so tests point them at loopback)."""

    dhus_url: str = "https://apihub.copernicus.eu/apihub/"
    cdse_odata_url: str = "https://catalogue.dataspace.copernicus.eu/odata/v1"
    cdse_download_url: str = "https://zipper.dataspace.copernicus.eu/odata/v1"
    cdse_token_url: str = transfer.CDSE_TOKEN_URL
    asf_edl_url: str = EDL_URL


@dataclass(frozen=True)
class RetrievalStatus:
    """Where an archived product stands. ``state``: "online" | "pending" | "failed".

    JSON-safe (``to_json``/``from_json``) so an Airflow trigger can carry it.
    ``order_id``: the CDSE order (None for DHuS, whose retrieval has no id).
    ``checked_at``: ISO 8601 UTC.
    """

    name: str
    state: str
    order_id: str | None = None
    message: str = ""
    checked_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def online(self) -> bool:
        return self.state == "online"

    def __str__(self) -> str:
        return self.state

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RetrievalStatus:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class FetchReport:
    """Outcome of :meth:`ProductStore.fetch_all`: name -> path, name -> exception."""

    paths: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def raise_for_errors(self, total: int | None = None) -> None:
        if self.errors:
            total = total if total is not None else len(self.paths) + len(self.errors)
            lines = "; ".join(f"{n}: {e}" for n, e in self.errors.items())
            raise DownloadError(f"{len(self.errors)} of {total} products failed: {lines}")


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
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
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
    zip's central directory (milliseconds); no CRC test (see ``transfer.verify_zip``)."""
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
    manifests = [PurePosixPath(i.filename.replace("\\", "/")) for i in infos]
    manifests = [m for m in manifests if m.name == "manifest.safe" and len(m.parts) <= 2]
    if not manifests:
        raise SafeError(f"{label}: {path.name} holds no manifest.safe (not a SAFE product zip)")
    tops = {m.parent.name for m in manifests}
    if name is not None and f"{name}.SAFE" not in tops and "" not in tops:
        other = sorted(tops)[0]
        raise SafeError(f"{label}: the zip holds {other}, another product")


def _manifest_objects(manifest: bytes, label: str) -> list[tuple[str, int | None, str | None]]:
    """``(href, size, md5)`` of every dataObject of a manifest.safe (size/md5 None if absent)."""
    import defusedxml.ElementTree as DET  # noqa: N814 - the usual alias
    from defusedxml import DefusedXmlException

    try:
        root = DET.fromstring(manifest, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:  # ParseError is a SyntaxError
        raise SafeError(f"{label}: manifest.safe cannot be read ({type(exc).__name__}: {exc})") from exc
    out: list[tuple[str, int | None, str | None]] = []
    for stream in root.iter("byteStream"):
        loc = stream.find("fileLocation")
        if loc is None or not loc.get("href"):
            continue
        href = str(loc.get("href")).removeprefix("./")
        size_text = stream.get("size")
        md5 = None
        for c in stream.findall("checksum"):
            if (c.get("checksumName") or "").upper() == "MD5" and c.text:
                md5 = c.text.strip().lower()
        out.append((href, int(size_text) if size_text and size_text.isdigit() else None, md5))
    return out


def check_safe_folder(path: Path, *, deep: bool = True) -> None:
    """Raise unless the .SAFE folder at ``path`` holds its manifest and every file the manifest
    lists, with the listed size and (``deep``) MD5. A manifest that lists no file is refused."""
    label = path.name.removesuffix(".SAFE")
    manifest = path / "manifest.safe"
    if not manifest.is_file():
        raise SafeError(f"{label}: {path} has no manifest.safe (not a SAFE product folder)")
    objects = _manifest_objects(manifest.read_bytes(), label)
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
            got = transfer.file_checksum(f, "md5")
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
        transfer.verify_zip(path, name or path.name)
    check_zip_layout(path, name)


# --------------------------------------------------------------------------------------------
# talking to the hub


class HubClient:
    """Talks to a hub about one product: URLs, online status, retrieval from the long-term archive.

    ``session``/``auth`` are defaults for every request; ``auth`` may be a mapping by record
    source (``{"dhus": ("user", "pw"), "cdse": CdseTokenAuth(...)}``). A plain
    ``(user, password)`` pair given for a CDSE record becomes a :class:`CdseTokenAuth` (one per
    user, so its tokens are reused). Every method returns promptly except
    :meth:`wait_until_online`.
    """

    def __init__(
        self,
        *,
        endpoints: HubEndpoints | None = None,
        session: requests.Session | None = None,
        auth: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints or HubEndpoints()
        self.session = session
        self.auth = auth
        self._sleep = sleep
        self._token_auths: dict[tuple[str, str, str], CdseTokenAuth | EarthdataAuth] = {}
        self._lock = threading.Lock()
        self._own_session: requests.Session | None = None

    def _session(self, session: requests.Session | None) -> requests.Session:
        if session is not None:
            return session
        if self.session is not None:
            return self.session
        with self._lock:
            if self._own_session is None:
                self._own_session = requests.Session()
            return self._own_session

    # ---- credentials and URLs

    @staticmethod
    def credentials(source: str, user: str, password: str, endpoints: HubEndpoints | None = None) -> Any:
        """Auth object for a hub: DHuS basic auth (what sentinelsat's session sends), CDSE tokens,
        ASF Earthdata bearer tokens."""
        endpoints = endpoints or HubEndpoints()
        if source == "cdse":
            return CdseTokenAuth(user, password, token_url=endpoints.cdse_token_url)
        if source == "asf":
            return EarthdataAuth(user=user, password=password, edl_url=endpoints.asf_edl_url)
        return (user, password)

    def auth_for(self, record: ProductLike, auth: Any = None) -> Any:
        """The auth object to use for ``record`` (``auth`` overrides the client's default)."""
        a = self.auth if auth is None else auth
        if isinstance(a, Mapping):
            a = a.get(record.source)
        if record.source in ("cdse", "asf") and isinstance(a, (tuple, list)) and len(a) == 2:
            # one token auth per hub and account, so that its tokens are reused
            user, password = str(a[0]), str(a[1])
            with self._lock:
                key = (record.source, user, password)
                if key not in self._token_auths:
                    self._token_auths[key] = self.credentials(record.source, user, password, self.endpoints)
                return self._token_auths[key]
        return a

    def download_url(self, record: ProductLike) -> str:
        """The URL of the product zip (record.url, else built from the uuid)."""
        if record.url:
            return record.url
        if not record.uuid:
            raise DownloadError(f"{record.name}: record has neither url nor uuid; cannot download")
        if record.source == "dhus":
            return f"{self.endpoints.dhus_url.rstrip('/')}/odata/v1/Products('{record.uuid}')/$value"
        if record.source == "cdse":
            return f"{self.endpoints.cdse_download_url.rstrip('/')}/Products({record.uuid})/$value"
        raise DownloadError(f"{record.name}: no download url in the {record.source} record")

    def _dhus_entity_url(self, record: ProductLike) -> str:
        url = self.download_url(record)
        if url.endswith("/$value"):
            return url[: -len("/$value")]
        if record.uuid:
            return f"{self.endpoints.dhus_url.rstrip('/')}/odata/v1/Products('{record.uuid}')"
        raise DownloadError(f"{record.name}: cannot derive the DHuS OData entity from {redact_url(url)}")

    def _cdse_entity_url(self, record: ProductLike) -> str:
        uuid = record.uuid
        if not uuid and record.url:
            m = re.search(r"Products\(([^)]+)\)", record.url)
            uuid = m.group(1).strip("'") if m else None
        if not uuid:
            raise DownloadError(f"{record.name}: CDSE record without uuid; cannot query or order it")
        return f"{self._cdse_odata_base(record)}/Products({uuid})"

    def _cdse_odata_base(self, record: ProductLike) -> str:
        """Catalogue OData root: the configured one, else the root of a non-CDSE record URL (mirrors, tests)."""
        configured = self.endpoints.cdse_odata_url.rstrip("/")
        if configured != HubEndpoints.cdse_odata_url or not record.url:
            return configured
        host = (urlsplit(record.url).hostname or "").lower()
        i = record.url.find("/odata/v1/")
        if host.endswith("dataspace.copernicus.eu") or i < 0:
            return configured
        return record.url[: i + len("/odata/v1")]

    # ---- offline products

    def check_online(self, record: ProductLike, *, session: requests.Session | None = None, auth: Any = None) -> bool:
        """Ask the hub whether the product can be downloaded now (DHuS ``Online/$value``, CDSE ``Online``)."""
        if record.source == "local":
            return local_product_path(record).exists()
        sess = self._session(session)
        a = self.auth_for(record, auth)
        if record.source == "dhus":
            url = self._dhus_entity_url(record) + "/Online/$value"
            resp = self._get(sess, url, a, record.name)
            if resp.status_code != 200:
                # DHuS versions without the Online property: the product is online.
                if "Online" in resp.text and resp.status_code in (400, 404, 500):
                    return True
                raise DownloadError(f"{record.name}: online check {redact_url(url)} failed (HTTP {resp.status_code})")
            return resp.text.strip().lower() == "true"
        if record.source == "cdse":
            url = self._cdse_entity_url(record)
            resp = self._get(sess, url, a, record.name)
            if resp.status_code != 200:
                raise DownloadError(f"{record.name}: online check {redact_url(url)} failed (HTTP {resp.status_code})")
            body = _odata_entity(resp, record.name)
            return bool(body.get("Online", True))
        return record.online is not False

    def request_retrieval(self, record: ProductLike, *, session: requests.Session | None = None, auth: Any = None) -> RetrievalStatus:
        """Ask the hub to restore an archived product; returns at once.

        DHuS: a GET of ``$value`` answering 202 starts the retrieval (200 means it is online;
        403 usually means the user's quota of retrievals is used up). CDSE: POST
        ``Products(<uuid>)/OData.CSC.Order``; the order id comes back in the status.
        """
        sess = self._session(session)
        a = self.auth_for(record, auth)
        if record.source == "dhus":
            url = self.download_url(record)
            try:
                resp = transfer.open_stream(sess, url, headers={"User-Agent": transfer.USER_AGENT}, auth=a, timeout=(15, 60))
            except requests.RequestException as exc:
                raise DownloadError(f"{record.name}: retrieval request {redact_url(url)} failed: {exc}") from exc
            with resp:
                if resp.status_code == 202:
                    log.info("%s: DHuS accepted the retrieval from its long-term archive", record.name)
                    return RetrievalStatus(record.name, "pending", message="DHuS retrieval accepted (HTTP 202)")
                if resp.status_code in (200, 206):
                    return RetrievalStatus(record.name, "online")
                if resp.status_code == 403:
                    raise DownloadError(
                        f"{record.name}: DHuS refused the retrieval (HTTP 403; quota of offline retrievals used up, "
                        "or the credentials lack download rights)"
                    )
                raise DownloadError(f"{record.name}: retrieval request {redact_url(url)} answered HTTP {resp.status_code}")
        if record.source == "cdse":
            if self.check_online(record, session=sess, auth=a):
                return RetrievalStatus(record.name, "online")
            url = self._cdse_entity_url(record) + "/OData.CSC.Order"
            try:
                resp = sess.post(url, json={}, auth=a, timeout=(15, 60), headers={"User-Agent": transfer.USER_AGENT})
            except requests.RequestException as exc:
                raise DownloadError(f"{record.name}: order {redact_url(url)} failed: {exc}") from exc
            if resp.status_code not in (200, 201, 202):
                raise DownloadError(
                    f"{record.name}: CDSE order {redact_url(url)} answered HTTP {resp.status_code}: {redact(resp.text)[:200]}")
            body = _odata_entity(resp, record.name)
            order_id = str(body.get("Id")) if body.get("Id") is not None else None
            state = _order_state(body.get("Status"))
            log.info("%s: CDSE order %s %s", record.name, order_id, body.get("Status"))
            return RetrievalStatus(record.name, state if state != "online" else "pending", order_id, str(body.get("StatusMessage") or ""))
        if self.check_online(record, session=sess, auth=a):
            return RetrievalStatus(record.name, "online")
        return RetrievalStatus(record.name, "failed", message=f"source {record.source!r} has no retrieval")

    def retrieval_status(
        self,
        record: ProductLike,
        *,
        order_id: str | None = None,
        session: requests.Session | None = None,
        auth: Any = None,
    ) -> RetrievalStatus:
        """One non-blocking poll: "online", "pending" or "failed" (a failed CDSE order)."""
        sess = self._session(session)
        a = self.auth_for(record, auth)
        if self.check_online(record, session=sess, auth=a):
            return RetrievalStatus(record.name, "online", order_id)
        if record.source == "cdse" and order_id:
            url = f"{self._cdse_odata_base(record)}/Orders({order_id})"
            resp = self._get(sess, url, a, record.name)
            if resp.status_code == 200:
                body = _odata_entity(resp, record.name)
                state = _order_state(body.get("Status"))
                msg = str(body.get("StatusMessage") or body.get("Status") or "")
                if state == "failed":
                    return RetrievalStatus(record.name, "failed", order_id, f"CDSE order {order_id} failed: {msg}")
                return RetrievalStatus(record.name, "pending", order_id, msg)
            return RetrievalStatus(record.name, "pending", order_id, f"order status HTTP {resp.status_code}")
        return RetrievalStatus(record.name, "pending", order_id)

    def wait_until_online(
        self,
        record: ProductLike,
        *,
        timeout: float,
        poll: float = 60.0,
        rerequest_every: int = 10,
        session: requests.Session | None = None,
        auth: Any = None,
    ) -> RetrievalStatus:
        """Request the retrieval and block until the product is online (timeout, poll in s).

        DHuS forgets retrievals now and then: the request is repeated every
        ``rerequest_every`` polls. Raises ``ProductOfflineError`` after ``timeout`` s or when
        the CDSE order failed.
        """
        start = time.monotonic()
        st = self.request_retrieval(record, session=session, auth=auth)
        polls = 0
        while not st.online:
            if st.state == "failed":
                raise ProductOfflineError(f"{record.name}: retrieval from the {record.source} archive failed: {st.message}")
            waited = time.monotonic() - start
            if waited >= timeout:
                raise ProductOfflineError(
                    f"{record.name}: still offline after waiting {waited:.0f} s (limit {timeout:.0f} s) for the "
                    f"{record.source} long-term archive" + (f" (order {st.order_id})" if st.order_id else "")
                    + "; try again later or raise the wait limit"
                )
            self._sleep(min(poll, max(0.0, timeout - waited)))
            polls += 1
            if record.source == "dhus" and rerequest_every and polls % rerequest_every == 0:
                st = self.request_retrieval(record, session=session, auth=auth)
            else:
                st = self.retrieval_status(record, order_id=st.order_id, session=session, auth=auth)
        log.info("%s: online after %.0f s", record.name, time.monotonic() - start)
        return st

    def _get(self, sess: requests.Session, url: str, auth: Any, name: str) -> requests.Response:
        try:
            resp = transfer.open_stream(sess, url, headers={"User-Agent": transfer.USER_AGENT}, auth=auth, timeout=(15, 60))
        except requests.RequestException as exc:
            raise DownloadError(f"{name}: request {redact_url(url)} failed: {exc}") from exc
        with resp:
            resp.content  # noqa: B018 - read the (small) body, then release the connection
        return resp




# --------------------------------------------------------------------------------------------
# the store


class ProductStore:
    """A folder of verified products, safe for concurrent processes.

    ``max_parallel``: downloads this store instance runs at once (threads of one process; the
    DAG maps the limit across workers onto an Airflow pool). ``session``/``auth``: defaults for
    every request; ``auth`` may be a mapping ``{"dhus": ..., "cdse": ...}`` by record source
    (see :meth:`credentials`). ``lock_timeout`` (s): how long to wait for another process
    working on the same product. ``transfer_options``: extra keyword arguments of
    ``transfer.download`` (``timeout``, ``min_rate``, ``chunk_size``, ...).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_parallel: int = 2,
        session: requests.Session | None = None,
        auth: Any = None,
        endpoints: HubEndpoints | None = None,
        retry: RetryPolicy | None = None,
        test_zip: bool = True,
        lock_timeout: float = 12 * 3600.0,
        lock_poll: float = 1.0,
        transfer_options: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_parallel < 1:
            raise InputError(f"max_parallel must be >= 1, got {max_parallel}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        register_auth(auth)
        self.max_parallel = max_parallel
        self._slots = threading.BoundedSemaphore(max_parallel)
        self.hub = HubClient(endpoints=endpoints, session=session, auth=auth, sleep=sleep)
        self.session = session
        self.auth = auth
        self.endpoints = self.hub.endpoints
        self.retry = retry or RetryPolicy()
        self.test_zip = test_zip
        self.lock_timeout = lock_timeout
        self.lock_poll = lock_poll
        self.transfer_options = dict(transfer_options or {})

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
                                             "verified_at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n")
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
        (an Airflow task defers on :meth:`retrieval_status` instead of blocking a worker).
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
        sess = session or self.session
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
                except transfer.HttpStatusError:
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
        opts: dict[str, Any] = {"test_zip": self.test_zip, "retry": self.retry,
                                "verify": lambda part: check_zip_layout(part, record.name)}
        opts.update(self.transfer_options)
        log.info("%s: downloading from %s", record.name, redact_url(url))
        owned = sess is None
        s = sess or requests.Session()
        try:
            return transfer.download(
                url, zp, session=s, auth=a, expected_size=record.size, checksum=record.checksum,
                checksum_algorithm=record.checksum_algorithm, progress=progress, label=record.name, **opts,
            )
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
            + "; poll retrieval_status() and fetch again when online"
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
                log.error("%s: %s", rec.name, exc)
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

    @staticmethod
    def credentials(source: str, user: str, password: str, endpoints: HubEndpoints | None = None) -> Any:
        """See :meth:`HubClient.credentials`."""
        return HubClient.credentials(source, user, password, endpoints)

    def download_url(self, record: ProductLike) -> str:
        return self.hub.download_url(record)

    def check_online(self, record: ProductLike, **kwargs: Any) -> bool:
        """See :meth:`HubClient.check_online`."""
        return self.hub.check_online(record, **kwargs)

    def request_retrieval(self, record: ProductLike, **kwargs: Any) -> RetrievalStatus:
        """See :meth:`HubClient.request_retrieval`."""
        return self.hub.request_retrieval(record, **kwargs)

    def retrieval_status(self, record: ProductLike, **kwargs: Any) -> RetrievalStatus:
        """See :meth:`HubClient.retrieval_status` (non-blocking)."""
        return self.hub.retrieval_status(record, **kwargs)

    def wait_until_online(self, record: ProductLike, **kwargs: Any) -> RetrievalStatus:
        """See :meth:`HubClient.wait_until_online` (blocking)."""
        return self.hub.wait_until_online(record, **kwargs)





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


def local_product_path(record: ProductLike) -> Path:
    """The path of a ``source == "local"`` record (``url`` is a path or file: URL); must exist."""
    if not record.url:
        raise DownloadError(f"{record.name}: local record without a path (url)")
    url = record.url
    path = Path(unquote(urlsplit(url).path)) if url.startswith("file:") else Path(url)
    if not path.exists():
        raise DownloadError(f"{record.name}: local product {path} does not exist")
    return path


def check_online(record: ProductLike, *, endpoints: HubEndpoints | None = None, **kwargs: Any) -> bool:
    """Module-level :meth:`HubClient.check_online` (``session=``, ``auth=`` keywords)."""
    return HubClient(endpoints=endpoints).check_online(record, **kwargs)


def request_retrieval(record: ProductLike, *, endpoints: HubEndpoints | None = None, **kwargs: Any) -> RetrievalStatus:
    """Module-level :meth:`HubClient.request_retrieval`."""
    return HubClient(endpoints=endpoints).request_retrieval(record, **kwargs)


def retrieval_status(record: ProductLike, *, endpoints: HubEndpoints | None = None, **kwargs: Any) -> RetrievalStatus:
    """Module-level :meth:`HubClient.retrieval_status` (one non-blocking poll)."""
    return HubClient(endpoints=endpoints).retrieval_status(record, **kwargs)


def wait_until_online(record: ProductLike, *, endpoints: HubEndpoints | None = None, **kwargs: Any) -> RetrievalStatus:
    """Module-level :meth:`HubClient.wait_until_online`."""
    return HubClient(endpoints=endpoints).wait_until_online(record, **kwargs)


def _odata_entity(resp: requests.Response, name: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as exc:
        raise DownloadError(f"{name}: {redact_url(resp.url)} sent no JSON ({redact(resp.text)[:100]!r})") from exc
    if isinstance(body, dict) and isinstance(body.get("d"), dict):  # OData v2 (DHuS)
        body = body["d"]
    if isinstance(body, dict) and isinstance(body.get("value"), dict):
        body = body["value"]
    if isinstance(body, dict) and isinstance(body.get("value"), list) and len(body["value"]) == 1:
        body = body["value"][0]
    if not isinstance(body, dict):
        raise DownloadError(f"{name}: unexpected OData answer from {redact_url(resp.url)}")
    return body


def _order_state(status: Any) -> str:
    s = str(status or "").lower().replace(" ", "_")
    if s in ("failed", "cancelled", "canceled", "error"):
        return "failed"
    if s in ("completed", "done", "succeeded"):
        return "online"
    return "pending"


def records_from_json(data: Any) -> list[ProductLike]:
    """Product records out of a selection's JSON (``{"products": [...]}``), a record, or lists of them.

    Uses ``catalog.ProductRecord.from_json`` when the catalogue module is there; falls back to
    :class:`ProductRef` for dicts that lack the catalogue's fields.
    """
    out: list[ProductLike] = []

    def record(d: Mapping[str, Any]) -> ProductLike:
        try:
            from bigearthnet_s1.catalog import ProductRecord
        except ImportError:
            return ProductRef.from_json(d)
        try:
            return ProductRecord.from_json(dict(d))
        except Exception:  # noqa: BLE001 - a partial record still downloads
            return ProductRef.from_json(d)

    def walk(x: Any) -> None:
        if isinstance(x, list):
            for item in x:
                walk(item)
        elif isinstance(x, Mapping):
            if "products" in x:
                walk(x["products"])
            elif "name" in x:
                out.append(record(x))
            else:
                raise InputError(f"JSON object with neither 'products' nor 'name': keys {sorted(x)[:8]}")
        else:
            raise InputError(f"unexpected JSON value {type(x).__name__} where product records were expected")

    walk(data)
    seen: dict[str, ProductLike] = {}
    for r in out:
        seen.setdefault(r.name, r)
    return list(seen.values())


def guess_source(url: str) -> str:
    """"cdse", "dhus", "asf", "local" or "http" for a bare product URL/path."""
    if "://" not in url or url.startswith("file:"):
        return "local"
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith("dataspace.copernicus.eu"):
        return "cdse"
    if host == "asf.alaska.edu" or host.endswith(".asf.alaska.edu"):
        return "asf"
    if "/odata/v1/Products('" in url:
        return "dhus"
    return "http"


__all__ = [
    "FetchReport",
    "HubClient",
    "HubEndpoints",
    "ProductLike",
    "ProductLock",
    "ProductRef",
    "ProductStore",
    "RetrievalStatus",
    "StoreLockTimeout",
    "UnsafeArchiveError",
    "check_online",
    "check_product_name",
    "local_product_path",
    "request_retrieval",
    "retrieval_status",
    "wait_until_online",
    "guess_source",
    "records_from_json",
    "unsafe_member_reason",
]
