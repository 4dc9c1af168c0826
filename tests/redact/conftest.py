"""A hostile HTTP server on loopback that echoes every request back, credentials first, and
the forms a leaked secret can take.

Every request to ``/echo/<status>/<style>/...`` is answered with ``<status>`` and a body that
repeats what the client sent: the bare credentials of its ``Authorization`` header, the
header itself, the request body (a token endpoint's form holds the password, URL-encoded),
the headers as JSON, the whole request in base64, then the raw request. ``style`` ``html``
wraps it in an HTML title (what the error-page readers quote), ``json`` in an OAuth error
(``error_description``), ``text`` sends it as is. The server records what it received, so a
test can check that the secret was really sent (there was something to leak).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

USER = "alice"
#: Reserved URL characters, a space and a non-ASCII letter: its plain, URL-encoded and base64
#: forms all differ.
PASSWORD = "Zq8+vX/r&y=K3 wé!"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-Ab3_xY9"


def leak_forms(*secrets: str, user: str = USER) -> dict[str, str]:
    """Every form a secret may take in output: plain, URL-encoded (utf-8 and latin-1), base64
    (standard and URL-safe, unpadded) of the secret and of ``user:secret`` in both encodings."""
    forms: dict[str, str] = {}
    for s in secrets:
        forms[f"plain {s!r}"] = s
        forms[f"quote {s!r}"] = quote(s, safe="")
        forms[f"quote_plus {s!r}"] = quote_plus(s)
        for enc in ("utf-8", "latin-1"):
            try:
                for what, raw in ((s, s.encode(enc)), (f"{user}:{s}", f"{user}:{s}".encode(enc))):
                    forms[f"base64 {what!r} {enc}"] = base64.b64encode(raw).decode().rstrip("=")
                    forms[f"base64url {what!r} {enc}"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            except UnicodeEncodeError:
                continue
    return forms


def assert_no_leak(text: str, where: str, *secrets: str) -> None:
    found = [name for name, form in leak_forms(*secrets).items() if form and form in text]
    assert not found, f"{where} leaks {found}"


@dataclass
class EchoServer:
    base: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def url(self, status: int, style: str = "text", tail: str = "product.zip") -> str:
        return f"{self.base}/echo/{status}/{style}/{tail}"

    def url_with_userinfo(self, status: int, style: str = "text", tail: str = "product.zip",
                          user: str = USER, password: str = PASSWORD) -> str:
        host = self.base.split("://", 1)[1]
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@{host}/echo/{status}/{style}/{tail}"

    def saw(self, secret: str) -> bool:
        """Whether a request carried ``secret`` (plain, in a form or in basic-auth base64)."""
        blob = "\n".join(r["raw"] for r in self.received)
        return any(f in blob for f in leak_forms(secret).values())


def _echo_text(h: BaseHTTPRequestHandler, body: bytes) -> str:
    auth = h.headers.get("Authorization", "")
    raw = f"{h.requestline}\r\n{h.headers}".rstrip("\r\n") + "\r\n\r\n" + body.decode("utf-8", "replace")
    bare = auth.split(" ", 1)[-1] if auth else ""
    return (f"{bare} refused; you sent {auth} with {body.decode('utf-8', 'replace')} | "
            f"{json.dumps(dict(h.headers.items()))} | {base64.b64encode(raw.encode()).decode()} | {raw}")


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            text = _echo_text(self, body)
            received.append({"path": self.path, "raw": text})
            parts = self.path.split("/")
            status = int(parts[2]) if len(parts) > 3 and parts[1] == "echo" and parts[2].isdigit() else 404
            style = parts[3] if len(parts) > 3 else "text"
            if style == "html":
                payload = f"<html><head><title>{text}</title></head><body>denied</body></html>".encode()
                ctype = "text/html"
            elif style == "json":
                payload = json.dumps({"error": "invalid_grant", "error_description": text}).encode()
                ctype = "application/json"
            else:
                payload = text.encode()
                ctype = "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = _answer  # noqa: N815 - http.server's method names

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield EchoServer(f"http://127.0.0.1:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()
