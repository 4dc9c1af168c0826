"""Range-Doppler terrain correction straight onto a target map grid (the S2 tile's 10 m grid).

For every target pixel centre: the DEM gives the height above the WGS84 ellipsoid, the point
goes to ECEF, the zero-Doppler time is solved against the interpolated orbit (azimuth time ->
GRD line), and the one-way slant range goes through the annotation's slant-range -> ground-range
polynomials (coefficients interpolated linearly in azimuth time between the annotated
polynomials, as SNAP and xarray-sentinel do) to the GRD column. The calibrated linear image is
then resampled there (bilinear by default; bicubic or nearest on request).

Conventions: radar coordinates are GRD (line, pixel) with pixel CENTRES at integer values
(line 0 at ``first_line_time``, line spacing ``azimuth_time_interval``; ground range of pixel p
is ``p * range_pixel_spacing``). Map grids are (CRS, affine transform of pixel CORNERS, shape);
results refer to pixel centres. Images are linear power (sigma0/beta0/...), float32, NaN no-data.

Speed. Solving range-Doppler for 120 Mpx is slow (sarsen does it per pixel); here it is solved
exactly only on a coarse lattice of nodes (every 64 px) at three heights per node (Chebyshev
nodes spanning the block's DEM heights). Each pixel takes its line and slant range by bilinear
interpolation between nodes and quadratic interpolation in its DEM height (both are smooth in
x, y, h), then its GRD column exactly through the srgr polynomials (their piecewise-linear
interpolation in azimuth has a kink every polynomial, 1 s, that a lattice would smooth over by
up to 0.2 px). Per block of 1024 x 1024 px the model is checked against exact solutions at
three points per lattice cell and four heights between the levels; blocks whose error exceeds
``tolerance`` (0.05 px; typically 0.007 px is reached) halve their step until it does not. The
exact solutions of all blocks go through the orbit in one vectorised batch. The per-pixel work
(DEM height, coordinate model, srgr, resampling of all bands) is a numba kernel, parallel over
rows, in two passes per row (coordinates, then sampling, so that image loads overlap).

The DEM is put once on posts spanning the target grid at about its own spacing (GDAL warp,
point bilinear), and each pixel interpolates its height bilinearly from those posts.

Masks. :func:`layover_shadow_mask` flags active layover (terrain facing the sensor steeper than
the incidence angle) and shadow (terrain facing away steeper than the elevation angle) from the
local DEM slope along range; passive layover/shadow (areas hidden by distant terrain) is not
traced. :func:`radar_window_for_grid` tells which GRD window a target grid needs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import pyproj
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.windows import Window

from bigearthnet_s1.dem import Dem, open_dem
from bigearthnet_s1.errors import GeometryError, InputError
from bigearthnet_s1.orbit import Orbit, geodetic_to_ecef

log = logging.getLogger(__name__)

__all__ = [
    "terrain_correct",
    "radar_coordinates",
    "radar_window_for_grid",
    "layover_shadow_mask",
    "RadarGeometry",
    "GeocodingStats",
    "RESAMPLING_METHODS",
]

RESAMPLING_METHODS = {"nearest": 0, "bilinear": 1, "bicubic": 2}
#: Heights (Chebyshev nodes) per lattice node of the coordinate model.
N_LEVELS = 3
BLOCK = 1024
INITIAL_STEP = 64
MIN_STEP = 4
#: layover/shadow mask values
MASK_LAYOVER = 1
MASK_SHADOW = 2
#: numba fast-math flags: FMA contraction and reassociation, but NaN/inf semantics kept
_FM = {"contract", "reassoc", "arcp", "afn"}


# --------------------------------------------------------------------------------------
# radar geometry of one GRD image (from an ImageAnnotation)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RadarGeometry:
    """What terrain correction needs from an ``ImageAnnotation`` (times in seconds since
    ``orbit.reference_time``; ranges one-way in metres)."""

    orbit: Orbit
    lines: int
    samples: int
    t0: float  # azimuth time of line 0
    dt: float  # s per line
    range_pixel_spacing: float  # m
    poly_t: NDArray[np.float64]  # (n,) azimuth times of the srgr polynomials
    poly_sr0: NDArray[np.float64]  # (n,) slant range origins
    poly_coef: NDArray[np.float64]  # (n, deg+1)
    name: str = "scene"

    @classmethod
    def from_annotation(cls, ann: Any, name: str | None = None) -> RadarGeometry:
        orbit: Orbit = ann.orbit
        polys = sorted(ann.srgr, key=lambda p: p.azimuth_time)
        if not polys:
            raise InputError(f"annotation {name or ann.polarisation}: no slant-to-ground-range polynomials")
        deg = max(len(p.coefficients) for p in polys)
        coef = np.zeros((len(polys), deg))
        for i, p in enumerate(polys):
            coef[i, : len(p.coefficients)] = p.coefficients
        t0 = float(orbit.seconds(ann.first_line_time))
        t_last = float(orbit.seconds(ann.last_line_time))
        lines = int(ann.lines)
        # line spacing: from first/last line times when consistent with the interval
        dt = float(ann.azimuth_time_interval)
        if lines > 1 and abs((t_last - t0) / (lines - 1) - dt) < 1e-6 * dt:
            dt = (t_last - t0) / (lines - 1)
        sr0 = np.array([getattr(p, "slant_range_origin", None) or p.slant_range_time * 299_792_458.0 / 2.0
                        for p in polys], dtype=np.float64)
        return cls(
            orbit=orbit, lines=lines, samples=int(ann.samples), t0=t0, dt=dt,
            range_pixel_spacing=float(ann.range_pixel_spacing),
            poly_t=np.asarray(orbit.seconds(np.array([p.azimuth_time for p in polys])), dtype=np.float64),
            poly_sr0=sr0, poly_coef=coef, name=name or f"{getattr(ann, 'polarisation', '')} annotation",
        )

    @property
    def t_last(self) -> float:
        return self.t0 + (self.lines - 1) * self.dt

    def check_orbit(self) -> None:
        """GeometryError when the state vectors do not span the scene's azimuth times."""
        self.orbit.check_span(self.t0, self.t_last, what=f"scene ({self.name})")

    @property
    def poly_line(self) -> NDArray[np.float64]:
        """Azimuth positions of the srgr polynomials in (fractional) lines."""
        return (self.poly_t - self.t0) / self.dt

    def pixel_of(self, line: NDArray[np.float64], slant_range: NDArray[np.float64]) -> NDArray[np.float64]:
        """GRD pixel (centre convention) of one-way slant range (m) at (fractional) line:
        the srgr polynomial coefficients are interpolated linearly in azimuth (clamped)."""
        line = np.asarray(line, dtype=np.float64)
        slant_range = np.asarray(slant_range, dtype=np.float64)
        pl = self.poly_line
        n = pl.size
        if n == 1:
            c = np.broadcast_to(self.poly_coef[0], line.shape + self.poly_coef.shape[1:])
            o = np.full(line.shape, self.poly_sr0[0])
        else:
            ll = np.where(np.isfinite(line), line, 0.0)
            i = np.clip(np.searchsorted(pl, ll, side="right") - 1, 0, n - 2)
            w = np.clip((ll - pl[i]) / (pl[i + 1] - pl[i]), 0.0, 1.0)
            c = self.poly_coef[i] * (1 - w)[..., None] + self.poly_coef[i + 1] * w[..., None]
            o = self.poly_sr0[i] * (1 - w) + self.poly_sr0[i + 1] * w
        x = slant_range - o
        out = np.zeros(x.shape)
        for k in range(c.shape[-1] - 1, -1, -1):  # Horner
            out = out * x + c[..., k]
        return np.where(np.isfinite(line), out / self.range_pixel_spacing, np.nan)

    def solve_range(self, lon: NDArray, lat: NDArray, h: NDArray) -> tuple[NDArray, NDArray]:
        """Exact (line, one-way slant range m) of points given by lon/lat (deg) and ellipsoidal
        height (m): zero-Doppler time against the orbit. NaN outside the state vectors."""
        xyz = geodetic_to_ecef(lon, lat, h)
        t, rng = self.orbit.zero_doppler(xyz, t_guess=0.5 * (self.t0 + self.t_last), tol=1e-8)
        return (t - self.t0) / self.dt, rng

    def solve(self, lon: NDArray, lat: NDArray, h: NDArray) -> tuple[NDArray, NDArray]:
        """Exact GRD (line, pixel) of points given by lon/lat (deg) and ellipsoidal height (m)."""
        line, rng = self.solve_range(lon, lat, h)
        return line, self.pixel_of(line, rng)


def _geometry(annotation: Any) -> RadarGeometry:
    return annotation if isinstance(annotation, RadarGeometry) else RadarGeometry.from_annotation(annotation)


# --------------------------------------------------------------------------------------
# target grid helpers
# --------------------------------------------------------------------------------------
def _crs(crs: Any) -> CRS:
    return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)


class _Grid:
    """A target grid and its lon/lat transformer."""

    def __init__(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> None:
        self.crs = _crs(crs)
        self.transform = Affine(*tuple(transform)[:6])
        self.shape = (int(shape[0]), int(shape[1]))
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise InputError(f"target grid shape {shape} is empty")
        self._tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(self.crs.to_wkt()), "EPSG:4326", always_xy=True)

    def lonlat(self, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """lon/lat of (fractional) pixel-centre coordinates (row, col: centre of pixel 0 = 0)."""
        cc, rr = np.asarray(cols, dtype=np.float64) + 0.5, np.asarray(rows, dtype=np.float64) + 0.5
        xs, ys = self.transform @ (cc, rr)  # type: ignore[operator]  # affine's hints say scalars; it broadcasts arrays
        lon, lat = self._tr.transform(xs, ys)
        return np.asarray(lon), np.asarray(lat)


def _dem_posts(n: int, k: float) -> int:
    """Number of DEM posts spanning n target pixel centres at about k pixels apart."""
    if n <= 1:
        return 1
    return min(n, max(2, math.ceil((n - 1) / k) + 1))


def _dem_grid(dem: Dem, grid: _Grid, res_hint: float | None = None) -> tuple[NDArray[np.float32], float, float]:
    """DEM heights on posts whose first/last centres sit on the target's first/last pixel
    centres (so every target pixel is interpolated, never extrapolated), spaced at about the
    DEM's own resolution (never finer than the target). Returns (heights, fy, fx): DEM post
    index per target pixel index (``u = row * fy``, ``v = col * fx``)."""
    h, w = grid.shape
    px = math.hypot(grid.transform.a, grid.transform.d)
    py = math.hypot(grid.transform.b, grid.transform.e)
    res = dem.resolution_m if res_hint is None else res_hint
    k = 1e9 if not math.isfinite(res) else max(1.0, res / max(min(px, py), 1e-9))
    hd, wd = _dem_posts(h, k), _dem_posts(w, k)
    sy = (h - 1) / (hd - 1) if hd > 1 else 1.0
    sx = (w - 1) / (wd - 1) if wd > 1 else 1.0
    dt = grid.transform @ Affine.translation(0.5 - sx / 2, 0.5 - sy / 2) @ Affine.scale(sx, sy)
    heights = np.ascontiguousarray(dem.heights(grid.crs, dt, (hd, wd)), dtype=np.float32)
    if heights.shape != (hd, wd) or not np.all(np.isfinite(heights)):
        raise GeometryError(f"DEM {dem.name} returned invalid heights for the target grid")
    return heights, (1.0 / sy if hd > 1 else 0.0), (1.0 / sx if wd > 1 else 0.0)


# --------------------------------------------------------------------------------------
# numba kernel
# --------------------------------------------------------------------------------------
@numba.njit(inline="always", cache=True)
def lerp_index(grid: NDArray, v: float) -> tuple[int, float]:
    """Linear interpolation at ``v`` in an increasing ``grid`` (>= 2 nodes): the interval
    ``k`` (0 .. n-2) and the weight ``w`` of node ``k + 1``, both clamped at the ends (no
    extrapolation). Inlined into its numba callers, whose fastmath flags then apply; numba's
    cache checks only the caller's file, so after changing this, clear the callers' caches
    (``__pycache__/*.nbi``, ``*.nbc`` of geocoding and simulate)."""
    n = grid.size
    k = int(np.searchsorted(grid, v, side="right")) - 1
    if k < 0:
        k = 0
    if k > n - 2:
        k = n - 2
    w = (v - grid[k]) / (grid[k + 1] - grid[k])
    if w < 0.0:
        w = 0.0
    if w > 1.0:
        w = 1.0
    return k, w


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _srgr_pixel(line: float, rng: float, poly_line: NDArray, poly_sr0: NDArray, poly_coef: NDArray, rps: float) -> float:
    """GRD pixel of one-way slant range ``rng`` (m) at (fractional) ``line``: the annotated
    slant-to-ground polynomials, coefficients interpolated linearly in azimuth (clamped)."""
    n = poly_line.shape[0]
    i = 0
    w = 0.0
    if n > 1:
        i, w = lerp_index(poly_line, line)
    i1 = i + 1 if n > 1 else i
    x = rng - (poly_sr0[i] * (1 - w) + poly_sr0[i1] * w)
    acc = 0.0
    for k in range(poly_coef.shape[1] - 1, -1, -1):
        acc = acc * x + (poly_coef[i, k] * (1 - w) + poly_coef[i1, k] * w)
    return acc / rps


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _cubic_w(t: float, a: float = -0.5) -> tuple[float, float, float, float]:
    """Keys cubic convolution weights for offsets -1, 0, 1, 2 at fraction t."""
    t2 = t * t
    t3 = t2 * t
    w0 = a * (t3 - 2 * t2 + t)
    w1 = (a + 2) * t3 - (a + 3) * t2 + 1
    w2 = -(a + 2) * t3 + (2 * a + 3) * t2 - a * t
    w3 = a * (t2 - t3)
    return w0, w1, w2, w3


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _bilinear(img: NDArray, k: int, li: float, pj: float) -> float:
    """Bilinear sample of band k at (li, pj) (pixel centres at integers); see the module doc."""
    nh, nw = img.shape[1], img.shape[2]
    i = int(math.floor(li))
    j = int(math.floor(pj))
    fi = li - i
    fj = pj - j
    if i >= 0 and j >= 0 and i + 1 < nh and j + 1 < nw:
        v00 = img[k, i, j]
        v01 = img[k, i, j + 1]
        v10 = img[k, i + 1, j]
        v11 = img[k, i + 1, j + 1]
        v = (v00 * (1 - fj) + v01 * fj) * (1 - fi) + (v10 * (1 - fj) + v11 * fj) * fi
        if math.isfinite(v):
            return v
    # slow path (edges, NaN neighbours): the nearest sample decides validity; other NaN neighbours are left out (weights renormalised)
    ni = min(max(int(math.floor(li + 0.5)), 0), nh - 1)
    nj = min(max(int(math.floor(pj + 0.5)), 0), nw - 1)
    if not math.isfinite(img[k, ni, nj]):
        return math.nan
    acc = 0.0
    wsum = 0.0
    for di in range(2):
        ii = min(max(i + di, 0), nh - 1)
        wi = fi if di == 1 else 1.0 - fi
        for dj in range(2):
            jj = min(max(j + dj, 0), nw - 1)
            wj = fj if dj == 1 else 1.0 - fj
            v = img[k, ii, jj]
            if math.isfinite(v):
                acc += wi * wj * v
                wsum += wi * wj
    return acc / wsum if wsum > 0 else math.nan


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _sample(img: NDArray, k: int, li: float, pj: float, method: int) -> float:
    """Sample band k of (bands, lines, samples) ``img`` (indexed in place: a per-pixel
    ``img[k]`` view would cost a reference count per pixel)."""
    nh, nw = img.shape[1], img.shape[2]
    if method == 0:
        i = min(max(int(math.floor(li + 0.5)), 0), nh - 1)
        j = min(max(int(math.floor(pj + 0.5)), 0), nw - 1)
        return img[k, i, j]
    if method == 1:
        return _bilinear(img, k, li, pj)
    # bicubic (Keys, a = -0.5); any NaN among the 16 samples -> bilinear; negatives -> 0
    i = int(math.floor(li))
    j = int(math.floor(pj))
    wi0, wi1, wi2, wi3 = _cubic_w(li - i)
    wj0, wj1, wj2, wj3 = _cubic_w(pj - j)
    acc = 0.0
    for di in range(4):
        ii = min(max(i + di - 1, 0), nh - 1)
        wi = wi0 if di == 0 else (wi1 if di == 1 else (wi2 if di == 2 else wi3))
        row = 0.0
        for dj in range(4):
            jj = min(max(j + dj - 1, 0), nw - 1)
            wj = wj0 if dj == 0 else (wj1 if dj == 1 else (wj2 if dj == 2 else wj3))
            row += wj * img[k, ii, jj]
        acc += wi * row
    if not math.isfinite(acc):
        return _bilinear(img, k, li, pj)
    return acc if acc > 0.0 else 0.0


@numba.njit(parallel=True, cache=True, fastmath=_FM)
def _block_kernel(
    out: NDArray,  # (nb, H, W) float32 target arrays (whole grid)
    images: NDArray,  # (nb, wh, ww) float32 radar window
    win_row: float, win_col: float, lines: int, samples: int,
    dem: NDArray, fy: float, fx: float,
    coef_line: NDArray, coef_rng: NDArray,  # (nr, nc, N_LEVELS): line and slant range - rng_ref
    step: int, hc: float, hs: float, rng_ref: float,
    poly_line: NDArray, poly_sr0: NDArray, poly_coef: NDArray, rps: float,
    r0: int, c0: int, bh: int, bw: int, method: int, coords: bool,
) -> None:
    nb = out.shape[0]
    nr = coef_line.shape[0]
    nc = coef_line.shape[1]
    nl = coef_line.shape[2]
    wh = images.shape[1]
    ww = images.shape[2]
    hd, wd = dem.shape
    # DEM column indices/weights are the same for every row of the block
    dj = np.empty(bw, dtype=np.int64)
    dw = np.empty(bw)
    for cc in range(bw):
        v = (c0 + cc) * fx
        v = min(max(v, 0.0), wd - 1.0)
        j = min(int(v), wd - 2) if wd > 1 else 0
        dj[cc] = j
        dw[cc] = v - j
    for rr in numba.prange(bh):
        r = r0 + rr
        fa = rr / step
        a = min(int(fa), nr - 2)
        wa = fa - a
        # lattice coefficients interpolated to this row once: (nc, nl) for line and range
        row_l = np.empty((nc, nl))
        row_r = np.empty((nc, nl))
        buf_l = np.empty(bw)
        buf_p = np.empty(bw)
        for b in range(nc):
            for q in range(nl):
                row_l[b, q] = coef_line[a, b, q] * (1 - wa) + coef_line[a + 1, b, q] * wa
                row_r[b, q] = coef_rng[a, b, q] * (1 - wa) + coef_rng[a + 1, b, q] * wa
        u = r * fy
        u = min(max(u, 0.0), hd - 1.0)
        di = min(int(u), hd - 2) if hd > 1 else 0
        du = u - di
        di1 = min(di + 1, hd - 1)
        for cc in range(bw):
            c = c0 + cc
            fb = cc / step
            b = min(int(fb), nc - 2)
            wb = fb - b
            j = dj[cc]
            j1 = min(j + 1, wd - 1)
            wv = dw[cc]
            hgt = (dem[di, j] * (1 - wv) + dem[di, j1] * wv) * (1 - du) + (dem[di1, j] * (1 - wv) + dem[di1, j1] * wv) * du
            s = (hgt - hc) / hs
            line = 0.0
            rng = 0.0
            for q in range(nl - 1, -1, -1):
                line = line * s + (row_l[b, q] * (1 - wb) + row_l[b + 1, q] * wb)
                rng = rng * s + (row_r[b, q] * (1 - wb) + row_r[b + 1, q] * wb)
            rng += rng_ref
            pix = _srgr_pixel(line, rng, poly_line, poly_sr0, poly_coef, rps)
            if coords:
                out[0, r, c] = line
                out[1, r, c] = pix
                continue
            li = line - win_row
            pj = pix - win_col
            if not (line >= -0.5 and line <= lines - 0.5 and pix >= -0.5 and pix <= samples - 0.5
                    and li >= -0.5 and li <= wh - 0.5 and pj >= -0.5 and pj <= ww - 0.5):
                li = math.nan  # outside the scene or the window: no data
            buf_l[cc] = li
            buf_p[cc] = pj
        if coords:
            continue
        # second pass over the row: short independent iterations let the CPU overlap the
        # image loads (in the fused loop each load waited for the long coordinate chain)
        for k in range(nb):
            for cc in range(bw):
                li = buf_l[cc]
                if li != li:
                    out[k, r, c0 + cc] = math.nan
                else:
                    out[k, r, c0 + cc] = _sample(images, k, li, buf_p[cc], method)


# --------------------------------------------------------------------------------------
# coarse model per block
# --------------------------------------------------------------------------------------
@dataclass
class GeocodingStats:
    """What the coordinate model did: blocks processed/skipped, steps used, worst check error."""

    blocks: int = 0
    skipped: int = 0
    steps: dict[int, int] = field(default_factory=dict)
    max_error_px: float = 0.0
    exact_points: int = 0
    tolerance_px: float = 0.05


def _cheb(n: int) -> NDArray[np.float64]:
    return np.cos(np.pi * (np.arange(n) + 0.5) / n)[::-1]


_VANDER_INV: dict[int, NDArray[np.float64]] = {}


def _fit_levels(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """(..., N_LEVELS) values at Chebyshev heights -> monomial coefficients in s (ascending)."""
    n = values.shape[-1]
    if n not in _VANDER_INV:
        _VANDER_INV[n] = np.linalg.inv(np.vander(_cheb(n), n, increasing=True)).astype(np.float64)
    return values @ _VANDER_INV[n].T


def _eval_model(coef: NDArray, rr: NDArray, cc: NDArray, step: int, s: NDArray) -> NDArray:
    """numpy twin of the kernel's model (for the error check): rr/cc relative to the block."""
    nr, nc, _ = coef.shape
    fa = rr / step
    fb = cc / step
    a = np.minimum(fa.astype(np.intp), nr - 2)
    b = np.minimum(fb.astype(np.intp), nc - 2)
    wa = (fa - a)[..., None]
    wb = (fb - b)[..., None]
    cq = (coef[a, b] * (1 - wb) + coef[a, b + 1] * wb) * (1 - wa) + (coef[a + 1, b] * (1 - wb) + coef[a + 1, b + 1] * wb) * wa
    out = np.zeros(np.shape(rr))
    for q in range(coef.shape[-1] - 1, -1, -1):
        out = out * s + cq[..., q]
    return out


class _BlockModel:
    """Line and slant range of one block: bilinear over a lattice, polynomial in height."""

    def __init__(self, coef_line: NDArray, coef_rng: NDArray, rng_ref: float, step: int, hc: float, hs: float) -> None:
        self.coef_line = np.ascontiguousarray(coef_line)
        self.coef_rng = np.ascontiguousarray(coef_rng)
        self.rng_ref, self.step, self.hc, self.hs = rng_ref, step, hc, hs

    def radar_bounds(self, geo: RadarGeometry) -> tuple[float, float, float, float]:
        """(line min, line max, pixel min, pixel max) over the nodes, heights hmin..hmax."""
        s = np.array([-1.0, 1.0] + list(_cheb(N_LEVELS)))
        li = np.polynomial.polynomial.polyval(s, self.coef_line.reshape(-1, N_LEVELS).T)
        rg = np.polynomial.polynomial.polyval(s, self.coef_rng.reshape(-1, N_LEVELS).T) + self.rng_ref
        px = geo.pixel_of(li, rg)
        if not (np.isfinite(li).any() and np.isfinite(px).any()):
            return (math.nan,) * 4
        return float(np.nanmin(li)), float(np.nanmax(li)), float(np.nanmin(px)), float(np.nanmax(px))


#: quasi-random in-cell offsets (fractions of a step) of the error check points, besides centres
_CHECK_OFFSETS = np.array([[0.5, 0.5], [0.19, 0.73], [0.81, 0.31]])
_CHECK_LEVELS = np.array([-1.0, -0.45, 0.45, 1.0])


@dataclass
class _Block:
    """One block of the target grid and its coordinate model."""

    r0: int
    c0: int
    bh: int
    bw: int
    hmin: float
    hmax: float
    model: _BlockModel | None = None

    @property
    def hc(self) -> float:
        return 0.5 * (self.hmin + self.hmax)

    @property
    def hs(self) -> float:
        return max(0.5 * (self.hmax - self.hmin), 1.0)


def _lattice_points(b: _Block, step: int) -> tuple[NDArray, NDArray, NDArray, tuple[int, int]]:
    """Target (row, col) of the block's lattice nodes at each level, and the lattice shape."""
    nr = max(2, math.ceil((b.bh - 1) / step) + 1)
    nc = max(2, math.ceil((b.bw - 1) / step) + 1)
    rows = b.r0 + np.arange(nr, dtype=np.float64) * step
    cols = b.c0 + np.arange(nc, dtype=np.float64) * step
    R = np.broadcast_to(rows[:, None, None], (nr, nc, N_LEVELS))
    C = np.broadcast_to(cols[None, :, None], (nr, nc, N_LEVELS))
    H = np.broadcast_to(b.hc + b.hs * _cheb(N_LEVELS), (nr, nc, N_LEVELS))
    return R, C, H, (nr, nc)


def _check_points(b: _Block, step: int, shape: tuple[int, int]) -> tuple[NDArray, NDArray, NDArray]:
    """(row, col relative to the block; normalised height) of the error check points: a few
    points per lattice cell, at heights between the Chebyshev levels."""
    nr, nc = shape
    k = len(_CHECK_OFFSETS)
    ar = np.arange(nr - 1)[:, None, None] * step + _CHECK_OFFSETS[None, None, :, 0] * step
    ac = np.arange(nc - 1)[None, :, None] * step + _CHECK_OFFSETS[None, None, :, 1] * step
    RR = np.minimum(np.broadcast_to(ar, (nr - 1, nc - 1, k)), b.bh - 1)[..., None]
    CC = np.minimum(np.broadcast_to(ac, (nr - 1, nc - 1, k)), b.bw - 1)[..., None]
    SS = np.broadcast_to(_CHECK_LEVELS, RR.shape[:-1] + (_CHECK_LEVELS.size,))
    return np.broadcast_to(RR, SS.shape), np.broadcast_to(CC, SS.shape), SS


def _solve_batches(geo: RadarGeometry, grid: _Grid, batches: list[tuple[NDArray, NDArray, NDArray]],
                   stats: GeocodingStats) -> list[tuple[NDArray, NDArray]]:
    """Exact (line, slant range) of many point sets (target row, col, height) in one call:
    the Newton iteration is vectorised over all of them (per-block calls cost more in
    numpy overhead than in arithmetic)."""
    if not batches:
        return []
    sizes = [r.size for r, _, _ in batches]
    rows = np.concatenate([r.ravel() for r, _, _ in batches])
    cols = np.concatenate([c.ravel() for _, c, _ in batches])
    hs = np.concatenate([np.asarray(h, dtype=np.float64).ravel() for _, _, h in batches])
    lon, lat = grid.lonlat(rows, cols)
    line, rng = geo.solve_range(lon, lat, hs)
    stats.exact_points += line.size
    out = []
    i = 0
    for (r, _, _), n in zip(batches, sizes, strict=True):
        out.append((line[i:i + n].reshape(r.shape), rng[i:i + n].reshape(r.shape)))
        i += n
    return out


def _fit_model(b: _Block, line: NDArray, rng: NDArray, step: int) -> _BlockModel:
    rng_ref = float(np.nanmean(rng)) if np.isfinite(rng).any() else 0.0
    return _BlockModel(_fit_levels(line), _fit_levels(rng - rng_ref), rng_ref, step, b.hc, b.hs)


def _models(geo: RadarGeometry, grid: _Grid, blocks: list[_Block], step: int | None, stats: GeocodingStats,
            tolerance: float | None) -> list[float]:
    """Fit every block's model at ``step`` (None: one cell per block) in one batch; with a
    ``tolerance``, also measure each model's error at its check points (in one batch).
    Returns the worst check error per block (0 without a check)."""
    steps = [step if step is not None else max(b.bh, b.bw) for b in blocks]
    lat_pts = [_lattice_points(b, st) for b, st in zip(blocks, steps, strict=True)]
    solved = _solve_batches(geo, grid, [(R, C, H) for R, C, H, _ in lat_pts], stats)
    for b, st, (line, rng) in zip(blocks, steps, solved, strict=True):
        b.model = _fit_model(b, line, rng, st)
    if tolerance is None:
        return [0.0] * len(blocks)
    checks = [_check_points(b, st, shape) for b, st, (_, _, _, shape) in zip(blocks, steps, lat_pts, strict=True)]
    exact = _solve_batches(geo, grid, [(b.r0 + RR, b.c0 + CC, b.hc + b.hs * SS)
                                       for b, (RR, CC, SS) in zip(blocks, checks, strict=True)], stats)
    worst = []
    for b, st, (RR, CC, SS), (le, re) in zip(blocks, steps, checks, exact, strict=True):
        m = b.model
        assert m is not None
        lm = _eval_model(m.coef_line, RR, CC, st, SS)
        rm = _eval_model(m.coef_rng, RR, CC, st, SS) + m.rng_ref
        err = np.hypot(lm - le, geo.pixel_of(lm, rm) - geo.pixel_of(le, re))
        err = err[np.isfinite(err)]
        worst.append(float(err.max()) if err.size else 0.0)
    return worst


def _checked_models(geo: RadarGeometry, grid: _Grid, blocks: list[_Block], stats: GeocodingStats,
                    tolerance: float) -> None:
    """Models at ``INITIAL_STEP``, checked; blocks over ``tolerance`` halve their step until
    they are within it (or reach ``MIN_STEP``, with a warning).

    Line and slant range are smooth in (x, y, h) and are what is interpolated; the GRD pixel
    goes through the srgr polynomials per pixel, whose piecewise-linear interpolation in
    azimuth has kinks every polynomial (1 s) that no lattice interpolation would follow.
    """
    todo = blocks
    step = INITIAL_STEP
    while todo:
        worst = _models(geo, grid, todo, step, stats, tolerance)
        again = []
        for b, e in zip(todo, worst, strict=True):
            if e <= tolerance or step <= MIN_STEP:
                if e > tolerance:
                    log.warning("%s: coordinate model error %.3f px > %.3f px at the minimum step %d (block %d,%d)",
                                geo.name, e, tolerance, step, b.r0, b.c0)
                stats.max_error_px = max(stats.max_error_px, e)
                stats.steps[step] = stats.steps.get(step, 0) + 1
            else:
                again.append(b)
        todo = again
        step //= 2


def _blocks(shape: tuple[int, int], block: int) -> list[tuple[int, int, int, int]]:
    h, w = shape
    return [(r, c, min(block, h - r), min(block, w - c)) for r in range(0, h, block) for c in range(0, w, block)]


def _block_height_range(dem: NDArray, fy: float, fx: float, r0: int, c0: int, bh: int, bw: int) -> tuple[float, float]:
    hd, wd = dem.shape
    i0 = max(int(math.floor(r0 * fy)), 0)
    i1 = min(int(math.ceil((r0 + bh - 1) * fy)) + 1, hd)
    j0 = max(int(math.floor(c0 * fx)), 0)
    j1 = min(int(math.ceil((c0 + bw - 1) * fx)) + 1, wd)
    sub = dem[i0:i1, j0:j1]
    return float(sub.min()), float(sub.max())


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def _run(
    geo: RadarGeometry, dem: Dem, grid: _Grid, images: NDArray | None, window: Window | None,
    method: int, tolerance: float, stats: GeocodingStats, dem_grid: tuple | None = None,
) -> NDArray[np.float32]:
    geo.check_orbit()
    heights, fy, fx = dem_grid if dem_grid is not None else _dem_grid(dem, grid)
    h, w = grid.shape
    coords = images is None
    imgs: NDArray
    if coords:
        out = np.full((2, h, w), np.nan, dtype=np.float32)
        imgs = np.zeros((1, 1, 1), dtype=np.float32)
        wr = wc = 0.0
        wh, ww = geo.lines, geo.samples
    else:
        assert window is not None and images is not None
        imgs = images
        # every pixel of a processed block is written by the kernel (NaN where no data);
        # skipped blocks are filled below: no separate pass over the (large) output
        out = np.empty((imgs.shape[0], h, w), dtype=np.float32)
        wr, wc = float(window.row_off), float(window.col_off)
        wh, ww = imgs.shape[1], imgs.shape[2]
    poly_line = np.ascontiguousarray(geo.poly_line)
    blocks = [_Block(r0, c0, bh, bw, *_block_height_range(heights, fy, fx, r0, c0, bh, bw))
              for r0, c0, bh, bw in _blocks(grid.shape, BLOCK)]
    # a cheap unchecked model first (one lattice cell per block): skip blocks far outside
    # the window/scene
    _models(geo, grid, blocks, None, stats, None)
    lo_l, hi_l = max(wr, 0.0), min(wr + wh, geo.lines)
    lo_p, hi_p = max(wc, 0.0), min(wc + ww, geo.samples)
    active = []
    for b in blocks:
        assert b.model is not None
        lmin, lmax, pmin, pmax = b.model.radar_bounds(geo)
        margin = 4.0 + 0.01 * (lmax - lmin + pmax - pmin)  # the rough model's own error bound
        outside = not (math.isfinite(lmin) and math.isfinite(pmin)) or (
            lmax + margin < lo_l - 0.5 or lmin - margin > hi_l - 0.5 or pmax + margin < lo_p - 0.5
            or pmin - margin > hi_p - 0.5)
        if outside and not (coords and math.isfinite(lmin)):  # coordinates are wanted off the scene too
            stats.skipped += 1
            out[:, b.r0:b.r0 + b.bh, b.c0:b.c0 + b.bw] = np.nan
        else:
            active.append(b)
    touched = bool(active)
    _checked_models(geo, grid, active, stats, tolerance)
    for b in active:
        m = b.model
        assert m is not None
        stats.blocks += 1
        _block_kernel(out, imgs, wr, wc, geo.lines, geo.samples, heights, fy, fx,
                      m.coef_line, m.coef_rng, m.step, m.hc, m.hs, m.rng_ref,
                      poly_line, geo.poly_sr0, geo.poly_coef, geo.range_pixel_spacing,
                      b.r0, b.c0, b.bh, b.bw, method, coords)
    if not touched:
        raise GeometryError(
            f"{geo.name}: the target grid ({grid.crs}, origin {grid.transform.c:.1f}, {grid.transform.f:.1f}, "
            f"shape {grid.shape}) does not overlap the scene/window"
        )
    return out


def terrain_correct(
    image_linear: NDArray,
    window: Window,
    annotation: Any,
    dem: Dem | str,
    *,
    crs: Any,
    transform: Affine,
    shape: tuple[int, int],
    resampling: str = "bilinear",
    tolerance: float = 0.05,
    stats: GeocodingStats | None = None,
) -> NDArray[np.float32]:
    """Terrain-correct a calibrated linear GRD image onto a map grid.

    ``image_linear``: (lines, samples) or (bands, lines, samples) linear power, NaN no-data,
    covering ``window`` (rasterio Window in GRD line/pixel of ``annotation``). ``dem``: a
    :class:`~bigearthnet_s1.dem.Dem` or an ``open_dem`` spec. Returns float32 of ``shape``
    (or (bands,) + shape) on the grid's pixel centres: NaN where the grid falls outside the
    scene or the window, or on no-data. Raises GeometryError when the grid does not touch the
    scene/window or the orbit does not span the scene; DemError from the DEM.
    """
    if resampling not in RESAMPLING_METHODS:
        raise InputError(f"resampling {resampling!r}: expected one of {sorted(RESAMPLING_METHODS)}")
    geo = _geometry(annotation)
    img = np.asarray(image_linear)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[None]
    if img.ndim != 3:
        raise InputError(f"terrain_correct: image must be 2-D or 3-D, got shape {img.shape}")
    win = Window(*window) if not isinstance(window, Window) else window
    if (img.shape[1], img.shape[2]) != (int(win.height), int(win.width)):
        raise InputError(f"terrain_correct: image shape {img.shape[1:]} does not match window {win}")
    img = np.ascontiguousarray(img, dtype=np.float32)
    grid = _Grid(crs, transform, shape)
    st = stats if stats is not None else GeocodingStats(tolerance_px=tolerance)
    out = _run(geo, open_dem(dem), grid, img, win, RESAMPLING_METHODS[resampling], tolerance, st)
    return out[0] if squeeze else out


def radar_coordinates(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int],
    tolerance: float = 0.05, stats: GeocodingStats | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(line, pixel) GRD coordinates (pixel centres, float32) of every target pixel centre."""
    geo = _geometry(annotation)
    grid = _Grid(crs, transform, shape)
    st = stats if stats is not None else GeocodingStats(tolerance_px=tolerance)
    out = _run(geo, open_dem(dem), grid, None, None, 0, tolerance, st)
    return out[0], out[1]


def radar_window_for_grid(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int], margin: int = 16,
) -> Window | None:
    """The GRD window (rasterio Window, whole pixels, clipped to the image) that a target grid
    needs, grown by ``margin`` pixels on each side (room for resampling and speckle filters);
    None when the grid does not touch the scene."""
    geo = _geometry(annotation)
    geo.check_orbit()
    dem_ = open_dem(dem)
    grid = _Grid(crs, transform, shape)
    h, w = grid.shape
    heights, _, _ = _dem_grid(dem_, grid, res_hint=max(dem_.resolution_m, 90.0) if math.isfinite(dem_.resolution_m) else None)
    hmin, hmax = float(heights.min()), float(heights.max())
    pad = 0.1 * (hmax - hmin) + 10.0 if hmax > hmin else 0.0
    hmin, hmax = hmin - pad, hmax + pad
    # boundary (dense) and interior (coarse) pixel centres at both height extremes
    n = 65
    t = np.linspace(0.0, 1.0, n)
    br = np.concatenate([np.zeros(n), t * (h - 1), np.full(n, h - 1.0), (1 - t) * (h - 1)])
    bc = np.concatenate([t * (w - 1), np.full(n, w - 1.0), (1 - t) * (w - 1), np.zeros(n)])
    ir, ic = np.meshgrid(np.linspace(0, h - 1, 9), np.linspace(0, w - 1, 9), indexing="ij")
    rr = np.concatenate([br, ir.ravel()])
    cc = np.concatenate([bc, ic.ravel()])
    lon, lat = grid.lonlat(rr, cc)
    lines, pixels = [], []
    for hh in (hmin, hmax):
        li, pi = geo.solve(lon, lat, np.full(lon.shape, hh))
        lines.append(li)
        pixels.append(pi)
    li = np.concatenate(lines)
    pi = np.concatenate(pixels)
    ok = np.isfinite(li) & np.isfinite(pi)
    if not ok.any():
        return None
    # the lattice is dense enough that the true extremes lie within a pixel of the sampled ones
    l0 = math.floor(li[ok].min()) - margin - 1
    l1 = math.ceil(li[ok].max()) + margin + 2
    p0 = math.floor(pi[ok].min()) - margin - 1
    p1 = math.ceil(pi[ok].max()) + margin + 2
    l0, l1 = max(l0, 0), min(l1, geo.lines)
    p0, p1 = max(p0, 0), min(p1, geo.samples)
    if l1 <= l0 or p1 <= p0:
        return None
    return Window(p0, l0, p1 - p0, l1 - l0)


def layover_shadow_mask(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int], step: int = 64,
) -> NDArray[np.uint8]:
    """Active layover (1) and shadow (2) on the target grid (0 elsewhere), from the local DEM
    slope along the range direction (see the module doc; no ray tracing of passive areas).

    With slant range R(x, y, h): horizontal gradient g, height derivative R_h < 0 and terrain
    slope s along g: layover where |g| + R_h s < 0 (slope steeper than the incidence angle,
    facing the sensor); shadow where s < R_h / |g| (slope facing away steeper than the
    elevation angle). Evaluated at the DEM's spacing, nearest-upsampled to the grid.
    """
    geo = _geometry(annotation)
    geo.check_orbit()
    dem_ = open_dem(dem)
    grid = _Grid(crs, transform, shape)
    heights, fy, fx = _dem_grid(dem_, grid)
    hd, wd = heights.shape
    h, w = grid.shape
    # derivatives of the GRD pixel (monotone in R) on a coarse lattice of the DEM grid
    sy, sx = max(1, int(step * fy)), max(1, int(step * fx))
    ri = np.unique(np.r_[np.arange(0, hd, sy), hd - 1]).astype(np.float64)
    ci = np.unique(np.r_[np.arange(0, wd, sx), wd - 1]).astype(np.float64)
    R, C = np.meshgrid(ri, ci, indexing="ij")
    tr_rows = R / fy if fy > 0 else np.zeros_like(R)  # target pixel coordinates of the DEM posts
    tr_cols = C / fx if fx > 0 else np.zeros_like(C)
    eps_px = 1.0
    hm = float(np.mean(heights))
    lon, lat = grid.lonlat(tr_rows, tr_cols)
    lon_x, lat_x = grid.lonlat(tr_rows, tr_cols + eps_px)
    lon_y, lat_y = grid.lonlat(tr_rows + eps_px, tr_cols)
    _, p0 = geo.solve(lon, lat, np.full(lon.shape, hm))
    _, px_ = geo.solve(lon_x, lat_x, np.full(lon.shape, hm))
    _, py_ = geo.solve(lon_y, lat_y, np.full(lon.shape, hm))
    _, ph = geo.solve(lon, lat, np.full(lon.shape, hm + 10.0))
    # per metre: map units along columns/rows of the target grid
    dx = math.hypot(grid.transform.a, grid.transform.d) * eps_px
    dy = math.hypot(grid.transform.b, grid.transform.e) * eps_px
    gx = (px_ - p0) / dx  # d pixel / d (east-ish, along columns)
    gy = (py_ - p0) / dy  # d pixel / d (along rows, i.e. southward for north-up grids)
    gh = (ph - p0) / 10.0

    def up(a: NDArray) -> NDArray:
        from scipy.interpolate import RegularGridInterpolator

        f = RegularGridInterpolator((ri, ci), a, bounds_error=False, fill_value=None)
        rr, cc = np.meshgrid(np.arange(hd, dtype=np.float64), np.arange(wd, dtype=np.float64), indexing="ij")
        return f(np.stack([rr, cc], axis=-1))

    gx, gy, gh = up(gx), up(gy), up(gh)
    # DEM slope along columns/rows (metres per metre)
    if hd < 2 or wd < 2:
        return np.zeros((h, w), dtype=np.uint8)
    cell_x = dx / eps_px / fx  # metres between DEM posts
    cell_y = dy / eps_px / fy
    dzr, dzc = np.gradient(heights.astype(np.float64), cell_y, cell_x)
    gnorm = np.hypot(gx, gy)
    s = (dzc * gx + dzr * gy) / np.maximum(gnorm, 1e-12)
    mask_d = np.zeros((hd, wd), dtype=np.uint8)
    mask_d[gnorm + gh * s < 0] = MASK_LAYOVER
    mask_d[s < gh / np.maximum(gnorm, 1e-12)] = MASK_SHADOW
    rows = np.minimum(np.rint(np.arange(h) * fy).astype(np.intp), hd - 1)
    cols = np.minimum(np.rint(np.arange(w) * fx).astype(np.intp), wd - 1)
    return mask_d[rows[:, None], cols[None, :]]
