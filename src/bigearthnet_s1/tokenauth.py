"""Bearer-token credentials: a fixed token, or an account's token obtained when first needed.

:class:`TokenAuth` is the ``requests`` auth every hub that takes ``Authorization: Bearer``
uses; a subclass says how an account gets its token (:class:`bigearthnet_s1.hub.CdseTokenAuth`:
CDSE's OpenID Connect grants; :class:`bigearthnet_s1.earthdata.EarthdataAuth`: NASA Earthdata
Login). Thread-safe: threads share one token. :meth:`TokenAuth.invalidate` drops a token
obtained for an account (the downloader calls it after a 401), so the next request obtains a
new one; a fixed token is kept (a 401 then means it expired or was revoked). The password and
every token are registered for redaction and never shown in a ``repr``.
"""

from __future__ import annotations

import threading

import requests
from requests.auth import AuthBase

from bigearthnet_s1.errors import AuthenticationError
from bigearthnet_s1.redact import register_secret

__all__ = ["TokenAuth"]


class TokenAuth(AuthBase):
    """``Authorization: Bearer <token>`` from ``token``, or from ``user``/``password``.

    Subclasses implement :meth:`_obtain` (a new token for the account) and may override
    :meth:`_valid` (whether the held token may still be sent). ``service`` names the service
    in messages.
    """

    service = "token auth"

    def __init__(self, *, token: str | None = None, user: str | None = None, password: str | None = None) -> None:
        if not token and not (user and password):
            raise AuthenticationError(f"{self.service}: give a token, or a user and a password")
        self.user = user
        self._password = password
        self._fixed = token
        self._token = token
        self._lock = threading.RLock()
        register_secret(password)
        register_secret(token)

    def __repr__(self) -> str:  # never show the token or the password
        who = f"user={self.user!r}" if self.user and not self._fixed else "token=***"
        return f"{type(self).__name__}({who})"

    def secrets(self) -> list[str]:
        """The password and the tokens held now (for ``redact.register_auth``)."""
        return [s for s in (self._password, self._fixed, self._token) if s]

    def _obtain(self) -> str:
        """A new token for the account (called under the lock; never for a fixed token)."""
        raise NotImplementedError

    def _valid(self) -> bool:
        """Whether the held token may still be sent (called under the lock)."""
        return self._token is not None

    def token(self) -> str:
        """A token to send: the fixed one, the one held, or a new one for the account."""
        with self._lock:
            if self._fixed:
                return self._fixed
            if not self._valid():
                self._token = self._obtain()
                register_secret(self._token)
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget a token obtained for the account (a fixed token cannot be renewed)."""
        with self._lock:
            if not self._fixed:
                self._token = None

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r
