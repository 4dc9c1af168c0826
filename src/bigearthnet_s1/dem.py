"""Digital elevation models for terrain correction.

Every DEM answers one question: :meth:`Dem.heights` gives heights above the WGS84
**ellipsoid** (metres, float32) at the pixel **centres** of a target grid (CRS, affine
transform of pixel corners, shape). Sources:

- ``"flat"`` (or ``"flat:<h>"``): a constant ellipsoidal height (0 m by default), for tests;
- a GeoTIFF or VRT path (any CRS; reprojected on the fly with GDAL, bilinear);
- ``"glo30"``: Copernicus DEM GLO-30 tiles from the public AWS bucket (the default for real use);
- ``"srtm1"``: SRTM 1 arc-second tiles (ESA STEP auxdata mirror, as SNAP uses); SRTM has no
  data beyond 60 deg N (nor south of 56 deg S), so tiles there come from GLO-30 automatically.

Downloaded tiles are cached on disk (``cache_dir``; default ``$BIGEARTHNET_S1_DEM_CACHE`` or
``~/.cache/bigearthnet-s1/dem``) and reused across tiles and processes; writes are atomic.
A tile the server answers 404 for is ocean (GLO-30 and SRTM have no tiles over open sea):
it is recorded as ``<name>.missing`` in the cache and its area gets 0 m above the geoid.

Vertical reference. Geoid-referenced DEMs (vertical CRS EGM96, e.g. EPSG:9707 = WGS 84 +
EGM96 height; SRTM; GLO-30, whose EGM2008 heights are approximated by EGM96, as SNAP does:
the two geoids differ by well under 1 m over most land, i.e. < 0.1 px of geolocation) are
converted to ellipsoidal heights by adding the EGM96 undulation N. PROJ's EGM96 grid is not
installed with pyproj here (no ``us_nga_egm96_15.tif`` in its data dir, no network), so the
package ships the EGM96 15' global grid itself (``data/egm96_15.i2.xz``, 700 KB: NGA's public
domain EGM96 15-minute undulation grid, as distributed in PROJ's ``egm96_15.gtx``, stored as
centimetres, i.e. +-5 mm rounding), interpolated bilinearly like PROJ does. Set
``$BIGEARTHNET_S1_EGM96`` to any GDAL-readable global EGM96 grid to use that one instead.
A DEM whose CRS has no vertical part (plain EPSG:4326 or UTM) is taken as EGM96-referenced,
like nearly every public DEM (SNAP's "apply EGM" default for external DEMs); pass
``vertical="ellipsoid"`` for ellipsoidal heights.

Holes. No-data pixels inside the DEM's extent (voids, NaN) are filled by GDAL's
inverse-distance interpolation from the void's edge (``rasterio.fill.fillnodata``) and, for
any still left, the nearest valid height; the filled fraction is logged. A grid reaching
outside the DEM's extent raises :class:`DemError` (nothing is extrapolated).
"""

from __future__ import annotations

import functools
import logging
import lzma
import math
import os
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
import rasterio.fill
import rasterio.warp
import requests
from affine import Affine
from numpy.typing import ArrayLike, NDArray
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from scipy import ndimage
from shapely import geometry as sgeom
from shapely.ops import unary_union

from bigearthnet_s1.atomic import atomic_path, atomic_write_bytes
from bigearthnet_s1.errors import DemError
from bigearthnet_s1.retry import RETRY_STATUSES, RetryPolicy, Transient, call

log = logging.getLogger(__name__)

__all__ = [
    "Dem",
    "DemPosts",
    "FlatDem",
    "RasterDem",
    "TiledDem",
    "open_dem",
    "egm96_undulation",
    "glo30_tile_name",
    "srtm1_tile_name",
    "tiles_for_bounds",
    "DEFAULT_GLO30_URL",
    "DEFAULT_SRTM1_URL",
]

#: Public AWS bucket of Copernicus DEM GLO-30 (Cloud Optimized GeoTIFFs, one per 1 x 1 deg).
DEFAULT_GLO30_URL = "https://copernicus-dem-30m.s3.amazonaws.com"
#: SRTM 1" HGT tiles, zipped, as SNAP's "SRTM 1Sec HGT" auto-download reads them.
DEFAULT_SRTM1_URL = "https://step.esa.int/auxdata/dem/SRTMGL1"
#: SRTM covers 56 deg S .. 60 deg N: a 1-degree tile whose south edge lies in [-56, 59].
SRTM_LAT_MIN, SRTM_LAT_MAX = -56, 60

_WARP_THREADS = max(1, min(4, os.cpu_count() or 1))
_EGM96_FILE = Path(__file__).with_name("data") / "egm96_15.i2.xz"
_EGM96_SHAPE = (721, 1440)  # rows lat 90 .. -90, cols lon -180 .. 179.75, step 0.25 deg

Grid = tuple[Any, Affine, tuple[int, int]]


# --------------------------------------------------------------------------------------
# EGM96 geoid
# --------------------------------------------------------------------------------------
@functools.cache
def _egm96_grid() -> tuple[NDArray[np.float32], float, float, float]:
    """(undulations m (rows north->south), lat of row 0, lon of col 0, step deg)."""
    override = os.environ.get("BIGEARTHNET_S1_EGM96")
    if override:
        try:
            with rasterio.open(override) as ds:
                g = ds.read(1).astype(np.float32)
                t = ds.transform
        except rasterio.errors.RasterioIOError as exc:
            raise DemError(f"EGM96 grid {override} ($BIGEARTHNET_S1_EGM96) cannot be read: {exc}") from exc
        if abs(t.a + t.e) > 1e-9 or t.b or t.d:
            raise DemError(f"EGM96 grid {override}: expected a north-up grid with square cells")
        step = t.a
        return g, t.f - step / 2, t.c + step / 2, step
    try:
        raw = lzma.decompress(_EGM96_FILE.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise DemError(f"bundled EGM96 grid {_EGM96_FILE} is missing or corrupt: {exc}") from exc
    delta = np.frombuffer(raw, dtype="<i2").reshape(_EGM96_SHAPE)
    cm = np.cumsum(delta, axis=1, dtype=np.int32)
    return (cm * 0.01).astype(np.float32), 90.0, -180.0, 0.25


def egm96_undulation(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
    """EGM96 geoid undulation N (m) at lon/lat (degrees, WGS84): h_ellipsoid = H_egm96 + N.

    Bilinear on the 15' grid, wrapping in longitude (as PROJ interpolates ``egm96_15``).
    """
    g, lat0, lon0, step = _egm96_grid()
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    nrow, ncol = g.shape
    r = np.clip((lat0 - lat_a) / step, 0.0, nrow - 1.000001)
    c = np.mod(lon_a - lon0, 360.0) / step
    r0 = np.floor(r).astype(np.intp)
    c0 = np.floor(c).astype(np.intp) % ncol
    fr = r - r0
    fc = c - np.floor(c)
    c1 = (c0 + 1) % ncol
    r1 = np.minimum(r0 + 1, nrow - 1)
    top = g[r0, c0] * (1 - fc) + g[r0, c1] * fc
    bot = g[r1, c0] * (1 - fc) + g[r1, c1] * fc
    return np.asarray(top * (1 - fr) + bot * fr, dtype=np.float64)


# --------------------------------------------------------------------------------------
# helpers on grids
# --------------------------------------------------------------------------------------
def _crs(crs: Any) -> CRS:
    return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)


def _grid_boundary(transform: Affine, shape: tuple[int, int], n: int = 64) -> NDArray[np.float64]:
    """Points (x, y) along the outer boundary (pixel corners) of a grid, densified."""
    h, w = shape
    t = np.linspace(0.0, 1.0, n)
    cols = np.concatenate([t * w, np.full(n, w), (1 - t) * w, np.zeros(n)])
    rows = np.concatenate([np.zeros(n), t * h, np.full(n, h), (1 - t) * h])
    xs, ys = transform @ (cols, rows)  # type: ignore[operator]  # affine's hints say scalars; it broadcasts arrays
    return np.column_stack([xs, ys])


def _centre_lonlat(crs: Any, transform: Affine, rows: NDArray[np.float64], cols: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """lon/lat (deg) of pixel centres at (rows, cols) of a grid (broadcast)."""
    xs, ys = transform @ (cols + 0.5, rows + 0.5)  # type: ignore[operator]  # affine's hints say scalars; it broadcasts arrays
    tr = pyproj.Transformer.from_crs(_crs(crs), "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(xs), np.asarray(ys))
    return np.asarray(lon), np.asarray(lat)


def _smooth_field(
    crs: Any, transform: Affine, shape: tuple[int, int], func: Any, step: int = 32
) -> NDArray[np.float32]:
    """Evaluate a smooth function of (lon, lat) on a coarse lattice and upsample it bilinearly
    to every pixel centre of the grid (the geoid varies by cm over a few hundred metres)."""
    h, w = shape
    rr = np.unique(np.r_[np.arange(0, h, step), h - 1]).astype(np.float64)
    cc = np.unique(np.r_[np.arange(0, w, step), w - 1]).astype(np.float64)
    lon, lat = _centre_lonlat(crs, transform, rr[:, None], cc[None, :])
    coarse = func(lon, lat)
    # separable linear interpolation: columns first (at the coarse rows), then rows, one
    # interval of coarse rows at a time (no full-size temporaries), float32
    ci = np.arange(w, dtype=np.float64)
    tmp = np.empty((rr.size, w), dtype=np.float32)
    for i in range(rr.size):
        tmp[i] = np.interp(ci, cc, coarse[i])
    if rr.size == 1:
        return np.broadcast_to(tmp[0], (h, w)).copy()
    out = np.empty((h, w), dtype=np.float32)
    for k in range(rr.size - 1):
        a0, a1 = int(rr[k]), int(rr[k + 1])
        last = k == rr.size - 2
        n = a1 - a0 + (1 if last else 0)
        f = (np.arange(n, dtype=np.float32) / np.float32(a1 - a0))[:, None]
        out[a0:a0 + n] = tmp[k] + (tmp[k + 1] - tmp[k]) * f
    return out


def _fill_holes(a: NDArray[np.float32], what: str) -> int:
    """Fill NaN holes in place (GDAL inverse-distance fill, then nearest). Returns the count."""
    bad = ~np.isfinite(a)
    n = int(bad.sum())
    if n == 0:
        return 0
    if n == a.size:
        raise DemError(f"DEM {what}: no valid height at all on the requested grid")
    # GDAL's FillNodata (inverse-distance weighting from the void's edge, what SNAP and
    # gdal_fillnodata do); posts it cannot reach keep NaN and get the nearest valid height.
    filled = rasterio.fill.fillnodata(
        a.copy(), mask=(~bad).astype(np.uint8), max_search_distance=float(max(a.shape)), smoothing_iterations=0
    )
    a[bad] = filled[bad]
    still = ~np.isfinite(a)
    if still.any():
        idx = ndimage.distance_transform_edt(still, return_distances=False, return_indices=True)
        a[still] = a[tuple(i[still] for i in idx)]
    log.warning("DEM %s: filled %d no-data pixels (%.3f %% of the grid)", what, n, 100.0 * n / a.size)
    return n


# --------------------------------------------------------------------------------------
# DEM classes
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemPosts:
    """A DEM's own posts over an area, as ellipsoidal heights: the input of sampling each
    target pixel's height ONCE, bilinearly between these posts (no intermediate grid).

    ``heights``: float32 (rows, cols), metres above the WGS84 ellipsoid (geoid already added
    at every post), no NaN (voids filled). ``crs``: the posts' horizontal CRS; ``transform``:
    affine of the post cells' CORNERS (post (i, j) is the centre of cell (i, j), as rasterio).
    A constant DEM has a (1, 1) array and ``crs`` None (every point has that height).
    """

    heights: NDArray[np.float32]
    crs: CRS | None
    transform: Affine

    @property
    def constant(self) -> bool:
        return self.crs is None

    def indices(self, crs: Any, xs: ArrayLike, ys: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Fractional (row, col) post coordinates (integer = post centre) of points given in
        ``crs``; zeros for a constant DEM."""
        x = np.asarray(xs, dtype=np.float64)
        y = np.asarray(ys, dtype=np.float64)
        if self.crs is None:
            return np.zeros(x.shape), np.zeros(y.shape)
        src = pyproj.CRS.from_user_input(_crs(crs).to_wkt())
        dst = pyproj.CRS.from_user_input(self.crs.to_wkt())
        if not src.equals(dst):
            x, y = pyproj.Transformer.from_crs(src, dst, always_xy=True).transform(x, y)
        col, row = ~self.transform @ (np.asarray(x), np.asarray(y))
        return np.asarray(row) - 0.5, np.asarray(col) - 0.5

    def sample(self, rows: ArrayLike, cols: ArrayLike) -> NDArray[np.float64]:
        """Bilinear heights at fractional post coordinates (clamped to the array)."""
        h = self.heights
        r = np.clip(np.asarray(rows, dtype=np.float64), 0.0, h.shape[0] - 1.0)
        c = np.clip(np.asarray(cols, dtype=np.float64), 0.0, h.shape[1] - 1.0)
        i = np.minimum(np.floor(r).astype(np.intp), max(h.shape[0] - 2, 0))
        j = np.minimum(np.floor(c).astype(np.intp), max(h.shape[1] - 2, 0))
        i1 = np.minimum(i + 1, h.shape[0] - 1)
        j1 = np.minimum(j + 1, h.shape[1] - 1)
        fr, fc = r - i, c - j
        hh = h.astype(np.float64)
        return (hh[i, j] * (1 - fc) + hh[i, j1] * fc) * (1 - fr) + (hh[i1, j] * (1 - fc) + hh[i1, j1] * fc) * fr


class Dem(ABC):
    """A source of ellipsoidal heights."""

    name: str = "dem"
    #: approximate ground spacing of the DEM's posts in metres (``inf`` for a flat DEM).
    resolution_m: float = math.inf

    @abstractmethod
    def heights(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> NDArray[np.float32]:
        """Heights (m above the WGS84 ellipsoid, float32) at the pixel centres of the grid
        (``transform`` maps pixel corners, as rasterio's). Raises :class:`DemError` when the
        DEM does not cover the grid."""

    def posts(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> DemPosts:
        """The DEM's own posts (ellipsoidal heights) covering the grid, with a margin of two
        posts: what terrain correction samples each target pixel from (see :class:`DemPosts`).
        The default puts the heights on the grid itself (a DEM without posts of its own)."""
        return DemPosts(self.heights(crs, transform, shape), _crs(crs), transform)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


@dataclass(frozen=True, repr=False)
class FlatDem(Dem):
    """Constant height above the WGS84 ellipsoid (m); covers the whole Earth."""

    height: float = 0.0

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"flat:{self.height:g}"

    def heights(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> NDArray[np.float32]:
        return np.full(shape, self.height, dtype=np.float32)

    def posts(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> DemPosts:
        return DemPosts(np.full((1, 1), self.height, dtype=np.float32), None, Affine.identity())


def _vertical_of(crs: CRS, what: str) -> str:
    """'egm96' | 'ellipsoid' from a raster CRS (2-D CRS: geoid assumed, see module doc)."""
    pc = pyproj.CRS.from_user_input(crs.to_wkt())
    if pc.is_compound:
        vert = [c for c in pc.sub_crs_list if c.is_vertical]
        name = (vert[0].datum.name if vert and vert[0].datum else "").upper() if vert else ""
        if "EGM96" in name:
            return "egm96"
        if "EGM2008" in name or "EGM08" in name:
            log.info("DEM %s: EGM2008 heights converted with the EGM96 geoid (documented approximation)", what)
            return "egm96"
        if "ELLIPSOID" in name:
            return "ellipsoid"
        raise DemError(f"DEM {what}: vertical datum {name or '?'} not supported (EGM96, EGM2008 or ellipsoid)")
    if len(pc.axis_info) == 3:  # geographic 3-D (EPSG:4979) or similar: ellipsoidal heights
        return "ellipsoid"
    return "egm96"


def _horizontal(crs: CRS) -> CRS:
    pc = pyproj.CRS.from_user_input(crs.to_wkt())
    if pc.is_compound:
        return CRS.from_wkt(pc.sub_crs_list[0].to_wkt())
    if len(pc.axis_info) == 3:
        return CRS.from_wkt(pc.to_2d().to_wkt())
    return crs


@dataclass
class _Source:
    """One raster of a DEM: a GDAL path (file, VRT, /vsizip/...) or an in-memory constant tile."""

    path: str
    label: str
    crs: CRS | None = None
    bounds: tuple[float, float, float, float] | None = None  # in ``crs``
    res: tuple[float, float] | None = None
    nodata: float | None = None
    constant: float | None = None  # a synthetic tile of this value (ocean)
    resampling: Resampling = Resampling.bilinear

    def open(self) -> Any:
        if self.constant is None:
            return rasterio.open(self.path)
        assert self.bounds is not None and self.crs is not None
        left, bottom, right, top = self.bounds
        n = 16
        mem = MemoryFile()
        ds = mem.open(
            driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=self.crs,
            transform=Affine((right - left) / n, 0.0, left, 0.0, -(top - bottom) / n, top),
        )
        ds.write(np.full((1, n, n), self.constant, dtype=np.float32))
        return ds


class RasterDem(Dem):
    """A DEM from one or more GDAL rasters (GeoTIFF, VRT, zipped HGT), any CRS.

    ``vertical``: ``"auto"`` (from the CRS; see the module doc), ``"egm96"`` or ``"ellipsoid"``.
    Heights are resampled bilinearly onto the requested grid (GDAL warp; no-data posts do not
    contribute), holes are filled (module doc), the geoid is added where needed.
    """

    def __init__(self, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                 vertical: str = "auto", name: str | None = None,
                 _sources: Sequence[_Source] | None = None) -> None:
        if vertical not in ("auto", "egm96", "ellipsoid"):
            raise DemError(f"DEM: vertical must be auto, egm96 or ellipsoid, not {vertical!r}")
        if _sources is None:
            plist = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
            _sources = [_Source(path=str(p), label=str(p)) for p in plist]
        if not _sources:
            raise DemError("DEM: no raster given")
        self.sources: list[_Source] = list(_sources)
        self.name = name or ", ".join(s.label for s in self.sources[:3]) + (" ..." if len(self.sources) > 3 else "")
        self._vertical_opt = vertical
        verticals = set()
        for s in self.sources:
            if s.constant is not None:
                continue
            try:
                with rasterio.open(s.path) as ds:
                    if ds.crs is None:
                        raise DemError(f"DEM {s.label}: the raster has no CRS")
                    s.crs, s.bounds, s.res, s.nodata = ds.crs, tuple(ds.bounds), ds.res, ds.nodata
            except rasterio.errors.RasterioIOError as exc:
                raise DemError(f"DEM {s.label} cannot be read: {exc}") from exc
            verticals.add(_vertical_of(s.crs, s.label) if vertical == "auto" else vertical)
        if len(verticals) > 1:
            raise DemError(f"DEM {self.name}: rasters mix vertical references {sorted(verticals)}")
        self.vertical = verticals.pop() if verticals else ("egm96" if vertical == "auto" else vertical)
        real = [s for s in self.sources if s.constant is None]
        if real:
            s = real[0]
            assert s.crs is not None and s.res is not None and s.bounds is not None
            ry = abs(s.res[1])
            if _horizontal(s.crs).is_geographic:
                self.resolution_m = ry * 111_320.0
            else:
                self.resolution_m = ry

    # coverage -------------------------------------------------------------------------
    def _check_coverage(self, crs: CRS, transform: Affine, shape: tuple[int, int]) -> list[_Source]:
        """Sources intersecting the grid; DemError unless their union covers the grid.

        Done in the grid's CRS: each source's extent (pixel corners, densified) is projected
        there; the hull of the grid's pixel CENTRES (where heights are wanted) must lie inside
        their union."""
        h, w = shape
        grid_box = sgeom.Polygon(_grid_boundary(transform, shape))
        centres = _grid_boundary(transform @ Affine.translation(0.5, 0.5), (max(h - 1, 0), max(w - 1, 0)))
        need = sgeom.MultiPoint(centres).convex_hull
        grid_crs = pyproj.CRS.from_user_input(crs.to_wkt())
        polys = []
        used = []
        for s in self.sources:
            assert s.crs is not None and s.bounds is not None
            left, bottom, right, top = s.bounds
            src_box = _grid_boundary(Affine(right - left, 0, left, 0, bottom - top, top), (1, 1), n=32)
            tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(_horizontal(s.crs).to_wkt()), grid_crs,
                                             always_xy=True)
            x, y = tr.transform(src_box[:, 0], src_box[:, 1], errcheck=False)
            if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
                continue
            poly = sgeom.Polygon(np.column_stack([x, y])).buffer(0)
            if poly.intersects(grid_box):
                used.append(s)
                polys.append(poly)
        if not used:
            raise DemError(f"DEM {self.name} does not cover the requested grid at all "
                           f"(grid {self._bounds_text(crs, transform, shape)})")
        cover = unary_union(polys)
        tol = 1e-6 * math.sqrt(grid_box.area) + 1e-9
        if not cover.buffer(tol).covers(need):
            frac = need.difference(cover).area / need.area if need.area > 0 else 1.0
            raise DemError(
                f"DEM {self.name} does not cover the requested grid: "
                f"{100.0 * frac:.2f} % of it lies outside the DEM "
                f"(grid {self._bounds_text(crs, transform, shape)})"
            )
        return used

    @staticmethod
    def _bounds_text(crs: CRS, transform: Affine, shape: tuple[int, int]) -> str:
        b = _grid_boundary(transform, shape, n=8)
        tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs.to_wkt()), "EPSG:4326", always_xy=True)
        lon, lat = tr.transform(b[:, 0], b[:, 1])
        return f"lon {np.min(lon):.4f}..{np.max(lon):.4f}, lat {np.min(lat):.4f}..{np.max(lat):.4f}"

    # heights --------------------------------------------------------------------------
    def heights(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> NDArray[np.float32]:
        crs = _crs(crs)
        h, w = int(shape[0]), int(shape[1])
        used = self._check_coverage(crs, transform, (h, w))
        out = np.full((h, w), np.nan, dtype=np.float32)
        tmp = out if len(used) == 1 else np.empty((h, w), dtype=np.float32)
        for s in used:
            tmp.fill(np.nan)
            with s.open() as ds:
                src_crs = _horizontal(ds.crs)
                nodata = ds.nodata
                try:
                    rasterio.warp.reproject(
                        source=rasterio.band(ds, 1),
                        destination=tmp,
                        src_crs=src_crs,
                        src_nodata=nodata,
                        dst_transform=transform,
                        dst_crs=crs,
                        dst_nodata=np.nan,
                        resampling=s.resampling,
                        init_dest_nodata=True,
                        XSCALE=1, YSCALE=1,  # point interpolation: no antialiasing kernel
                        num_threads=_WARP_THREADS,
                    )
                except rasterio.errors.RasterioError as exc:
                    raise DemError(f"DEM {s.label}: reprojection failed: {exc}") from exc
            if tmp is not out:
                take = np.isnan(out) & np.isfinite(tmp)
                out[take] = tmp[take]
        _fill_holes(out, self.name)
        if self.vertical == "egm96":
            out += _smooth_field(crs, transform, (h, w), egm96_undulation)
        return out

    def posts(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> DemPosts:
        """The posts of the DEM's first raster (its CRS, spacing and alignment) covering the
        grid plus two posts. Rasters on the same lattice (tiles of one DEM) are copied post for
        post, without resampling; a raster on another lattice (a GLO-30 tile of another
        longitude spacing, an ocean tile) is warped onto it (bilinear; documented: the one
        place where heights are resampled twice). Voids are filled; the geoid is added at
        each post (EGM96, bilinear on its 15' grid via a smooth upsampled field)."""
        crs = _crs(crs)
        h, w = int(shape[0]), int(shape[1])
        used = self._check_coverage(crs, transform, (h, w))
        ref = next((s for s in used if s.constant is None), used[0])
        assert ref.crs is not None and ref.bounds is not None and ref.res is not None
        dem_crs = _horizontal(ref.crs)
        rx, ry = float(ref.res[0]), float(ref.res[1])
        left, _bottom, _right, top = ref.bounds
        b = _grid_boundary(transform, (h, w), n=64)
        tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs.to_wkt()),
                                         pyproj.CRS.from_user_input(dem_crs.to_wkt()), always_xy=True)
        bx, by = tr.transform(b[:, 0], b[:, 1])
        c0 = math.floor((float(np.min(bx)) - left) / rx) - 2
        c1 = math.ceil((float(np.max(bx)) - left) / rx) + 2
        r0 = math.floor((top - float(np.max(by))) / ry) - 2
        r1 = math.ceil((top - float(np.min(by))) / ry) + 2
        pt = Affine(rx, 0.0, left + c0 * rx, 0.0, -ry, top - r0 * ry)
        ph, pw = r1 - r0, c1 - c0
        if ph * pw > 400_000_000:
            raise DemError(f"DEM {self.name}: {ph} x {pw} posts for one grid (is the grid's CRS right?)")
        out = np.full((ph, pw), np.nan, dtype=np.float32)
        for s in used:
            if s.constant is None and self._same_lattice(s, dem_crs, pt):
                self._copy_posts(s, out, pt)
            else:
                self._warp_posts(s, out, dem_crs, pt)
        # voids among the posts the grid needs are filled (and reported); the two-post margin
        # may reach past the DEM's edge and takes the nearest post's height silently
        inner = out[2:-2, 2:-2]
        if inner.size and np.isfinite(inner).any():
            _fill_holes(inner, self.name)
        ring = ~np.isfinite(out)
        if ring.any():
            if not (~ring).any():
                raise DemError(f"DEM {self.name}: no valid height at all on the requested grid")
            idx = ndimage.distance_transform_edt(ring, return_distances=False, return_indices=True)
            out[ring] = out[tuple(i[ring] for i in idx)]
        if self.vertical == "egm96":
            out += _smooth_field(dem_crs, pt, (ph, pw), egm96_undulation)
        return DemPosts(out, dem_crs, pt)

    @staticmethod
    def _same_lattice(s: _Source, dem_crs: CRS, pt: Affine) -> bool:
        if s.crs is None or s.res is None or s.bounds is None:
            return False
        if _horizontal(s.crs) != dem_crs or not (math.isclose(s.res[0], pt.a) and math.isclose(s.res[1], -pt.e)):
            return False
        oc = (s.bounds[0] - pt.c) / pt.a
        orow = (pt.f - s.bounds[3]) / -pt.e
        return abs(oc - round(oc)) < 1e-6 and abs(orow - round(orow)) < 1e-6

    def _copy_posts(self, s: _Source, out: NDArray[np.float32], pt: Affine) -> None:
        """Copy the overlap of raster ``s`` (same lattice) into ``out`` where ``out`` is empty."""
        assert s.bounds is not None
        oc = round((s.bounds[0] - pt.c) / pt.a)
        orow = round((pt.f - s.bounds[3]) / -pt.e)
        try:
            with rasterio.open(s.path) as ds:
                r0, c0 = max(0, orow), max(0, oc)
                r1, c1 = min(out.shape[0], orow + ds.height), min(out.shape[1], oc + ds.width)
                if r1 <= r0 or c1 <= c0:
                    return
                a = ds.read(1, window=((r0 - orow, r1 - orow), (c0 - oc, c1 - oc)), out_dtype=np.float32,
                            masked=True)
        except rasterio.errors.RasterioError as exc:
            raise DemError(f"DEM {s.label}: read failed: {exc}") from exc
        vals = np.ma.filled(a, np.nan).astype(np.float32)
        dst = out[r0:r1, c0:c1]
        take = np.isnan(dst) & np.isfinite(vals)
        dst[take] = vals[take]

    def _warp_posts(self, s: _Source, out: NDArray[np.float32], dem_crs: CRS, pt: Affine) -> None:
        tmp = np.full(out.shape, np.nan, dtype=np.float32)
        with s.open() as ds:
            try:
                rasterio.warp.reproject(
                    source=rasterio.band(ds, 1), destination=tmp, src_crs=_horizontal(ds.crs), src_nodata=ds.nodata,
                    dst_transform=pt, dst_crs=dem_crs, dst_nodata=np.nan, resampling=s.resampling,
                    init_dest_nodata=True, XSCALE=1, YSCALE=1, num_threads=_WARP_THREADS,
                )
            except rasterio.errors.RasterioError as exc:
                raise DemError(f"DEM {s.label}: reprojection failed: {exc}") from exc
        take = np.isnan(out) & np.isfinite(tmp)
        out[take] = tmp[take]


# --------------------------------------------------------------------------------------
# downloaded tiles
# --------------------------------------------------------------------------------------
def _ns(lat: int) -> str:
    return f"N{lat:02d}" if lat >= 0 else f"S{-lat:02d}"


def _ew(lon: int) -> str:
    return f"E{lon:03d}" if lon >= 0 else f"W{-lon:03d}"


def glo30_tile_name(lat: int, lon: int) -> str:
    """GLO-30 tile name of the 1x1 deg cell whose south-west corner is (lat, lon) (degrees)."""
    return f"Copernicus_DSM_COG_10_{_ns(lat)}_00_{_ew(lon)}_00_DEM"


def srtm1_tile_name(lat: int, lon: int) -> str:
    """SRTM HGT tile name (``N41E012``) of the 1x1 deg cell with south-west corner (lat, lon)."""
    return f"{_ns(lat)}{_ew(lon)}"


def tiles_for_bounds(lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> list[tuple[int, int]]:
    """South-west corners (lat, lon) of the 1x1 deg cells touching a lon/lat box."""
    la0, la1 = math.floor(lat_min), math.floor(lat_max - 1e-12) if lat_max > lat_min else math.floor(lat_min)
    lo0, lo1 = math.floor(lon_min), math.floor(lon_max - 1e-12) if lon_max > lon_min else math.floor(lon_min)
    la0, la1 = max(la0, -90), min(la1, 89)
    return [(la, ((lo + 180) % 360) - 180) for la in range(la0, la1 + 1) for lo in range(lo0, lo1 + 1)]


class TiledDem(Dem):
    """GLO-30 or SRTM 1" tiles fetched on demand into a disk cache (see module doc).

    ``kind``: ``"glo30"`` or ``"srtm1"`` (SRTM tiles beyond its coverage come from GLO-30).
    ``glo30_url``/``srtm1_url``: base URLs (the defaults are the public servers; environment
    ``BIGEARTHNET_S1_GLO30_URL``/``BIGEARTHNET_S1_SRTM1_URL`` override them). A tile request
    is tried ``retries`` times in all after connection errors, HTTP 429 and 5xx, with the
    library's retry policy (``retry``, a :class:`~bigearthnet_s1.retry.RetryPolicy`):
    exponential backoff from ``backoff`` s, a server's ``Retry-After`` honoured (up to 300 s).
    """

    def __init__(self, kind: str = "glo30", cache_dir: str | os.PathLike[str] | None = None, *,
                 glo30_url: str | None = None, srtm1_url: str | None = None,
                 session: requests.Session | None = None, timeout: float = 60.0, retries: int = 3,
                 backoff: float = 2.0) -> None:
        if kind not in ("glo30", "srtm1"):
            raise DemError(f"DEM kind {kind!r}: expected glo30 or srtm1")
        self.kind = kind
        self.name = kind
        self.resolution_m = 30.0
        if cache_dir is None:
            cache_dir = os.environ.get("BIGEARTHNET_S1_DEM_CACHE") or Path.home() / ".cache" / "bigearthnet-s1" / "dem"
        self.cache_dir = Path(cache_dir)
        self.glo30_url = (glo30_url or os.environ.get("BIGEARTHNET_S1_GLO30_URL") or DEFAULT_GLO30_URL).rstrip("/")
        self.srtm1_url = (srtm1_url or os.environ.get("BIGEARTHNET_S1_SRTM1_URL") or DEFAULT_SRTM1_URL).rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = RetryPolicy(max_failures=max(0, retries - 1), backoff=backoff, factor=2.0, jitter=0.0,
                                 max_retry_after=300.0)

    # naming --------------------------------------------------------------------------
    def source_for(self, lat: int, lon: int) -> str:
        """Which DEM serves the cell (south-west corner lat, lon): 'glo30' or 'srtm1'."""
        if self.kind == "srtm1" and SRTM_LAT_MIN <= lat < SRTM_LAT_MAX:
            return "srtm1"
        return "glo30"

    def tile_url(self, lat: int, lon: int) -> tuple[str, str, str]:
        """(source, tile name, URL) of a cell."""
        src = self.source_for(lat, lon)
        if src == "glo30":
            name = glo30_tile_name(lat, lon)
            return src, name, f"{self.glo30_url}/{name}/{name}.tif"
        name = srtm1_tile_name(lat, lon)
        return src, name, f"{self.srtm1_url}/{name}.SRTMGL1.hgt.zip"

    def cache_path(self, lat: int, lon: int) -> Path:
        src, name, _ = self.tile_url(lat, lon)
        return self.cache_dir / src / (f"{name}.tif" if src == "glo30" else f"{name}.SRTMGL1.hgt.zip")

    # fetching ------------------------------------------------------------------------
    def fetch_tile(self, lat: int, lon: int) -> Path | None:
        """Path of the cached tile (downloaded if needed), or None for an ocean cell (404)."""
        src, name, url = self.tile_url(lat, lon)
        path = self.cache_path(lat, lon)
        missing = path.with_name(name + ".missing")
        if path.exists():
            return path
        if missing.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)

        def attempt() -> Path | None:
            try:
                with self.session.get(url, stream=True, timeout=self.timeout) as r:
                    if r.status_code == 404:
                        atomic_write_bytes(missing, f"404 {url}\n".encode())
                        log.info("DEM tile %s absent on the server (ocean): height 0 above the geoid", name)
                        return None
                    if r.status_code != 200:
                        error = DemError(f"DEM tile {name}: HTTP {r.status_code} from {url}")
                        raise Transient.from_response(error, r) if r.status_code in RETRY_STATUSES else error
                    with atomic_path(path, suffix=".part" + path.suffix) as tmp:  # .zip: /vsizip/ needs it
                        with open(tmp, "wb") as f:
                            for chunk in r.iter_content(1 << 20):
                                f.write(chunk)
                        self._verify(tmp, src, name)
            except requests.RequestException as exc:
                raise Transient(exc) from None
            log.info("DEM tile %s downloaded from %s", name, url)
            return path

        return call(attempt, self.retry, give_up=lambda error, n: DemError(
            f"DEM tile {name}: download from {url} failed after {n + 1} tries: {error}"))

    @staticmethod
    def _gdal_path(path: Path, src: str, name: str) -> str:
        return str(path) if src == "glo30" else f"/vsizip/{path}/{name}.hgt"

    def _verify(self, tmp: Path, src: str, name: str) -> None:
        if src == "srtm1":
            try:
                with zipfile.ZipFile(tmp) as z:
                    if f"{name}.hgt" not in z.namelist():
                        raise DemError(f"DEM tile {name}: zip holds no {name}.hgt")
            except zipfile.BadZipFile as exc:
                raise DemError(f"DEM tile {name}: downloaded file is not a zip: {exc}") from exc
        try:
            with rasterio.open(self._gdal_path(tmp, src, name)) as ds:
                ds.read(1, window=((0, 1), (0, 1)))
        except rasterio.errors.RasterioIOError as exc:
            raise DemError(f"DEM tile {name}: downloaded file is not a readable raster: {exc}") from exc

    # Dem -----------------------------------------------------------------------------
    def cells_for_grid(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> list[tuple[int, int]]:
        """1x1 deg cells (south-west corners) that a grid touches (plus a 0.01 deg margin)."""
        b = _grid_boundary(transform, shape)
        tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(_crs(crs).to_wkt()), "EPSG:4326", always_xy=True)
        lon, lat = tr.transform(b[:, 0], b[:, 1])
        m = 0.01
        return tiles_for_bounds(float(np.min(lon)) - m, float(np.min(lat)) - m, float(np.max(lon)) + m, float(np.max(lat)) + m)

    def raster_dem(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> RasterDem:
        """The tiles covering a grid as one :class:`RasterDem` (ocean cells as 0 m tiles)."""
        sources = []
        for lat, lon in self.cells_for_grid(crs, transform, shape):
            src, name, _ = self.tile_url(lat, lon)
            p = self.fetch_tile(lat, lon)
            if p is None:
                sources.append(_Source(path=f"ocean:{name}", label=f"{name} (ocean)", crs=CRS.from_epsg(4326),
                                       bounds=(lon, lat, lon + 1.0, lat + 1.0), constant=0.0,
                                       resampling=Resampling.nearest))
            else:
                sources.append(_Source(path=self._gdal_path(p, src, name), label=name))
        return RasterDem([], vertical="egm96", name=f"{self.kind}[{len(sources)} tiles]", _sources=sources)

    def heights(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> NDArray[np.float32]:
        return self.raster_dem(crs, transform, shape).heights(crs, transform, shape)

    def posts(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> DemPosts:
        return self.raster_dem(crs, transform, shape).posts(crs, transform, shape)


def open_dem(spec: str | os.PathLike[str] | Dem, cache_dir: str | os.PathLike[str] | None = None, **options: Any) -> Dem:
    """A :class:`Dem` from a spec: ``"flat"``, ``"flat:<metres>"``, ``"glo30"``, ``"srtm1"`` or a
    GeoTIFF/VRT path. ``options`` go to :class:`TiledDem` (URLs, session) or :class:`RasterDem`
    (``vertical``)."""
    if isinstance(spec, Dem):
        return spec
    s = str(spec)
    if s == "flat" or s.startswith("flat:"):
        try:
            return FlatDem(float(s.split(":", 1)[1]) if ":" in s else 0.0)
        except ValueError as exc:
            raise DemError(f"DEM spec {s!r}: expected flat:<height in metres>") from exc
    if s in ("glo30", "srtm1"):
        return TiledDem(s, cache_dir, **options)
    p = Path(s)
    if not p.exists():
        raise DemError(f"DEM {s}: no such file (expected flat, glo30, srtm1 or a GeoTIFF/VRT path)")
    return RasterDem(p, **options)
