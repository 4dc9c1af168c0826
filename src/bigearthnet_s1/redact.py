"""Secret redaction: every string that leaves the process passes :func:`redact`.

What is removed (replaced by ``***``):

* URL user info: ``https://user:password@host/...`` -> ``https://***@host/...``;
* ``Authorization`` / ``Proxy-Authorization`` / ``Cookie`` / ``Set-Cookie`` / ``X-Auth-Token`` /
  ``X-Api-Key`` header values, in HTTP (``Authorization: Basic ...``), JSON or repr form;
* bearer and basic credentials on their own (``Bearer eyJ...``, ``Basic YWxp...``);
* ``password=``, ``token=``, ``secret=``, ``api_key=`` pairs (any key ending in one of those
  words, ``=`` or ``:``, quoted or not: query strings, form bodies, JSON, env dumps);
* every registered secret (:func:`register_secret`: the configured passwords and tokens) in
  plain, URL-encoded, JSON/repr-escaped and base64 form (base64 at any byte alignment, so
  ``base64("user:" + password)`` inside a longer blob is caught too).

Where it applies: the library's exceptions redact their message when they are created
(``errors.BigEarthNetS1Error``); :class:`RedactingFilter` rewrites log records (message,
arguments, traceback); :func:`install` puts it on every log record of the process (the CLI and
the Airflow plugin call it); :func:`redact_obj` cleans JSON-like values (XCom, summaries).

Secrets shorter than :data:`MIN_SECRET_LENGTH` characters are not registered (redacting every
"pw" in every log line would garble it): the patterns above still cover them in URLs, headers
and pairs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "MIN_SECRET_LENGTH",
    "PLACEHOLDER",
    "RedactingFilter",
    "add_listener",
    "forget_secrets",
    "install",
    "is_secret_key",
    "redact",
    "redact_obj",
    "redact_url",
    "register_auth",
    "register_environment",
    "register_secret",
    "register_url",
    "registered_count",
]

PLACEHOLDER = "***"
#: Shorter registered secrets are ignored (see the module doc).
MIN_SECRET_LENGTH = 4

# -- patterns that need no registration

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s\"'<>]*@")  # to the last @ of the authority
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|set-cookie|cookie|x-auth-token|x-api-key)"
    r"([\"']?\s*[:=]\s*[\"']?)([^\"'\r\n]+)"
)
_SCHEME_TOKEN = re.compile(r"\b(Bearer|bearer|BEARER|Basic|basic|BASIC)(\s+)([A-Za-z0-9._~+/-]{6,}=*)")
# the key starts where a run of key characters starts (no backtracking into the run)
_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]*?(?:password|passwd|passphrase|token|secret|api[_-]?key|totp))"
    r"([\"']?)(\s*[=:]\s*)(?:([\"'])(.*?)\4|([^\s&\"',;)}\]]+))"
)
#: Cheap substring tests that decide whether a pattern can match at all (most log lines hold
#: none of these words, and the regular expressions cost tens of microseconds each).
_HINTS = {
    "header": ("authoriz", "cookie", "x-auth", "x-api"),
    "scheme": ("bearer", "basic"),
    "pair": ("passw", "passphrase", "token", "secret", "apikey", "api_key", "api-key", "totp"),
}
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")

_lock = threading.Lock()
_secrets: set[str] = set()
_listeners: list[Callable[[str], None]] = []
_literal_re: re.Pattern[str] | None = None
_b64_cores: tuple[str, ...] = ()
_core_re: re.Pattern[str] | None = None  # any core: the runs are inspected only when it matches


def _forms(secret: str) -> set[str]:
    """The literal forms a secret may take in a message."""
    out = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    try:  # forms and some servers percent-encode latin-1
        out |= {quote(secret, safe="", encoding="latin-1"), quote_plus(secret, encoding="latin-1")}
    except UnicodeEncodeError:
        pass
    out |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in out}  # %2f as well as %2F
    out.add(json.dumps(secret)[1:-1])
    out.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    out.add(repr(secret)[1:-1])
    return {f for f in out if len(f) >= MIN_SECRET_LENGTH}


def _cores(secret: str) -> set[str]:
    """Base64 substrings present in any base64 text whose decoding contains ``secret``.

    Base64 maps 3 bytes to 4 characters, so the encoding of the secret depends on where it
    starts modulo 3: for each of the 3 alignments, the whole 3-byte groups of the secret
    encode to the same characters whatever surrounds them."""
    out: set[str] = set()
    for encoding in ("utf-8", "latin-1"):  # requests encodes basic-auth credentials as latin-1
        try:
            raw = secret.encode(encoding)
        except UnicodeEncodeError:
            continue
        for shift in range(3):
            body = raw[shift:]
            body = body[: len(body) - len(body) % 3]
            if len(body) < 3:
                continue
            for enc in (base64.b64encode(body), base64.urlsafe_b64encode(body)):
                core = enc.decode("ascii")
                if len(core) >= MIN_SECRET_LENGTH:
                    out.add(core)
    return out


def register_secret(value: str | None) -> None:
    """Redact ``value`` (a password, token, key) from every later :func:`redact` call.

    Empty values and values shorter than :data:`MIN_SECRET_LENGTH` are ignored."""
    global _literal_re, _b64_cores, _core_re
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        forms: set[str] = set()
        cores: set[str] = set()
        for s in _secrets:
            forms |= _forms(s)
            cores |= _cores(s)
        ordered = sorted(forms, key=len, reverse=True)
        _literal_re = re.compile("|".join(re.escape(f) for f in ordered))
        _b64_cores = tuple(sorted(cores, key=len, reverse=True))
        _core_re = re.compile("|".join(re.escape(c) for c in _b64_cores)) if _b64_cores else None
        listeners = list(_listeners)
    new = sorted(_forms(value) | _cores(value))
    for listener in listeners:
        for form in new:
            listener(form)


def add_listener(callback: Callable[[str], None]) -> None:
    """Call ``callback(form)`` with every form (plain, encoded, base64 substring) of each secret
    registered from now on, and of those registered before: for another masker to mask them
    too (the Airflow plugin feeds Airflow's secrets masker, which renders task logs)."""
    with _lock:
        _listeners.append(callback)
        known = sorted(set().union(*(_forms(s) | _cores(s) for s in _secrets))) if _secrets else []
    for form in known:
        callback(form)


def register_auth(auth: Any) -> None:
    """Register the secrets inside a ``requests`` auth value: a ``(user, password)`` pair, a
    mapping of them by hub, or an object with a ``secrets()`` method (token auths)."""
    if auth is None:
        return
    if isinstance(auth, dict):
        for v in auth.values():
            register_auth(v)
        return
    if isinstance(auth, (tuple, list)) and len(auth) == 2:
        register_secret(auth[1] if isinstance(auth[1], str) else None)
        return
    secrets = getattr(auth, "secrets", None)
    if callable(secrets):
        for s in secrets():
            register_secret(s)


def register_environment(environ: Mapping[str, str] | None = None) -> int:
    """Register the values of environment variables whose names end in PASSWORD, TOKEN,
    SECRET, API_KEY, ... (``CDSE_PASSWORD``, ``BIGEARTHNET_S1_HUB_PASSWORD``, ``CDSE_TOKEN``);
    returns how many were registered."""
    env = os.environ if environ is None else environ
    n = 0
    for k, v in env.items():
        if is_secret_key(k) and v and len(v) >= MIN_SECRET_LENGTH:
            register_secret(v)
            n += 1
    return n


def forget_secrets() -> None:
    """Forget every registered secret (the patterns stay). For tests, which register many."""
    global _literal_re, _b64_cores, _core_re
    with _lock:
        _secrets.clear()
        _literal_re = None
        _b64_cores = ()
        _core_re = None


def register_url(url: str | None) -> None:
    """Register the password (and a user name that looks like a token, i.e. without a
    password) in a URL's user info, in its given and percent-decoded forms."""
    if not isinstance(url, str) or "@" not in url:
        return
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return
    for value in (password, user if password is None else None):
        if value:
            register_secret(value)
            register_secret(unquote(value))


def registered_count() -> int:
    """How many secrets are registered (for diagnostics; never the secrets themselves)."""
    return len(_secrets)


def _b64_sub(m: re.Match[str]) -> str:
    run = m.group(0)
    for core in _b64_cores:
        if core in run:
            return PLACEHOLDER
    return run


def _pair_sub(m: re.Match[str]) -> str:
    key, kq, sep, q = m.group(1), m.group(2), m.group(3), m.group(4)
    if q:
        return f"{key}{kq}{sep}{q}{PLACEHOLDER}{q}"
    return f"{key}{kq}{sep}{PLACEHOLDER}"


def redact(text: str) -> str:
    """``text`` with credentials and registered secrets replaced by ``***`` (see the module doc)."""
    if not isinstance(text, str) or not text:
        return text
    lit = _literal_re
    if lit is not None:
        text = lit.sub(PLACEHOLDER, text)
    core = _core_re
    if core is not None and core.search(text):
        text = _B64_RUN.sub(_b64_sub, text)
    low = text.lower()
    if "@" in low:
        text = _USERINFO.sub(lambda m: m.group(1) + PLACEHOLDER + "@", text)
    if any(h in low for h in _HINTS["header"]):
        text = _HEADER.sub(lambda m: m.group(1) + m.group(2) + PLACEHOLDER, text)
    if any(h in low for h in _HINTS["scheme"]):
        text = _SCHEME_TOKEN.sub(lambda m: m.group(1) + m.group(2) + PLACEHOLDER, text)
    if ("=" in low or ":" in low) and any(h in low for h in _HINTS["pair"]):
        text = _PAIR.sub(_pair_sub, text)
    return text


def redact_url(url: str) -> str:
    """``url`` for messages and logs: without user info and query string (which may carry a
    token or a signature), then :func:`redact`."""
    if not isinstance(url, str) or not url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:  # not a parseable URL: the patterns still apply
        return redact(url)
    if not parts.scheme:
        return redact(url)
    return redact(urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def redact_obj(obj: Any) -> Any:
    """A JSON-like value (dicts, lists, tuples, strings) with every string redacted; values
    under a secret-named key (``password``, ``token``, ...) are replaced as a whole."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and v is not None and is_secret_key(k):
                out[k] = PLACEHOLDER
            else:
                out[k] = redact_obj(v)
        return out
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj


# not "pwd": the shell's PWD is the working directory
_SECRET_KEY = re.compile(r"(?i)(password|passwd|passphrase|token|secret|api[_-]?key|totp|authorization|cookie)$")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``password``, ``CDSE_TOKEN``, ``api_key``, ...)."""
    return bool(_SECRET_KEY.search(key))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message (arguments merged in), its
    traceback and stack text. Never drops a record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact ``record`` in place (see :class:`RedactingFilter`); returns it."""
    if getattr(record, "_bigearthnet_s1_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string: keep the raw parts, redacted
        message = f"{record.msg} {record.args!r}"
    if record.exc_info and not record.exc_text:
        record.exc_text = RedactingFilter._formatter.formatException(record.exc_info)
    if record.exc_text:
        # the traceback joins the message, redacted, and the exception object is dropped: a
        # formatter that renders ``exc_info`` itself (structlog's, Airflow's) would print the
        # exception's own unredacted message
        message = f"{message}\n{record.exc_text}"
        record.exc_info = None
        record.exc_text = None
    record.msg = redact(message)
    record.args = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._bigearthnet_s1_redacted = True
    return record


_installed = False


def install(loggers: Iterable[logging.Logger | str] = ()) -> None:
    """Redact every log record of the process from now on (idempotent).

    Wraps the logging record factory, so records of every logger (the library's, requests',
    urllib3's, Airflow's stdlib loggers) are redacted when created, whatever handlers format
    them; also puts a :class:`RedactingFilter` on the root logger's handlers and on those of
    ``loggers`` (handlers that bypass the record factory, e.g. records built by hand)."""
    global _installed
    with _lock:
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                return redact_record(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
            _installed = True
    for lg in (logging.getLogger(), *(logging.getLogger(x) if isinstance(x, str) else x for x in loggers)):
        for handler in lg.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())

