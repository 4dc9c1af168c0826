"""The Sentinel-2 tile grid and the BigEarthNet patch lattice on it.

An S2 tile is 10,980 x 10,980 px of 10 m (109.8 km) in its UTM CRS; BigEarthNet cuts it into
120 x 120 px (1200 m) patches on a lattice anchored at the tile's upper-left corner:
``ulx = tile_ulx + 1200 * col``, ``uly = tile_uly - 1200 * row``, col/row in 0..90.
Coordinates are metres in the grid's CRS and refer to pixel CORNERS: ``(ulx, uly)`` is the
outer upper-left corner of pixel (0, 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from bigearthnet_s1.errors import TileError

PATCH_PX = 120
RESOLUTION = 10.0
PATCH_M = PATCH_PX * RESOLUTION  # 1200 m
TILE_PX = 10980
TILE_M = TILE_PX * RESOLUTION  # 109 800 m
MAX_PATCH_INDEX = TILE_PX // PATCH_PX - 1  # 90: col/row run 0..90 (91 * 120 = 10920 px)


class PatchIndex(Protocol):
    """Anything with the (col, row) of a patch on the lattice (``acquisition.Patch``)."""

    @property
    def col(self) -> int: ...

    @property
    def row(self) -> int: ...


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

    def window_for_patches(self, patches: Iterable[PatchIndex]) -> Window:
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
