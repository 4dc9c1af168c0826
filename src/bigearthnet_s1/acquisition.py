"""The model of the S2 input: tile acquisitions (one MGRS tile seen in one overpass) and their
BigEarthNet patches.

Conventions: coordinates are pixel-CORNER metres in the tile's UTM CRS; times are tz-aware
UTC. Readers of the sources (:mod:`bigearthnet_s1.tiles` for the front door) build these.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import Polygon, box, mapping, shape

from bigearthnet_s1._time import format_compact, format_iso, parse_iso
from bigearthnet_s1.errors import TileError
from bigearthnet_s1.grid import MAX_PATCH_INDEX, PATCH_M, RESOLUTION, MapGrid
from bigearthnet_s1.mgrs import to_wgs84

T = TypeVar("T")

#: Two patch names of one tile further apart than this belong to different acquisitions
#: (one overpass takes seconds; the next chance to see the tile is an orbit, ~100 min, later).
ACQUISITION_GAP = timedelta(hours=1)


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


@dataclass(frozen=True)
class TileAcquisition:
    """One S2 tile acquisition (MGRS tile, sensing time) and its BigEarthNet patches."""

    tile_id: str
    sensing_time: datetime
    s2_product: str | None
    grid: MapGrid
    patches: tuple[Patch, ...]

    @property
    def epsg(self) -> int:
        """EPSG code of the tile's UTM CRS."""
        epsg = self.grid.epsg
        if epsg is None:
            raise TileError(f"tile {self.tile_id}: grid CRS {self.grid.crs} has no EPSG code")
        return epsg

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
            grid=MapGrid.from_json(d["grid"]),
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


def overpasses(items: Iterable[T], tile_id: Callable[[T], str], time: Callable[[T], datetime]) -> list[tuple[str, list[T]]]:
    """``items`` (the patches of a source, or anything with a tile and a time) grouped by MGRS
    tile, then into overpasses: a gap over :data:`ACQUISITION_GAP` between consecutive times
    starts a new one. Tiles sorted; each group in time order."""
    by_tile: dict[str, list[T]] = defaultdict(list)
    for item in items:
        by_tile[tile_id(item)].append(item)
    out: list[tuple[str, list[T]]] = []
    for tid in sorted(by_tile):
        last: datetime | None = None
        for item in sorted(by_tile[tid], key=time):
            t = time(item)
            if last is None or t - last > ACQUISITION_GAP:
                out.append((tid, []))
            out[-1][1].append(item)
            last = t
    return out
