"""The redactor's rules, one by one: what it removes, in which forms, and what it leaves."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest

from bigearthnet_s1 import redact as R
from bigearthnet_s1.errors import DownloadError, HttpStatusError

from .conftest import PASSWORD, assert_no_leak


@pytest.mark.parametrize(("text", "expected"), [
    ("GET https://alice:s3cr%40t@hub.example/odata?x=1 failed", "GET https://***@hub.example/odata?x=1 failed"),
    ("ftp://token-only@host/path", "ftp://***@host/path"),
    ("Authorization: Basic YWxpY2U6czNjcmV0 User-Agent: x", "Authorization: ***"),
    ('{"Authorization": "Bearer abc.def.ghi", "Host": "h"}', '{"Authorization": "***", "Host": "h"}'),
    ("{'authorization': 'Basic YWxpY2U6czNjcmV0'}", "{'authorization': '***'}"),
    ("Proxy-Authorization: Negotiate abcdef", "Proxy-Authorization: ***"),
    ("Set-Cookie: session=abcdef1234; Path=/", "Set-Cookie: ***"),
    ("sent Bearer eyJhbGciOi.payload.sig to the hub", "sent Bearer *** to the hub"),
    ("username=alice&password=s3cr%26t&grant_type=password", "username=alice&password=***&grant_type=password"),
    ("?access_token=abc123&refresh_token=def456&page=2", "?access_token=***&refresh_token=***&page=2"),
    ('{"client_secret": "xyz", "api_key": "k-123", "name": "n"}', '{"client_secret": "***", "api_key": "***", "name": "n"}'),
    ("CDSE_PASSWORD=hunter22 CDSE_TOKEN: eyJ0", "CDSE_PASSWORD=*** CDSE_TOKEN: ***"),
])
def test_patterns_need_no_registration(text: str, expected: str) -> None:
    assert R.redact(text) == expected


@pytest.mark.parametrize("text", [
    "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC: MD5 checksum verified",
    "CDSE token endpoint https://identity.example/token refused password grant for user 'alice' (HTTP 401)",
    "token_url=https://identity.example/token and download_url=https://zipper.example",
    "401 with the current token; renewing it",
    "the basic idea, a bearer of news",
    "/work/33UUP_20170613T101031/processed: 1 patches (1 written, 0 kept)",
])
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert R.redact(text) == text


def test_a_registered_secret_goes_in_every_form() -> None:
    R.register_secret(PASSWORD)
    raw = PASSWORD.encode()
    texts = [
        f"echo {PASSWORD} end",
        f"form user=alice&pw={quote_plus(PASSWORD)}&x=1",
        f"path /a/{quote(PASSWORD, safe='')}/b and lower-case hex {quote(PASSWORD, safe='').lower()}",
        json.dumps({"said": PASSWORD}, ensure_ascii=True),  # \u00e9 escape
        repr({"said": PASSWORD}),
    ]
    # base64 of the secret inside longer blobs, at each byte alignment, both alphabets, both
    # text encodings (requests encodes basic-auth credentials as latin-1)
    for prefix in (b"", b"x", b"xy", b"alice:"):
        for enc in ("utf-8", "latin-1"):
            blob = prefix + PASSWORD.encode(enc) + b" trailer"
            texts.append(f"seen {base64.b64encode(blob).decode()} here")
            texts.append(f"seen {base64.urlsafe_b64encode(blob).decode()} here")
    for text in texts:
        out = R.redact(text)
        assert "***" in out, text
        assert_no_leak(out, f"redact({text!r})", PASSWORD)
    assert R.redact("seen " + base64.b64encode(b"nothing secret here").decode()) == \
        "seen " + base64.b64encode(b"nothing secret here").decode()
    assert raw  # (the secret itself is not a valid test of anything else)


def test_short_secrets_are_not_registered_and_urls_register_theirs() -> None:
    R.register_secret("pw")
    assert R.redact("pw in upwards") == "pw in upwards" and R.registered_count() == 0
    R.register_url(f"https://alice:{quote(PASSWORD, safe='')}@hub.example/x")
    assert R.redact(f"the hub said {PASSWORD}") == "the hub said ***"
    R.register_environment({"MY_HUB_PASSWORD": "from-the-env", "PWD": "/home/alice", "HOME": "/root"})
    assert R.redact("from-the-env /home/alice /root") == "*** /home/alice /root"


def test_redact_url_and_redact_obj() -> None:
    assert R.redact_url("https://u:p@hub.example:8443/odata/v1/Products?$filter=x&token=t") == \
        "https://hub.example:8443/odata/v1/Products"
    assert R.redact_obj({"user": "alice", "password": "p4ssw0rd", "nested": [{"token": "t0k3n", "n": 1}],
                         "url": "https://a:b@h/x", "kind": None}) == \
        {"user": "alice", "password": "***", "nested": [{"token": "***", "n": 1}], "url": "https://***@h/x",
         "kind": None}


def test_library_errors_are_redacted_when_created() -> None:
    R.register_secret(PASSWORD)
    err = HttpStatusError(f"HTTP 404 for https://alice:x@h/p?token=abc: {PASSWORD}", 404, "https://alice:x@h/p?token=abc")
    # (a pair's unquoted value runs to the next blank: the colon goes with it, over-redaction)
    assert str(err) == "HTTP 404 for https://***@h/p?token=*** ***" and err.url == "https://h/p"
    assert err.args == (str(err),)
    assert str(DownloadError("Authorization: Basic YWxpY2U6eA==")) == "Authorization: ***"


def test_filter_redacts_message_arguments_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    R.register_secret(PASSWORD)
    log = logging.getLogger("test.redact.filter")
    handler = logging.StreamHandler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(logging.Formatter().format(record))  # type: ignore[method-assign]
    handler.addFilter(R.RedactingFilter())
    log.addHandler(handler)
    try:
        log.warning("server said %s", f"password={PASSWORD}")
        try:
            raise RuntimeError(f"echo {base64.b64encode(('alice:' + PASSWORD).encode()).decode()}")
        except RuntimeError:
            log.exception("failed at %s", "https://alice:pw@h/x")
    finally:
        log.removeHandler(handler)
    text = "\n".join(seen)
    assert "server said password=***" in text and "failed at https://***@h/x" in text
    assert "Traceback" in text and "RuntimeError: echo ***" in text
    assert_no_leak(text, "filtered log", PASSWORD)


INSTALLED = r"""
import logging, sys
from bigearthnet_s1 import redact
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s", stream=sys.stdout)
redact.register_secret(sys.argv[1])
redact.install()
logging.getLogger("urllib3.connectionpool").info('"GET /x?token=%s HTTP/1.1" 200', "abcd")
logging.getLogger("someone.else").info("value %s", sys.argv[1])
"""


def test_install_covers_every_logger_of_the_process() -> None:
    proc = subprocess.run([sys.executable, "-c", INSTALLED, PASSWORD], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['urllib3.connectionpool "GET /x?token=*** HTTP/1.1" 200', "someone.else value ***"]
