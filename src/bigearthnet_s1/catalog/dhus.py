"""Data Hub Software (DHuS) backend through sentinelsat's ``SentinelAPI``.

Works against any DHuS endpoint (the closed SciHub/ApiHub, national mirrors, collaborative
ground segments): pass its API root, e.g. ``https://colhub.met.no/`` or
``https://some.mirror/apihub/``. The OpenSearch search gives names, orbits, direction,
times, footprints and a rounded size ("1.61 GB", not stored: ``size`` stays ``None``);
:meth:`DhusCatalog.details` asks the OData API for the exact size, MD5 and online status.

Status-level retries (429 honouring ``Retry-After``, 5xx, connection errors) are urllib3's
``Retry`` mounted on sentinelsat's own session; sentinelsat's exceptions become
:class:`~bigearthnet_s1.errors.CatalogError` / ``AuthenticationError`` with the hub named.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar, Unpack

import requests
import shapely.errors
import shapely.wkt
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1._time import as_utc, require_utc
from bigearthnet_s1.catalog import ProductRecord, is_iw_grd, make_record, product_name
from bigearthnet_s1.catalog._http import HubOptions, hub_retry, is_html
from bigearthnet_s1.catalog.cdse import _search_polygon_wkt
from bigearthnet_s1.errors import AuthenticationError, CatalogError, InputError
from bigearthnet_s1.excerpt import body_excerpt
from bigearthnet_s1.redact import redact_url
from bigearthnet_s1.retry import Transient, call, mount

__all__ = ["DhusCatalog"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def _gml_to_polygon(gml: str) -> BaseGeometry:
    # sentinelsat's parser turns "lat,lon lat,lon" GML coordinates into WKT (lon lat)
    from sentinelsat.sentinel import _parse_gml_footprint

    return shapely.wkt.loads(_parse_gml_footprint(gml))


class _Transient(CatalogError):
    """A body that broke off or did not parse; retried."""


class DhusOptions(HubOptions, total=False):
    """Options of :class:`DhusCatalog`: the hub account and the request options."""

    user: str | None
    password: str | None


class DhusCatalog:
    """Sentinel-1 IW GRD search on a DHuS endpoint (see module doc)."""

    def __init__(self, url: str, *, page_size: int = 100, **options: Unpack[DhusOptions]) -> None:
        """``url``: the hub's API root; ``page_size``: products per OpenSearch page; options:
        ``user``/``password`` and the request options of ``catalog._http.HubOptions``
        (``timeout`` 60 s, ``retries``, ``backoff``, ``max_retry_after``, ``sleep``)."""
        from sentinelsat import SentinelAPI

        user = options.get("user")
        timeout = float(options.get("timeout", 60.0))
        self.url = url if url.endswith("/") else url + "/"
        self.api = SentinelAPI(user, options.get("password"), api_url=self.url, show_progressbars=False, timeout=timeout)
        self.api.page_size = int(page_size)
        self.retry = hub_retry(options)
        self.retries = self.retry.max_failures
        self._user = user
        mount(self.api.session, self.retry)
        # sentinelsat stores the timeout on the session, where requests ignores it
        self.api.session.request = _with_timeout(self.api.session.request, timeout)

    def __repr__(self) -> str:  # never show credentials
        return f"DhusCatalog({redact_url(self.url)!r}, user={'set' if self._user else None})"

    # -- error handling --------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` with sentinelsat's exceptions made clear; a broken or malformed answer is
        asked for again (``self.retry``)."""
        from sentinelsat.exceptions import SentinelAPIError, UnauthorizedError

        def attempt() -> T:
            try:
                return fn()
            except UnauthorizedError as exc:
                code = getattr(getattr(exc, "response", None), "status_code", 401)
                raise AuthenticationError(
                    f"{what}: HTTP {code} from DHuS at {redact_url(self.url)}: the hub refused the "
                    f"credentials ({exc.msg}); check BIGEARTHNET_S1_DHUS_USER/PASSWORD or the arguments"
                ) from None
            except SentinelAPIError as exc:
                error = self._explain(exc, what)
                raise (Transient(error) if isinstance(error, _Transient) else error) from None
            except requests.exceptions.RetryError as exc:
                raise CatalogError(f"{what}: DHuS at {redact_url(self.url)} kept failing after the retries ({exc})") from None
            except requests.exceptions.ChunkedEncodingError as exc:
                raise Transient(_Transient(f"{what}: the answer of DHuS at {redact_url(self.url)} broke off ({exc})")) from None
            except requests.exceptions.RequestException as exc:
                raise CatalogError(
                    f"{what}: cannot reach DHuS at {redact_url(self.url)} ({type(exc).__name__}: {exc})"
                ) from None

        return call(attempt, self.retry)

    def _explain(self, exc: Any, what: str) -> CatalogError:
        r: requests.Response | None = getattr(exc, "response", None)
        where = redact_url(self.url)
        if r is None:
            return CatalogError(f"{what}: DHuS at {where}: {exc}")
        code = r.status_code
        if code in (401, 403):
            return AuthenticationError(
                f"{what}: HTTP {code} from DHuS at {where}: the hub refused the credentials "
                "(check BIGEARTHNET_S1_DHUS_USER/PASSWORD or the arguments)"
            )
        if code == 429:
            return CatalogError(
                f"{what}: DHuS at {where} still rate limits (HTTP 429, Retry-After "
                f"{r.headers.get('Retry-After')!r}) after {self.retries} retries"
            )
        if code >= 500:
            return CatalogError(
                f"{what}: HTTP {code} {r.reason} from DHuS at {where} after {self.retries} retries: "
                f"{body_excerpt(r.content)}"
            )
        body = r.content
        if is_html(r) and not body.lstrip().startswith(b"{"):
            return CatalogError(
                f"{what}: DHuS at {where} answered HTML instead of JSON (HTTP {code}, Content-Type "
                f"{r.headers.get('Content-Type')!r}): {body_excerpt(body)!r}"
            )
        if body.lstrip().startswith(b"{"):
            return _Transient(
                f"{what}: DHuS at {where} returned truncated or malformed JSON ({len(body)} bytes, HTTP {code})"
            )
        return CatalogError(f"{what}: DHuS at {where}: {exc}")

    # -- search ----------------------------------------------------------------------------
    def search(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> list[ProductRecord]:
        """IW GRD products intersecting ``footprint_wgs84`` (lon/lat), sensing start in [start, end] (UTC)."""
        area = _search_polygon_wkt(footprint_wgs84).replace("POLYGON ", "POLYGON")
        # sentinelsat sends naive datetimes as they are: hand it UTC wall-clock times
        date = (require_utc(start, "search start").replace(tzinfo=None),
                require_utc(end, "search end").replace(tzinfo=None))
        products = self._call(
            lambda: self.api.query(area=area, date=date, producttype="GRD", sensoroperationalmode="IW"),
            "DHuS search",
        )
        records = [r for r in (self.parse_product(uid, p) for uid, p in products.items()) if r is not None]
        log.info("DHuS search: %d IW GRD products out of %d results", len(records), len(products))
        return records

    def parse_product(self, uid: str, props: dict[str, Any]) -> ProductRecord | None:
        """A record from one sentinelsat OpenSearch result, or ``None`` if not IW GRD."""
        name = product_name(str(props.get("identifier") or props.get("title") or props.get("filename") or ""))
        if not is_iw_grd(name):
            log.debug("DHuS: skipping %s (not a Sentinel-1 IW GRD product)", name or uid)
            return None
        try:
            if props.get("footprint"):
                footprint = shapely.wkt.loads(props["footprint"])
            elif props.get("gmlfootprint"):
                footprint = _gml_to_polygon(props["gmlfootprint"])
            else:
                footprint = None
            datatake = props.get("missiondatatakeid")
            # sentinelsat parses the OpenSearch dates into naive UTC datetimes
            start, stop = (as_utc(t) if isinstance(t, datetime) else None
                           for t in (props.get("beginposition"), props.get("endposition")))
            return make_record(
                name,
                source="dhus",
                footprint=footprint,
                uuid=props.get("uuid") or uid,
                mission=None,  # from the name: platformidentifier is the COSPAR id
                start_time=start,
                stop_time=stop,
                absolute_orbit=props.get("orbitnumber"),
                relative_orbit=props.get("relativeorbitnumber"),
                orbit_direction=props.get("orbitdirection"),
                datatake_id=f"{int(datatake):06X}" if datatake is not None else None,
                online=None,  # the OpenSearch answer does not say; see details()
                url=props.get("link") or f"{self.url}odata/v1/Products('{uid}')/$value",
            )
        except (InputError, ValueError, TypeError, shapely.errors.ShapelyError) as exc:
            raise CatalogError(f"DHuS product {name}: unusable record ({exc})") from None

    # -- OData details -----------------------------------------------------------------------
    def details(self, record: ProductRecord) -> ProductRecord:
        """The record with exact size, MD5 checksum and online status from the hub's OData API."""
        if not record.uuid:
            raise CatalogError(f"product {record.name}: no uuid, cannot ask DHuS for details")
        info = self._call(lambda: self.api.get_product_odata(record.uuid), f"DHuS details of {record.name}")
        title = product_name(str(info.get("title", "")))
        if title != record.name:
            raise CatalogError(
                f"DHuS details of {record.name}: uuid {record.uuid} belongs to {title!r}, not this product"
            )
        checksum, algorithm = None, None
        for alg in ("md5", "sha3-256", "sha256"):
            if info.get(alg):
                checksum, algorithm = str(info[alg]).lower(), alg.upper()
                break
        return record.replace(
            size=int(info["size"]) if info.get("size") else None,
            checksum=checksum,
            checksum_algorithm=algorithm,
            # DHuS versions without a long-term archive have no Online property: all online
            online=bool(info.get("Online", True)),
            url=info.get("url") or record.url,
        )

    def complete(self, records: Iterable[ProductRecord]) -> list[ProductRecord]:
        """:meth:`details` for each record (use on the few chosen products, not a whole search)."""
        return [self.details(r) for r in records]

    def is_online(self, record: ProductRecord) -> bool:
        """Whether the product is online now (``False``: in the long-term archive)."""
        if not record.uuid:
            raise CatalogError(f"product {record.name}: no uuid, cannot ask DHuS whether it is online")
        return bool(self._call(lambda: self.api.is_online(record.uuid), f"DHuS online status of {record.name}"))


def _with_timeout(request: Callable[..., requests.Response], timeout: float) -> Callable[..., requests.Response]:
    def wrapped(method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", timeout)
        return request(method, url, **kwargs)

    return wrapped
