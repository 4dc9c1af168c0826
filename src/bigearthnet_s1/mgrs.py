"""MGRS tiles and their UTM zones: a Sentinel-2 tile's CRS and corner from its id, and the
way back to WGS84 lon/lat.

Coordinates are metres in the tile's UTM CRS (EPSG:326zz north, 327zz south), pixel corners.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING

import numpy as np
import shapely

from bigearthnet_s1.errors import TileError

if TYPE_CHECKING:
    from pyproj import Transformer

_MGRS_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # 8 degree latitude bands from 80 S (X spans 12 degrees)
_MGRS_COLUMN_SETS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")  # 100 km column letters by zone % 3
_MGRS_ROWS = "ABCDEFGHJKLMNPQRSTUV"  # 100 km row letters, repeating every 2 000 km

TILE_ID_RE = re.compile(r"^(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")


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
