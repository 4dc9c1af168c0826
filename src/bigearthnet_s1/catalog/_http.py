"""HTTP plumbing shared by the hub backends: retries, rate limits, clear errors.

Retries at the status level (HTTP 429 with ``Retry-After``, 500/502/503/504, connection
errors) are urllib3's ``Retry`` mounted on a ``requests`` session, so that sentinelsat's own
session gets them too. Our subclass only changes two things: the first retry already backs
off (urllib3 retries the first failure immediately), and every wait goes through one
``sleep`` callable that is logged and can be observed in tests.

Body-level failures (a page that ends early, JSON that does not parse) are retried by
:func:`get_json` itself, since urllib3 never sees them.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bigearthnet_s1.errors import AuthenticationError, CatalogError
from bigearthnet_s1.redact import redact, redact_url  # one redactor for the whole library

__all__ = ["body_excerpt", "check_status", "decode_json", "get_json", "looks_like_html", "make_retry",
           "mount_retries", "redact_url"]

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class _LoggedRetry(Retry):
    """urllib3 Retry whose waits go through ``_sleeper`` and back off from the first retry."""

    _sleeper: Callable[[float], None] = staticmethod(time.sleep)

    def get_backoff_time(self) -> float:
        n = len(self.history)
        if n == 0 or self.backoff_factor <= 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (n - 1)))

    def sleep(self, response: Any = None) -> None:
        wait: float | None = None
        why = "backoff"
        if self.respect_retry_after_header and response is not None:
            wait = self.get_retry_after(response)
            if wait is not None:
                why = f"Retry-After {response.headers.get('Retry-After')!r}"
        if wait is None:
            wait = self.get_backoff_time()
        last = self.history[-1] if self.history else None
        status = getattr(last, "status", None) or (getattr(response, "status", None))
        error = getattr(last, "error", None)
        log.warning(
            "hub request to %s failed (%s); retry %d in %.1f s (%s)",
            redact_url(getattr(last, "url", "") or ""),
            f"HTTP {status}" if status else type(error).__name__,
            len(self.history),
            wait,
            why,
        )
        if wait > 0:
            type(self)._sleeper(wait)


def make_retry(
    *,
    retries: int,
    backoff: float,
    max_retry_after: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Retry:
    """A urllib3 ``Retry`` for idempotent GETs against a hub (see module doc)."""
    cls = type("HubRetry", (_LoggedRetry,), {"_sleeper": staticmethod(sleep)})
    return cls(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff,
        backoff_max=max(60.0, backoff),
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
        respect_retry_after_header=True,
        retry_after_max=int(max_retry_after),
    )


def mount_retries(session: requests.Session, retry: Retry) -> requests.Session:
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")


def body_excerpt(content: bytes, limit: int = 160) -> str:
    """A short human-readable excerpt of a response body (HTML reduced to its title/text)."""
    m = _TITLE.search(content[:20000])
    if m:
        text = m.group(1).decode("utf-8", "replace")
    else:
        text = content[:2000].decode("utf-8", "replace")
        text = _TAGS.sub(" ", text)
    text = redact(" ".join(html.unescape(text).split()))  # a hub may echo the request's headers
    return text[:limit] + ("..." if len(text) > limit else "")


def looks_like_html(response: requests.Response) -> bool:
    ctype = response.headers.get("Content-Type", "").lower()
    head = response.content[:200].lstrip().lower()
    return "html" in ctype or head.startswith((b"<!doctype", b"<html", b"<?xml", b"<"))


def check_status(response: requests.Response, what: str) -> None:
    """Raise a clear ``CatalogError`` for a non-2xx response (after the retries)."""
    code = response.status_code
    if 200 <= code < 300:
        return
    where = redact_url(response.url)
    if code in (401, 403):
        raise AuthenticationError(
            f"{what}: HTTP {code} {response.reason} from {where}: the hub refused the credentials "
            f"(check the user/password or token given by argument or environment)"
        )
    if code == 429:
        raise CatalogError(
            f"{what}: still rate limited (HTTP 429, Retry-After {response.headers.get('Retry-After')!r}) "
            f"by {where} after the retries"
        )
    retried = " (after the retries)" if code in RETRY_STATUSES else ""
    raise CatalogError(
        f"{what}: HTTP {code} {response.reason} from {where}{retried}: {body_excerpt(response.content)}"
    )


def decode_json(response: requests.Response, what: str) -> Any:
    """Parse a JSON body, or raise ``CatalogError`` saying whether it was HTML or truncated."""
    content = response.content
    where = redact_url(response.url)
    if looks_like_html(response) and not content.lstrip().startswith((b"{", b"[")):
        raise CatalogError(
            f"{what}: {where} answered HTML instead of JSON "
            f"(Content-Type {response.headers.get('Content-Type')!r}): {body_excerpt(content)!r}"
        )
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadJson(
            f"{what}: {where} returned truncated or malformed JSON ({len(content)} bytes: {exc})"
        ) from None


class _BadJson(CatalogError):
    """A JSON body that does not parse (retried a few times, then raised)."""


def get_json(
    session: requests.Session,
    url: str,
    *,
    what: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """GET ``url`` and return its JSON.

    Status-level retries happen in the session's adapter (see :func:`make_retry`); here we
    retry a body that breaks off or does not parse, ``retries`` times with exponential
    backoff, then raise :class:`CatalogError`. 401/403 raise ``AuthenticationError``.
    """
    attempt = 0
    while True:
        try:
            response = session.get(url, params=params, headers=headers, timeout=timeout)
        except requests.exceptions.RetryError as exc:
            raise CatalogError(f"{what}: {redact_url(url)} kept failing after the retries ({exc})") from None
        except requests.exceptions.ChunkedEncodingError as exc:
            # the body broke off mid-transfer: not seen by urllib3's Retry, retried here
            problem: CatalogError = CatalogError(
                f"{what}: the response from {redact_url(url)} broke off ({exc})"
            )
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            # already retried by the adapter
            raise CatalogError(
                f"{what}: cannot reach {redact_url(url)} ({type(exc).__name__}: {exc})"
            ) from None
        else:
            check_status(response, what)
            try:
                return decode_json(response, what)
            except _BadJson as exc:
                problem = exc
        if attempt >= retries:
            raise CatalogError(f"{problem} (after {attempt} retries)")
        attempt += 1
        wait = backoff * 2 ** (attempt - 1)
        log.warning("%s; retry %d in %.1f s", problem, attempt, wait)
        if wait > 0:
            sleep(wait)
