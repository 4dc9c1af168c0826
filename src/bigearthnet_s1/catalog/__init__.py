"""Sentinel-1 IW GRD catalogue search behind one interface.

Backends (``open_catalog(kind, ...)``):

- ``dhus``: any Data Hub Software (DHuS) endpoint through sentinelsat's ``SentinelAPI``
  (national mirrors, collaborative ground segments);
- ``cdse``: the Copernicus Data Space Ecosystem OData catalogue (also CREODIAS, same API);
- ``asf``: the Alaska Satellite Facility's Search API (GeoJSON; downloads with an Earthdata login);
- ``local``: a folder of ``.SAFE`` directories or ``.zip`` files, read from each manifest.

Every backend returns :class:`ProductRecord` values. Conventions:

- times are tz-aware UTC ``datetime``;
- footprints are shapely (Multi)Polygons in WGS84 longitude/latitude (x = lon, y = lat),
  repaired with ``shapely.make_valid`` when a hub returns an invalid ring;
- ``datatake_id`` is the 6-digit upper-case hex mission data-take id as in product names;
- ``size`` is the exact size in bytes of the download when the hub states it (``None`` when
  only a rounded figure such as "1.61 GB" is known); ``checksum`` is the hub's checksum of
  that download; ``frame`` is the hub's along-track frame number where it has one (ASF).

Credentials come from arguments or the environment (see :func:`open_catalog`) and are never
logged or shown in a ``repr``.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import shapely
import shapely.geometry
import shapely.wkt
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1._time import format_iso, require_utc
from bigearthnet_s1.errors import CatalogError, InputError

# product names are read here for every record; the backends take them from the catalogue
from bigearthnet_s1.names import (
    S1Name,
    is_iw_grd,
    name_kind,
    parse_product_name,
    product_name,
    try_parse_product_name,
)

__all__ = [
    "ProductRecord",
    "Catalog",
    "S1Name",
    "open_catalog",
    "parse_product_name",
    "is_iw_grd",
    "name_kind",
    "product_name",
    "relative_orbit",
    "clean_footprint",
    "FootprintRepairWarning",
    "OrbitMismatchWarning",
    "CatalogError",
    "ORBIT_OFFSETS",
]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Orbits

#: Relative orbit = (absolute - offset) mod 175 + 1 (ESA, "Relationship between relative and
#: absolute orbit numbers"). S1A and S1B checked against every record of the recorded DHuS
#: responses (40 products, 2014-2023) and ASF records (S1B, 2021), and the two real manifests.
#: S1C's offset is ESA's published value (172) before its 2026-06 orbit reconfiguration; it is
#: not verified by any record here and later S1C products must carry their relative orbit.
ORBIT_OFFSETS: dict[str, int] = {"S1A": 73, "S1B": 27, "S1C": 172}
#: Last S1C absolute orbit flown with offset 172 (reconfiguration, June 2026).
_S1C_LAST_ORBIT_OFFSET_172 = 8018


class OrbitMismatchWarning(UserWarning):
    """A hub-given relative orbit that disagrees with the one computed from the absolute orbit."""


def relative_orbit(mission: str, absolute_orbit: int, *, product: str | None = None) -> int:
    """Relative orbit (track, 1..175) of a Sentinel-1 absolute orbit number.

    Raises :class:`~bigearthnet_s1.errors.InputError` (naming ``product`` when given) for a
    mission whose offset is not known.
    """
    mission = mission.upper()
    offset = ORBIT_OFFSETS.get(mission)
    if mission == "S1C" and absolute_orbit > _S1C_LAST_ORBIT_OFFSET_172:
        offset = None
    if offset is None:
        what = f" of {product}" if product else ""
        raise InputError(
            f"cannot compute the relative orbit{what}: no known absolute-to-relative orbit "
            f"offset for {mission} orbit {absolute_orbit}; the catalogue must supply it"
        )
    return (int(absolute_orbit) - offset) % 175 + 1


_relative_orbit = relative_orbit  # for functions whose parameters shadow the name


# ---------------------------------------------------------------------------------------
# Footprints


class FootprintRepairWarning(UserWarning):
    """A product footprint that was invalid (e.g. self-intersecting) and has been repaired."""


def clean_footprint(geom: BaseGeometry | None, product: str) -> BaseGeometry:
    """Return a valid (Multi)Polygon for a product footprint in WGS84 lon/lat.

    An invalid footprint (self-intersecting ring, bow tie from mis-ordered corners, duplicate
    points) is repaired with ``shapely.make_valid`` keeping its polygonal parts, and a
    :class:`FootprintRepairWarning` naming the product is issued. An empty or non-polygonal
    footprint raises :class:`~bigearthnet_s1.errors.InputError` naming the product.
    """
    if geom is None or geom.is_empty:
        raise InputError(f"product {product} has an empty footprint")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(f"product {product} has a {geom.geom_type} footprint, expected a polygon")
    split = _split_antimeridian(geom)
    if split is not None:
        warnings.warn(
            f"product {product}: footprint crosses the antimeridian (corners either side of 180 deg); "
            f"split into {len(shapely.get_parts(split))} parts at +-180 deg",
            FootprintRepairWarning,
            stacklevel=2,
        )
        geom = split
    if geom.is_valid:
        return geom
    reason = shapely.is_valid_reason(geom)
    fixed = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = []
    for p in parts:
        polys.extend(shapely.get_parts(p))
    if not polys:
        raise InputError(f"product {product} has an invalid footprint that cannot be repaired ({reason})")
    out: BaseGeometry = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
    warnings.warn(
        f"product {product}: invalid footprint repaired with make_valid ({reason}); "
        f"area {geom.area:.4f} -> {out.area:.4f} deg^2",
        FootprintRepairWarning,
        stacklevel=2,
    )
    return out


def _split_antimeridian(geom: BaseGeometry) -> BaseGeometry | None:
    """``geom`` cut at +-180 deg when one of its edges jumps across the antimeridian, else None.

    Manifests and DHuS write the corners of a product over the antimeridian as they are
    (179.2, -178.6, ...): read as a plain polygon, that is a band round the whole Earth at the
    product's latitudes. Such a ring is unwrapped (negative longitudes + 360), cut at 180 deg
    and the eastern piece shifted back by -360 deg. Footprints span far less than 180 deg of
    longitude, so an edge longer than 180 deg can only be such a crossing.
    """
    polys = [p for p in shapely.get_parts(geom) if not p.is_empty]

    def crosses(ring: Any) -> bool:
        x = shapely.get_coordinates(ring)[:, 0]
        return bool(len(x) > 1 and (abs(x[1:] - x[:-1]) > 180.0).any())

    if not any(crosses(r) for p in polys for r in (p.exterior, *p.interiors)):
        return None
    out: list[BaseGeometry] = []
    for p in polys:
        if not any(crosses(r) for r in (p.exterior, *p.interiors)):
            out.append(p)
            continue

        def unwrap(ring: Any) -> list[tuple[float, float]]:
            return [(x + 360.0 if x < 0 else x, y) for x, y in shapely.get_coordinates(ring)]

        q = shapely.make_valid(shapely.Polygon(unwrap(p.exterior), [unwrap(r) for r in p.interiors]))
        west = shapely.clip_by_rect(q, -180.0, -90.0, 180.0, 90.0)
        east = shapely.transform(shapely.clip_by_rect(q, 180.0, -90.0, 540.0, 90.0), lambda xy: xy - [360.0, 0.0])
        for piece in (west, east):
            out.extend(g for g in shapely.get_parts(piece) if g.geom_type == "Polygon" and not g.is_empty)
    return out[0] if len(out) == 1 else shapely.MultiPolygon(out)


def _geometry_from_json(value: Any) -> BaseGeometry:
    if isinstance(value, str):
        return shapely.wkt.loads(value)
    return shapely.geometry.shape(value)


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class ProductRecord:
    """One Sentinel-1 product as a catalogue describes it.

    ``relative_orbit`` may be passed as ``None``: it is then computed from the mission and
    absolute orbit. ``footprint`` is a shapely (Multi)Polygon in WGS84 lon/lat. ``url`` is
    the download URL (for ``local``: the path of the ``.SAFE`` folder or ``.zip``).
    """

    name: str
    uuid: str | None
    mission: str
    start_time: datetime
    stop_time: datetime
    absolute_orbit: int
    relative_orbit: int
    orbit_direction: str
    datatake_id: str | None
    footprint: BaseGeometry = field(compare=False)
    size: int | None = None
    checksum: str | None = None
    checksum_algorithm: str | None = None
    online: bool | None = None
    url: str | None = None
    source: str = "unknown"
    frame: int | None = None

    def __post_init__(self) -> None:
        name = product_name(self.name)
        object.__setattr__(self, "name", name)
        if self.absolute_orbit is None:
            raise InputError(f"product {name}: no absolute orbit number")
        object.__setattr__(self, "absolute_orbit", int(self.absolute_orbit))
        object.__setattr__(self, "mission", str(self.mission).upper())
        object.__setattr__(self, "start_time", require_utc(self.start_time, f"product {name} start time"))
        object.__setattr__(self, "stop_time", require_utc(self.stop_time, f"product {name} stop time"))
        if self.relative_orbit is None:
            object.__setattr__(
                self, "relative_orbit", relative_orbit(self.mission, self.absolute_orbit, product=name)
            )
        else:
            object.__setattr__(self, "relative_orbit", int(self.relative_orbit))
        direction = str(self.orbit_direction or "").upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise InputError(f"product {name}: orbit direction {self.orbit_direction!r} is not ASCENDING/DESCENDING")
        object.__setattr__(self, "orbit_direction", direction)
        if self.datatake_id is not None:
            object.__setattr__(self, "datatake_id", str(self.datatake_id).upper())
        if self.frame is not None:
            object.__setattr__(self, "frame", int(self.frame))

    @property
    def time_range(self) -> tuple[datetime, datetime]:
        return self.start_time, self.stop_time

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict; the footprint is a GeoJSON geometry, times ISO 8601 with ``Z``."""
        return {
            "name": self.name,
            "uuid": self.uuid,
            "mission": self.mission,
            "start_time": format_iso(self.start_time),
            "stop_time": format_iso(self.stop_time),
            "absolute_orbit": self.absolute_orbit,
            "relative_orbit": self.relative_orbit,
            "orbit_direction": self.orbit_direction,
            "datatake_id": self.datatake_id,
            "footprint": shapely.geometry.mapping(self.footprint),
            "size": self.size,
            "checksum": self.checksum,
            "checksum_algorithm": self.checksum_algorithm,
            "online": self.online,
            "url": self.url,
            "source": self.source,
            "frame": self.frame,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProductRecord:
        """Inverse of :meth:`to_json` (the footprint may also be WKT)."""
        try:
            return cls(
                name=d["name"],
                uuid=d.get("uuid"),
                mission=d["mission"],
                start_time=d["start_time"],
                stop_time=d["stop_time"],
                absolute_orbit=d["absolute_orbit"],
                relative_orbit=d.get("relative_orbit"),  # type: ignore[arg-type]  # None -> computed
                orbit_direction=d["orbit_direction"],
                datatake_id=d.get("datatake_id"),
                footprint=_geometry_from_json(d["footprint"]),
                size=d.get("size"),
                checksum=d.get("checksum"),
                checksum_algorithm=d.get("checksum_algorithm"),
                online=d.get("online"),
                url=d.get("url"),
                source=d.get("source", "unknown"),
                frame=d.get("frame"),
            )
        except KeyError as exc:
            raise InputError(f"product record {d.get('name', '?')}: missing field {exc}") from None

    def replace(self, **changes: Any) -> ProductRecord:
        return replace(self, **changes)


def make_record(
    name: str,
    *,
    source: str,
    footprint: BaseGeometry | None,
    uuid: str | None = None,
    mission: str | None = None,
    start_time: datetime | None = None,
    stop_time: datetime | None = None,
    absolute_orbit: int | None = None,
    relative_orbit: int | None = None,
    orbit_direction: str | None = None,
    datatake_id: str | None = None,
    size: int | None = None,
    checksum: str | None = None,
    checksum_algorithm: str | None = None,
    online: bool | None = None,
    url: str | None = None,
    frame: int | None = None,
) -> ProductRecord:
    """Build a record from what a hub said, filling gaps from the product name.

    Missing mission/times/absolute orbit/datatake come from the ESA name; a missing relative
    orbit is computed from the absolute orbit; a hub relative orbit that disagrees with the
    computed one is kept but warned about (:class:`OrbitMismatchWarning`). The footprint is
    repaired if invalid. Raises ``InputError`` naming the product when the absolute orbit is
    neither given nor in the name.
    """
    base = product_name(name)
    parsed = try_parse_product_name(base)
    if parsed is not None:
        mission = mission or parsed.mission
        start_time = start_time or parsed.start_time
        stop_time = stop_time or parsed.stop_time
        if absolute_orbit is None:
            absolute_orbit = parsed.absolute_orbit
        datatake_id = datatake_id or parsed.datatake_id
    if absolute_orbit is None:
        raise InputError(f"product {base}: the catalogue gives no absolute orbit and the name does not encode one")
    if mission is None:
        raise InputError(f"product {base}: unknown mission (not in the catalogue record nor the name)")
    if start_time is None or stop_time is None:
        raise InputError(f"product {base}: no sensing start/stop time")
    if relative_orbit is not None and mission.upper() in ORBIT_OFFSETS:
        try:
            computed = _relative_orbit(mission, absolute_orbit, product=base)
        except InputError:
            computed = None
        if computed is not None and computed != int(relative_orbit):
            warnings.warn(
                f"product {base}: catalogue relative orbit {relative_orbit} differs from "
                f"{computed} computed from absolute orbit {absolute_orbit}; keeping the catalogue's",
                OrbitMismatchWarning,
                stacklevel=2,
            )
    return ProductRecord(
        name=base,
        uuid=uuid,
        mission=mission,
        start_time=start_time,
        stop_time=stop_time,
        absolute_orbit=absolute_orbit,
        relative_orbit=relative_orbit,  # type: ignore[arg-type]  # None -> computed
        orbit_direction=orbit_direction or "",
        datatake_id=datatake_id,
        footprint=clean_footprint(footprint, base),
        size=size,
        checksum=checksum,
        checksum_algorithm=checksum_algorithm,
        online=online,
        url=url,
        source=source,
        frame=frame,
    )


# ---------------------------------------------------------------------------------------
# Interface


@runtime_checkable
class Catalog(Protocol):
    """A Sentinel-1 catalogue. ``search`` returns IW GRD products only."""

    def search(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> list[ProductRecord]:
        """Products whose footprint intersects ``footprint_wgs84`` (lon/lat) and whose
        sensing start lies in ``[start, end]`` (tz-aware UTC)."""
        ...


def _env(*names: str) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


def _accepted_options(cls: type) -> set[str]:
    """The keyword names a backend's constructor takes: its named parameters, and the keys of
    the TypedDict its ``**options`` unpacks."""
    import inspect
    import typing

    names: set[str] = set()
    for name, param in inspect.signature(cls).parameters.items():
        if param.kind is not param.VAR_KEYWORD:
            names.add(name)
            continue
        hint = typing.get_type_hints(cls.__init__).get(name)  # type: ignore[misc]  # mypy refuses __init__ read off a class object; only its annotations are read
        for typed in typing.get_args(hint):
            names |= set(getattr(typed, "__required_keys__", ())) | set(getattr(typed, "__optional_keys__", ()))
    return names


def _check_options(kind: str, cls: type, opts: dict[str, Any]) -> None:
    accepted = _accepted_options(cls)
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise CatalogError(
            f"{kind} catalogue: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(sorted(accepted))}"
        )


def open_catalog(kind: str, **options: Any) -> Catalog:
    """Open a catalogue backend.

    ``kind``:
    - ``"dhus"``: options ``url`` (or env ``BIGEARTHNET_S1_DHUS_URL``), ``user``/``password``
      (or env ``BIGEARTHNET_S1_DHUS_USER``/``BIGEARTHNET_S1_DHUS_PASSWORD``), ``timeout``,
      ``retries``, ``backoff``, ``page_size``;
    - ``"cdse"``: options ``url`` (default the CDSE OData catalogue, or env
      ``BIGEARTHNET_S1_CDSE_URL``), ``token`` (env ``CDSE_TOKEN``), ``user``/``password`` (env
      ``CDSE_USER``/``CDSE_PASSWORD``, only needed for a token), ``download_url``, ``timeout``,
      ``retries``, ``backoff``, ``page_size``, ``max_retry_after``;
    - ``"asf"``: options ``url`` (default ASF's Search API, or env ``BIGEARTHNET_S1_ASF_URL``),
      the Earthdata login for downloads: ``token`` (env ``BIGEARTHNET_S1_ASF_TOKEN`` or
      ``EARTHDATA_TOKEN``; a ``password`` without ``user`` is taken as the token) or
      ``user``/``password`` (env ``BIGEARTHNET_S1_ASF_USER``/``..._PASSWORD`` or
      ``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD``), ``edl_url``, ``max_results``,
      ``timeout``, ``retries``, ``backoff``, ``max_retry_after``;
    - ``"local"``: option ``root`` (a folder of ``.SAFE`` folders and/or ``.zip`` files).
    """
    from bigearthnet_s1.redact import register_secret, register_url

    kind = str(kind).lower()
    opts = {k: v for k, v in options.items() if v is not None}
    for key in ("password", "token"):  # every later message leaves without them
        register_secret(opts.get(key) if isinstance(opts.get(key), str) else None)
    register_url(opts.get("url") if isinstance(opts.get("url"), str) else None)
    if kind == "dhus":
        from bigearthnet_s1.catalog.dhus import DhusCatalog

        url = opts.pop("url", None) or _env("BIGEARTHNET_S1_DHUS_URL")
        if not url:
            raise CatalogError("dhus catalogue: no URL (pass url=... or set BIGEARTHNET_S1_DHUS_URL)")
        user = opts.pop("user", None) or _env("BIGEARTHNET_S1_DHUS_USER")
        password = opts.pop("password", None) or _env("BIGEARTHNET_S1_DHUS_PASSWORD")
        register_secret(password)
        _check_options("dhus", DhusCatalog, opts)
        return DhusCatalog(url, user=user, password=password, **opts)
    if kind == "cdse":
        from bigearthnet_s1.catalog.cdse import DEFAULT_URL, CdseCatalog

        url = opts.pop("url", None) or _env("BIGEARTHNET_S1_CDSE_URL") or DEFAULT_URL
        user = opts.pop("user", None) or _env("BIGEARTHNET_S1_CDSE_USER", "CDSE_USER")
        password = opts.pop("password", None) or _env("BIGEARTHNET_S1_CDSE_PASSWORD", "CDSE_PASSWORD")
        token = opts.pop("token", None) or _env("CDSE_TOKEN")
        register_secret(password)
        register_secret(token)
        _check_options("cdse", CdseCatalog, opts)
        return CdseCatalog(url, user=user, password=password, token=token, **opts)
    if kind == "asf":
        from bigearthnet_s1.catalog.asf import DEFAULT_URL as ASF_URL
        from bigearthnet_s1.catalog.asf import AsfCatalog
        from bigearthnet_s1.earthdata import credentials_from_options

        url = opts.pop("url", None) or _env("BIGEARTHNET_S1_ASF_URL") or ASF_URL
        creds = credentials_from_options(opts.pop("token", None), opts.pop("user", None), opts.pop("password", None))
        _check_options("asf", AsfCatalog, opts)
        return AsfCatalog(url, **creds, **opts)
    if kind == "local":
        from bigearthnet_s1.catalog.local import LocalCatalog

        root = opts.pop("root", None)
        if root is None:
            raise CatalogError("local catalogue: no root folder (pass root=...)")
        _check_options("local", LocalCatalog, opts)
        return LocalCatalog(root, **opts)
    raise CatalogError(f"unknown catalogue kind {kind!r}; expected 'dhus', 'cdse', 'asf' or 'local'")
