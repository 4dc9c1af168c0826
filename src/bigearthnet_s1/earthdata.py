"""NASA Earthdata Login (EDL) for ASF downloads: a bearer token, given or made from a user/password.

ASF's download URLs (``datapool.asf.alaska.edu``) take ``Authorization: Bearer <EDL token>``
and answer with a redirect to a signed storage URL on another host (S3 / CloudFront).
:func:`bigearthnet_s1.transfer.open_stream` follows the redirects itself and sends the header
to the ASF hosts only (``same_site``), never to the storage host, whose signed URL is the
credential there (S3 refuses a request that carries both).

A user/password is exchanged once for the account's token through EDL's user-token API
(``POST <edl>/api/users/find_or_create_token`` with HTTP basic auth), the call asf-search's
``ASFSession.auth_with_creds`` makes; the password is sent to EDL only, never to ASF.

Where credentials come from (first found): explicit arguments (the Airflow Connection:
password alone = a token, login + password = an account), then the environment:
``BIGEARTHNET_S1_ASF_TOKEN`` or ``EARTHDATA_TOKEN``; ``BIGEARTHNET_S1_ASF_USER`` +
``BIGEARTHNET_S1_ASF_PASSWORD`` or ``EARTHDATA_USERNAME`` + ``EARTHDATA_PASSWORD`` (the names
earthaccess uses). Tokens and passwords are never logged nor shown in a ``repr``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import requests
from requests.auth import HTTPBasicAuth

from bigearthnet_s1.errors import AuthenticationError, DownloadError
from bigearthnet_s1.excerpt import oauth_error
from bigearthnet_s1.retry import RETRY_STATUSES, RetryPolicy, Transient, call
from bigearthnet_s1.tokenauth import TokenAuth

__all__ = [
    "EDL_URL",
    "TOKEN_PATH",
    "Credentials",
    "EarthdataAuth",
    "credentials_from_env",
    "credentials_from_options",
    "find_or_create_token",
]

log = logging.getLogger(__name__)

#: Earthdata Login (asf-search's ``INTERNAL.EDL_HOST``).
EDL_URL = "https://urs.earthdata.nasa.gov"
#: EDL's user-token API: the account's current token, or a new one.
TOKEN_PATH = "/api/users/find_or_create_token"

ENV_TOKEN = ("BIGEARTHNET_S1_ASF_TOKEN", "EARTHDATA_TOKEN")
ENV_ACCOUNT = (("BIGEARTHNET_S1_ASF_USER", "BIGEARTHNET_S1_ASF_PASSWORD"), ("EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"))


class Credentials(TypedDict, total=False):
    """An Earthdata token, or a user and password."""

    token: str
    user: str
    password: str


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    """``{"token": ...}`` or ``{"user": ..., "password": ...}`` from the environment, else ``{}``."""
    env = os.environ if environ is None else environ
    for name in ENV_TOKEN:
        if env.get(name):
            return {"token": env[name]}
    for user_var, password_var in ENV_ACCOUNT:
        if env.get(user_var) and env.get(password_var):
            return {"user": env[user_var], "password": env[password_var]}
    return {}


def credentials_from_options(token: str | None = None, user: str | None = None, password: str | None = None,
                             environ: Mapping[str, str] | None = None) -> Credentials:
    """Explicit credentials (a password without a user is a token), else the environment's."""
    if token:
        return {"token": str(token)}
    if user and password:
        return {"user": str(user), "password": str(password)}
    if password and not user:
        return {"token": str(password)}
    if user and not password:
        raise AuthenticationError(f"Earthdata login: user {user!r} given without a password")
    return credentials_from_env(environ)


def find_or_create_token(
    user: str,
    password: str,
    *,
    edl_url: str = EDL_URL,
    session: requests.Session | None = None,
    timeout: float = 30.0,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The account's EDL bearer token (EDL makes one when the account has none).

    Raises ``AuthenticationError`` when EDL refuses the user/password (401/403; the message
    names the user, never the password) and ``DownloadError`` when EDL stays unreachable or
    keeps failing: connection errors, 429 and 5xx are tried ``attempts`` times in all with the
    library's retry policy (:mod:`bigearthnet_s1.retry`; backoff 2 s, 4 s, ...), honouring a
    ``Retry-After`` of up to 60 s (a longer one ends the tries).
    """
    url = edl_url.rstrip("/") + TOKEN_PATH
    s = session or requests.Session()
    policy = RetryPolicy(max_failures=max(0, attempts - 1), backoff=2.0, factor=2.0, jitter=0.0,
                         max_retry_after=60.0, sleep=sleep)
    failed = f"Earthdata Login ({edl_url}) token request for user {user!r} failed"

    def attempt() -> str:
        try:
            resp = s.post(url, auth=HTTPBasicAuth(user, password), timeout=timeout, allow_redirects=False,
                          headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise Transient(DownloadError(f"{failed}: {type(exc).__name__}")) from None
        if resp.status_code in (401, 403):
            raise AuthenticationError(
                f"Earthdata Login ({edl_url}) refused user {user!r} (HTTP {resp.status_code}{oauth_error(resp.content)}); "
                "check the Earthdata user/password (EARTHDATA_USERNAME/EARTHDATA_PASSWORD or the Connection)"
            )
        if resp.status_code == 200:
            try:
                token = resp.json().get("access_token")
            except (ValueError, AttributeError):
                token = None
            if not token:
                raise DownloadError(f"Earthdata Login ({edl_url}) answered without an access_token for user {user!r}")
            return str(token)
        error = DownloadError(f"{failed}: HTTP {resp.status_code}{oauth_error(resp.content)}")
        if resp.status_code in RETRY_STATUSES:
            raise Transient.from_response(error, resp)
        raise error

    return call(attempt, policy)


class EarthdataAuth(TokenAuth):
    """``Authorization: Bearer <EDL token>`` for ASF, from a token or a user/password.

    With a user/password the token is fetched on first use (:func:`find_or_create_token`),
    shared by threads, and fetched again after :meth:`invalidate` (the downloader calls it
    after a 401). A fixed token is kept: a 401 then means it is expired or revoked (see
    :class:`~bigearthnet_s1.tokenauth.TokenAuth`).
    """

    service = "Earthdata login"

    def __init__(
        self,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        edl_url: str = EDL_URL,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(token=token, user=user, password=password)
        self.edl_url = edl_url
        self._session = session
        self.timeout = timeout

    def _obtain(self) -> str:
        assert self.user is not None and self._password is not None
        token = find_or_create_token(self.user, self._password, edl_url=self.edl_url, session=self._session,
                                     timeout=self.timeout)
        log.info("Earthdata Login: token obtained for user %s", self.user)
        return token

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None, *, edl_url: str | None = None,
                     environ: Mapping[str, str] | None = None) -> EarthdataAuth | None:
        """From Connection-style options (``token`` / ``user`` / ``password``) or the environment; None without any."""
        opts = dict(options or {})
        creds = credentials_from_options(opts.get("token"), opts.get("user"), opts.get("password"), environ)
        if not creds:
            return None
        return cls(**creds, edl_url=edl_url or str(opts.get("edl_url") or EDL_URL))
