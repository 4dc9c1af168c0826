"""HTTP download of one product file: resumable, retried, verified, atomic.

``download(url, dest)`` streams the body to ``<dest>.part``, resumes it with a ``Range``
request after a dropped connection (or after the process was killed), restarts cleanly when
the server ignores ``Range`` (200 instead of 206), retries transient failures (connection
errors, 408/429/5xx, stalls) a bounded number of times with the library's retry policy
(:mod:`bigearthnet_s1.retry`: exponential backoff with jitter, ``Retry-After`` honoured),
verifies the size, the hub's checksum (MD5, SHA-256, SHA3-256, BLAKE3 when the ``blake3``
package is importable; :mod:`bigearthnet_s1.checksum`) and the zip's integrity
(``zipfile.testzip``), then renames
``<dest>.part`` to ``dest`` with ``os.replace``. ``dest`` therefore only ever exists complete
and verified. One :class:`Download` object holds a download's settings and its state (bytes
kept, total, ETag, running hash) across its attempts.

Authentication: pass a ``requests.Session`` that already authenticates (for DHuS the session
of ``sentinelsat.SentinelAPI``, see :func:`dhus_session`) and/or a ``requests`` auth object
(``("user", "password")`` for basic auth, ``hub.CdseTokenAuth`` for the Copernicus Data
Space Ecosystem's OpenID token flow, ``earthdata.EarthdataAuth`` for ASF). An auth object
with an ``invalidate()`` method is asked for a new token once after a 401. Redirects are
followed here, not by ``requests``, so that the credentials travel to the hub's own download
hosts (CDSE redirects from ``catalogue.`` to ``zipper.``/``download.dataspace.copernicus.eu``)
and never to a foreign host.

Units: sizes and offsets in bytes, rates in bytes/s, durations in seconds.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any, TypedDict, Unpack
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.auth import AuthBase

from bigearthnet_s1 import __version__
from bigearthnet_s1.atomic import fsync_dir
from bigearthnet_s1.checksum import StreamHasher, checksum_supported, normalise_algorithm, verify_zip
from bigearthnet_s1.errors import (
    AuthenticationError,
    ChecksumError,
    DownloadError,
    HttpStatusError,
    NotAZipError,
    RetrievalPendingError,
)
from bigearthnet_s1.excerpt import body_excerpt, looks_like_html
from bigearthnet_s1.redact import redact, redact_url, register_auth, register_url
from bigearthnet_s1.retry import RETRY_STATUSES, RetryPolicy, retry_after_of

log = logging.getLogger(__name__)

USER_AGENT = f"bigearthnet-s1/{__version__} (+python-requests/{requests.__version__})"

_MiB = 1 << 20


# --------------------------------------------------------------------------------------------
# progress


@dataclass(frozen=True)
class TransferProgress:
    """A snapshot of one download: bytes so far (including a resumed prefix), rate, ETA."""

    label: str
    done: int
    total: int | None
    rate: float  # bytes/s over the last few seconds
    eta: float | None  # s, None when total or rate unknown
    elapsed: float  # s since this download() call started
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def describe(self) -> str:
        mb = 1e6
        if self.total:
            size = f"{self.done / mb:.1f}/{self.total / mb:.1f} MB ({100 * self.done / self.total:.1f}%)"
        else:
            size = f"{self.done / mb:.1f} MB"
        eta = f", ETA {_fmt_seconds(self.eta)}" if self.eta is not None and not self.finished else ""
        return f"{self.label}: {size} at {self.rate / mb:.1f} MB/s{eta}"


ProgressCallback = Callable[[TransferProgress], None]


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class ProgressReporter:
    """Turns byte counts into rate/ETA; logs every ``log_interval`` s, calls back every ``callback_interval`` s."""

    def __init__(
        self,
        label: str,
        *,
        callback: ProgressCallback | None = None,
        log_interval: float = 30.0,
        callback_interval: float = 0.2,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.callback = callback
        self.log_interval = log_interval
        self.callback_interval = callback_interval
        self.window = window
        self.clock = clock
        self.total: int | None = None
        self.t0 = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._last_log = self.t0
        self._last_cb = -1e18
        self.done = 0

    def reset(self, done: int, total: int | None) -> None:
        """A new attempt starts at ``done`` bytes (rate window restarts)."""
        self.done = done
        self.total = total
        self._samples.clear()
        self._samples.append((self.clock(), done))

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def snapshot(self, finished: bool = False) -> TransferProgress:
        now = self.clock()
        rate = self.rate()
        eta = (self.total - self.done) / rate if self.total is not None and rate > 0 else None
        return TransferProgress(self.label, self.done, self.total, rate, eta, now - self.t0, finished)

    def update(self, done: int) -> None:
        now = self.clock()
        self.done = done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        if self.callback is not None and now - self._last_cb >= self.callback_interval:
            self._last_cb = now
            self.callback(self.snapshot())
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            log.info("%s", self.snapshot().describe())

    def finish(self) -> None:
        snap = self.snapshot(finished=True)
        if self.callback is not None:
            self.callback(snap)
        log.info("%s: %.1f MB done in %s", self.label, self.done / 1e6, _fmt_seconds(snap.elapsed))

# --------------------------------------------------------------------------------------------
# sessions and redirects


def dhus_session(user: str, password: str, api_url: str = "https://apihub.copernicus.eu/apihub/") -> requests.Session:
    """The authenticated ``requests.Session`` of ``sentinelsat.SentinelAPI`` for a DHuS hub."""
    from sentinelsat import SentinelAPI

    return SentinelAPI(user, password, api_url).session


class _NoAuth(AuthBase):
    """Suppresses a session's default auth on a hop to a foreign host."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.pop("Authorization", None)
        return r


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def same_site(origin: str, target: str) -> bool:
    """May credentials for ``origin`` be sent to ``target``?

    Yes for the same host, or a host under the origin's parent domain (``catalogue.dataspace.
    copernicus.eu`` -> ``zipper.dataspace.copernicus.eu``); never on an https -> http downgrade.
    """
    a, b = urlsplit(origin), urlsplit(target)
    if a.scheme == "https" and b.scheme != "https":
        return False
    ha, hb = (a.hostname or "").lower(), (b.hostname or "").lower()
    if ha == hb:
        return True
    if _is_ip(ha) or _is_ip(hb) or ha.count(".") < 2:
        return False
    parent = ha.split(".", 1)[1]
    return hb == parent or hb.endswith("." + parent)


def open_stream(
    session: requests.Session,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    auth: Any = None,
    timeout: float | tuple[float, float] = (15.0, 60.0),
    method: str = "GET",
    max_redirects: int = 10,
) -> requests.Response:
    """Send a streaming request, following redirects here (credentials only to the same site)."""
    current = url
    for _ in range(max_redirects + 1):
        hop_headers = dict(headers or {})
        hop_auth = auth
        if not same_site(url, current):
            hop_auth = _NoAuth()
            hop_headers["Authorization"] = None  # type: ignore[assignment]  # drops a session header
        resp = session.request(
            method, current, headers=hop_headers, auth=hop_auth, stream=True, timeout=timeout, allow_redirects=False
        )
        if resp.is_redirect and "location" in resp.headers:
            current = urljoin(current, resp.headers["location"])
            resp.close()
            if resp.status_code == 303:
                method = "GET"
            continue
        return resp
    raise DownloadError(f"too many redirects fetching {redact_url(url)}")

# --------------------------------------------------------------------------------------------
# the download


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Restart(Exception):
    """Internal: start again from byte 0 right away (server ignored Range, stale part)."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)
_CONTENT_RANGE_UNSAT = re.compile(r"bytes\s+\*/(\d+)", re.I)


def part_path(dest: Path) -> Path:
    """Where ``download(url, dest)`` keeps the unfinished body: ``<dest>.part``."""
    return dest.with_name(dest.name + ".part")


def _body_snippet(resp: requests.Response, limit: int = 2048) -> bytes:
    try:
        return resp.raw.read(limit, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - only for an error message
        return b""


def _reader(resp: requests.Response) -> Callable[[int], bytes]:
    """A ``read1``-style function on the response body: returns as soon as data is there.

    We read through the ``http.client`` response under urllib3 (``resp.raw._fp``): it is
    about twice as fast as ``urllib3``'s own ``read1``/``read`` on loopback (measured 1.1 vs
    0.4-0.8 GB/s) and, unlike ``read(n)``, does not block until ``n`` bytes arrived, which the
    low-speed check needs. Content-Encoding is requested as identity, so no decoding is lost.
    Falls back to urllib3's public ``read1`` if that attribute is missing.
    """
    fp = getattr(resp.raw, "_fp", None)
    if fp is not None and hasattr(fp, "read1"):
        return fp.read1
    return lambda n: resp.raw.read1(n)


class DownloadOptions(TypedDict, total=False):
    """The keyword options of :func:`download` (and of :class:`Download`); see :func:`download`."""

    session: requests.Session | None
    auth: Any
    headers: Mapping[str, str] | None
    expected_size: int | None
    checksum: str | None
    checksum_algorithm: str | None
    expect_zip: bool
    test_zip: bool
    retry: RetryPolicy | None
    progress: ProgressCallback | None
    log_interval: float
    timeout: float | tuple[float, float]
    chunk_size: int
    min_rate: float | None
    min_rate_window: float
    label: str | None
    check_disk_space: bool
    verify: Callable[[Path], None] | None


def download(url: str, dest: str | os.PathLike[str], **options: Unpack[DownloadOptions]) -> Path:
    """Download ``url`` to ``dest`` (atomically, verified); return ``dest``.

    A ``<dest>.part`` left by an earlier, interrupted call (or a killed process) is resumed.
    ``expected_size`` (bytes) is checked against the server's size when given: a mismatch
    only logs a warning, since catalogue sizes can be rounded; the server's
    ``Content-Length``/``Content-Range`` size is what the body must match. ``checksum`` is the
    hub's hex digest with ``checksum_algorithm`` ("MD5", "SHA256", "SHA3-256", "BLAKE3");
    an algorithm this Python cannot compute is logged and skipped (the zip test still runs).
    ``expect_zip`` (default True): fail fast when the body does not start like a zip (an HTML
    error page); ``test_zip`` (True): run ``zipfile.testzip`` (reads the whole file again)
    before the rename. ``min_rate`` bytes/s (1024) averaged over ``min_rate_window`` s (120):
    a slower attempt is abandoned and resumed (like curl's ``--speed-limit``); None disables
    it. ``timeout`` is requests' (connect, read) timeout in s ((15, 60)); ``chunk_size`` the
    read size in bytes (4 MiB). ``progress`` gets a :class:`TransferProgress` a few times a
    second; the rate and ETA also go to the log every ``log_interval`` s (30). ``verify(part)``:
    a further check of the complete body before the rename (the store checks the product's
    layout); whatever it raises is raised, and the part is discarded. ``retry``: the
    :class:`~bigearthnet_s1.retry.RetryPolicy` (default ``RetryPolicy()``). ``label`` names
    the download in messages (default: the file name). ``check_disk_space`` (True): fail
    before writing when the folder lacks room for the rest of the body. ``session``,
    ``auth``, ``headers``: see the module doc.

    A body that fails any verification is deleted (never kept as a ``.part`` to resume), so a
    corrupted download cannot block the next attempt.

    Raises ``DownloadError`` (after the retries), ``ChecksumError`` (verification failed
    ``retry.checksum_retries + 1`` times; nothing is kept), ``NotAZipError``,
    ``AuthenticationError`` (401/403), ``RetrievalPendingError`` (202: product offline,
    retrieval triggered), ``HttpStatusError`` (404 and other non-retried statuses).
    """
    return Download(url, dest, options).run()


class Download:
    """One download of ``url`` to ``dest``: its settings (see :func:`download`) and its state
    across attempts: the bytes kept in the part (``offset``), the size the server announced
    (``total``), the strong ETag that makes a resume safe (``etag``), the running hash."""

    def __init__(self, url: str, dest: str | os.PathLike[str], options: DownloadOptions) -> None:
        self.url = url
        self.dest = Path(dest)
        self.part = part_path(self.dest)
        self.label = options.get("label") or self.dest.name
        self.retry = options.get("retry") or RetryPolicy()
        self.session = options.get("session")
        self.auth = options.get("auth")
        self.headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(options.get("headers") or {})}
        self.expected_size = options.get("expected_size")
        self.checksum = options.get("checksum")
        self.algo = self._algorithm(options.get("checksum_algorithm"))
        self.expect_zip = options.get("expect_zip", True)
        self.test_zip = options.get("test_zip", True)
        self.timeout = options.get("timeout", (15.0, 60.0))
        self.chunk_size = options.get("chunk_size", 4 * _MiB)
        self.min_rate = options.get("min_rate", 1024.0)
        self.min_rate_window = options.get("min_rate_window", 120.0)
        self.check_disk_space = options.get("check_disk_space", True)
        self.verify = options.get("verify")
        self.reporter = ProgressReporter(self.label, callback=options.get("progress"),
                                         log_interval=options.get("log_interval", 30.0))
        self.offset = 0
        self.total: int | None = None
        self.etag: str | None = None
        self.hasher: StreamHasher | None = None

    def _algorithm(self, name: str | None) -> str | None:
        """The checksum algorithm to compute (None: no checksum, or one this Python lacks)."""
        if not self.checksum:
            return None
        if checksum_supported(name or "md5"):
            return normalise_algorithm(name or "md5")
        log.warning("%s: cannot verify %s checksum here (blake3 not installed?); relying on the zip test", self.label, name)
        return None

    # ---- the attempts

    def run(self) -> Path:
        """Download, retrying per the policy, verify, rename into place; return ``dest``."""
        register_url(self.url)
        register_auth(self.auth)
        register_auth(getattr(self.session, "auth", None))
        own_session = self.session is None
        sess = self.session or requests.Session()
        if self.part.exists():
            self.offset = self.part.stat().st_size
            if self.offset:
                log.info("%s: resuming from %.1f MB kept in %s", self.label, self.offset / 1e6, self.part.name)
        try:
            self._until_verified(sess)
            self.reporter.finish()
            os.replace(self.part, self.dest)
            fsync_dir(self.dest.parent)
            return self.dest
        except BaseException:
            self._close_hasher()
            raise
        finally:
            if own_session:
                sess.close()

    def _until_verified(self, sess: requests.Session) -> None:
        """Attempts until the part holds the whole body and it passed verification."""
        rng = random.Random(self.retry.seed)
        failures = attempts = bad_verifications = 0
        auth_retried = False
        while True:
            attempts += 1
            start_offset = self.offset
            try:
                self._attempt(sess)
            except _Restart as exc:
                log.warning("%s: %s; restarting from byte 0", self.label, exc)
                self._truncate()
                if attempts >= self.retry.max_attempts:
                    raise DownloadError(f"{self.label}: giving up after {attempts} attempts ({exc})") from None
                continue
            except AuthenticationError:
                token_auth = self.auth if self.auth is not None else getattr(sess, "auth", None)
                if not auth_retried and token_auth is not None and hasattr(token_auth, "invalidate"):
                    auth_retried = True
                    token_auth.invalidate()
                    log.info("%s: 401 with the current token; renewing it", self.label)
                    continue
                raise
            except _Retry as exc:
                failures = 1 if self.offset > start_offset else failures + 1
                self._wait(exc, failures, attempts, rng)
                continue
            try:
                self._verify()
            except ChecksumError as exc:
                bad_verifications += 1
                self._discard()
                if bad_verifications > self.retry.checksum_retries or isinstance(exc, NotAZipError):
                    raise
                log.warning("%s: %s; downloading again from scratch", self.label, exc)
                continue
            except Exception:
                self._discard()  # refused content: never resumed by a later call
                raise
            return

    def _wait(self, exc: _Retry, failures: int, attempts: int, rng: random.Random) -> None:
        """Sleep before the next attempt, or raise ``DownloadError`` when the policy says stop."""
        if failures > self.retry.max_failures or attempts >= self.retry.max_attempts:
            raise DownloadError(
                f"{self.label}: giving up after {attempts} attempts ({failures} in a row without progress); "
                f"last error: {exc.reason}; {self.offset} bytes kept in {self.part} for a later resume"
            ) from None
        if self.retry.too_long(exc.retry_after):
            raise DownloadError(
                f"{self.label}: server asks to retry in {exc.retry_after:.0f} s "
                f"(limit {self.retry.max_retry_after:.0f} s): {exc.reason}"
            ) from None
        wait = self.retry.delay(failures, exc.retry_after, rng)
        log.warning("%s: %s; retry %d in %.1f s (at byte %d)", self.label, exc.reason, attempts, wait, self.offset)
        self.retry.sleep(wait)

    # ---- one attempt

    def _attempt(self, sess: requests.Session) -> None:
        """One HTTP request; appends to the part and returns when the body is complete."""
        req_headers = dict(self.headers)
        if self.offset > 0:
            req_headers["Range"] = f"bytes={self.offset}-"
            if self.etag:
                req_headers["If-Range"] = self.etag
        try:
            resp = open_stream(sess, self.url, headers=req_headers, auth=self.auth, timeout=self.timeout)
        except DownloadError:
            raise
        except (requests.ConnectionError, requests.Timeout, OSError, HTTPException) as exc:
            raise _Retry(f"connection failed: {exc}") from None
        except requests.RequestException as exc:
            raise DownloadError(f"{self.label}: request to {redact_url(self.url)} failed: {exc}") from exc
        with resp:
            if self._accept(resp):
                self._receive(resp)
        if self.total is not None and self.offset < self.total:
            raise _Retry(f"connection closed at byte {self.offset} of {self.total}")
        if self.total is None:
            self.total = self.offset

    def _accept(self, resp: requests.Response) -> bool:
        """Check the answer's status and headers against the part; False when the part was
        already complete (nothing to read)."""
        status = resp.status_code
        if status == 202:
            raise RetrievalPendingError(
                f"{self.label}: product is offline (in the hub's long-term archive); the hub accepted the retrieval "
                f"request (HTTP 202) - wait until it is online, then fetch again"
            )
        if status == 416 and self.offset > 0:
            m = _CONTENT_RANGE_UNSAT.search(resp.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == self.offset:
                self.total = self.offset  # the part was already complete
                self._ensure_hasher()
                return False
            raise _Restart(f"server refused Range from byte {self.offset} (HTTP 416)")
        if status not in (200, 206):
            raise self._status_error(resp)
        if status == 206:
            m = _CONTENT_RANGE.search(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != self.offset:
                raise _Restart(f"server answered range {resp.headers.get('Content-Range')!r} for bytes={self.offset}-")
            self.total = int(m.group(3)) if m.group(3) != "*" else None
        else:  # 200: the whole body
            if self.offset > 0:
                log.warning("%s: server ignored the Range request (HTTP 200); restarting from byte 0", self.label)
                self._truncate()
            length = resp.headers.get("Content-Length")
            self.total = int(length) if length and length.isdigit() else None
        self.etag = resp.headers.get("ETag") if not (resp.headers.get("ETag") or "").startswith("W/") else None
        if self.expect_zip and self.offset == 0 and "text/html" in resp.headers.get("Content-Type", "").lower():
            body = _body_snippet(resp)
            self.part.unlink(missing_ok=True)
            raise NotAZipError(f"{self.label}: the server sent an HTML page, not a zip ({redact_url(self.url)}): "
                               f"{body_excerpt(body, 200)!r}")
        if self.total is not None and self.offset > self.total:
            raise _Restart(f"kept part ({self.offset} bytes) is longer than the file ({self.total} bytes)")
        if self.check_disk_space and self.total is not None:
            free = shutil.disk_usage(self.part.parent).free
            if free < self.total - self.offset:
                raise DownloadError(
                    f"{self.label}: not enough disk space in {self.part.parent}: need "
                    f"{(self.total - self.offset) / 1e6:.0f} MB, {free / 1e6:.0f} MB free"
                )
        return True

    def _status_error(self, resp: requests.Response) -> Exception:
        """The error of a status that is neither 200/206 nor handled above."""
        status = resp.status_code
        excerpt = body_excerpt(_body_snippet(resp), 200)
        quoted = f" {excerpt!r}" if excerpt else ""
        if status in RETRY_STATUSES:
            return _Retry(f"HTTP {status} {resp.reason or ''}".strip() + quoted, retry_after_of(resp))
        where = redact_url(self.url)
        if status in (401, 403):
            return AuthenticationError(f"{self.label}: hub refused the credentials for {where} (HTTP {status}):{quoted}")
        return HttpStatusError(f"{self.label}: HTTP {status} {resp.reason or ''} for {where}:{quoted}", status, self.url)

    def _receive(self, resp: requests.Response) -> None:
        """Append the body to the part (hashing it on the way); abandon an attempt slower
        than ``min_rate``."""
        self._ensure_hasher()
        self.reporter.reset(self.offset, self.total)
        read = _reader(resp)
        window_start, window_bytes = time.monotonic(), 0
        first = self.offset == 0
        with open(self.part, "r+b" if self.part.exists() else "wb") as f:
            f.seek(self.offset)
            f.truncate()
            while True:
                want = self.chunk_size if self.total is None else min(self.chunk_size, self.total - self.offset)
                if want <= 0:
                    break
                try:
                    data = read(want)
                except (OSError, HTTPException, urllib3.exceptions.HTTPError, requests.RequestException, ValueError) as exc:
                    f.flush()
                    raise _Retry(f"connection lost at byte {self.offset}: {exc.__class__.__name__}: {exc}") from None
                if not data:
                    break
                if first:
                    first = False
                    self._check_zip_start(data)
                self._append(f, data)
                window_bytes += len(data)
                if self.min_rate is not None:
                    now = time.monotonic()
                    if now - window_start >= self.min_rate_window:
                        rate = window_bytes / (now - window_start)
                        if rate < self.min_rate:
                            f.flush()
                            raise _Retry(f"transfer too slow ({rate:.0f} B/s < {self.min_rate:.0f} B/s "
                                         f"for {self.min_rate_window:.0f} s)")
                        window_start, window_bytes = now, 0
            f.flush()
            os.fsync(f.fileno())

    def _check_zip_start(self, data: bytes) -> None:
        """Refuse a body whose first bytes are an HTML page or anything but a zip."""
        if not self.expect_zip or data.startswith(b"PK"):
            return
        self.part.unlink(missing_ok=True)
        where = redact_url(self.url)
        if looks_like_html(data[:512]):
            raise NotAZipError(f"{self.label}: the server sent an HTML page, not a zip ({where}): "
                               f"{body_excerpt(data[:2048], 200)!r}")
        raise NotAZipError(f"{self.label}: the server's body does not start like a zip file ({where}): "
                           f"{redact(repr(data[:64]))}")

    def _append(self, f: IO[bytes], data: bytes) -> None:
        try:
            f.write(data)
        except OSError as exc:
            raise DownloadError(f"{self.label}: cannot write {self.part}: {exc}") from exc
        if self.hasher is not None:
            self.hasher.update(data)
        self.offset += len(data)
        self.reporter.update(self.offset)

    # ---- the part

    def _ensure_hasher(self) -> None:
        if self.algo is None or self.hasher is not None:
            return
        self.hasher = StreamHasher(self.algo)
        if self.offset > 0:
            self.hasher.feed_file(self.part, self.offset)

    def _close_hasher(self) -> None:
        if self.hasher is not None:
            self.hasher.close()
        self.hasher = None

    def _truncate(self) -> None:
        """Start again from byte 0 with an empty part."""
        self._close_hasher()
        self.offset = 0
        self.etag = None
        with open(self.part, "wb"):
            pass

    def _discard(self) -> None:
        """Delete the part (its content was refused: never resumed)."""
        self._close_hasher()
        self.offset = 0
        self.total = None
        self.etag = None
        self.part.unlink(missing_ok=True)

    def _verify(self) -> None:
        """The complete part against the announced size, the hub's checksum, the zip test and
        the caller's ``verify``."""
        size = self.part.stat().st_size
        if self.total is not None and size != self.total:
            raise ChecksumError(f"{self.label}: {size} bytes on disk but the server announced {self.total}")
        if self.expected_size is not None and size != self.expected_size:
            log.warning("%s: catalogue size %d differs from the downloaded size %d", self.label, self.expected_size, size)
        if self.checksum and self.algo is not None:
            self._ensure_hasher()  # e.g. the part was already complete before this call
            assert self.hasher is not None
            got = self.hasher.hexdigest()
            self.hasher = None
            if got.lower() != self.checksum.strip().lower():
                raise ChecksumError(f"{self.label}: {self.algo.upper()} checksum mismatch: "
                                    f"hub says {self.checksum.lower()}, file has {got}")
            log.info("%s: %s checksum verified", self.label, self.algo.upper())
        if self.test_zip:
            verify_zip(self.part, self.label)
        if self.verify is not None:
            self.verify(self.part)


__all__ = [
    "USER_AGENT",
    "Download",
    "DownloadOptions",
    "HttpStatusError",
    "NotAZipError",
    "ProgressCallback",
    "ProgressReporter",
    "RetrievalPendingError",
    "TransferProgress",
    "dhus_session",
    "download",
    "open_stream",
    "part_path",
    "same_site",
]
