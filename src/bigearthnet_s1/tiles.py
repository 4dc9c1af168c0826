"""The BigEarthNet-S2 input model: tile acquisitions, their 10 m grid and patch list.

Conventions
-----------
* Coordinates are metres in the tile's UTM CRS (EPSG:326zz north, 327zz south) and always
  refer to pixel CORNERS: ``(ulx, uly)`` is the outer upper-left corner of pixel (0, 0).
* Patches are 120 x 120 px (1200 m) squares on a grid anchored at the tile's upper-left
  corner: ``ulx = tile_ulx + 1200 * col``, ``uly = tile_uly - 1200 * row``.
* Times are UTC, tz-aware ``datetime``.

Two sources are read: a BigEarthNet-S2 archive folder (patch folders holding
``<name>_labels_metadata.json``) and the S1/S2 patch-name table shipped with
``bigearthnet-common`` (``s1_s2_name_country_season.csv.bz2``, no coordinates: the grid then
comes from the MGRS tile id alone, see :func:`mgrs_tile_origin`).
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyproj import Transformer

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from shapely.geometry import Polygon, box, mapping, shape

from bigearthnet_s1._time import format_compact, format_iso, parse_compact, parse_iso
from bigearthnet_s1.errors import TileError

log = logging.getLogger(__name__)

PATCH_PX = 120
RESOLUTION = 10.0
PATCH_M = PATCH_PX * RESOLUTION  # 1200 m
TILE_PX = 10980
TILE_M = TILE_PX * RESOLUTION  # 109 800 m
MAX_PATCH_INDEX = TILE_PX // PATCH_PX - 1  # 90: col/row run 0..90 (91 * 120 = 10920 px)

#: Two patch names of one tile further apart than this belong to different acquisitions
#: (one overpass takes seconds; the next chance to see the tile is an orbit, ~100 min, later).
ACQUISITION_GAP = timedelta(hours=1)
#: Largest accepted difference between the time in a patch name and its ``acquisition_date``.
#: Real archive: ``S2B_MSIL2A_20180204T94161`` (09:41:61 = 09:42:01) vs 09:41:56.
TIME_TOLERANCE = timedelta(seconds=60)

_MGRS_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # 8 degree latitude bands from 80 S (X spans 12 degrees)
_MGRS_COLUMN_SETS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")  # 100 km column letters by zone % 3
_MGRS_ROWS = "ABCDEFGHJKLMNPQRSTUV"  # 100 km row letters, repeating every 2 000 km

TILE_ID_RE = re.compile(r"^(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")
S2_NAME_RE = re.compile(
    r"^(?P<mission>S2[A-D])_MSIL2A_(?P<date>\d{8})T(?P<time>\d{5,6})_(?P<col>\d{1,2})_(?P<row>\d{1,2})$"
)
S1_NAME_RE = re.compile(
    r"^(?P<short>(?P<mission>S1[A-D])_[A-Z0-9]{2}_GRD[HMF]_1S[DSHV][HV])_(?P<time>\d{8}T\d{6})"
    r"_(?P<tile>\d{2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V])_(?P<col>\d{1,2})_(?P<row>\d{1,2})$"
)
_TILE_SOURCE_RE = re.compile(r"_T(\d{2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V])_")
_JSON_SUFFIX = "_labels_metadata.json"


# --------------------------------------------------------------------------- MGRS / UTM


def _utm_epsg(zone: int, north: bool) -> int:
    return (32600 if north else 32700) + zone


def _parse_tile_id(tile_id: str) -> tuple[int, str, str, str]:
    m = TILE_ID_RE.match(tile_id.upper().removeprefix("T") if isinstance(tile_id, str) else "")
    if not m:
        raise TileError(f"not an MGRS tile id: {tile_id!r} (expected e.g. '33UUP')")
    zone = int(m.group(1))
    if not 1 <= zone <= 60:
        raise TileError(f"MGRS tile {tile_id!r}: UTM zone {zone} outside 1..60")
    return zone, m.group(2), m.group(3), m.group(4)


@functools.lru_cache(maxsize=4096)
def mgrs_tile_origin(tile_id: str) -> tuple[int, float, float]:
    """EPSG code and upper-left corner (pixel-corner metres, tile CRS) of a Sentinel-2 tile.

    The tile sits on the MGRS 100 km square named by ``tile_id`` ("33UUP"); its corner is the
    square's west and north edge, snapped outwards onto the 60 m lattice that all S2 bands
    share: ``ulx = floor(E_west / 60) * 60``, ``uly = ceil(N_north / 60) * 60``. So 33UUP ->
    (32633, 300000, 5400000), 29SND -> (32629, 499980, 4400040), 35VPK -> (32635, 600000,
    7000020). The snapping reproduces every real BigEarthNet example patch and the S2 tile
    metadata we could check (11SMS: 399960/3700020, T34V.. 499980/6800040).

    Written by hand because pyproj has no MGRS support (the ``mgrs`` package is not a
    dependency, and it returns points, not the S2 tile corner with its 60 m snapping).
    Algorithm (NGA MGRS): column letter -> easting by the zone's letter set; row letter ->
    northing modulo 2 000 km (offset by 5 letters in even zones); the latitude band picks the
    2 000 km cycle: the first candidate whose square reaches the band's southern limit.
    """
    zone, band, col_letter, row_letter = _parse_tile_id(tile_id)
    north = band >= "N"
    epsg = _utm_epsg(zone, north)
    col_set = _MGRS_COLUMN_SETS[(zone - 1) % 3]
    if col_letter not in col_set:
        raise TileError(f"MGRS tile {tile_id!r}: column letter {col_letter} not used in zone {zone}")
    easting = (col_set.index(col_letter) + 1) * 100_000.0
    row_index = (_MGRS_ROWS.index(row_letter) - (5 if zone % 2 == 0 else 0)) % 20
    northing = row_index * 100_000.0  # south edge, modulo 2 000 km (false northing included)

    # Southern limit of the latitude band, as a northing on the zone's central meridian (the
    # smallest northing of that parallel inside the zone).
    band_index = _MGRS_BANDS.index(band)
    lat_min = -80.0 + 8.0 * band_index
    lat_max = 84.0 if band == "X" else lat_min + 8.0
    band_min_northing = _northing_on_central_meridian(lat_min, north)
    band_max_northing = _northing_on_central_meridian(lat_max, north)
    # The band's 2 000 km cycle: the lowest candidate square that reaches into the band. Bands
    # are < 1 000 km tall, so with 100 km slack (parallels curve across a zone by a few km)
    # the choice is unique.
    slack = 100_000.0
    while northing + 100_000.0 <= band_min_northing - slack:
        northing += 2_000_000.0
    if northing >= band_max_northing + slack:
        raise TileError(f"MGRS tile {tile_id!r}: row letter {row_letter} not in band {band}")
    ulx = math.floor(easting / 60.0) * 60.0
    uly = math.ceil((northing + 100_000.0) / 60.0) * 60.0
    return epsg, ulx, uly


@functools.lru_cache(maxsize=256)
def _northing_on_central_meridian(lat: float, north: bool) -> float:
    from pyproj import Transformer

    lat = max(lat, 0.0) if north else min(lat, 0.0)
    tr = Transformer.from_crs(4326, _utm_epsg(31, north), always_xy=True)
    _, y = tr.transform(3.0, lat)  # zone 31's central meridian is 3 E; northing is zone-invariant
    return float(y)


@functools.lru_cache(maxsize=64)
def _to_wgs84(epsg: int) -> Transformer:
    from pyproj import Transformer

    return Transformer.from_crs(epsg, 4326, always_xy=True)


def to_wgs84(geom: shapely.Geometry, epsg: int, *, densify: float = 10_000.0) -> shapely.Geometry:
    """Reproject a geometry from ``EPSG:epsg`` (metres) to WGS84 lon/lat, densifying edges
    every ``densify`` metres first (0: not at all) so the curved image of straight UTM edges is
    kept. 10 km segments stay within a few metres of the true curve (a tile's bare corners:
    ~300 m off mid-edge at 53 N) and keep a tile footprint at
    ~45 vertices (small enough for a catalogue query URL)."""
    geom = shapely.segmentize(geom, densify) if densify else geom
    tr = _to_wgs84(epsg)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


# --------------------------------------------------------------------------- names and times


def parse_s2_name(name: str) -> tuple[datetime, int, int]:
    """Sensing time (UTC) and (col, row) of a BigEarthNet-S2 patch name.

    Accepts the archive's quirks: an hour without its leading zero
    (``S2B_MSIL2A_20170924T93020_69_24`` -> 09:30:20) and seconds 60/61, which are carried
    over (``...T94161`` -> 09:42:01).
    """
    m = S2_NAME_RE.match(name)
    if not m:
        raise TileError(f"not a BigEarthNet-S2 patch name: {name!r}")
    t = m.group("time").rjust(6, "0")
    hh, mm, ss = int(t[:2]), int(t[2:4]), int(t[4:])
    if hh > 23 or mm > 59 or ss > 61:
        raise TileError(f"BigEarthNet-S2 patch name {name!r}: bad time of day {m.group('time')}")
    try:
        day = parse_compact(m.group("date"), "%Y%m%d")
    except ValueError as exc:
        raise TileError(f"BigEarthNet-S2 patch name {name!r}: bad date") from exc
    col, row = int(m.group("col")), int(m.group("row"))
    if col > MAX_PATCH_INDEX or row > MAX_PATCH_INDEX:
        raise TileError(f"BigEarthNet-S2 patch name {name!r}: col/row outside 0..{MAX_PATCH_INDEX}")
    return day + timedelta(hours=hh, minutes=mm, seconds=ss), col, row


@functools.lru_cache(maxsize=8192)
def s2_product_time(prefix: str) -> datetime:
    """Sensing time (UTC) of ``<mission>_MSIL2A_<date>T<time>``, an S2 patch name without its
    col_row, with the quirks :func:`parse_s2_name` accepts. Cached: parsed once per product,
    not per patch (strptime would be most of the time to read 500,000 patch names)."""
    return parse_s2_name(f"{prefix}_0_0")[0]


def parse_s1_name(name: str) -> dict[str, Any]:
    """Fields of a BigEarthNet-S1 patch name ``<S1 short id>_<start>_<tile>_<col>_<row>``.

    Returns ``short`` ("S1A_IW_GRDH_1SDV"), ``mission``, ``start_time`` (UTC), ``tile_id``,
    ``col``, ``row``.
    """
    m = S1_NAME_RE.match(name)
    if not m:
        raise TileError(f"not a BigEarthNet-S1 patch name: {name!r}")
    try:
        start = parse_compact(m.group("time"))
    except ValueError as exc:
        raise TileError(f"BigEarthNet-S1 patch name {name!r}: bad start time") from exc
    col, row = int(m.group("col")), int(m.group("row"))
    if col > MAX_PATCH_INDEX or row > MAX_PATCH_INDEX:
        raise TileError(f"BigEarthNet-S1 patch name {name!r}: col/row outside 0..{MAX_PATCH_INDEX}")
    return {
        "short": m.group("short"),
        "mission": m.group("mission"),
        "start_time": start,
        "tile_id": m.group("tile"),
        "col": col,
        "row": row,
    }


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class V2Info:
    """What BigEarthNet v2 (reBEN) says about an S2 patch: its ``patch_id``
    (``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57``), the S1 patch reBEN pairs it
    with (``s1_name``) and its flags (None: not known)."""

    patch_id: str
    s1_name: str | None = None
    contains_seasonal_snow: bool | None = None
    contains_cloud_or_shadow: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"patch_id": self.patch_id, "s1_name": self.s1_name,
                "contains_seasonal_snow": self.contains_seasonal_snow,
                "contains_cloud_or_shadow": self.contains_cloud_or_shadow}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> V2Info:
        return cls(d["patch_id"], d.get("s1_name"), d.get("contains_seasonal_snow"),
                   d.get("contains_cloud_or_shadow"))


@dataclass(frozen=True, slots=True)
class Patch:
    """One BigEarthNet-S2 patch; coordinates are pixel-CORNER metres in the tile CRS.

    ``labels_known`` is False when no source knew the patch's labels (then ``labels`` is
    empty, which is not the same as a patch known to have none). ``split``: the reBEN split
    ("train", "validation", "test") when a source gave one. ``v2``: reBEN's record of the patch.
    """

    s2_name: str
    col: int
    row: int
    labels: tuple[str, ...]
    ulx: float
    uly: float
    lrx: float
    lry: float
    country: str | None = None
    labels_known: bool = True
    split: str | None = None
    v2: V2Info | None = None

    @property
    def transform(self) -> Affine:
        """Affine(10, 0, ulx, 0, -10, uly): pixel (col, row) corner -> tile CRS metres."""
        return Affine(RESOLUTION, 0.0, self.ulx, 0.0, -RESOLUTION, self.uly)

    @property
    def box(self) -> Polygon:
        """The patch square (tile CRS)."""
        return box(self.ulx, self.lry, self.lrx, self.uly)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the tile CRS."""
        return (self.ulx, self.lry, self.lrx, self.uly)

    def to_json(self) -> dict[str, Any]:
        return {
            "s2_name": self.s2_name,
            "col": self.col,
            "row": self.row,
            "labels": list(self.labels),
            "ulx": self.ulx,
            "uly": self.uly,
            "lrx": self.lrx,
            "lry": self.lry,
            "country": self.country,
            "labels_known": self.labels_known,
            "split": self.split,
            "v2": self.v2.to_json() if self.v2 is not None else None,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Patch:
        labels = tuple(d.get("labels", ()))
        return cls(
            s2_name=d["s2_name"],
            col=int(d["col"]),
            row=int(d["row"]),
            labels=labels,
            ulx=float(d["ulx"]),
            uly=float(d["uly"]),
            lrx=float(d["lrx"]),
            lry=float(d["lry"]),
            country=d.get("country"),
            # tile files written before labels_known existed: empty labels meant "unknown"
            labels_known=bool(d.get("labels_known", bool(labels))),
            split=d.get("split"),
            v2=V2Info.from_json(d["v2"]) if d.get("v2") else None,
        )


@dataclass(frozen=True, slots=True)
class TileGrid:
    """The S2 tile's 10 m grid; (ulx, uly) is the outer corner of pixel (0, 0), tile CRS metres."""

    epsg: int
    ulx: float
    uly: float
    width: int = TILE_PX
    height: int = TILE_PX
    resolution: float = RESOLUTION

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.ulx, 0.0, -self.resolution, self.uly)

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the whole grid, tile CRS metres."""
        return (
            self.ulx,
            self.uly - self.height * self.resolution,
            self.ulx + self.width * self.resolution,
            self.uly,
        )

    def patch_window(self, col: int, row: int) -> Window:
        """Window of patch (col, row): ``Window(120*col, 120*row, 120, 120)``."""
        return Window(PATCH_PX * col, PATCH_PX * row, PATCH_PX, PATCH_PX)

    def patch_bounds(self, col: int, row: int) -> tuple[float, float, float, float]:
        """(ulx, uly, lrx, lry) of patch (col, row), pixel corners in metres."""
        ulx = self.ulx + PATCH_M * col
        uly = self.uly - PATCH_M * row
        return (ulx, uly, ulx + PATCH_M, uly - PATCH_M)

    def window_for_patches(self, patches: Iterable[Patch]) -> Window:
        """Smallest window of this grid covering all ``patches`` (grid pixel units)."""
        patches = list(patches)
        cols = [p.col for p in patches]
        rows = [p.row for p in patches]
        if not cols:
            raise TileError("window_for_patches: no patches")
        c0, c1 = min(cols), max(cols) + 1
        r0, r1 = min(rows), max(rows) + 1
        return Window(PATCH_PX * c0, PATCH_PX * r0, PATCH_PX * (c1 - c0), PATCH_PX * (r1 - r0))

    def window_transform(self, window: Window) -> Affine:
        """Transform of a window of this grid (top-left pixel corner)."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def to_json(self) -> dict[str, Any]:
        return {
            "epsg": self.epsg,
            "ulx": self.ulx,
            "uly": self.uly,
            "width": self.width,
            "height": self.height,
            "resolution": self.resolution,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TileGrid:
        return cls(
            epsg=int(d["epsg"]),
            ulx=float(d["ulx"]),
            uly=float(d["uly"]),
            width=int(d.get("width", TILE_PX)),
            height=int(d.get("height", TILE_PX)),
            resolution=float(d.get("resolution", RESOLUTION)),
        )


@dataclass(frozen=True)
class TileAcquisition:
    """One S2 tile acquisition (MGRS tile, sensing time) and its BigEarthNet patches."""

    tile_id: str
    sensing_time: datetime
    s2_product: str | None
    grid: TileGrid
    patches: tuple[Patch, ...]

    @property
    def epsg(self) -> int:
        return self.grid.epsg

    @property
    def key(self) -> str:
        """``<tile>_<YYYYmmddTHHMMSS>``, e.g. "33UUP_20170613T101031" (unique, path-safe)."""
        return f"{self.tile_id}_{format_compact(self.sensing_time)}"

    @property
    def footprint(self) -> Polygon:
        """The whole 109.8 km tile, tile CRS."""
        return box(*self.grid.bounds)

    # cached_property stores in the instance __dict__ directly, so it works on a frozen class
    @functools.cached_property
    def footprint_wgs84(self) -> Polygon:
        """The whole tile in WGS84 lon/lat (edges densified every 10 km)."""
        return to_wgs84(self.footprint, self.epsg)

    @functools.cached_property
    def patches_footprint(self) -> shapely.Geometry:
        """Union of the patch squares (tile CRS): the area an S1 selection must cover."""
        if not self.patches:
            return Polygon()
        bounds = np.array([p.bounds for p in self.patches], dtype=float)
        cols = np.array([p.col for p in self.patches])
        rows = np.array([p.row for p in self.patches])
        on_grid = np.allclose(bounds[:, 0], self.grid.ulx + PATCH_M * cols) and np.allclose(
            bounds[:, 3], self.grid.uly - PATCH_M * rows
        )
        if not on_grid:  # patches placed by hand: plain geometric union
            return shapely.union_all(shapely.box(*bounds.T))
        # On the patch grid, polygonising the 91 x 91 occupancy mask (rasterio) is ~100 times
        # faster than a union of thousands of squares, with the same result.
        from rasterio.features import shapes

        n = MAX_PATCH_INDEX + 1
        mask = np.zeros((n, n), dtype=np.uint8)
        mask[rows, cols] = 1
        transform = Affine(PATCH_M, 0.0, self.grid.ulx, 0.0, -PATCH_M, self.grid.uly)
        polys = [shape(g) for g, v in shapes(mask, mask=mask.astype(bool), transform=transform) if v == 1]
        return shapely.union_all(polys)

    @functools.cached_property
    def patches_footprint_wgs84(self) -> shapely.Geometry:
        """Union of the patch squares in WGS84 lon/lat (edges densified every 10 km)."""
        return to_wgs84(self.patches_footprint, self.epsg)

    def patch(self, s2_name: str) -> Patch:
        for p in self.patches:
            if p.s2_name == s2_name:
                return p
        raise TileError(f"tile {self.key}: no patch {s2_name!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (times as ISO 8601 UTC); inverse of :meth:`from_json`."""
        return {
            "tile_id": self.tile_id,
            "sensing_time": format_iso(self.sensing_time),
            "s2_product": self.s2_product,
            "grid": self.grid.to_json(),
            "patches": [p.to_json() for p in self.patches],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TileAcquisition:
        return cls(
            tile_id=d["tile_id"],
            sensing_time=parse_iso(str(d["sensing_time"])),
            s2_product=d.get("s2_product"),
            grid=TileGrid.from_json(d["grid"]),
            patches=tuple(Patch.from_json(p) for p in d.get("patches", ())),
        )

    def summary(self) -> dict[str, Any]:
        """Small JSON-safe description (no patch list), as printed by ``bigearthnet-s1 tiles``."""
        left, bottom, right, top = self.grid.bounds
        return {
            "key": self.key,
            "tile_id": self.tile_id,
            "epsg": self.epsg,
            "sensing_time": format_iso(self.sensing_time),
            "s2_product": self.s2_product,
            "ulx": self.grid.ulx,
            "uly": self.grid.uly,
            "bounds": [left, bottom, right, top],
            "patch_count": len(self.patches),
            "countries": sorted({p.country for p in self.patches if p.country}),
            "footprint_wgs84": mapping(shapely.set_precision(self.footprint_wgs84, 1e-7)),
            "patches_footprint_wgs84": mapping(
                shapely.set_precision(self.patches_footprint_wgs84, 1e-7)
            ),
        }


def geometry_from_json(d: Mapping[str, Any]) -> shapely.Geometry:
    return shape(d)


# --------------------------------------------------------------------------- grouping


def _clusters(times: Sequence[datetime]) -> list[list[int]]:
    """Indices of ``times`` grouped into overpasses (gaps > ACQUISITION_GAP split)."""
    order = sorted(range(len(times)), key=lambda i: times[i])
    groups: list[list[int]] = []
    last: datetime | None = None
    for i in order:
        if last is None or times[i] - last > ACQUISITION_GAP:
            groups.append([])
        groups[-1].append(i)
        last = times[i]
    return groups


# --------------------------------------------------------------------------- patch-name table


@functools.lru_cache(maxsize=4)
def _load_table(path: str) -> Any:  # -> pyarrow.Table with s1_name, s2_name, country
    """The patch-name table's three used columns (cached; ~1.5 s for the 590 326 rows).

    bz2 is decompressed in one go and parsed by pyarrow's multithreaded CSV reader: pandas'
    C parser on the bz2 stream takes twice as long.
    """
    import bz2

    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if path.endswith(".bz2"):
            raw = bz2.decompress(raw)
        table = pacsv.read_csv(
            pa.py_buffer(raw),
            convert_options=pacsv.ConvertOptions(
                include_columns=["s1_name", "s2_name", "country"],
                column_types={"s1_name": pa.string(), "s2_name": pa.string(), "country": pa.string()},
            ),
        )
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise TileError(f"cannot read the patch-name table {path}: {exc}") from exc
    return table


def _table_path(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        from bigearthnet_s1.samples import patch_name_table

        path = patch_name_table()
    p = Path(path)
    if not p.is_file():
        raise TileError(f"patch-name table not found: {p}")
    return str(p.resolve())


@functools.lru_cache(maxsize=4)
def _country_index(path: str) -> dict[str, str]:
    t = _load_table(path)
    return {
        s2: c
        for s2, c in zip(t["s2_name"].to_pylist(), t["country"].to_pylist(), strict=True)
        if c
    }


def country_of(s2_name: str, table: str | os.PathLike[str] | None = None) -> str | None:
    """Country of a BigEarthNet-S2 patch according to the patch-name table (None if unknown)."""
    return _country_index(_table_path(table)).get(s2_name)


def read_patch_table(
    path: str | os.PathLike[str] | None = None, *, tiles: Iterable[str] | None = None
) -> list[TileAcquisition]:
    """Tile acquisitions from the S1/S2 patch-name table (``s1_s2_name_country_season.csv``).

    ``path`` defaults to the table bundled with bigearthnet-common (.csv or .csv.bz2). The
    table has no coordinates: the tile comes from the S1 name's tile field, the grid from
    :func:`mgrs_tile_origin`, patch coordinates from (col, row); labels are unknown (empty,
    ``labels_known`` False: see ``bigearthnet_s1.labels`` for sources), the country is the
    table's. ``tiles`` keeps only those MGRS tiles (none if empty). Sorted by
    (tile_id, sensing_time); patches by (row, col).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table_path = _table_path(path)
    t = _load_table(table_path)
    if tiles is not None:
        wanted = sorted({x.upper().removeprefix("T") for x in tiles})
        if not wanted:  # an empty selection keeps nothing (as read_tiles does for a folder)
            return []
        # the tile field sits between the S1 start time and col_row: match it as a substring
        mask = None
        for w in wanted:
            m = pc.match_substring(t["s1_name"], f"_{w}_")
            mask = m if mask is None else pc.or_(mask, m)
        t = t.filter(mask)
        if t.num_rows == 0:
            raise TileError(f"{table_path}: no patch of tile(s) {', '.join(wanted)}")
    s1 = pc.extract_regex(t["s1_name"], S1_NAME_RE.pattern)
    s2 = pc.extract_regex(t["s2_name"], S2_NAME_RE.pattern)
    bad = pc.or_(pc.is_null(s1), pc.is_null(s2)).to_numpy(zero_copy_only=False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TileError(
            f"{table_path}: malformed patch name in data row {i + 1} "
            f"({t['s1_name'][i].as_py()!r}, {t['s2_name'][i].as_py()!r})"
        )

    def field_np(struct: pa.ChunkedArray, name: str) -> np.ndarray:
        return pc.struct_field(struct, name).to_numpy(zero_copy_only=False)

    tile_ids = field_np(s1, "tile")
    cols = field_np(s2, "col").astype(np.int16)
    rows = field_np(s2, "row").astype(np.int16)
    mismatch = (cols != field_np(s1, "col").astype(np.int16)) | (
        rows != field_np(s1, "row").astype(np.int16)
    )
    if mismatch.any():
        i = int(np.flatnonzero(mismatch)[0])
        raise TileError(f"{table_path}: data row {i + 1}: S1 and S2 names disagree on col/row")
    stamps = pc.binary_join_element_wise(
        pc.struct_field(s2, "date"), pc.struct_field(s2, "time"), "T"
    ).to_numpy(zero_copy_only=False)
    s2_names = t["s2_name"].to_numpy(zero_copy_only=False)
    countries = t["country"].to_numpy(zero_copy_only=False)

    # Distinct (tile, name time) pairs are few (~160): cluster those into overpasses.
    pair_keys = np.char.add(np.char.add(tile_ids.astype(str), "|"), stamps.astype(str))
    uniq, inverse = np.unique(pair_keys, return_inverse=True)
    stamp_time: dict[str, datetime] = {}
    pairs_by_tile: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    for k, key in enumerate(uniq):
        tile_id, stamp = key.split("|")
        if stamp not in stamp_time:
            # a full name is needed for the parser's messages and checks
            stamp_time[stamp] = s2_product_time(f"S2A_MSIL2A_{stamp}")
        pairs_by_tile[tile_id].append((k, stamp_time[stamp]))
    pair_acq = np.empty(len(uniq), dtype=np.int32)
    acq_meta: list[tuple[str, datetime]] = []
    for tile_id in sorted(pairs_by_tile):
        pairs = pairs_by_tile[tile_id]
        for members in _clusters([p[1] for p in pairs]):
            pair_acq[[pairs[m][0] for m in members]] = len(acq_meta)
            acq_meta.append((tile_id, min(pairs[m][1] for m in members)))
    acq_of_row = pair_acq[inverse]

    order = np.lexsort((cols, rows, acq_of_row))
    acq_sorted = acq_of_row[order]
    cell = acq_sorted.astype(np.int64) * 10_000 + rows[order] * 100 + cols[order]
    dup = np.flatnonzero(cell[1:] == cell[:-1])
    if dup.size:
        i = order[dup[0] + 1]
        tile_id, sensing = acq_meta[acq_sorted[dup[0] + 1]]
        raise TileError(
            f"{table_path}: tile {tile_id} at {format_compact(sensing)} has two patches at col "
            f"{cols[i]}, row {rows[i]} (second: {s2_names[i]})"
        )
    bounds = np.searchsorted(acq_sorted, np.arange(len(acq_meta) + 1))
    # 590 326 small objects: the cyclic GC would rescan them again and again (half the time)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        out = _build_table_acquisitions(acq_meta, order, bounds, cols, rows, s2_names, countries)
    finally:
        if gc_was_enabled:
            gc.enable()
    out.sort(key=lambda x: (x.tile_id, x.sensing_time))
    return out


def _build_table_acquisitions(
    acq_meta: list[tuple[str, datetime]],
    order: np.ndarray,
    bounds: np.ndarray,
    cols: np.ndarray,
    rows: np.ndarray,
    s2_names: np.ndarray,
    countries: np.ndarray,
) -> list[TileAcquisition]:
    out: list[TileAcquisition] = []
    for a, (tile_id, sensing) in enumerate(acq_meta):
        epsg, tulx, tuly = mgrs_tile_origin(tile_id)
        sel = order[bounds[a] : bounds[a + 1]]
        c_sel = cols[sel].tolist()
        r_sel = rows[sel].tolist()
        ulxs = (tulx + PATCH_M * cols[sel]).tolist()
        ulys = (tuly - PATCH_M * rows[sel]).tolist()
        patches = tuple(
            Patch(n, c, r, (), x, y, x + PATCH_M, y - PATCH_M, co or None, labels_known=False)
            for n, c, r, x, y, co in zip(
                s2_names[sel].tolist(), c_sel, r_sel, ulxs, ulys, countries[sel].tolist(), strict=True
            )
        )
        out.append(TileAcquisition(tile_id, sensing, None, TileGrid(epsg, tulx, tuly), patches))
    return out


# --------------------------------------------------------------------------- S2 archive folder


@dataclass(frozen=True, slots=True)
class _S2Record:
    path: Path
    name: str
    tile_id: str
    epsg: int
    time: datetime
    col: int
    row: int
    labels: tuple[str, ...]
    ulx: float
    uly: float
    lrx: float
    lry: float
    tile_source: str | None


@functools.lru_cache(maxsize=64)
def _epsg_of_wkt(wkt: str) -> int | None:
    try:
        crs = CRS.from_wkt(wkt)
    except Exception:  # rasterio raises CRSError; any failure means "unreadable"
        return None
    return crs.to_epsg()


def _read_s2_json(path: Path, name: str) -> _S2Record:
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as exc:
        raise TileError(f"{path}: cannot read JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise TileError(f"{path}: JSON is not an object")
    missing = [k for k in ("labels", "coordinates", "projection", "tile_source") if k not in meta]
    if missing:
        raise TileError(f"{path}: missing key(s) {', '.join(missing)}")
    coords = meta["coordinates"]
    if not isinstance(coords, dict):
        raise TileError(f"{path}: 'coordinates' is not an object")
    if "lry" not in coords and "lly" in coords:  # BigEarthNet-S1 v1.0 spelling
        coords = {**coords, "lry": coords["lly"]}
    cmissing = [k for k in ("ulx", "uly", "lrx", "lry") if k not in coords]
    if cmissing:
        raise TileError(f"{path}: missing coordinate(s) {', '.join(cmissing)}")
    try:
        ulx, uly, lrx, lry = (float(coords[k]) for k in ("ulx", "uly", "lrx", "lry"))
    except (TypeError, ValueError) as exc:
        raise TileError(f"{path}: non-numeric coordinates") from exc
    if not (math.isclose(lrx - ulx, PATCH_M) and math.isclose(uly - lry, PATCH_M)):
        raise TileError(f"{path}: patch is not 1200 m square (coordinates {coords})")
    labels = meta["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise TileError(f"{path}: 'labels' is not a list of strings")
    src = str(meta["tile_source"] or "")
    m = _TILE_SOURCE_RE.search(src)
    if not m:
        raise TileError(f"{path}: tile_source {src!r} names no MGRS tile (expected '..._T33UUP_...')")
    tile_id = m.group(1)
    epsg = _epsg_of_wkt(str(meta["projection"]))
    if epsg is None:
        raise TileError(f"{path}: projection is not a known EPSG CRS")
    t, col, row = parse_s2_name(name)
    if "acquisition_date" in meta and meta["acquisition_date"]:
        try:
            acq = parse_compact(str(meta["acquisition_date"]), "%Y-%m-%d %H:%M:%S")
        except ValueError as exc:
            raise TileError(f"{path}: bad acquisition_date {meta['acquisition_date']!r}") from exc
        if abs(acq - t) > TIME_TOLERANCE:
            raise TileError(
                f"{path}: acquisition_date {meta['acquisition_date']} disagrees with the patch "
                f"name's time {t:%Y-%m-%d %H:%M:%S}"
            )
    return _S2Record(
        path, name, tile_id, epsg, t, col, row, tuple(labels), ulx, uly, lrx, lry,
        src.removesuffix(".SAFE") or None,
    )


def _patch_dirs(root: Path) -> list[Path]:
    """Patch folders under ``root`` (flat v1.0 layout, or one level of tile folders)."""
    if (root / f"{root.name}{_JSON_SUFFIX}").is_file():
        return [root]
    dirs: list[Path] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        p = Path(entry.path)
        if S2_NAME_RE.match(entry.name):
            dirs.append(p)
        elif (p / f"{entry.name}{_JSON_SUFFIX}").is_file():
            raise TileError(f"{p}: not a BigEarthNet-S2 patch name: {entry.name!r}")
        else:
            sub = [Path(e.path) for e in os.scandir(p) if e.is_dir() and not e.name.startswith(".")]
            if sub and all(S2_NAME_RE.match(s.name) for s in sub):
                dirs.extend(sorted(sub))
            else:
                raise TileError(f"{p}: not a BigEarthNet-S2 patch folder: {entry.name!r}")
    return dirs


def read_s2_archive(
    root: str | os.PathLike[str], *, countries: bool | str | os.PathLike[str] = True
) -> list[TileAcquisition]:
    """Tile acquisitions of a BigEarthNet-S2 archive folder (patch folders with JSON metadata).

    Patches are grouped by (MGRS tile from ``tile_source``, overpass); the sensing time is the
    earliest patch-name time of the group. The grid's corner is derived from the patch
    coordinates (all patches must agree) and checked against :func:`mgrs_tile_origin`.
    ``countries``: True to look countries up in the bundled patch-name table, a path for
    another table, False to skip. Sorted by (tile_id, sensing_time).
    """
    root = Path(root)
    if not root.is_dir():
        raise TileError(f"BigEarthNet-S2 archive folder not found: {root}")
    dirs = _patch_dirs(root)
    if not dirs:
        raise TileError(f"{root}: empty folder, no BigEarthNet-S2 patch folders")
    records: list[_S2Record] = []
    for d in dirs:
        js = d / f"{d.name}{_JSON_SUFFIX}"
        if not js.is_file():
            raise TileError(f"{d}: missing {js.name}")
        records.append(_read_s2_json(js, d.name))

    country_index: Mapping[str, str] = {}
    table_path: str | None = None
    if countries:
        table_path = _table_path(None if countries is True else countries)
        country_index = _country_index(table_path)

    by_tile: dict[str, list[_S2Record]] = defaultdict(list)
    for r in records:
        by_tile[r.tile_id].append(r)
    out: list[TileAcquisition] = []
    for tile_id in sorted(by_tile):
        recs = by_tile[tile_id]
        for members in _clusters([r.time for r in recs]):
            group = sorted((recs[i] for i in members), key=lambda r: (r.row, r.col, r.name))
            out.append(_acquisition_from_records(tile_id, group, country_index))
    if table_path is not None:
        out = _align_with_table(out, table_path)
    out.sort(key=lambda t: (t.tile_id, t.sensing_time))
    return out


def _align_with_table(acqs: list[TileAcquisition], table_path: str) -> list[TileAcquisition]:
    """Give each acquisition whose patches the patch-name table lists the table's sensing time.

    Patch-name times of one overpass differ by a few seconds and the sensing time is the
    earliest of them, so a folder holding a subset of an acquisition's patches would get a
    later time, and another key, than the same acquisition read from the table. Acquisitions
    the table does not hold (new S2 tiles) keep their own time."""
    index = _country_index(table_path)  # every S2 name of the table
    names = {p.s2_name for a in acqs for p in a.patches}
    known = sorted({a.tile_id for a in acqs if any(p.s2_name in index for p in a.patches)})
    if not known:
        return acqs
    table = [t for t in read_patch_table(table_path, tiles=known) if any(p.s2_name in names for p in t.patches)]
    out = []
    for a in acqs:
        mine = {p.s2_name for p in a.patches}
        match = [t for t in table if t.tile_id == a.tile_id and mine <= {p.s2_name for p in t.patches}]
        if len(match) == 1 and match[0].sensing_time != a.sensing_time:
            log.debug("tile %s: sensing time %s from the patch-name table (folder: %s)",
                      a.tile_id, match[0].sensing_time, a.sensing_time)
            a = replace(a, sensing_time=match[0].sensing_time)
        out.append(a)
    return out


def _acquisition_from_records(
    tile_id: str, group: list[_S2Record], country_index: Mapping[str, str]
) -> TileAcquisition:
    epsg, mulx, muly = mgrs_tile_origin(tile_id)
    first = group[0]
    for r in group:
        if r.epsg != first.epsg:
            raise TileError(
                f"{r.path}: mixed CRS in tile {tile_id}: EPSG:{r.epsg} here, EPSG:{first.epsg} "
                f"in {first.path}"
            )
    if first.epsg != epsg:
        raise TileError(
            f"{first.path}: projection EPSG:{first.epsg} is not the CRS of MGRS tile {tile_id} "
            f"(EPSG:{epsg})"
        )
    ulx = first.ulx - PATCH_M * first.col
    uly = first.uly + PATCH_M * first.row
    seen: dict[tuple[int, int], Path] = {}
    for r in group:
        if (r.col, r.row) in seen:
            raise TileError(f"{r.path}: tile {tile_id} already has patch {r.col}_{r.row} ({seen[(r.col, r.row)]})")
        seen[(r.col, r.row)] = r.path
        if abs(r.ulx - PATCH_M * r.col - ulx) > 1e-6 or abs(r.uly + PATCH_M * r.row - uly) > 1e-6:
            raise TileError(
                f"{r.path}: coordinates ({r.ulx}, {r.uly}) are off the patch grid of tile "
                f"{tile_id} (corner ({ulx}, {uly}) from {first.path})"
            )
    if abs(ulx - mulx) > 60 or abs(uly - muly) > 60:
        raise TileError(
            f"{first.path}: patch grid corner ({ulx}, {uly}) does not belong to MGRS tile "
            f"{tile_id} (expected ({mulx}, {muly}))"
        )
    if (ulx, uly) != (mulx, muly):
        log.warning(
            "tile %s: patch grid corner (%s, %s) differs from the MGRS-derived corner (%s, %s); "
            "using the patches' corner",
            tile_id, ulx, uly, mulx, muly,
        )
    sensing = min(r.time for r in group)
    src = min(group, key=lambda r: r.time).tile_source
    patches = tuple(
        Patch(r.name, r.col, r.row, r.labels, r.ulx, r.uly, r.lrx, r.lry, country_index.get(r.name) or None)
        for r in group
    )
    return TileAcquisition(tile_id, sensing, src, TileGrid(epsg, ulx, uly), patches)


def read_tiles(source: str | os.PathLike[str], *, tiles: Iterable[str] | None = None) -> list[TileAcquisition]:
    """Read a BigEarthNet-S2 archive folder, a patch-name table (.csv / .csv.bz2) or a reBEN
    source (``metadata.parquet``, a v2 folder: see ``bigearthnet_s1.reben``)."""
    from bigearthnet_s1 import reben

    p = Path(source)
    if reben.is_reben_source(p):
        return reben.read_reben(p, tiles=tiles)
    if p.is_dir():
        acqs = read_s2_archive(p)
        if tiles is not None:
            wanted = {t.upper().removeprefix("T") for t in tiles}
            acqs = [a for a in acqs if a.tile_id in wanted]
        return acqs
    if p.is_file():
        return read_patch_table(p, tiles=tiles)
    raise TileError(f"no BigEarthNet-S2 archive folder or patch-name table at {p}")
