"""Alaska Satellite Facility (ASF DAAC) catalogue backend.

Queries ASF's Search API (``https://api.daac.asf.alaska.edu/services/search/param``) with
``output=geojson`` for Sentinel-1 IW GRD_HD products over the search area, and maps each
GeoJSON feature onto a :class:`~bigearthnet_s1.catalog.ProductRecord`:

============================  ==========================================================
ASF feature property          ProductRecord
============================  ==========================================================
``sceneName``                 ``name`` (``fileName`` without ``.zip`` as a fallback)
``fileID``                    ``uuid`` (ASF's product id, ``<scene>-GRD_HD``)
``platform``                  ``mission`` (``Sentinel-1A`` -> ``S1A``)
``startTime``/``stopTime``    ``start_time``/``stop_time`` (UTC; a time without offset is UTC)
``orbit``                     ``absolute_orbit``
``pathNumber``                ``relative_orbit`` (checked against the absolute orbit)
``flightDirection``           ``orbit_direction``
``frameNumber``               ``frame`` (ASF's along-track frame)
``polarization``              checked against the name's code (``VV+VH`` = ``DV``)
``bytes``                     ``size`` (exact, bytes)
``md5sum``                    ``checksum`` (``MD5``; ``None`` when ASF gives none)
``url``                       ``url`` (``datapool.asf.alaska.edu``; needs an Earthdata login)
geometry                      ``footprint`` (WGS84; split at the antimeridian)
============================  ==========================================================

Every ASF product is online (no long-term archive), so ``online`` is ``True``. The search
itself needs no login; downloads need a NASA Earthdata login (see
:mod:`bigearthnet_s1.earthdata`).

Why ASF's Search API and not ``asf_search.search()``: asf-search (14.x) queries NASA's CMR
and reports errors to an ASF endpoint by itself; the Search API answers the same products with
the same property names (asf-search's ``ASFProduct.properties``) in one GeoJSON GET that we
retry and bound like the other hubs (``Retry-After``, 5xx backoff). asf-search supplies the
vocabulary: its constants, the validation of the query keywords (``ASFSearchOptions``) and
the preparation of the search polygon (``validate_wkt``: counter-clockwise, wrapped at the
antimeridian as ASF expects).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from datetime import datetime
from typing import Any, Unpack

import numpy as np
import requests
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1._time import format_iso, parse_iso_or_none, require_utc
from bigearthnet_s1.catalog import ProductRecord, is_iw_grd, make_record, name_kind, product_name
from bigearthnet_s1.catalog._http import HubOptions, get_json, hub_retry
from bigearthnet_s1.catalog.cdse import _search_polygon_wkt
from bigearthnet_s1.errors import CatalogError, InputError
from bigearthnet_s1.redact import redact_url
from bigearthnet_s1.retry import mount

__all__ = ["AsfCatalog", "DEFAULT_URL", "POLARISATION_CODES", "search_params"]

log = logging.getLogger(__name__)

#: ASF's Search API, keyword endpoint.
DEFAULT_URL = "https://api.daac.asf.alaska.edu/services/search/param"

#: ASF ``polarization`` values -> the polarisation code in ESA product names.
POLARISATION_CODES = {"VV+VH": "DV", "HH+HV": "DH", "VV": "SV", "HH": "SH"}

_PLATFORM = re.compile(r"^\s*sentinel-?1\s*([a-d])\s*$", re.I)


def _unwrap_antimeridian(geom: BaseGeometry) -> BaseGeometry:
    """A (Multi)Polygon cut at +-180 deg glued back into one shape in 0..360 deg longitudes."""
    parts = list(shapely.get_parts(geom))
    if len(parts) < 2:
        return geom
    minx, _, maxx, _ = geom.bounds
    if not (minx <= -179.999 and maxx >= 179.999):
        return geom
    shifted = [shapely.transform(p, lambda xy: xy + [360.0, 0.0]) if p.bounds[2] <= 0.0 else p for p in parts]
    return shapely.union_all(shifted)


def search_polygon(footprint_wgs84: BaseGeometry) -> str:
    """WKT of the search area as ASF takes it (a superset of the footprint, lon/lat).

    The footprint is reduced as for CDSE (convex hull, at most 40 vertices, 6 decimals); a
    footprint split at the antimeridian is glued back first, and asf-search's
    ``validate_wkt`` then wraps it into the -180..180 deg form ASF searches with.
    """
    from asf_search import validate_wkt
    from asf_search.exceptions import ASFWKTError

    wkt = _search_polygon_wkt(_unwrap_antimeridian(footprint_wgs84))
    try:
        wrapped, _, _ = validate_wkt(wkt)
    except ASFWKTError as exc:
        raise InputError(f"ASF search area {wkt[:80]}...: {exc}") from None
    return str(shapely.to_wkt(wrapped, rounding_precision=6, trim=True))


def search_params(footprint_wgs84: BaseGeometry, start: datetime, end: datetime, *, max_results: int) -> dict[str, str]:
    """The Search API keywords for IW GRD_HD products over the area, acquired in [start, end] (UTC).

    The keywords (names and values) are checked with asf-search's ``ASFSearchOptions``, the
    same validation ASF's own client applies; a bad one raises ``CatalogError``.
    """
    from asf_search import BEAMMODE, PLATFORM, PRODUCT_TYPE, ASFSearchOptions

    params = {
        "platform": PLATFORM.SENTINEL1,
        "processingLevel": PRODUCT_TYPE.GRD_HD,
        "beamMode": BEAMMODE.IW,
        "intersectsWith": search_polygon(footprint_wgs84),
        "start": format_iso(require_utc(start, "search start"), timespec="seconds"),
        "end": format_iso(require_utc(end, "search end"), timespec="seconds"),
        "maxResults": str(int(max_results)),
    }
    try:
        ASFSearchOptions(**{**params, "maxResults": int(max_results)})
    except (KeyError, ValueError, TypeError) as exc:
        raise CatalogError(f"ASF search keywords rejected by asf-search: {exc}") from None
    params["output"] = "geojson"
    return params


def _int(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise InputError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InputError(f"{what}: expected an integer, got {value!r}")
        return int(value)
    if isinstance(value, str) and not re.fullmatch(r"\s*-?\d+(\.0*)?\s*", value):
        raise InputError(f"{what}: expected an integer, got {value!r}")
    return int(value.strip().split(".")[0]) if isinstance(value, str) else int(value)


def _wrap_longitudes(geom: BaseGeometry) -> BaseGeometry:
    """Longitudes beyond +-180 deg (a footprint written unwrapped, 179 -> 181) put back in range.

    The ring then jumps across the antimeridian, which ``clean_footprint`` splits at +-180 deg.
    """
    minx, _, maxx, _ = geom.bounds
    if minx >= -180.0 and maxx <= 180.0:
        return geom

    def wrap(xy: np.ndarray) -> np.ndarray:
        x = xy[:, 0]
        x = np.where(x > 180.0, x - 360.0, np.where(x < -180.0, x + 360.0, x))
        return np.column_stack([x, xy[:, 1]])

    return shapely.transform(geom, wrap)


class AsfOptions(HubOptions, total=False):
    """Options of :class:`AsfCatalog` beyond the query's (see there)."""

    token: str | None
    user: str | None
    password: str | None
    edl_url: str | None
    session: requests.Session | None


class AsfCatalog:
    """Sentinel-1 IW GRD search in ASF's Search API (GeoJSON).

    ``url``: the Search API's keyword endpoint. ``max_results``: the most products one search
    may return (ASF's ``maxResults``); a search that reaches it raises ``CatalogError`` rather
    than silently losing products. Options: ``token``/``user``/``password`` and ``edl_url``:
    the Earthdata login for downloads (:meth:`download_auth`); the search itself is anonymous,
    so the credentials are never sent to it. ``session``; the request options of
    :class:`~bigearthnet_s1.catalog._http.HubOptions` (``timeout`` 120 s, ``retries``,
    ``backoff``, ``max_retry_after``, ``sleep``: used for every wait, injectable for tests).
    """

    def __init__(self, url: str = DEFAULT_URL, *, max_results: int = 2000, **options: Unpack[AsfOptions]) -> None:
        self.url = url
        self.max_results = int(max_results)
        if self.max_results < 1:
            raise CatalogError(f"ASF catalogue: max_results must be >= 1, got {max_results}")
        self.timeout = float(options.get("timeout", 120.0))
        self.retry = hub_retry(options)
        self.retries = self.retry.max_failures
        self.edl_url = options.get("edl_url")
        self._token = options.get("token")
        self._user = options.get("user")
        self._password = options.get("password")
        self.session = mount(options.get("session") or requests.Session(), self.retry)

    def __repr__(self) -> str:  # never show credentials
        auth = "token" if self._token else ("user" if self._user else "anonymous")
        return f"AsfCatalog({redact_url(self.url)!r}, auth={auth})"

    def download_auth(self) -> Any:
        """A ``requests`` auth for ASF downloads (Earthdata bearer token), or ``None`` without credentials."""
        from bigearthnet_s1.earthdata import EDL_URL, EarthdataAuth

        if not (self._token or (self._user and self._password)):
            return None
        return EarthdataAuth(token=self._token, user=self._user, password=self._password, edl_url=self.edl_url or EDL_URL)

    # -- query ---------------------------------------------------------------------------
    def params(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> dict[str, str]:
        """The Search API keywords of :meth:`search`."""
        return search_params(footprint_wgs84, start, end, max_results=self.max_results)

    def search(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> list[ProductRecord]:
        """IW GRD products intersecting ``footprint_wgs84`` (lon/lat), sensing start in [start, end] (UTC).

        ASF matches products whose acquisition overlaps [start, end]; those that start
        outside it are dropped here, as the other backends do.
        """
        params = self.params(footprint_wgs84, start, end)
        page = get_json(
            self.session,
            self.url,
            what="ASF search",
            params=params,
            timeout=self.timeout,
            retry=self.retry,
        )
        return self.parse_reply(page, start=start, end=end)

    def parse_reply(self, reply: Any, *, start: datetime | None = None, end: datetime | None = None) -> list[ProductRecord]:
        """Records of a Search API GeoJSON reply (a FeatureCollection), IW GRD only, start in [start, end]."""
        where = redact_url(self.url)
        if not isinstance(reply, dict) or reply.get("type") != "FeatureCollection" or not isinstance(reply.get("features"), list):
            keys = sorted(reply)[:8] if isinstance(reply, dict) else type(reply).__name__
            raise CatalogError(f"ASF search at {where}: the reply is not a GeoJSON FeatureCollection (got {keys})")
        features = reply["features"]
        if len(features) >= self.max_results:
            raise CatalogError(
                f"ASF search at {where}: {len(features)} products, the limit of one search (max_results="
                f"{self.max_results}); narrow the area or time window, or raise max_results"
            )
        records: list[ProductRecord] = []
        seen: set[str] = set()
        for feature in features:
            rec = self.parse_feature(feature)
            if rec is None or rec.name in seen:
                continue
            if (start is not None and rec.start_time < start) or (end is not None and rec.start_time > end):
                continue
            seen.add(rec.name)
            records.append(rec)
        records.sort(key=lambda r: (r.start_time, r.name))
        log.info("ASF search: %d IW GRD products out of %d features", len(records), len(features))
        return records

    # -- parsing -------------------------------------------------------------------------
    def parse_feature(self, feature: Any) -> ProductRecord | None:
        """A ``ProductRecord`` from one GeoJSON feature, or ``None`` for a product that is not IW GRD_HD."""
        if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
            raise CatalogError(f"ASF search: a feature without properties ({str(feature)[:120]!r})")
        p: dict[str, Any] = feature["properties"]
        raw_name = p.get("sceneName") or p.get("fileName")
        if not raw_name:
            raise CatalogError(f"ASF product without sceneName or fileName (fileID {p.get('fileID')!r})")
        name = product_name(str(raw_name))
        level = p.get("processingLevel")
        if (level and str(level).upper() != "GRD_HD") or not is_iw_grd(name):
            log.debug("ASF: skipping %s (%s, not a Sentinel-1 IW GRD_HD product)", name, level)
            return None
        try:
            geometry = feature.get("geometry")
            if not geometry:
                raise InputError("no geometry")
            footprint = _wrap_longitudes(shapely.geometry.shape(geometry))
            platform = p.get("platform")
            m = _PLATFORM.match(platform) if isinstance(platform, str) else None
            self._check_polarisation(name, p.get("polarization"))
            md5 = str(p.get("md5sum") or "").strip().lower() or None
            if md5 is not None and not re.fullmatch(r"[0-9a-f]{32}", md5):
                raise InputError(f"md5sum {p.get('md5sum')!r} is not an MD5 hex digest")
            size = _int(p.get("bytes"), "bytes")
            direction = p.get("flightDirection")
            if not direction:
                raise InputError("no flightDirection (ASCENDING/DESCENDING) in the record")
            return make_record(
                name,
                source="asf",
                footprint=footprint,
                uuid=p.get("fileID"),
                mission=f"S1{m.group(1).upper()}" if m else None,
                start_time=parse_iso_or_none(p.get("startTime")),
                stop_time=parse_iso_or_none(p.get("stopTime")),
                absolute_orbit=_int(p.get("orbit"), "orbit"),
                relative_orbit=_int(p.get("pathNumber"), "pathNumber"),
                orbit_direction=str(direction),
                frame=_int(p.get("frameNumber"), "frameNumber"),
                size=size if size and size > 0 else None,
                checksum=md5,
                checksum_algorithm="MD5" if md5 else None,
                online=True,
                url=p.get("url") or None,
            )
        except (InputError, ValueError, TypeError, AttributeError) as exc:
            raise CatalogError(f"ASF product {name}: unusable record ({exc})") from None

    @staticmethod
    def _check_polarisation(name: str, polarization: Any) -> None:
        if not polarization:
            return
        code = POLARISATION_CODES.get(str(polarization).replace(" ", "").upper())
        kind = name_kind(name)
        if code is not None and kind is not None and kind[4] != code:
            warnings.warn(
                f"ASF product {name}: polarization {polarization!r} disagrees with the name's {kind[4]}; "
                f"keeping the name's",
                UserWarning,
                stacklevel=3,
            )
