"""Copernicus Data Space Ecosystem (CDSE) OData catalogue backend.

Queries ``<url>/Products`` with an OData ``$filter`` (collection SENTINEL-1, product type
``IW_GRDH_1S``, ``OData.CSC.Intersects`` with the search polygon, sensing start in the
window), ``$expand=Attributes``, ``$orderby=ContentDate/Start asc``, and follows
``@odata.nextLink`` until the last page. CREODIAS' ``datahub.creodias.eu/odata/v1`` serves the
same API. The catalogue itself needs no login; a bearer token is sent when one is known (a
``token`` given, or one :meth:`CdseCatalog.access_token` got from user/password through the
library's one CDSE token client, :class:`bigearthnet_s1.hub.CdseTokenAuth`).

Why our own small client rather than a package: sentinelsat does not speak this API, and the
CDSE clients on PyPI (cdsetool, eodag) bring their own retry/threading/config layers that do
not honour ``Retry-After`` in a way we could test and bound; what we need is one GET loop.
"""

from __future__ import annotations

import logging
import warnings
from datetime import datetime
from typing import Any, Unpack
from urllib.parse import urlsplit

import requests
import shapely
import shapely.geometry
import shapely.wkt
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1._time import format_iso, parse_iso_or_none, require_utc
from bigearthnet_s1.catalog import ProductRecord, is_iw_grd, make_record, product_name
from bigearthnet_s1.catalog._http import HubOptions, get_json, hub_retry
from bigearthnet_s1.checksum import best_checksum
from bigearthnet_s1.errors import AuthenticationError, CatalogError, DownloadError, InputError
from bigearthnet_s1.hub import CDSE_TOKEN_URL, CdseTokenAuth
from bigearthnet_s1.redact import redact_url
from bigearthnet_s1.retry import mount

__all__ = ["CdseCatalog", "cdse_access_token", "DEFAULT_URL", "DEFAULT_DOWNLOAD_URL"]

log = logging.getLogger(__name__)

DEFAULT_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
DEFAULT_DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"


def _search_polygon_wkt(footprint: BaseGeometry, max_vertices: int = 40) -> str:
    """WKT (lon lat, 6 decimals) of the search area (a superset of ``footprint``).

    Complex shapes become their convex hull; a hull with many vertices (a densified tile
    outline) is grown by 0.002 deg and simplified within 0.001 deg, which keeps it a superset
    while the query stays short (hubs limit the URL length).
    """
    geom = footprint
    if geom.geom_type != "Polygon" or len(geom.exterior.coords) > max_vertices or len(geom.interiors):
        geom = geom.convex_hull
    if geom.geom_type != "Polygon":
        raise InputError(f"search footprint must have an area, got {footprint.geom_type}")
    if len(geom.exterior.coords) > max_vertices:
        geom = geom.buffer(0.002, join_style="mitre").simplify(0.001)
    geom = shapely.geometry.polygon.orient(geom, 1.0)  # counter-clockwise exterior
    return shapely.to_wkt(geom, rounding_precision=6, trim=True)


def _parse_footprint(item: dict[str, Any]) -> BaseGeometry | None:
    geo = item.get("GeoFootprint")
    if geo:
        return shapely.geometry.shape(geo)
    fp = item.get("Footprint")
    if fp:
        # geography'SRID=4326;POLYGON ((lon lat, ...))'
        text = fp.strip()
        if text.startswith("geography'"):
            text = text[len("geography'"):].rstrip("'")
        if ";" in text:
            text = text.split(";", 1)[1]
        return shapely.wkt.loads(text)
    return None


def cdse_access_token(
    user: str,
    password: str,
    *,
    token_url: str = CDSE_TOKEN_URL,
    session: requests.Session | None = None,
) -> str:
    """An OAuth2 access token for CDSE downloads (password grant, client ``cdse-public``), from
    the library's one token client (:class:`~bigearthnet_s1.hub.CdseTokenAuth`).

    Raises ``AuthenticationError`` (without the password) when the identity server refuses.
    """
    return CdseTokenAuth(user, password, token_url=token_url, session=session).token()


class CdseOptions(HubOptions, total=False):
    """Options of :class:`CdseCatalog` beyond the query's (see there)."""

    user: str | None
    password: str | None
    token: str | None
    token_url: str
    session: requests.Session | None


class CdseCatalog:
    """Sentinel-1 IW GRD search in a CDSE-style OData catalogue.

    ``url`` is the OData service root (``.../odata/v1``). ``download_url`` is the root the
    records' download URLs use (default: CDSE's download service for the CDSE catalogue, else
    ``url``). ``product_types``, ``page_size`` (products per page), ``max_pages``: the query.
    Options: ``token`` (sent with every search), or ``user``/``password`` (a token for
    :meth:`access_token`, from ``token_url``); ``session``; the request options of
    :class:`~bigearthnet_s1.catalog._http.HubOptions` (``timeout`` 60 s, ``retries``,
    ``backoff``, ``max_retry_after``, ``sleep``: used for every wait, injectable for tests).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        download_url: str | None = None,
        product_types: tuple[str, ...] = ("IW_GRDH_1S",),
        page_size: int = 1000,
        max_pages: int = 200,
        **options: Unpack[CdseOptions],
    ) -> None:
        self.url = url.rstrip("/")
        if download_url is None:
            download_url = DEFAULT_DOWNLOAD_URL if self.url == DEFAULT_URL else self.url
        self.download_url = download_url.rstrip("/")
        self.product_types = tuple(product_types)
        self.page_size = int(page_size)
        self.max_pages = int(max_pages)
        self.timeout = float(options.get("timeout", 60.0))
        self.retry = hub_retry(options)
        self.retries = self.retry.max_failures
        self.token_url = options.get("token_url", CDSE_TOKEN_URL)
        self.session = mount(options.get("session") or requests.Session(), self.retry)
        user, password, token = options.get("user"), options.get("password"), options.get("token")
        self._auth = (CdseTokenAuth(user, password, token=token, token_url=self.token_url, session=self.session)
                      if token or (user and password) else None)

    def __repr__(self) -> str:  # never show credentials
        auth = "anonymous" if self._auth is None else ("token" if self._auth.cached() else "user")
        return f"CdseCatalog({self.url!r}, auth={auth})"

    # -- query ---------------------------------------------------------------------------
    def filter_expression(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> str:
        """The OData ``$filter`` for IW GRD products intersecting the area, start in [start, end]."""
        types = " or ".join(
            "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            f"att/OData.CSC.StringAttribute/Value eq '{t}')"
            for t in self.product_types
        )
        return (
            "Collection/Name eq 'SENTINEL-1'"
            f" and ({types})"
            f" and OData.CSC.Intersects(area=geography'SRID=4326;{_search_polygon_wkt(footprint_wgs84)}')"
            f" and ContentDate/Start ge {format_iso(require_utc(start, 'search start'), timespec='milliseconds')}"
            f" and ContentDate/Start le {format_iso(require_utc(end, 'search end'), timespec='milliseconds')}"
        )

    def _headers(self) -> dict[str, str]:
        token = self._auth.cached() if self._auth is not None else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def access_token(self) -> str:
        """The bearer token: the one given, or one from user/password (renewed when it expires)."""
        if self._auth is None:
            raise AuthenticationError(
                "CDSE: no token and no user/password (set CDSE_USER/CDSE_PASSWORD or CDSE_TOKEN)"
            )
        try:
            return self._auth.token()
        except DownloadError as exc:  # the identity server is unreachable or failing
            raise CatalogError(str(exc)) from None

    def search(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> list[ProductRecord]:
        """IW GRD products intersecting ``footprint_wgs84`` (lon/lat), sensing start in [start, end] (UTC)."""
        params: dict[str, str] | None = {
            "$filter": self.filter_expression(footprint_wgs84, start, end),
            "$orderby": "ContentDate/Start asc",
            "$top": str(self.page_size),
            "$expand": "Attributes",
        }
        url = f"{self.url}/Products"
        return self.search_url(url, params=params)

    def search_url(self, url: str, params: dict[str, str] | None = None) -> list[ProductRecord]:
        """Fetch ``url`` (a ``Products`` query) and every ``@odata.nextLink`` page after it."""
        records: list[ProductRecord] = []
        seen_links: set[str] = set()
        base_host = urlsplit(url).netloc
        pages = 0
        total_items = 0
        while True:
            pages += 1
            if pages > self.max_pages:
                raise CatalogError(f"CDSE search at {redact_url(url)}: more than {self.max_pages} pages; narrow the search")
            page = get_json(
                self.session,
                url,
                what=f"CDSE search page {pages}",
                params=params,
                headers=self._headers(),
                timeout=self.timeout,
                retry=self.retry,
            )
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise CatalogError(
                    f"CDSE search page {pages} from {redact_url(url)}: no 'value' list in the answer "
                    f"(keys: {sorted(page)[:8] if isinstance(page, dict) else type(page).__name__})"
                )
            for item in page["value"]:
                total_items += 1
                rec = self.parse_product(item)
                if rec is not None:
                    records.append(rec)
            link = page.get("@odata.nextLink")
            if not link or not page["value"]:
                break
            if link in seen_links:
                raise CatalogError(f"CDSE search: @odata.nextLink repeats ({redact_url(link)}); stopping")
            if urlsplit(link).netloc != base_host:
                raise CatalogError(
                    f"CDSE search: @odata.nextLink points to another host ({urlsplit(link).netloc} "
                    f"instead of {base_host}); refusing to follow it"
                )
            seen_links.add(link)
            url, params = link, None
        log.info("CDSE search: %d IW GRD products out of %d items in %d page(s)", len(records), total_items, pages)
        return records

    # -- parsing -------------------------------------------------------------------------
    def parse_product(self, item: dict[str, Any]) -> ProductRecord | None:
        """A ``ProductRecord`` from one OData product, or ``None`` for a non-IW-GRD product."""
        raw_name = item.get("Name")
        if not raw_name:
            raise CatalogError(f"CDSE product without a Name (Id {item.get('Id')!r})")
        name = product_name(str(raw_name))
        if not is_iw_grd(name):
            log.debug("CDSE: skipping %s (not a Sentinel-1 IW GRD product)", name)
            return None
        attrs = {a.get("Name"): a.get("Value") for a in item.get("Attributes") or [] if isinstance(a, dict)}
        footprint = _parse_footprint(item)
        if footprint is None:
            warnings.warn(f"CDSE product {name} has no footprint; skipped", UserWarning, stacklevel=2)
            return None
        content_date = item.get("ContentDate") or {}
        platform = attrs.get("platformSerialIdentifier")
        mission = f"S1{platform}" if isinstance(platform, str) and len(platform) == 1 else None
        size = item.get("ContentLength")
        picked = best_checksum(item.get("Checksum"), verifiable_only=False)
        algorithm, checksum = (picked[0].upper(), picked[1]) if picked else (None, None)
        uid = item.get("Id")
        try:
            return make_record(
                name,
                source="cdse",
                footprint=footprint,
                uuid=uid,
                mission=mission,
                start_time=parse_iso_or_none(content_date.get("Start") or attrs.get("beginningDateTime")),
                stop_time=parse_iso_or_none(content_date.get("End") or attrs.get("endingDateTime")),
                absolute_orbit=attrs.get("orbitNumber"),
                relative_orbit=attrs.get("relativeOrbitNumber"),
                orbit_direction=attrs.get("orbitDirection"),
                size=int(size) if size else None,  # CREODIAS reports 0 when unknown
                checksum=checksum,
                checksum_algorithm=algorithm,
                online=item.get("Online"),
                url=f"{self.download_url}/Products({uid})/$value" if uid else None,
            )
        except (InputError, ValueError, TypeError) as exc:
            raise CatalogError(f"CDSE product {name}: unusable record ({exc})") from None
