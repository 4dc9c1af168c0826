"""Catalogue-side HTTP: the retry policy of a hub search, its JSON GET, clear errors.

Retries follow :mod:`bigearthnet_s1.retry` (one policy for every request of the library):
status-level ones (HTTP 429 with ``Retry-After``, 5xx, connection errors) are urllib3's
``Retry`` mounted on the ``requests`` session (:func:`bigearthnet_s1.retry.mount`), so that
sentinelsat's own session gets them too; body-level failures (a page that ends early, JSON
that does not parse), which urllib3 never sees, are repeated by :func:`get_json` with the same
policy. A hub search backs off from the first retry, without jitter, at most 60 s (or
``backoff``) per wait.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypedDict

import requests

from bigearthnet_s1.errors import AuthenticationError, CatalogError
from bigearthnet_s1.excerpt import body_excerpt, looks_like_html
from bigearthnet_s1.redact import redact_url  # one redactor for the whole library
from bigearthnet_s1.retry import RETRY_STATUSES, RetryPolicy, Transient, call

__all__ = ["HubOptions", "check_status", "decode_json", "get_json", "hub_retry", "is_html"]

log = logging.getLogger(__name__)


class HubOptions(TypedDict, total=False):
    """Request options every catalogue backend takes (also as Connection extras)."""

    timeout: float  # s per request
    retries: int  # retries of a failed request (default 5)
    backoff: float  # s before the first retry, doubled for each next one (default 1)
    max_retry_after: float  # s: the longest Retry-After the hub may ask for (default 300)
    sleep: Callable[[float], None]  # every wait goes through it (tests record the waits)


def hub_retry(options: HubOptions) -> RetryPolicy:
    """The retry policy of a catalogue backend from its options (see the module doc)."""
    backoff = float(options.get("backoff", 1.0))
    return RetryPolicy(max_failures=int(options.get("retries", 5)), backoff=backoff, factor=2.0,
                       backoff_max=max(60.0, backoff), jitter=0.0,
                       max_retry_after=float(options.get("max_retry_after", 300.0)),
                       sleep=options.get("sleep", time.sleep))


def is_html(response: requests.Response) -> bool:
    """Whether a hub answered an HTML (or XML) page, by Content-Type or first bytes."""
    return looks_like_html(response.content[:200], response.headers.get("Content-Type"))


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
    if is_html(response) and not content.lstrip().startswith((b"{", b"[")):
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
    retry: RetryPolicy,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Any:
    """GET ``url`` and return its JSON.

    Status-level retries happen in the session's adapter (:func:`bigearthnet_s1.retry.mount`);
    a body that breaks off or does not parse is fetched again per ``retry``, then
    :class:`CatalogError` is raised. 401/403 raise ``AuthenticationError``.
    """

    def attempt() -> Any:
        try:
            response = session.get(url, params=params, headers=headers, timeout=timeout)
        except requests.exceptions.RetryError as exc:
            raise CatalogError(f"{what}: {redact_url(url)} kept failing after the retries ({exc})") from None
        except requests.exceptions.ChunkedEncodingError as exc:
            # the body broke off mid-transfer: not seen by urllib3's Retry, repeated here
            raise Transient(CatalogError(f"{what}: the response from {redact_url(url)} broke off ({exc})")) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            # already retried by the adapter
            raise CatalogError(f"{what}: cannot reach {redact_url(url)} ({type(exc).__name__}: {exc})") from None
        check_status(response, what)
        try:
            return decode_json(response, what)
        except _BadJson as exc:
            raise Transient(exc) from None

    return call(attempt, retry, give_up=lambda error, n: CatalogError(f"{error} (after {n} retries)"))
