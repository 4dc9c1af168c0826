"""Range-Doppler terrain correction straight onto a target map grid (the S2 tile's 10 m grid).

For every target pixel centre: its height is the DEM's bilinear value there (sampled once,
between the DEM's own posts; geoid added at the posts), the point goes to ECEF, the
zero-Doppler time and slant range are solved against the interpolated orbit, and a
*geometry convention* (:mod:`bigearthnet_s1.radar_geometry`: ``esa``, ``snap``, ``sarsen``)
turns them into GRD (line, pixel). The calibrated linear image is then resampled there
(bilinear by default; bicubic or nearest on request).

Range-Doppler is solved exactly only on a coarse lattice of nodes per block of the grid
(:mod:`bigearthnet_s1.coordinate_model`); each pixel takes its line and slant range from that
model and its GRD column exactly through the srgr polynomials. The per-pixel work (DEM
position and height, coordinate model, srgr, resampling of all bands) is a numba kernel,
parallel over rows; pixels next to a polynomial block boundary are solved exactly.

Conventions: radar coordinates are GRD (line, pixel) with pixel CENTRES at integer values
(line 0 at ``first_line_time``, line spacing ``azimuth_time_interval``; ground range of pixel p
is ``p * range_pixel_spacing``). Map grids are (CRS, affine transform of pixel CORNERS, shape), as :class:`~bigearthnet_s1.grid.MapGrid`;
results refer to pixel centres. Images are linear power (sigma0/beta0/...), float32, NaN no-data.
Slant ranges are one-way metres, heights metres above the WGS84 ellipsoid.

Heights are sampled once: each pixel's position in the DEM's own post lattice is interpolated
bilinearly between lattice nodes (exact at the nodes through PROJ; the map projection bends
by < 1 cm over a lattice cell) and its height is the bilinear value of the four posts around
it (:class:`~bigearthnet_s1.dem.DemPosts`).

:func:`radar_window_for_grid` tells which GRD window a target grid needs; the layover and
shadow flags of a grid are :mod:`bigearthnet_s1.layover`'s, from :func:`coordinates_on_grid`.
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

import numba
import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.windows import Window

from bigearthnet_s1.coordinate_model import (
    BLOCK,
    Block,
    GeocodingStats,
    block_height_ranges,
    blocks_of,
    checked_models,
    fit_models,
    post_index,
)
from bigearthnet_s1.dem import Dem, DemPosts, open_dem
from bigearthnet_s1.errors import GeometryError, InputError
from bigearthnet_s1.grid import MapGrid
from bigearthnet_s1.radar_geometry import CONVENTIONS, DEFAULT_CONVENTION, RadarGeometry, as_geometry

log = logging.getLogger(__name__)

# GeocodingStats and the conventions are part of this API (``stats=``, ``convention=``)
__all__ = [
    "terrain_correct",
    "radar_coordinates",
    "radar_window_for_grid",
    "coordinates_on_grid",
    "lerp_index",
    "GeocodingStats",
    "RESAMPLING_METHODS",
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "FASTMATH",
]

RESAMPLING_METHODS = {"nearest": 0, "bilinear": 1, "bicubic": 2}
#: numba fast-math flags: FMA contraction and reassociation, but NaN/inf semantics kept
FASTMATH = {"contract", "reassoc", "arcp", "afn"}


# --------------------------------------------------------------------------------------
# target grid helpers
# --------------------------------------------------------------------------------------
def _posts(dem: Dem, grid: MapGrid) -> DemPosts:
    """The DEM's posts under ``grid`` (heights sampled once per post, geoid added)."""
    return dem.posts(grid.crs, grid.transform, grid.shape)


def _dem_posts(n: int, k: float) -> int:
    """Number of DEM posts spanning n target pixel centres at about k pixels apart."""
    if n <= 1:
        return 1
    return min(n, max(2, math.ceil((n - 1) / k) + 1))


def _dem_grid(dem: Dem, grid: MapGrid, res_hint: float | None = None) -> tuple[NDArray[np.float32], float, float]:
    """DEM heights on posts whose first/last centres sit on the target's first/last pixel
    centres, spaced at about ``res_hint`` (default: the DEM's resolution): a coarse height
    field for finding radar windows (terrain correction itself samples the DEM's own posts).
    Returns (heights, fy, fx): DEM post index per target pixel index."""
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
# The kernels take their arrays and scalars in three typed bundles (numba compiles a
# NamedTuple of arrays and scalars as one heterogeneous tuple argument).


class RangeModel(NamedTuple):
    """How a (line, one-way slant range) becomes a GRD pixel: a RadarGeometry's polynomials
    (``conv``: 0 esa, 1 sarsen, 2 snap; ``rps``: range pixel spacing, m)."""

    conv: int
    poly_line: NDArray  # (n,) line of each polynomial
    poly_sr0: NDArray
    poly_coef: NDArray
    grsr_gr0: NDArray
    grsr_coef: NDArray
    inv_sr0: NDArray
    inv_scale: NDArray
    inv_coef: NDArray
    rps: float


class Lattice(NamedTuple):
    """One block's coordinate model (``coordinate_model.BlockModel``): DEM post (row, col) and
    (line, slant range - rng_ref) polynomials in the height at the lattice nodes."""

    post_u: NDArray  # (nr, nc)
    post_v: NDArray  # (nr, nc)
    coef_line: NDArray  # (nr, nc, N_LEVELS)
    coef_rng: NDArray  # (nr, nc, N_LEVELS)
    step: int  # lattice spacing, target pixels
    hc: float  # height of s = 0, m
    hs: float  # height scale: s = (h - hc) / hs
    rng_ref: float  # m


class Target(NamedTuple):
    """What is written where: the output, the radar window resampled (image mode), the DEM
    posts, and the scene's extent."""

    out: NDArray  # image: (nb, H, W) float32; coords: (4, H, W) line, pixel, height, range - rng0
    images: NDArray  # (nb, wh, ww) float32 radar window
    dem: NDArray  # (hd, wd) float32 DEM posts
    win_row: float  # the window's first line
    win_col: float  # the window's first pixel
    lines: int  # the scene's lines
    samples: int  # the scene's pixels per line
    rng0: float  # slant range subtracted in coordinates mode, m
    margin: float  # lines from a polynomial block boundary below which a pixel is solved exactly
    method: int  # RESAMPLING_METHODS
    coords: bool  # coordinates mode


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




@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
def _grd_pixel(line: float, rng: float, rm: RangeModel) -> tuple[float, float]:
    """GRD pixel of one-way slant range ``rng`` (m) at (fractional) ``line`` by convention
    ``conv`` (0 esa: the nearest polynomial pair, the ground-to-slant one inverted exactly
    through its refitted inverse ``inv_*``; 1 sarsen: srgr coefficients interpolated linearly in azimuth, clamped; 2 snap: grsr
    interpolated linearly and inverted), and the distance in lines to the nearest polynomial
    block boundary (esa; 1e30 otherwise). Without grsr polynomials esa uses the srgr one."""
    conv, rps = rm.conv, rm.rps
    poly_line, poly_sr0, poly_coef = rm.poly_line, rm.poly_sr0, rm.poly_coef
    grsr_gr0, grsr_coef = rm.grsr_gr0, rm.grsr_coef
    inv_sr0, inv_scale, inv_coef = rm.inv_sr0, rm.inv_scale, rm.inv_coef
    n = poly_line.shape[0]
    i = 0
    w = 0.0
    if n > 1:
        i, w = lerp_index(poly_line, line)
    i1 = i + 1 if n > 1 else i
    if conv == 0:
        j = i if w < 0.5 else i1
        dist = abs(w - 0.5) * (poly_line[i1] - poly_line[i]) if n > 1 else 1e30
        u = (rng - inv_sr0[j]) * inv_scale[j]
        g = 0.0
        for k in range(inv_coef.shape[1] - 1, -1, -1):
            g = g * u + inv_coef[j, k]
        return g / rps, dist
    nk = poly_coef.shape[1]
    x = rng - (poly_sr0[i] * (1 - w) + poly_sr0[i1] * w)
    g = 0.0
    for k in range(nk - 1, -1, -1):
        g = g * x + (poly_coef[i, k] * (1 - w) + poly_coef[i1, k] * w)
    if conv == 1 or grsr_coef.shape[0] != n:
        return g / rps, 1e30
    # snap: Newton on the linearly interpolated ground -> slant polynomial, from the
    # interpolated srgr value (within ~0.01 px of the root)
    g0 = grsr_gr0[i] * (1 - w) + grsr_gr0[i1] * w
    ng = grsr_coef.shape[1]
    for _ in range(2):
        xg = g - g0
        f = 0.0
        df = 0.0
        for k in range(ng - 1, -1, -1):
            ck = grsr_coef[i, k] * (1 - w) + grsr_coef[i1, k] * w
            df = df * xg + f
            f = f * xg + ck
        g -= (f - rng) / df
    return g / rps, 1e30


@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
def _post_height(dem: NDArray, u: float, v: float) -> float:
    """Bilinear height at fractional post (row u, col v), clamped to the array."""
    hd, wd = dem.shape
    u = min(max(u, 0.0), hd - 1.0)
    v = min(max(v, 0.0), wd - 1.0)
    i = min(int(u), hd - 2) if hd > 1 else 0
    j = min(int(v), wd - 2) if wd > 1 else 0
    i1 = min(i + 1, hd - 1)
    j1 = min(j + 1, wd - 1)
    fu = u - i
    fv = v - j
    return (dem[i, j] * (1 - fv) + dem[i, j1] * fv) * (1 - fu) + (dem[i1, j] * (1 - fv) + dem[i1, j1] * fv) * fu
@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
def _cubic_w(t: float, a: float = -0.5) -> tuple[float, float, float, float]:
    """Keys cubic convolution weights for offsets -1, 0, 1, 2 at fraction t."""
    t2 = t * t
    t3 = t2 * t
    w0 = a * (t3 - 2 * t2 + t)
    w1 = (a + 2) * t3 - (a + 3) * t2 + 1
    w2 = -(a + 2) * t3 + (2 * a + 3) * t2 - a * t
    w3 = a * (t2 - t3)
    return w0, w1, w2, w3


@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
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


@numba.njit(inline="always", cache=True, fastmath=FASTMATH)
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




@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _block_kernel(tgt: Target, rm: RangeModel, lat: Lattice, block: tuple[int, int, int, int],
                  redo: NDArray, redo_count: NDArray) -> None:
    """Terrain-correct one block (r0, c0, rows, cols) of the target grid: each pixel's DEM
    position and height, its line and slant range from the block's lattice ``lat``, its GRD
    pixel (``rm``), and (image mode) its resampled values; coordinates mode writes (line,
    pixel, height, range - rng0). ``redo`` (>= rows, >= cols; uint8) flags the pixels within
    ``tgt.margin`` lines of a polynomial block boundary, ``redo_count`` (>= rows) counts them
    per row: those are solved exactly afterwards."""
    out, images, dem = tgt.out, tgt.images, tgt.dem
    win_row, win_col, lines, samples = tgt.win_row, tgt.win_col, tgt.lines, tgt.samples
    rng0, margin, method, coords = tgt.rng0, tgt.margin, tgt.method, tgt.coords
    coef_u, coef_v, coef_line, coef_rng = lat.post_u, lat.post_v, lat.coef_line, lat.coef_rng
    step, hc, hs, rng_ref = lat.step, lat.hc, lat.hs, lat.rng_ref
    r0, c0, bh, bw = block
    nb = out.shape[0]
    nr = coef_line.shape[0]
    nc = coef_line.shape[1]
    nl = coef_line.shape[2]
    wh = images.shape[1]
    ww = images.shape[2]
    for rr in numba.prange(bh):
        r = r0 + rr
        fa = rr / step
        a = min(int(fa), nr - 2)
        wa = fa - a
        # lattice values interpolated to this row once
        row_l = np.empty((nc, nl))
        row_r = np.empty((nc, nl))
        row_u = np.empty(nc)
        row_v = np.empty(nc)
        buf_l = np.empty(bw)
        buf_p = np.empty(bw)
        flagged = 0
        for b in range(nc):
            row_u[b] = coef_u[a, b] * (1 - wa) + coef_u[a + 1, b] * wa
            row_v[b] = coef_v[a, b] * (1 - wa) + coef_v[a + 1, b] * wa
            for q in range(nl):
                row_l[b, q] = coef_line[a, b, q] * (1 - wa) + coef_line[a + 1, b, q] * wa
                row_r[b, q] = coef_rng[a, b, q] * (1 - wa) + coef_rng[a + 1, b, q] * wa
        for cc in range(bw):
            c = c0 + cc
            fb = cc / step
            b = min(int(fb), nc - 2)
            wb = fb - b
            u = row_u[b] * (1 - wb) + row_u[b + 1] * wb
            v = row_v[b] * (1 - wb) + row_v[b + 1] * wb
            hgt = _post_height(dem, u, v)
            s = (hgt - hc) / hs
            line = 0.0
            rng = 0.0
            for q in range(nl - 1, -1, -1):
                line = line * s + (row_l[b, q] * (1 - wb) + row_l[b + 1, q] * wb)
                rng = rng * s + (row_r[b, q] * (1 - wb) + row_r[b + 1, q] * wb)
            rng += rng_ref
            pix, dist = _grd_pixel(line, rng, rm)
            if dist < margin:
                redo[rr, cc] = 1
                flagged += 1
            else:
                redo[rr, cc] = 0
            if coords:
                out[0, r, c] = line
                out[1, r, c] = pix
                out[2, r, c] = hgt
                out[3, r, c] = rng - rng0
                continue
            li = line - win_row
            pj = pix - win_col
            if not (line >= -0.5 and line <= lines - 0.5 and pix >= -0.5 and pix <= samples - 0.5
                    and li >= -0.5 and li <= wh - 0.5 and pj >= -0.5 and pj <= ww - 0.5):
                li = math.nan  # outside the scene or the window: no data
            buf_l[cc] = li
            buf_p[cc] = pj
        redo_count[rr] = flagged
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


@numba.njit(cache=True, fastmath=FASTMATH)
def _sample_points(out: NDArray, images: NDArray, rows: NDArray, cols: NDArray, li: NDArray, pj: NDArray,
                   method: int) -> None:
    """Resample ``images`` at window coordinates (li, pj) into ``out[:, rows, cols]`` (NaN li: no data)."""
    for n in range(rows.shape[0]):
        for k in range(out.shape[0]):
            out[k, rows[n], cols[n]] = math.nan if li[n] != li[n] else _sample(images, k, li[n], pj[n], method)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
class _Source(NamedTuple):
    """The radar window to resample (image mode of :func:`_run`)."""

    images: NDArray  # (bands, lines, samples) float32, linear
    window: Window  # GRD line/pixel window the images cover
    method: int  # RESAMPLING_METHODS


def _run(geo: RadarGeometry, grid: MapGrid, posts: DemPosts, source: _Source | None, tolerance: float,
         stats: GeocodingStats) -> tuple[NDArray[np.float32], float]:
    """Image mode: (bands, H, W) resampled image. Coords mode: (4, H, W)
    line, pixel, height, slant range - rng0 (``source`` None); returns (array, rng0). ``posts``:
    the DEM's posts under the grid."""
    geo.check_orbit()
    dem_arr = np.ascontiguousarray(posts.heights, dtype=np.float32)
    h, w = grid.shape
    coords = source is None
    imgs: NDArray
    method = 0
    if source is None:
        out = np.full((4, h, w), np.nan, dtype=np.float32)
        imgs = np.zeros((1, 1, 1), dtype=np.float32)
        wr = wc = 0.0
        wh, ww = geo.lines, geo.samples
    else:
        imgs, window, method = source
        # every pixel of a processed block is written by the kernel (NaN where no data);
        # skipped blocks are filled below: no separate pass over the (large) output
        out = np.empty((imgs.shape[0], h, w), dtype=np.float32)
        wr, wc = float(window.row_off), float(window.col_off)
        wh, ww = imgs.shape[1], imgs.shape[2]
    geoms = blocks_of(grid.shape, BLOCK)
    blocks = [Block(r0, c0, bh, bw, lo, hi)
              for (r0, c0, bh, bw), (lo, hi) in zip(geoms, block_height_ranges(grid, posts, geoms), strict=True)]
    # a cheap unchecked model first (one lattice cell per block): skip blocks far outside
    # the window/scene
    fit_models(geo, grid, posts, blocks, None, stats, None)
    lo_l, hi_l = max(wr, 0.0), min(wr + wh, geo.lines)
    lo_p, hi_p = max(wc, 0.0), min(wc + ww, geo.samples)
    active = []
    for b in blocks:
        assert b.model is not None
        lmin, lmax, pmin, pmax = b.model.radar_bounds(geo)
        margin = 4.0 + 0.01 * (lmax - lmin + pmax - pmin)  # the rough model's own error bound
        if geo.convention == "esa":
            margin += geo.poly_jump_px  # between nodes another polynomial may hold
        outside = not (math.isfinite(lmin) and math.isfinite(pmin)) or (
            lmax + margin < lo_l - 0.5 or lmin - margin > hi_l - 0.5 or pmax + margin < lo_p - 0.5
            or pmin - margin > hi_p - 0.5)
        if outside and not (coords and math.isfinite(lmin)):  # coordinates are wanted off the scene too
            stats.skipped += 1
            out[:, b.r0:b.r0 + b.bh, b.c0:b.c0 + b.bw] = np.nan
        else:
            active.append(b)
    touched = bool(active)
    checked_models(geo, grid, posts, active, stats, tolerance)
    rng0 = float(np.mean([b.model.rng_ref for b in active if b.model is not None])) if active else 0.0
    margin_lines = 4.0 * tolerance if geo.convention == "esa" else -1.0
    tgt = Target(out, imgs, dem_arr, wr, wc, int(geo.lines), int(geo.samples), rng0, margin_lines, method, coords)
    rm = RangeModel(int(geo.conv_code), np.ascontiguousarray(geo.poly_line), geo.poly_sr0, geo.poly_coef,
                    geo.grsr_gr0, geo.grsr_coef, geo.inv_sr0, geo.inv_scale, geo.inv_coef,
                    float(geo.range_pixel_spacing))
    redo = np.zeros((BLOCK, BLOCK), dtype=np.uint8)
    redo_count = np.zeros(BLOCK, dtype=np.int64)
    redo_rows: list[NDArray] = []
    redo_cols: list[NDArray] = []
    for b in active:
        m = b.model
        assert m is not None
        stats.blocks += 1
        lat = Lattice(m.post_u, m.post_v, m.coef_line, m.coef_rng, int(m.step), float(m.hc), float(m.hs),
                      float(m.rng_ref))
        _block_kernel(tgt, rm, lat, (b.r0, b.c0, b.bh, b.bw), redo, redo_count)
        rows_hit = np.flatnonzero(redo_count[:b.bh])
        if rows_hit.size:
            rr, cc = np.nonzero(redo[rows_hit, :b.bw])
            redo_rows.append(rows_hit[rr] + b.r0)
            redo_cols.append(cc + b.c0)
    if redo_rows:
        _redo_exact(geo, grid, posts, tgt, np.concatenate(redo_rows), np.concatenate(redo_cols), stats)
    if not touched:
        raise GeometryError(
            f"{geo.name}: the target grid ({grid.crs}, origin {grid.transform.c:.1f}, {grid.transform.f:.1f}, "
            f"shape {grid.shape}) does not overlap the scene/window"
        )
    return out, rng0


def _redo_exact(geo: RadarGeometry, grid: MapGrid, posts: DemPosts, tgt: Target, rows: NDArray, cols: NDArray,
                stats: GeocodingStats) -> None:
    """Exact (line, pixel) of the pixels near a polynomial block boundary, and their values."""
    u, v = post_index(grid, posts, rows, cols)
    hgt = posts.sample(u, v)
    lon, lat = grid.lonlat(rows, cols)
    line, rng = geo.solve_range(lon, lat, hgt)
    pix = geo.pixel_of(line, rng)
    stats.exact_points += rows.size
    stats.boundary_pixels += rows.size
    out = tgt.out
    if tgt.coords:
        out[0, rows, cols] = line
        out[1, rows, cols] = pix
        out[2, rows, cols] = hgt
        out[3, rows, cols] = rng - tgt.rng0
        return
    wh, ww = tgt.images.shape[1], tgt.images.shape[2]
    li = line - tgt.win_row
    pj = pix - tgt.win_col
    ok = ((line >= -0.5) & (line <= geo.lines - 0.5) & (pix >= -0.5) & (pix <= geo.samples - 0.5)
          & (li >= -0.5) & (li <= wh - 0.5) & (pj >= -0.5) & (pj <= ww - 0.5))
    li = np.where(ok, li, np.nan)
    _sample_points(out, tgt.images, rows.astype(np.int64), cols.astype(np.int64), li, np.where(ok, pj, 0.0), tgt.method)


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
    convention: str | None = None,
) -> NDArray[np.float32]:
    """Terrain-correct a calibrated linear GRD image onto a map grid.

    ``image_linear``: (lines, samples) or (bands, lines, samples) linear power, NaN no-data,
    covering ``window`` (rasterio Window in GRD line/pixel of ``annotation``). ``dem``: a
    :class:`~bigearthnet_s1.dem.Dem` or an ``open_dem`` spec. ``convention``: the geometry
    convention (module doc; default "esa", or the RadarGeometry's own). Returns float32 of
    ``shape`` (or (bands,) + shape) on the grid's pixel centres: NaN where the grid falls
    outside the scene or the window, or on no-data. Raises GeometryError when the grid does
    not touch the scene/window or the orbit does not span the scene; DemError from the DEM.
    """
    if resampling not in RESAMPLING_METHODS:
        raise InputError(f"resampling {resampling!r}: expected one of {sorted(RESAMPLING_METHODS)}")
    geo = as_geometry(annotation, convention)
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
    grid = MapGrid(crs, transform, shape)
    st = stats if stats is not None else GeocodingStats(tolerance_px=tolerance)
    out, _ = _run(geo, grid, _posts(open_dem(dem), grid), _Source(img, win, RESAMPLING_METHODS[resampling]),
                  tolerance, st)
    return out[0] if squeeze else out


def coordinates_on_grid(geo: RadarGeometry, grid: MapGrid, posts: DemPosts, tolerance: float,
                        stats: GeocodingStats) -> tuple[NDArray[np.float32], float]:
    """(4, H, W) float32 GRD line, pixel, height (m) and slant range - rng0 (m) of every pixel
    centre of ``grid`` (heights from ``posts``, possibly of a finer grid), and rng0."""
    return _run(geo, grid, posts, None, tolerance, stats)


def radar_coordinates(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int],
    tolerance: float = 0.05, stats: GeocodingStats | None = None, convention: str | None = None,
    heights: bool = False,
) -> tuple[NDArray[np.float32], ...]:
    """(line, pixel) GRD coordinates (pixel centres, float32) of every target pixel centre;
    with ``heights``, also the ellipsoidal height (m) each pixel was geocoded at."""
    geo = as_geometry(annotation, convention)
    grid = MapGrid(crs, transform, shape)
    st = stats if stats is not None else GeocodingStats(tolerance_px=tolerance)
    out, _ = _run(geo, grid, _posts(open_dem(dem), grid), None, tolerance, st)
    return (out[0], out[1], out[2]) if heights else (out[0], out[1])


def radar_window_for_grid(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int], margin: int = 16,
    convention: str | None = None,
) -> Window | None:
    """The GRD window (rasterio Window, whole pixels, clipped to the image) that a target grid
    needs, grown by ``margin`` pixels on each side (room for resampling and speckle filters);
    None when the grid does not touch the scene."""
    geo = as_geometry(annotation, convention)
    geo.check_orbit()
    dem_ = open_dem(dem)
    grid = MapGrid(crs, transform, shape)
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
    # the lattice is dense enough that the true extremes lie within a pixel of the sampled
    # ones; with the nearest-polynomial rule a pixel can sit up to one polynomial jump further
    jump = geo.poly_jump_px if geo.convention == "esa" else 0.0
    l0 = math.floor(li[ok].min()) - margin - 1
    l1 = math.ceil(li[ok].max()) + margin + 2
    p0 = math.floor(pi[ok].min() - jump) - margin - 1
    p1 = math.ceil(pi[ok].max() + jump) + margin + 2
    l0, l1 = max(l0, 0), min(l1, geo.lines)
    p0, p1 = max(p0, 0), min(p1, geo.samples)
    if l1 <= l0 or p1 <= p0:
        return None
    return Window(p0, l0, p1 - p0, l1 - l0)
