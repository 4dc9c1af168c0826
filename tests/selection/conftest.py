"""Synthetic Sentinel-1 candidates and S2 tiles for the selection tests.

Footprints are realistic IW swaths: a rectangle ~250 km across track and ~170 km (one 25 s
slice at ~6.8 km/s ground speed) along track, oriented along the ground-track heading of a
98.18 deg inclined orbit at that latitude, built in a local azimuthal equidistant projection
and converted to WGS84 lon/lat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from pyproj import CRS, Transformer

from bigearthnet_s1.catalog import ORBIT_OFFSETS, ProductRecord
from bigearthnet_s1.tiles import MapGrid, Patch, TileAcquisition, mgrs_tile_origin

INCLINATION = 98.18
SLICE_S = 25.0
GROUND_SPEED = 6.8  # km/s


def heading_deg(lat: float, direction: str) -> float:
    """Ground-track azimuth (deg from north) of a 98.18 deg orbit at ``lat`` (no Earth rotation)."""
    s = math.cos(math.radians(INCLINATION)) / math.cos(math.radians(lat))
    a = math.degrees(math.asin(max(-1.0, min(1.0, s))))  # negative: west of north
    return a % 360 if direction == "ASCENDING" else (180.0 - a) % 360


def swath_polygon(
    lon: float, lat: float, direction: str, *, width_km: float = 250.0, length_km: float = 170.0,
    along_offset_km: float = 0.0, cross_offset_km: float = 0.0,
) -> shapely.Polygon:
    """A swath rectangle centred near (lon, lat) in WGS84 lon/lat (offsets along/across track)."""
    aeqd = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    to_ll = Transformer.from_crs(aeqd, 4326, always_xy=True)
    h = math.radians(heading_deg(lat, direction))
    ax, ay = math.sin(h), math.cos(h)        # along-track unit vector (x east, y north)
    cx, cy = ay, -ax                          # across-track (to the right)
    cx0 = cross_offset_km * 1000 * cx + along_offset_km * 1000 * ax
    cy0 = cross_offset_km * 1000 * cy + along_offset_km * 1000 * ay
    hl, hw = length_km * 500.0, width_km * 500.0
    corners = [(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw)]
    pts = []
    for a, c in corners:
        x = cx0 + a * ax + c * cx
        y = cy0 + a * ay + c * cy
        pts.append(to_ll.transform(x, y))
    # densify so the lon/lat polygon follows the straight edges of the local projection
    return shapely.Polygon(pts)


def absolute_for(mission: str, rel: int, cycle: int = 100) -> int:
    """An absolute orbit whose relative orbit is ``rel`` for ``mission``."""
    return rel - 1 + ORBIT_OFFSETS[mission] + 175 * cycle


_crc = iter(range(0x1000, 0xFFFF))


def make_record(
    footprint: shapely.Geometry,
    start: datetime,
    *,
    rel: int,
    direction: str,
    mission: str = "S1A",
    cycle: int = 100,
    datatake: str | None = None,
    duration_s: float = SLICE_S,
    name: str | None = None,
    relative: int | None | str = "same",
) -> ProductRecord:
    absolute = absolute_for(mission, rel, cycle)
    stop = start + timedelta(seconds=duration_s)
    datatake = datatake or f"{(absolute * 7) % 0xFFFFFF:06X}"
    if name is None:
        name = (
            f"{mission}_IW_GRDH_1SDV_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_"
            f"{absolute:06d}_{datatake}_{next(_crc):04X}"
        )
    return ProductRecord(
        name=name, uuid=None, mission=mission, start_time=start, stop_time=stop,
        absolute_orbit=absolute, relative_orbit=rel if relative == "same" else relative,  # type: ignore[arg-type]
        orbit_direction=direction, datatake_id=datatake, footprint=footprint,
        size=None, checksum=None, checksum_algorithm=None, online=True, url=None, source="test",
    )


def make_tile(
    tile_id: str, sensing: datetime, cols: range | list[int] = range(91), rows: range | list[int] = range(91),
    cells: list[tuple[int, int]] | None = None,
) -> TileAcquisition:
    epsg, ulx, uly = mgrs_tile_origin(tile_id)
    if cells is None:
        cells = [(c, r) for r in rows for c in cols]
    patches = tuple(
        Patch(
            f"S2A_MSIL2A_{sensing:%Y%m%dT%H%M%S}_{c}_{r}", c, r, (),
            ulx + 1200 * c, uly - 1200 * r, ulx + 1200 * (c + 1), uly - 1200 * (r + 1),
        )
        for c, r in cells
    )
    return TileAcquisition(tile_id, sensing, None, MapGrid.tile(epsg, ulx, uly), patches)


@pytest.fixture
def swath() -> Callable[..., shapely.Polygon]:
    return swath_polygon


@pytest.fixture
def record() -> Callable[..., ProductRecord]:
    return make_record


@pytest.fixture
def tile_factory() -> Callable[..., TileAcquisition]:
    return make_tile


@pytest.fixture
def heading() -> Callable[[float, str], float]:
    return heading_deg


@pytest.fixture
def utc() -> Callable[..., datetime]:
    def f(*args: int) -> datetime:
        return datetime(*args, tzinfo=UTC)

    return f


class CoverageSampler:
    """An independent coverage estimate: sample points of the target (a 3 x 3 grid in every
    patch square, 400 m apart, or the whole tile at 400 m), take them to lon/lat with pyproj and
    test them against the footprints in lon/lat with ``shapely.contains_xy``. No polygon is
    reprojected, unioned or measured."""

    def __init__(self, tile: TileAcquisition, target: str = "patches") -> None:
        import numpy as np

        offsets = np.array([200.0, 600.0, 1000.0])
        if target == "patches":
            ox, oy = np.meshgrid(offsets, offsets)
            ulx = np.array([p.ulx for p in tile.patches])[:, None]
            uly = np.array([p.uly for p in tile.patches])[:, None]
            x = (ulx + ox.ravel()[None, :]).ravel()
            y = (uly - oy.ravel()[None, :]).ravel()
        else:
            g = np.arange(200.0, 109800.0, 400.0)
            gx, gy = np.meshgrid(g, g)
            x = tile.grid.ulx + gx.ravel()
            y = tile.grid.uly - gy.ravel()
        tr = Transformer.from_crs(tile.epsg, 4326, always_xy=True)
        self.lon, self.lat = tr.transform(x, y)
        self.n = len(self.lon)

    def mask(self, footprint: shapely.Geometry):
        return shapely.contains_xy(footprint, self.lon, self.lat)

    def coverage(self, footprints) -> float:
        import numpy as np

        hit = np.zeros(self.n, bool)
        for f in footprints:
            hit |= self.mask(f)
        return float(hit.mean())


@pytest.fixture
def sampler() -> Callable[..., CoverageSampler]:
    return CoverageSampler


def brute_force(tile: TileAcquisition, records: list[ProductRecord], tolerance: float, target: str = "patches",
                max_size: int = 3) -> tuple[int, float] | None:
    """(fewest products, smallest largest time gap among such sets) covering ``tolerance`` of the
    sampled target, over all subsets of up to ``max_size`` records; None if none covers."""
    import itertools

    import numpy as np

    s = CoverageSampler(tile, target)
    masks = [s.mask(r.footprint) for r in records]
    gaps = [abs((r.start_time - tile.sensing_time).total_seconds()) for r in records]
    for k in range(1, max_size + 1):
        best = None
        for combo in itertools.combinations(range(len(records)), k):
            hit = np.logical_or.reduce([masks[i] for i in combo])
            if hit.mean() >= tolerance:
                g = max(gaps[i] for i in combo)
                best = g if best is None else min(best, g)
        if best is not None:
            return k, best
    return None


@pytest.fixture
def brute() -> Callable[..., tuple[int, float] | None]:
    return brute_force


def write_product(
    root, template_manifest, name: str, direction: str, footprint: shapely.Polygon, *, as_zip: bool = False,
    mode: str = "IW",
):
    """A .SAFE folder (or .zip) holding a real manifest.safe edited to describe product ``name``:
    times, orbits, data-take and platform from the name, the pass, and ``footprint`` (lon/lat)."""
    import re
    import zipfile
    from pathlib import Path

    from bigearthnet_s1.catalog import parse_product_name, relative_orbit

    n = parse_product_name(name)
    text = Path(template_manifest).read_text()
    coords = " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in list(footprint.exterior.coords)[:-1])
    rel = relative_orbit(n.mission, n.absolute_orbit)
    subs = [
        (r"(<safe:startTime>)[^<]*", rf"\g<1>{n.start_time:%Y-%m-%dT%H:%M:%S}.000000"),
        (r"(<safe:stopTime>)[^<]*", rf"\g<1>{n.stop_time:%Y-%m-%dT%H:%M:%S}.000000"),
        (r'(<safe:orbitNumber type="(?:start|stop)">)\d+', rf"\g<1>{n.absolute_orbit}"),
        (r'(<safe:relativeOrbitNumber type="(?:start|stop)">)\d+', rf"\g<1>{rel}"),
        (r"(<s1:pass>)[A-Z]+", rf"\g<1>{direction}"),
        (r"(<s1sarl1:missionDataTakeID>)\d+", rf"\g<1>{int(n.datatake_id, 16)}"),
        (r"(<safe:footPrint[^>]*>\s*<gml:coordinates>)[^<]*", rf"\g<1>{coords}"),
        (r"(<safe:number>)[A-D]", rf"\g<1>{n.mission[2]}"),
        (r"(<s1sarl1:mode>)[A-Z]+", rf"\g<1>{mode}"),
    ]
    for pattern, repl in subs:
        text, count = re.subn(pattern, repl, text)
        assert count >= 1, pattern
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if as_zip:
        path = root / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}.SAFE/manifest.safe", text)
    else:
        path = root / f"{name}.SAFE"
        path.mkdir()
        (path / "manifest.safe").write_text(text)
    return path


@pytest.fixture
def product_writer() -> Callable[..., object]:
    return write_product
