"""Map grids (:class:`MapGrid`): the Sentinel-2 tile grid, the BigEarthNet patch lattice on
it, and every other target grid of the library.

An S2 tile is 10,980 x 10,980 px of 10 m (109.8 km) in its UTM CRS; BigEarthNet cuts it into
120 x 120 px (1200 m) patches on a lattice anchored at the tile's upper-left corner:
``ulx = tile_ulx + 1200 * col``, ``uly = tile_uly - 1200 * row``, col/row in 0..90.
Coordinates are metres in the grid's CRS and refer to pixel CORNERS: ``(ulx, uly)`` is the
outer upper-left corner of pixel (0, 0).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from affine import Affine
from numpy.typing import ArrayLike, NDArray
from rasterio.crs import CRS
from rasterio.windows import Window

from bigearthnet_s1.errors import InputError, TileError

if TYPE_CHECKING:
    from pyproj import Transformer

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


@functools.lru_cache(maxsize=64)
def _to_lonlat(crs_wkt: str) -> Transformer:
    from pyproj import CRS as ProjCRS
    from pyproj import Transformer

    return Transformer.from_crs(ProjCRS.from_user_input(crs_wkt), "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class MapGrid:
    """A map grid: its CRS, the affine transform of pixel CORNERS, and its (rows, cols) shape.

    The one grid value of the library: an S2 tile's 10 m grid (:meth:`tile`), a window of it
    (:meth:`sub`), the target grid of terrain correction and of the graphs' engines. Pixel
    (row, col) covers grid coordinates [col, col + 1) x [row, row + 1); its centre is
    (row + 0.5, col + 0.5). ``crs`` may be given as anything rasterio reads (EPSG code, WKT,
    ``"EPSG:32633"``); the transform as an Affine or its first six coefficients.
    """

    crs: CRS
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        # normalise in place (frozen): the CRS as rasterio's, the transform as an Affine, ints
        object.__setattr__(self, "crs", self.crs if isinstance(self.crs, CRS) else CRS.from_user_input(self.crs))
        object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))
        shape = (int(self.shape[0]), int(self.shape[1]))
        if shape[0] <= 0 or shape[1] <= 0:
            raise InputError(f"map grid shape {self.shape} is empty")
        object.__setattr__(self, "shape", shape)

    @classmethod
    def tile(cls, epsg: int, ulx: float, uly: float, width: int = TILE_PX, height: int = TILE_PX,
             resolution: float = RESOLUTION) -> MapGrid:
        """A north-up grid of square pixels (an S2 tile's by default: 10,980 x 10,980 px of 10 m)
        whose outer upper-left corner is (ulx, uly), metres of ``EPSG:epsg``."""
        return cls(CRS.from_epsg(int(epsg)), Affine(float(resolution), 0.0, float(ulx), 0.0, -float(resolution),
                                                     float(uly)), (int(height), int(width)))

    @property
    def epsg(self) -> int | None:
        """The CRS's EPSG code (None when it has none)."""
        return self.crs.to_epsg()

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def ulx(self) -> float:
        """x of the outer upper-left corner of pixel (0, 0)."""
        return float(self.transform.c)

    @property
    def uly(self) -> float:
        """y of the outer upper-left corner of pixel (0, 0)."""
        return float(self.transform.f)

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (square pixels, north up; a rotated grid raises InputError)."""
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a != -t.e:
            raise InputError(f"map grid {tuple(t)[:6]} has no single resolution (not north-up square pixels)")
        return float(t.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the whole grid's outer pixel corners, CRS units."""
        from rasterio.transform import array_bounds

        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return (float(west), float(south), float(east), float(north))

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """(lon_min, lat_min, lon_max, lat_max) of the grid's outer pixel corners, edges densified."""
        from rasterio.warp import transform_bounds

        return transform_bounds(self.crs, "EPSG:4326", *self.bounds, densify_pts=21)

    def window_transform(self, window: Window) -> Affine:
        """Transform of a window of this grid (top-left pixel corner)."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def sub(self, window: Window) -> MapGrid:
        """The grid of ``window`` (whole pixels) of this grid."""
        return MapGrid(self.crs, self.window_transform(window), (int(window.height), int(window.width)))

    def xy(self, rows: ArrayLike, cols: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Map coordinates of (fractional) pixel-centre coordinates (row, col: centre of pixel 0 = 0)."""
        cc, rr = np.asarray(cols, dtype=np.float64) + 0.5, np.asarray(rows, dtype=np.float64) + 0.5
        xs, ys = self.transform @ (cc, rr)  # type: ignore[operator]  # affine's hints say scalars; it broadcasts arrays
        return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)

    def lonlat(self, rows: ArrayLike, cols: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """WGS84 lon/lat (degrees) of (fractional) pixel-centre coordinates."""
        xs, ys = self.xy(rows, cols)
        lon, lat = _to_lonlat(self.crs.to_wkt()).transform(xs, ys)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    # -- the BigEarthNet patch lattice, anchored at the grid's corner (S2 tile grids) --------
    def patch_window(self, col: int, row: int) -> Window:
        """Window of patch (col, row): ``Window(120*col, 120*row, 120, 120)``."""
        return Window(PATCH_PX * col, PATCH_PX * row, PATCH_PX, PATCH_PX)

    def patch_bounds(self, col: int, row: int) -> tuple[float, float, float, float]:
        """(ulx, uly, lrx, lry) of patch (col, row), pixel corners in CRS units (metres)."""
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

    # -- JSON ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """``{epsg, ulx, uly, width, height, resolution}`` for a north-up grid with an EPSG code
        (tile files), else ``{crs (WKT), transform (6 numbers), shape}``."""
        t = self.transform
        if self.epsg is not None and t.b == 0 and t.d == 0 and t.a == -t.e:
            return {"epsg": self.epsg, "ulx": self.ulx, "uly": self.uly, "width": self.width,
                    "height": self.height, "resolution": self.resolution}
        return {"crs": self.crs.to_wkt(), "transform": list(tuple(t)[:6]), "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MapGrid:
        if "epsg" in d:
            return cls.tile(int(d["epsg"]), float(d["ulx"]), float(d["uly"]), int(d.get("width", TILE_PX)),
                            int(d.get("height", TILE_PX)), float(d.get("resolution", RESOLUTION)))
        return cls(CRS.from_user_input(d["crs"]), Affine(*d["transform"]), tuple(d["shape"]))


#: The S2 tile grid's constructor under its old name (``TileGrid(epsg, ulx, uly)``), for the
#: callers that still use it; the type is :class:`MapGrid`.
TileGrid = MapGrid.tile
