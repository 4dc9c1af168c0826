"""Talking to a hub about products: records, endpoints, credentials, online status, retrieval.

:class:`HubClient` is the one door to a hub's product protocol: the URL of a product's zip,
whether it is online, the retrieval of an archived (offline) product and its progress.
Offline products: ``check_online``, ``request_retrieval`` (DHuS: the GET of ``$value``
answering 202 triggers the retrieval; CDSE: an ``OData.CSC.Order``), the non-blocking
``retrieval_status`` (what an Airflow trigger polls), and the blocking ``wait_until_online``.
The product store (:mod:`bigearthnet_s1.store`) downloads through one, ``store.hub``.

Credentials: :class:`CdseTokenAuth` is the one token client for the hubs that take a bearer
token (CDSE's OpenID Connect password grant and refresh, or a fixed token), used by the CDSE
catalogue, the downloads and the DAG's Connections; DHuS takes HTTP basic auth
(``(user, password)``); ASF an Earthdata token (:mod:`bigearthnet_s1.earthdata`).
:func:`auth_from_options` finds a hub's credentials in Connection options or the environment.

Records: anything with the fields name, uuid, size, checksum, checksum_algorithm, online, url
and source of ``bigearthnet_s1.catalog.ProductRecord`` (:class:`ProductRef` is a minimal one).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import requests

from bigearthnet_s1 import transfer
from bigearthnet_s1._time import format_iso
from bigearthnet_s1.earthdata import EDL_URL, EarthdataAuth
from bigearthnet_s1.errors import AuthenticationError, DownloadError, ProductOfflineError
from bigearthnet_s1.excerpt import body_excerpt, oauth_error
from bigearthnet_s1.redact import redact_url, register_auth, register_secret
from bigearthnet_s1.tokenauth import TokenAuth

log = logging.getLogger(__name__)

__all__ = [
    "ACCOUNT_ENV",
    "CDSE_TOKEN_URL",
    "CdseTokenAuth",
    "HubClient",
    "HubEndpoints",
    "ProductLike",
    "ProductRef",
    "RetrievalStatus",
    "auth_from_options",
    "guess_source",
    "local_product_path",
]

#: Default CDSE identity (Keycloak) token endpoint.
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"

#: (user, password) environment variables of each hub, as ``catalog.open_catalog`` reads them.
ACCOUNT_ENV: dict[str, tuple[tuple[str, str], ...]] = {
    "dhus": (("BIGEARTHNET_S1_DHUS_USER", "BIGEARTHNET_S1_DHUS_PASSWORD"),),
    "cdse": (("BIGEARTHNET_S1_CDSE_USER", "BIGEARTHNET_S1_CDSE_PASSWORD"), ("CDSE_USER", "CDSE_PASSWORD")),
}


# --------------------------------------------------------------------------------------------
# records


@runtime_checkable
class ProductLike(Protocol):
    """The fields of ``catalog.ProductRecord`` the hub and the store use."""

    # read-only properties, so that frozen dataclasses (ProductRecord, ProductRef) conform
    @property
    def name(self) -> str: ...
    @property
    def uuid(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...
    @property
    def checksum(self) -> str | None: ...
    @property
    def checksum_algorithm(self) -> str | None: ...
    @property
    def online(self) -> bool | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class ProductRef:
    """A minimal product record (for a bare URL or a local file); same field names as ProductRecord."""

    name: str
    url: str | None = None
    source: str = "http"  # "dhus" | "cdse" | "asf" | "local" | "http"
    uuid: str | None = None
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None
    online: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ProductRef:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def local_product_path(record: ProductLike) -> Path:
    """The path of a ``source == "local"`` record (``url`` is a path or file: URL); must exist."""
    if not record.url:
        raise DownloadError(f"{record.name}: local record without a path (url)")
    url = record.url
    path = Path(unquote(urlsplit(url).path)) if url.startswith("file:") else Path(url)
    if not path.exists():
        raise DownloadError(f"{record.name}: local product {path} does not exist")
    return path


def guess_source(url: str) -> str:
    """"cdse", "dhus", "asf", "local" or "http" for a bare product URL/path."""
    if "://" not in url or url.startswith("file:"):
        return "local"
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith("dataspace.copernicus.eu"):
        return "cdse"
    if host == "asf.alaska.edu" or host.endswith(".asf.alaska.edu"):
        return "asf"
    if "/odata/v1/Products('" in url:
        return "dhus"
    return "http"


@dataclass(frozen=True)
class HubEndpoints:
    """Hub URLs (configurable so tests point them at loopback)."""

    dhus_url: str = "https://apihub.copernicus.eu/apihub/"
    cdse_odata_url: str = "https://catalogue.dataspace.copernicus.eu/odata/v1"
    cdse_download_url: str = "https://zipper.dataspace.copernicus.eu/odata/v1"
    cdse_token_url: str = CDSE_TOKEN_URL
    asf_edl_url: str = EDL_URL


# --------------------------------------------------------------------------------------------
# credentials


class CdseTokenAuth(TokenAuth):
    """Bearer-token auth for CDSE (OpenID Connect, Keycloak): the library's one CDSE token client.

    From ``username``/``password``: an access token by the password grant (client
    ``cdse-public``, with ``totp`` for accounts with two factors), renewed with the refresh
    token ``refresh_margin`` s before it expires (a new password grant when the refresh token
    itself expired or was refused). From a fixed ``token`` (a Connection's token, ``CDSE_TOKEN``):
    that token, sent as is. Thread-safe; :meth:`invalidate` after a 401 (see
    :class:`~bigearthnet_s1.tokenauth.TokenAuth`). ``token_url`` is configurable so tests point
    it at loopback; ``clock`` (monotonic seconds) exists for tests. Refused credentials raise
    ``AuthenticationError`` naming the user (never the password); an unreachable or failing
    identity server ``DownloadError``.
    """

    service = "CDSE"
    client_id = "cdse-public"
    timeout = 30.0  # s, per token request

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        token: str | None = None,
        token_url: str = CDSE_TOKEN_URL,
        totp: str | None = None,
        refresh_margin: float = 60.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token=token, user=username, password=password)
        self.token_url = token_url
        self.totp = totp
        register_secret(totp)
        self.refresh_margin = refresh_margin
        self._session = session or requests.Session()
        self.clock = clock
        self._expiry = 0.0
        self._refresh: str | None = None
        self._refresh_expiry = 0.0

    def secrets(self) -> list[str]:
        return [*super().secrets(), *(s for s in (self.totp, self._refresh) if s)]

    def _valid(self) -> bool:
        return self._token is not None and self.clock() < self._expiry - self.refresh_margin

    def _obtain(self) -> str:
        if self._refresh is not None and self.clock() < self._refresh_expiry - self.refresh_margin:
            try:
                return self._grant({"client_id": self.client_id, "grant_type": "refresh_token",
                                    "refresh_token": self._refresh})
            except AuthenticationError:
                log.info("CDSE refresh token refused; logging in again as %s", self.user)
        assert self.user is not None and self._password is not None
        data = {"client_id": self.client_id, "grant_type": "password", "username": self.user, "password": self._password}
        if self.totp:
            data["totp"] = self.totp
        return self._grant(data)

    def _grant(self, data: dict[str, str]) -> str:
        """POST a grant to the token endpoint; the new access token (its refresh token kept)."""
        now = self.clock()
        where = redact_url(self.token_url)
        try:
            resp = self._session.post(self.token_url, data=data, timeout=self.timeout,
                                      headers={"User-Agent": transfer.USER_AGENT})
        except requests.RequestException as exc:
            raise DownloadError(f"CDSE token endpoint {where} unreachable: {exc}") from exc
        if resp.status_code in (400, 401, 403):
            raise AuthenticationError(
                f"CDSE token request for user {self.user!r}: HTTP {resp.status_code} from {where}: the identity "
                f"server refused the credentials ({data['grant_type']} grant{oauth_error(resp.content)})"
            )
        if resp.status_code != 200:
            raise DownloadError(f"CDSE token endpoint {where} answered HTTP {resp.status_code}: "
                                f"{body_excerpt(resp.content)!r}")
        try:
            body = resp.json()
            access = str(body["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DownloadError(f"CDSE token endpoint {where} sent no access_token") from exc
        self._expiry = now + float(body.get("expires_in", 600))
        if body.get("refresh_token"):
            self._refresh = str(body["refresh_token"])
            register_secret(self._refresh)
            self._refresh_expiry = now + float(body.get("refresh_expires_in", 3600))
        else:
            self._refresh, self._refresh_expiry = None, 0.0
        return access

    def cached(self) -> str | None:
        """The token held now if it may still be sent (no request), else None."""
        with self._lock:
            if self._fixed:
                return self._fixed
            return self._token if self._valid() else None


def auth_from_options(source: str, options: Mapping[str, Any] | None = None, *,
                      endpoints: HubEndpoints | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """A hub's download credentials from Connection-style options, else the environment; None
    without any. Every secret found is registered for redaction.

    ``options``: ``user``/``password`` (an account) or ``token`` (a fixed bearer token). ASF:
    an Earthdata token (a password alone is the token) or account (see ``earthdata``). The
    environment: :data:`ACCOUNT_ENV` of the hub, and ``CDSE_TOKEN`` for CDSE. An account is
    returned as a ``(user, password)`` pair, which :meth:`HubClient.auth_for` turns into the
    hub's token client (one per account); a token as a :class:`CdseTokenAuth`.
    """
    opts = dict(options or {})
    env = os.environ if environ is None else environ
    endpoints = endpoints or HubEndpoints()
    auth: Any = None
    if source == "asf":  # Earthdata bearer token (a Connection password alone is the token)
        auth = EarthdataAuth.from_options(opts, edl_url=endpoints.asf_edl_url, environ=environ)
    elif opts.get("user"):
        auth = (str(opts["user"]), str(opts.get("password") or ""))
    elif opts.get("token"):
        auth = CdseTokenAuth(token=str(opts["token"]), token_url=endpoints.cdse_token_url)
    else:
        for user_var, password_var in ACCOUNT_ENV.get(source, ()):
            if env.get(user_var):
                auth = (env[user_var], env.get(password_var, ""))
                break
        else:
            if source == "cdse" and env.get("CDSE_TOKEN"):
                auth = CdseTokenAuth(token=env["CDSE_TOKEN"], token_url=endpoints.cdse_token_url)
    register_auth(auth)
    return auth


# --------------------------------------------------------------------------------------------
# the hub protocol


@dataclass(frozen=True)
class RetrievalStatus:
    """Where an archived product stands. ``state``: "online" | "pending" | "failed".

    JSON-safe (``to_json``/``from_json``) so an Airflow trigger can carry it.
    ``order_id``: the CDSE order (None for DHuS, whose retrieval has no id).
    ``checked_at``: ISO 8601 UTC.
    """

    name: str
    state: str
    order_id: str | None = None
    message: str = ""
    checked_at: str = field(default_factory=lambda: format_iso(datetime.now(UTC), timespec="seconds", zone="+00:00"))

    @property
    def online(self) -> bool:
        return self.state == "online"

    def __str__(self) -> str:
        return self.state

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RetrievalStatus:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class HubClient:
    """Talks to a hub about one product: URLs, online status, retrieval from the long-term archive.

    ``session``/``auth`` are defaults for every request; ``auth`` may be a mapping by record
    source (``{"dhus": ("user", "pw"), "cdse": CdseTokenAuth(...)}``). A plain
    ``(user, password)`` pair given for a CDSE (ASF) record becomes a :class:`CdseTokenAuth`
    (``EarthdataAuth``), one per account, so its tokens are reused. Every method returns
    promptly except :meth:`wait_until_online`; ``sleep`` is its wait (injectable for tests).
    """

    def __init__(
        self,
        *,
        endpoints: HubEndpoints | None = None,
        session: requests.Session | None = None,
        auth: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints or HubEndpoints()
        self.session = session
        self.auth = auth
        register_auth(auth)
        self._sleep = sleep
        self._token_auths: dict[tuple[str, str, str], CdseTokenAuth | EarthdataAuth] = {}
        self._lock = threading.Lock()
        self._own_session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"HubClient({self.endpoints!r})"

    def _session(self, session: requests.Session | None) -> requests.Session:
        if session is not None:
            return session
        if self.session is not None:
            return self.session
        with self._lock:
            if self._own_session is None:
                self._own_session = requests.Session()
            return self._own_session

    # ---- credentials and URLs

    @staticmethod
    def credentials(source: str, user: str, password: str, endpoints: HubEndpoints | None = None) -> Any:
        """Auth object for a hub account: DHuS basic auth (what sentinelsat's session sends),
        CDSE tokens, ASF Earthdata bearer tokens."""
        endpoints = endpoints or HubEndpoints()
        if source == "cdse":
            return CdseTokenAuth(user, password, token_url=endpoints.cdse_token_url)
        if source == "asf":
            return EarthdataAuth(user=user, password=password, edl_url=endpoints.asf_edl_url)
        return (user, password)

    def auth_for(self, record: ProductLike, auth: Any = None) -> Any:
        """The auth object to use for ``record`` (``auth`` overrides the client's default)."""
        a = self.auth if auth is None else auth
        if isinstance(a, Mapping):
            a = a.get(record.source)
        if record.source in ("cdse", "asf") and isinstance(a, (tuple, list)) and len(a) == 2:
            # one token auth per hub and account, so that its tokens are reused
            user, password = str(a[0]), str(a[1])
            with self._lock:
                key = (record.source, user, password)
                if key not in self._token_auths:
                    self._token_auths[key] = self.credentials(record.source, user, password, self.endpoints)
                return self._token_auths[key]
        return a

    def download_url(self, record: ProductLike) -> str:
        """The URL of the product zip (record.url, else built from the uuid)."""
        if record.url:
            return record.url
        if not record.uuid:
            raise DownloadError(f"{record.name}: record has neither url nor uuid; cannot download")
        if record.source == "dhus":
            return f"{self.endpoints.dhus_url.rstrip('/')}/odata/v1/Products('{record.uuid}')/$value"
        if record.source == "cdse":
            return f"{self.endpoints.cdse_download_url.rstrip('/')}/Products({record.uuid})/$value"
        raise DownloadError(f"{record.name}: no download url in the {record.source} record")

    def _dhus_entity_url(self, record: ProductLike) -> str:
        url = self.download_url(record)
        if url.endswith("/$value"):
            return url[: -len("/$value")]
        if record.uuid:
            return f"{self.endpoints.dhus_url.rstrip('/')}/odata/v1/Products('{record.uuid}')"
        raise DownloadError(f"{record.name}: cannot derive the DHuS OData entity from {redact_url(url)}")

    def _cdse_entity_url(self, record: ProductLike) -> str:
        uuid = record.uuid
        if not uuid and record.url:
            m = re.search(r"Products\(([^)]+)\)", record.url)
            uuid = m.group(1).strip("'") if m else None
        if not uuid:
            raise DownloadError(f"{record.name}: CDSE record without uuid; cannot query or order it")
        return f"{self._cdse_odata_base(record)}/Products({uuid})"

    def _cdse_odata_base(self, record: ProductLike) -> str:
        """Catalogue OData root: the configured one, else the root of a non-CDSE record URL (mirrors, tests)."""
        configured = self.endpoints.cdse_odata_url.rstrip("/")
        if configured != HubEndpoints.cdse_odata_url or not record.url:
            return configured
        host = (urlsplit(record.url).hostname or "").lower()
        i = record.url.find("/odata/v1/")
        if host.endswith("dataspace.copernicus.eu") or i < 0:
            return configured
        return record.url[: i + len("/odata/v1")]

    # ---- offline products

    def check_online(self, record: ProductLike, *, session: requests.Session | None = None, auth: Any = None) -> bool:
        """Ask the hub whether the product can be downloaded now (DHuS ``Online/$value``, CDSE ``Online``)."""
        if record.source == "local":
            return local_product_path(record).exists()
        sess = self._session(session)
        a = self.auth_for(record, auth)
        if record.source == "dhus":
            url = self._dhus_entity_url(record) + "/Online/$value"
            resp = self._get(sess, url, a, record.name)
            if resp.status_code != 200:
                # DHuS versions without the Online property: the product is online.
                if "Online" in resp.text and resp.status_code in (400, 404, 500):
                    return True
                raise DownloadError(f"{record.name}: online check {redact_url(url)} failed (HTTP {resp.status_code})")
            return resp.text.strip().lower() == "true"
        if record.source == "cdse":
            url = self._cdse_entity_url(record)
            resp = self._get(sess, url, a, record.name)
            if resp.status_code != 200:
                raise DownloadError(f"{record.name}: online check {redact_url(url)} failed (HTTP {resp.status_code})")
            body = _odata_entity(resp, record.name)
            return bool(body.get("Online", True))
        return record.online is not False

    def request_retrieval(self, record: ProductLike, *, session: requests.Session | None = None, auth: Any = None) -> RetrievalStatus:
        """Ask the hub to restore an archived product; returns at once.

        DHuS: a GET of ``$value`` answering 202 starts the retrieval (200 means it is online;
        403 usually means the user's quota of retrievals is used up). CDSE: POST
        ``Products(<uuid>)/OData.CSC.Order``; the order id comes back in the status.
        """
        sess = self._session(session)
        a = self.auth_for(record, auth)
        if record.source == "dhus":
            return self._dhus_retrieval(record, sess, a)
        if record.source == "cdse":
            return self._cdse_order(record, sess, a)
        if self.check_online(record, session=sess, auth=a):
            return RetrievalStatus(record.name, "online")
        return RetrievalStatus(record.name, "failed", message=f"source {record.source!r} has no retrieval")

    def _dhus_retrieval(self, record: ProductLike, sess: requests.Session, auth: Any) -> RetrievalStatus:
        url = self.download_url(record)
        try:
            resp = transfer.open_stream(sess, url, headers={"User-Agent": transfer.USER_AGENT}, auth=auth, timeout=(15, 60))
        except requests.RequestException as exc:
            raise DownloadError(f"{record.name}: retrieval request {redact_url(url)} failed: {exc}") from exc
        with resp:
            if resp.status_code == 202:
                log.info("%s: DHuS accepted the retrieval from its long-term archive", record.name)
                return RetrievalStatus(record.name, "pending", message="DHuS retrieval accepted (HTTP 202)")
            if resp.status_code in (200, 206):
                return RetrievalStatus(record.name, "online")
            if resp.status_code == 403:
                raise DownloadError(
                    f"{record.name}: DHuS refused the retrieval (HTTP 403; quota of offline retrievals used up, "
                    "or the credentials lack download rights)"
                )
            raise DownloadError(f"{record.name}: retrieval request {redact_url(url)} answered HTTP {resp.status_code}")

    def _cdse_order(self, record: ProductLike, sess: requests.Session, auth: Any) -> RetrievalStatus:
        if self.check_online(record, session=sess, auth=auth):
            return RetrievalStatus(record.name, "online")
        url = self._cdse_entity_url(record) + "/OData.CSC.Order"
        try:
            resp = sess.post(url, json={}, auth=auth, timeout=(15, 60), headers={"User-Agent": transfer.USER_AGENT})
        except requests.RequestException as exc:
            raise DownloadError(f"{record.name}: order {redact_url(url)} failed: {exc}") from exc
        if resp.status_code not in (200, 201, 202):
            raise DownloadError(
                f"{record.name}: CDSE order {redact_url(url)} answered HTTP {resp.status_code}: "
                f"{body_excerpt(resp.content, 200)}")
        body = _odata_entity(resp, record.name)
        order_id = str(body.get("Id")) if body.get("Id") is not None else None
        state = _order_state(body.get("Status"))
        log.info("%s: CDSE order %s %s", record.name, order_id, body.get("Status"))
        return RetrievalStatus(record.name, state if state != "online" else "pending", order_id,
                               str(body.get("StatusMessage") or ""))

    def retrieval_status(
        self,
        record: ProductLike,
        *,
        order_id: str | None = None,
        session: requests.Session | None = None,
        auth: Any = None,
    ) -> RetrievalStatus:
        """One non-blocking poll: "online", "pending" or "failed" (a failed CDSE order)."""
        sess = self._session(session)
        a = self.auth_for(record, auth)
        if self.check_online(record, session=sess, auth=a):
            return RetrievalStatus(record.name, "online", order_id)
        if record.source == "cdse" and order_id:
            url = f"{self._cdse_odata_base(record)}/Orders({order_id})"
            resp = self._get(sess, url, a, record.name)
            if resp.status_code == 200:
                body = _odata_entity(resp, record.name)
                state = _order_state(body.get("Status"))
                msg = str(body.get("StatusMessage") or body.get("Status") or "")
                if state == "failed":
                    return RetrievalStatus(record.name, "failed", order_id, f"CDSE order {order_id} failed: {msg}")
                return RetrievalStatus(record.name, "pending", order_id, msg)
            return RetrievalStatus(record.name, "pending", order_id, f"order status HTTP {resp.status_code}")
        return RetrievalStatus(record.name, "pending", order_id)

    def wait_until_online(
        self,
        record: ProductLike,
        *,
        timeout: float,
        poll: float = 60.0,
        rerequest_every: int = 10,
        session: requests.Session | None = None,
        auth: Any = None,
    ) -> RetrievalStatus:
        """Request the retrieval and block until the product is online (timeout, poll in s).

        DHuS forgets retrievals now and then: the request is repeated every
        ``rerequest_every`` polls. Raises ``ProductOfflineError`` after ``timeout`` s or when
        the CDSE order failed.
        """
        start = time.monotonic()
        st = self.request_retrieval(record, session=session, auth=auth)
        polls = 0
        while not st.online:
            if st.state == "failed":
                raise ProductOfflineError(f"{record.name}: retrieval from the {record.source} archive failed: {st.message}")
            waited = time.monotonic() - start
            if waited >= timeout:
                raise ProductOfflineError(
                    f"{record.name}: still offline after waiting {waited:.0f} s (limit {timeout:.0f} s) for the "
                    f"{record.source} long-term archive" + (f" (order {st.order_id})" if st.order_id else "")
                    + "; try again later or raise the wait limit"
                )
            self._sleep(min(poll, max(0.0, timeout - waited)))
            polls += 1
            if record.source == "dhus" and rerequest_every and polls % rerequest_every == 0:
                st = self.request_retrieval(record, session=session, auth=auth)
            else:
                st = self.retrieval_status(record, order_id=st.order_id, session=session, auth=auth)
        log.info("%s: online after %.0f s", record.name, time.monotonic() - start)
        return st

    def _get(self, sess: requests.Session, url: str, auth: Any, name: str) -> requests.Response:
        try:
            resp = transfer.open_stream(sess, url, headers={"User-Agent": transfer.USER_AGENT}, auth=auth, timeout=(15, 60))
        except requests.RequestException as exc:
            raise DownloadError(f"{name}: request {redact_url(url)} failed: {exc}") from exc
        with resp:
            resp.content  # noqa: B018 - read the (small) body, then release the connection
        return resp


def _odata_entity(resp: requests.Response, name: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as exc:
        raise DownloadError(f"{name}: {redact_url(resp.url)} sent no JSON ({body_excerpt(resp.content, 100)!r})") from exc
    if isinstance(body, dict) and isinstance(body.get("d"), dict):  # OData v2 (DHuS)
        body = body["d"]
    if isinstance(body, dict) and isinstance(body.get("value"), dict):
        body = body["value"]
    if isinstance(body, dict) and isinstance(body.get("value"), list) and len(body["value"]) == 1:
        body = body["value"][0]
    if not isinstance(body, dict):
        raise DownloadError(f"{name}: unexpected OData answer from {redact_url(resp.url)}")
    return body


def _order_state(status: Any) -> str:
    s = str(status or "").lower().replace(" ", "_")
    if s in ("failed", "cancelled", "canceled", "error"):
        return "failed"
    if s in ("completed", "done", "succeeded"):
        return "online"
    return "pending"
