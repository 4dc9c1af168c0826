"""One retry policy for every HTTP request the library makes (hubs, Earthdata Login, DEM servers).

A :class:`RetryPolicy` says how often to try again and how long to wait: exponential backoff
``backoff * factor**(n-1)`` capped at ``backoff_max``, times a random factor in
``[1 - jitter, 1 + jitter]``; a server's ``Retry-After`` (delta-seconds or HTTP-date) replaces
the computed wait (plus up to ``jitter`` of it on top, so that clients told the same time do
not return together), and one longer than ``max_retry_after`` is not waited for: the request
fails with the server's message. Three ways to apply it, one schedule:

- :func:`call` repeats a request that either works or fails whole (catalogue JSON pages,
  DHuS calls, the Earthdata token, DEM tiles): the attempt raises :class:`Transient` for a
  failure worth repeating;
- :func:`mount` puts it on a ``requests`` session as urllib3's ``Retry`` (status-level
  retries of sessions another library drives, such as sentinelsat's): the same delays, the
  same ``sleep``; urllib3 cannot give up on a long ``Retry-After`` mid-call, so there it is
  capped at ``max_retry_after`` instead;
- ``transfer.download`` runs its own attempt loop (an attempt that received bytes resets the
  count of failures, so a flaky but moving link finishes) and asks the policy for each wait.

Durations in seconds. ``sleep`` and ``seed`` exist for tests (record the waits, fixed jitter).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bigearthnet_s1.redact import redact_url

__all__ = ["RETRY_STATUSES", "RetryPolicy", "Transient", "call", "mount", "parse_retry_after", "urllib3_retry"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses worth repeating the request for (timeouts, rate limits, server trouble).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry and how long to wait (see the module doc).

    ``max_failures``: retries after failures in a row (``transfer.download`` counts only
    attempts that made no progress); ``max_attempts``: hard bound on the attempts of one
    download, progress or not. ``checksum_retries``: full re-downloads after a failed checksum
    or zip test (downloads only).
    """

    max_failures: int = 8
    max_attempts: int = 60
    backoff: float = 2.0
    factor: float = 2.0
    backoff_max: float = 300.0
    jitter: float = 0.25
    max_retry_after: float = 3600.0
    checksum_retries: int = 1
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    seed: int | None = None

    def delay(self, failures: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``failures`` (1-based)."""
        rng = rng or random.Random(self.seed)
        if retry_after is not None:
            return retry_after * (1.0 + rng.uniform(0.0, self.jitter))
        base = min(self.backoff_max, self.backoff * self.factor ** max(0, failures - 1))
        return max(0.0, base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))

    def too_long(self, retry_after: float | None) -> bool:
        """Whether a server's ``Retry-After`` asks for more than this policy waits."""
        return retry_after is not None and retry_after > self.max_retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` header (delta-seconds or HTTP-date) -> seconds from now, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def retry_after_of(response: requests.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (None when absent or unreadable)."""
    return parse_retry_after(response.headers.get("Retry-After"))


class Transient(Exception):
    """Raised by an attempt given to :func:`call`: ``error`` may pass if the request is repeated.

    ``retry_after``: the server's ``Retry-After`` (s), which replaces the backoff.
    """

    def __init__(self, error: BaseException, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, error: BaseException, response: requests.Response) -> Transient:
        return cls(error, retry_after_of(response))


def call(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    give_up: Callable[[BaseException, int], BaseException] | None = None,
) -> T:
    """Run ``attempt`` until it returns, repeating it after a :class:`Transient` per ``policy``.

    Every other exception passes through at once. After ``policy.max_failures`` retries, or
    when the server asks to wait longer than ``policy.max_retry_after``, the last error is
    raised: ``give_up(error, retries)`` when given (the caller's own error with the count),
    else the error itself.
    """
    rng = random.Random(policy.seed)
    failures = 0
    while True:
        try:
            return attempt()
        except Transient as transient:
            error = transient.error
            if failures >= policy.max_failures or policy.too_long(transient.retry_after):
                if policy.too_long(transient.retry_after):
                    log.warning("%s; the server asks to retry in %.0f s, more than the %.0f s this client waits",
                                error, transient.retry_after, policy.max_retry_after)
                raise (give_up(error, failures) if give_up is not None else error) from None
            failures += 1
            wait = policy.delay(failures, transient.retry_after, rng)
            log.warning("%s; retry %d in %.1f s", error, failures, wait)
            if wait > 0:
                policy.sleep(wait)


# --------------------------------------------------------------------------------------------
# the same policy as urllib3's Retry, for sessions another library drives


class _PolicyRetry(Retry):
    """urllib3 ``Retry`` whose waits are the policy's (from the first retry on, urllib3's own
    schedule retries the first failure at once) and go through the policy's ``sleep``, logged."""

    policy: ClassVar[RetryPolicy] = RetryPolicy()

    def get_backoff_time(self) -> float:
        n = len(self.history)
        return self.policy.delay(n) if n else 0.0

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
        status = getattr(last, "status", None) or getattr(response, "status", None)
        error = getattr(last, "error", None)
        log.warning(
            "request to %s failed (%s); retry %d in %.1f s (%s)",
            redact_url(getattr(last, "url", "") or ""),
            f"HTTP {status}" if status else type(error).__name__,
            len(self.history),
            wait,
            why,
        )
        if wait > 0:
            self.policy.sleep(wait)


def urllib3_retry(policy: RetryPolicy, methods: frozenset[str] = frozenset({"GET", "HEAD"})) -> Retry:
    """urllib3's ``Retry`` for idempotent requests with the policy's schedule and limits."""
    cls = type("PolicyRetry", (_PolicyRetry,), {"policy": policy})
    n = policy.max_failures
    return cls(
        total=n,
        connect=n,
        read=n,
        status=n,
        other=0,
        backoff_factor=policy.backoff,
        backoff_max=policy.backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        raise_on_status=False,
        respect_retry_after_header=True,
        retry_after_max=int(policy.max_retry_after),
    )


def mount(session: requests.Session, policy: RetryPolicy) -> requests.Session:
    """Put the policy on every http(s) request of ``session`` (see :func:`urllib3_retry`)."""
    adapter = HTTPAdapter(max_retries=urllib3_retry(policy))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
