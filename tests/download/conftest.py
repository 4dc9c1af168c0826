"""A real HTTP hub on loopback that injects faults, plus product zips and helpers.

``FaultHub`` (``http.server.ThreadingHTTPServer`` in a thread) serves DHuS-style
(``/odata/v1/Products('<uuid>')/$value``, ``/Online/$value``) and CDSE-style
(``/cdse/odata/v1/Products(<uuid>)``, ``/$value``, ``/OData.CSC.Order``, ``/Orders(<id>)``)
endpoints and a Keycloak-like token endpoint (``/auth/token``). Each ``HubProduct`` carries
its own fault script: dropped connections at given offsets (FIN or RST), statuses to answer
first (429 with Retry-After, 503, ...), a server that ignores Range, slow trickles, an
offline period, a substituted body (HTML page, corrupted byte). Every request is logged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bigearthnet_s1.hub import ProductRef
from bigearthnet_s1.retry import RetryPolicy

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
NAME2 = "S1B_IW_GRDH_1SDV_20170614T053211_20170614T053236_006053_00AA21_1F3D"


def make_product_zip(name: str, *, size: int = 3_000_000, seed: int = 0, evil: str | None = None, top: str | None = None) -> bytes:
    """A SAFE-like zip: manifest, annotation, one stored (incompressible) measurement of ``size`` bytes.

    ``evil``: "dotdot" adds ``../evil.txt``, "symlink" a symlink member, "absolute" ``/tmp/x``.
    ``top``: folder name inside the zip (default ``<name>.SAFE``).
    """
    rng = random.Random(seed)
    top = top or f"{name}.SAFE"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/manifest.safe", f"<xfdu:XFDU><!-- {name} --></xfdu:XFDU>\n" * 20, zipfile.ZIP_DEFLATED)
        zf.writestr(f"{top}/annotation/s1a-iw-grd-vv.xml", "<product><adsHeader/></product>\n" * 50, zipfile.ZIP_DEFLATED)
        zf.writestr(f"{top}/measurement/s1a-iw-grd-vv.tiff", rng.randbytes(size), zipfile.ZIP_STORED)
        if evil == "dotdot":
            zf.writestr(f"{top}/../../evil.txt", "escaped")
        elif evil == "absolute":
            zf.writestr("/tmp/evil-absolute.txt", "escaped")
        elif evil == "symlink":
            info = zipfile.ZipInfo(f"{top}/support/link")
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@dataclass
class HubProduct:
    name: str
    uuid: str
    data: bytes
    content_type: str = "application/zip"
    # fault script (consumed request by request)
    drops: list[int] = field(default_factory=list)  # absolute offsets at which a response is cut
    drop_style: str = "fin"  # "fin" (orderly close) or "rst" (reset) or "alternate"
    statuses: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answered before the body
    always_status: int | None = None
    ignore_range: bool = False
    trickle_requests: int = 0  # the first N body responses trickle ...
    trickle_bytes: int = 0  # ... their first trickle_bytes bytes (0: the whole body)
    trickle_step: int = 256
    trickle_delay: float = 0.01
    throttle: float | None = None  # bytes/s for every response
    body: bytes | None = None  # served instead of data (HTML page, corrupted copy)
    offline_polls: int = -1  # -1 online; else online after this many polls once retrieval was requested
    require_token: bool = False
    order_fails: bool = False
    forget_once_at: int | None = None  # the hub forgets the retrieval request after this many polls
    # state
    retrieval_requested: bool = False
    polls: int = 0
    body_requests: int = 0
    bytes_served: int = 0

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def online(self) -> bool:
        return self.offline_polls < 0 or (self.retrieval_requested and self.polls >= self.offline_polls)


class FaultHub:
    def __init__(self) -> None:
        self.products: dict[str, HubProduct] = {}
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # access token -> expiry (server clock)
        self.refresh_tokens: set[str] = set()
        self.token_grants: list[str] = []
        self.users = {"alice": "secret"}
        self.token_lifetime = 600.0
        self.orders: dict[str, dict[str, Any]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._n = 0
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hub.handle(self, "GET")

            def do_POST(self) -> None:
                hub.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- setup helpers

    def add(self, name: str = NAME, data: bytes | None = None, **faults: Any) -> HubProduct:
        self._n += 1
        uuid = f"{self._n:08d}-0000-4000-8000-{abs(hash(name)) % 10**12:012d}"
        p = HubProduct(name=name, uuid=uuid, data=data if data is not None else make_product_zip(name), **faults)
        self.products[uuid] = p
        return p

    def dhus_url(self, p: HubProduct) -> str:
        return f"{self.base}/odata/v1/Products('{p.uuid}')/$value"

    def cdse_url(self, p: HubProduct) -> str:
        return f"{self.base}/cdse/odata/v1/Products({p.uuid})/$value"

    def record(self, p: HubProduct, source: str = "dhus", *, checksum: bool = True, online: bool | None = True, **kw: Any) -> ProductRef:
        url = self.dhus_url(p) if source == "dhus" else self.cdse_url(p)
        return ProductRef(
            name=kw.pop("name", p.name), url=kw.pop("url", url), source=source, uuid=p.uuid, size=len(p.data),
            checksum=p.md5 if checksum else None, checksum_algorithm="MD5" if checksum else None, online=online, **kw,
        )

    def requests_for(self, p: HubProduct, kind: str = "value") -> list[dict[str, Any]]:
        return [e for e in self.log if e.get("uuid") == p.uuid and e["kind"] == kind]

    # ---- request handling

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path
        entry: dict[str, Any] = {
            "method": method, "path": path, "range": h.headers.get("Range"), "auth": h.headers.get("Authorization"),
            "host": h.headers.get("Host"), "t": time.monotonic(), "kind": "other",
        }
        with self.lock:
            self.log.append(entry)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if path == "/auth/token" and method == "POST":
            return self._token(h, body, entry)
        if path.startswith("/redirect-foreign/"):  # same server, other host name: credentials must not follow
            target = f"http://localhost:{self.port}/{path.split('/', 2)[2]}"
            return self._send(h, 302, b"", {"Location": target}, entry)
        if path.startswith("/redirect/"):
            return self._send(h, 302, b"", {"Location": "/" + path.split("/", 2)[2]}, entry)
        m = re.fullmatch(r"/odata/v1/Products\('([^']+)'\)(/Online/\$value|/\$value)?", path)
        cdse = False
        if not m:
            m = re.fullmatch(r"/cdse/odata/v1/Products\(([^)]+)\)(/\$value|/OData\.CSC\.Order)?", path)
            cdse = True
        if not m:
            mo = re.fullmatch(r"/cdse/odata/v1/Orders\(([^)]+)\)", path)
            if mo and mo.group(1) in self.orders:
                return self._order_status(h, mo.group(1), entry)
            return self._send(h, 404, b"<html><title>Not Found</title></html>", {"Content-Type": "text/html"}, entry)
        p = self.products.get(m.group(1))
        if p is None:
            return self._send(h, 404, b"<html><title>No such product</title></html>", {"Content-Type": "text/html"}, entry)
        entry["uuid"] = p.uuid
        if p.require_token and not self._token_ok(h):
            entry["kind"] = "value" if (m.group(2) or "").endswith("$value") else "meta"
            return self._send(h, 401, b'{"detail":"Expired signature!"}', {"Content-Type": "application/json"}, entry)
        suffix = m.group(2) or ""
        if suffix == "/Online/$value":
            entry["kind"] = "online"
            with self.lock:
                if p.retrieval_requested:
                    p.polls += 1
                    if p.forget_once_at is not None and p.polls == p.forget_once_at:
                        p.retrieval_requested, p.polls, p.forget_once_at = False, 0, None
            return self._send(h, 200, b"true" if p.online else b"false", {"Content-Type": "text/plain"}, entry)
        if suffix == "/OData.CSC.Order" and method == "POST":
            entry["kind"] = "order"
            with self.lock:
                p.retrieval_requested = True
                oid = f"order-{len(self.orders) + 1}"
                self.orders[oid] = {"uuid": p.uuid, "polls": 0}
            order = {"Id": oid, "Status": "queued", "StatusMessage": "request is queued"}
            return self._json(h, 201, {"@odata.context": "$metadata#OrderEntity", "value": order}, entry)
        if cdse and suffix == "":
            entry["kind"] = "online"
            with self.lock:
                if p.retrieval_requested:
                    p.polls += 1
            body = {"@odata.context": "$metadata#Products/$entity", "Id": p.uuid, "Name": p.name + ".SAFE",
                    "Online": p.online, "ContentLength": len(p.data)}
            return self._json(h, 200, body, entry)
        if suffix == "/$value":
            entry["kind"] = "value"
            if not p.online:
                with self.lock:
                    p.retrieval_requested = True
                if cdse:
                    return self._json(h, 422, {"detail": "product is offline; order it first"}, entry)
                return self._send(h, 202, b"", {}, entry)
            return self._serve_body(h, p, entry)
        return self._send(h, 405, b"", {}, entry)

    def _token_ok(self, h: BaseHTTPRequestHandler) -> bool:
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return False
        exp = self.tokens.get(auth[7:])
        return exp is not None and exp > time.monotonic()

    def _token(self, h: BaseHTTPRequestHandler, body: bytes, entry: dict[str, Any]) -> None:
        from urllib.parse import parse_qs

        entry["kind"] = "token"
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type", "")
        with self.lock:
            self.token_grants.append(grant)
        if form.get("client_id") != "cdse-public":
            return self._json(h, 401, {"error": "invalid_client"}, entry)
        if grant == "password":
            if self.users.get(form.get("username", "")) != form.get("password"):
                return self._json(h, 401, {"error": "invalid_grant", "error_description": "Invalid user credentials"}, entry)
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return self._json(h, 400, {"error": "invalid_grant", "error_description": "Token is not active"}, entry)
        else:
            return self._json(h, 400, {"error": "unsupported_grant_type"}, entry)
        with self.lock:
            n = len(self.token_grants)
            access, refresh = f"access-{n}", f"refresh-{n}"
            self.tokens[access] = time.monotonic() + self.token_lifetime
            self.refresh_tokens.add(refresh)
        body = {"access_token": access, "expires_in": 600, "refresh_token": refresh, "refresh_expires_in": 3600,
                "token_type": "Bearer"}
        return self._json(h, 200, body, entry)

    def _order_status(self, h: BaseHTTPRequestHandler, oid: str, entry: dict[str, Any]) -> None:
        entry["kind"] = "order_status"
        order = self.orders[oid]
        p = self.products[order["uuid"]]
        entry["uuid"] = p.uuid
        if p.order_fails:
            status = "failed"
        else:
            status = "completed" if p.online else "in_progress"
        return self._json(h, 200, {"Id": oid, "Status": status, "StatusMessage": "LTA error" if p.order_fails else status}, entry)

    def _json(self, h: BaseHTTPRequestHandler, status: int, obj: Any, entry: dict[str, Any]) -> None:
        self._send(h, status, json.dumps(obj).encode(), {"Content-Type": "application/json"}, entry)

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], entry: dict[str, Any]) -> None:
        entry["status"] = status
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)

    def _serve_body(self, h: BaseHTTPRequestHandler, p: HubProduct, entry: dict[str, Any]) -> None:
        with self.lock:
            if p.statuses:
                status, headers = p.statuses.pop(0)
                page = f"<html><head><title>{status} Error</title></head><body>busy</body></html>".encode()
                return self._send(h, status, page, {"Content-Type": "text/html", **headers}, entry)
            if p.always_status is not None:
                html = b"<html><title>Service Unavailable</title></html>"
                return self._send(h, p.always_status, html, {"Content-Type": "text/html"}, entry)
            p.body_requests += 1
            nth = p.body_requests
            drop = p.drops.pop(0) if p.drops else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            data = p.body if p.body is not None else p.data
            start = 0
            rng = h.headers.get("Range")
            status = 200
            headers = {"Content-Type": p.content_type, "Accept-Ranges": "bytes", "ETag": f'"{p.md5}"',
                       "Content-Disposition": f'attachment; filename="{p.name}.zip"'}
            if rng and not p.ignore_range:
                m = re.fullmatch(r"bytes=(\d+)-", rng)
                assert m, rng
                start = int(m.group(1))
                if start >= len(data):
                    headers["Content-Range"] = f"bytes */{len(data)}"
                    entry["served"] = 0
                    return self._send(h, 416, b"", headers, entry)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            entry["status"] = status
            entry["start"] = start
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data) - start))
            h.end_headers()
            end = len(data) if drop is None or drop <= start else min(drop, len(data))
            pos = start
            trickle_end = start + (p.trickle_bytes or len(data)) if nth <= p.trickle_requests else start
            t0 = time.monotonic()
            try:
                while pos < end:
                    if pos < trickle_end:
                        step = min(p.trickle_step, end - pos, trickle_end - pos)
                        time.sleep(p.trickle_delay)
                    else:
                        step = min(256 * 1024, end - pos)
                    h.wfile.write(data[pos : pos + step])
                    pos += step
                    with self.lock:
                        p.bytes_served += step
                    if p.throttle and pos < end:
                        ahead = (pos - start) / p.throttle - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                h.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                h.close_connection = True
                entry["served"] = pos - start
                return
            entry["served"] = pos - start
            if drop is not None and end < len(data):
                style = p.drop_style
                if style == "alternate":
                    style = "rst" if nth % 2 else "fin"
                entry["dropped_at"] = end
                h.close_connection = True
                if style == "rst":
                    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    h.connection.shutdown(socket.SHUT_WR)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def make_zip() -> Any:
    """``make_zip(name, size=..., seed=..., evil=..., top=...) -> bytes`` (see ``make_product_zip``)."""
    return make_product_zip


@pytest.fixture
def hub() -> FaultHub:
    h = FaultHub()
    yield h
    h.close()


@pytest.fixture
def fast_retry() -> tuple[RetryPolicy, list[float]]:
    """A retry policy that records the delays it would sleep (and sleeps a token 1 ms)."""
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        time.sleep(0.001)

    return RetryPolicy(max_failures=5, max_attempts=30, backoff=0.5, factor=2.0, jitter=0.0, sleep=sleep, seed=1), slept


def store_leftovers(root: Path) -> list[str]:
    """Names in a store folder that are not finished products (.part, .lock, tmp dirs)."""
    return sorted(p.name for p in root.iterdir() if not (p.name.endswith(".zip") or (p.name.endswith(".SAFE") and p.is_dir())))


@pytest.fixture
def leftovers() -> Any:
    return store_leftovers


FETCH_SCRIPT = r"""
import json, logging, sys
from bigearthnet_s1.hub import ProductRef
from bigearthnet_s1.retry import RetryPolicy
from bigearthnet_s1.store import ProductStore
logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s: %(message)s")
args = json.loads(sys.argv[1])
store = ProductStore(args["root"], retry=RetryPolicy(backoff=0.05, jitter=0.1), lock_poll=0.05,
                     transfer_options={"chunk_size": 64 * 1024})
rec = ProductRef(**args["record"])
path = store.fetch(rec)
if args.get("extract"):
    path = store.extract(rec.name)
print("RESULT", path, flush=True)
"""


@pytest.fixture
def spawn_fetch() -> Any:
    """Start ``ProductStore(root).fetch(record)`` (and optionally ``extract``) in a new Python process."""
    procs: list[subprocess.Popen[str]] = []

    def start(root: Path, record: ProductRef, *, extract: bool = False) -> subprocess.Popen[str]:
        arg = json.dumps({"root": str(root), "record": record.to_json(), "extract": extract})
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        p = subprocess.Popen(
            [sys.executable, "-c", FETCH_SCRIPT, arg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
