"""The coordinate model of terrain correction: (line, slant range) of every target pixel from
a coarse lattice of exact range-Doppler solutions.

Solving range-Doppler for 120 Mpx is slow (sarsen does it per pixel); here it is solved
exactly only on a coarse lattice of nodes (every 64 px) at three heights per node (Chebyshev
nodes spanning the block's DEM heights). Each pixel takes its line and slant range by bilinear
interpolation between nodes and quadratic interpolation in its DEM height (both are smooth in
x, y, h), then its GRD column exactly through the srgr polynomials. Per block of 1024 x 1024
px the model is checked against exact solutions at three points per lattice cell and four
heights between the levels; blocks whose error exceeds ``tolerance`` (0.05 px; typically
0.007 px is reached) halve their step until it does not. With the nearest-polynomial rule a
pixel whose modelled line lies within ``4 * tolerance`` lines of a block boundary is solved
exactly (the rule is discontinuous there). The per-pixel work (DEM position and height,
coordinate model, srgr, resampling of all bands) is a numba kernel, parallel over rows.

Map grids are :class:`~bigearthnet_s1.grid.MapGrid` values (pixel centres at row/col + 0.5);
heights are metres above the WGS84 ellipsoid; slant ranges one-way metres.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.dem import DemPosts
from bigearthnet_s1.grid import MapGrid
from bigearthnet_s1.radar_geometry import RadarGeometry

log = logging.getLogger(__name__)

__all__ = ["GeocodingStats", "Block", "BlockModel", "N_LEVELS", "BLOCK", "INITIAL_STEP", "MIN_STEP",
           "blocks_of", "block_height_ranges", "fit_models", "checked_models", "post_index"]

#: Heights (Chebyshev nodes) per lattice node of the coordinate model.
N_LEVELS = 3
BLOCK = 1024
INITIAL_STEP = 64
MIN_STEP = 4


def post_index(grid: MapGrid, posts: DemPosts, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
    """Fractional DEM post (row, col) of target pixel-centre coordinates."""
    xs, ys = grid.xy(rows, cols)
    return posts.indices(grid.crs, xs, ys)


@dataclass
class GeocodingStats:
    """What the coordinate model did: blocks processed/skipped, steps used, worst check error,
    exact solutions (lattice, checks, pixels at polynomial block boundaries)."""

    blocks: int = 0
    skipped: int = 0
    steps: dict[int, int] = field(default_factory=dict)
    max_error_px: float = 0.0
    exact_points: int = 0
    boundary_pixels: int = 0
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


class BlockModel:
    """Line and slant range of one block: bilinear over a lattice, polynomial in height; and
    the DEM post coordinates of the lattice nodes."""

    def __init__(self, coef_line: NDArray, coef_rng: NDArray, rng_ref: float, step: int, hc: float, hs: float,
                 post_u: NDArray, post_v: NDArray) -> None:
        self.coef_line = np.ascontiguousarray(coef_line)
        self.coef_rng = np.ascontiguousarray(coef_rng)
        self.post_u = np.ascontiguousarray(post_u, dtype=np.float64)
        self.post_v = np.ascontiguousarray(post_v, dtype=np.float64)
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
class Block:
    """One block of the target grid and its coordinate model."""

    r0: int
    c0: int
    bh: int
    bw: int
    hmin: float
    hmax: float
    model: BlockModel | None = None

    @property
    def hc(self) -> float:
        return 0.5 * (self.hmin + self.hmax)

    @property
    def hs(self) -> float:
        return max(0.5 * (self.hmax - self.hmin), 1.0)


def _lattice_points(b: Block, step: int) -> tuple[NDArray, NDArray, NDArray, tuple[int, int]]:
    """Target (row, col) of the block's lattice nodes at each level, and the lattice shape."""
    nr = max(2, math.ceil((b.bh - 1) / step) + 1)
    nc = max(2, math.ceil((b.bw - 1) / step) + 1)
    rows = b.r0 + np.arange(nr, dtype=np.float64) * step
    cols = b.c0 + np.arange(nc, dtype=np.float64) * step
    R = np.broadcast_to(rows[:, None, None], (nr, nc, N_LEVELS))
    C = np.broadcast_to(cols[None, :, None], (nr, nc, N_LEVELS))
    H = np.broadcast_to(b.hc + b.hs * _cheb(N_LEVELS), (nr, nc, N_LEVELS))
    return R, C, H, (nr, nc)


def _check_points(b: Block, step: int, shape: tuple[int, int]) -> tuple[NDArray, NDArray, NDArray]:
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




def _solve_batches(geo: RadarGeometry, grid: MapGrid, batches: list[tuple[NDArray, NDArray, NDArray]],
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


def fit_models(geo: RadarGeometry, grid: MapGrid, posts: DemPosts, blocks: list[Block], step: int | None,
            stats: GeocodingStats, tolerance: float | None) -> list[float]:
    """Fit every block's model at ``step`` (None: one cell per block) in one batch; with a
    ``tolerance``, also measure each model's error at its check points (in one batch).
    Returns the worst check error per block (0 without a check)."""
    steps = [step if step is not None else max(b.bh, b.bw) for b in blocks]
    lat_pts = [_lattice_points(b, st) for b, st in zip(blocks, steps, strict=True)]
    solved = _solve_batches(geo, grid, [(R, C, H) for R, C, H, _ in lat_pts], stats)
    # DEM post coordinates of all lattice nodes in one transform
    node_r = np.concatenate([R[..., 0].ravel() for R, _, _, _ in lat_pts])
    node_c = np.concatenate([C[..., 0].ravel() for _, C, _, _ in lat_pts])
    pu, pv = post_index(grid, posts, node_r, node_c)
    i = 0
    for b, st, (line, rng), (_, _, _, shape) in zip(blocks, steps, solved, lat_pts, strict=True):
        n = shape[0] * shape[1]
        rng_ref = float(np.nanmean(rng)) if np.isfinite(rng).any() else 0.0
        b.model = BlockModel(_fit_levels(line), _fit_levels(rng - rng_ref), rng_ref, st, b.hc, b.hs,
                              pu[i:i + n].reshape(shape), pv[i:i + n].reshape(shape))
        i += n
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
        # the pixel error with the exact solution's polynomial choice: near a block boundary
        # the nearest-polynomial rule jumps, which the kernel handles by exact solves
        err = np.hypot(lm - le, geo.pixel_of(lm, rm, select=le) - geo.pixel_of(le, re))
        err = err[np.isfinite(err)]
        worst.append(float(err.max()) if err.size else 0.0)
    return worst


def checked_models(geo: RadarGeometry, grid: MapGrid, posts: DemPosts, blocks: list[Block], stats: GeocodingStats,
                    tolerance: float) -> None:
    """Models at ``INITIAL_STEP``, checked; blocks over ``tolerance`` halve their step until
    they are within it (or reach ``MIN_STEP``, with a warning).

    Line and slant range are smooth in (x, y, h) and are what is interpolated; the GRD pixel
    goes through the srgr polynomials per pixel (their choice or interpolation in azimuth is
    not smooth, so no lattice could follow it).
    """
    todo = blocks
    step = INITIAL_STEP
    while todo:
        worst = fit_models(geo, grid, posts, todo, step, stats, tolerance)
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


def blocks_of(shape: tuple[int, int], block: int) -> list[tuple[int, int, int, int]]:
    h, w = shape
    return [(r, c, min(block, h - r), min(block, w - c)) for r in range(0, h, block) for c in range(0, w, block)]


def block_height_ranges(grid: MapGrid, posts: DemPosts, blocks: list[tuple[int, int, int, int]]) -> list[tuple[float, float]]:
    """(min, max) DEM height over each block: the posts under its footprint (9 x 9 sample
    points per block, in one transform; one post of margin around their bounding box)."""
    if posts.constant:
        h0 = float(posts.heights[0, 0])
        return [(h0, h0)] * len(blocks)
    t = np.linspace(0.0, 1.0, 9)
    rr = np.concatenate([(r0 + t[:, None] * (bh - 1) + 0 * t[None, :]).ravel() for r0, _, bh, _ in blocks])
    cc = np.concatenate([(c0 + 0 * t[:, None] + t[None, :] * (bw - 1)).ravel() for _, c0, _, bw in blocks])
    u, v = post_index(grid, posts, rr, cc)
    hd, wd = posts.heights.shape
    out = []
    for k in range(len(blocks)):
        uu, vv = u[k * 81:(k + 1) * 81], v[k * 81:(k + 1) * 81]  # (81,) post rows and columns
        i0 = int(np.clip(math.floor(uu.min()) - 1, 0, hd - 1))
        i1 = int(np.clip(math.ceil(uu.max()) + 2, i0 + 1, hd))
        j0 = int(np.clip(math.floor(vv.min()) - 1, 0, wd - 1))
        j1 = int(np.clip(math.ceil(vv.max()) + 2, j0 + 1, wd))
        sub = posts.heights[i0:i1, j0:j1]
        out.append((float(sub.min()), float(sub.max())))
    return out
