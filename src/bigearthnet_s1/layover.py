"""Layover and shadow of every pixel of a target map grid, active and passive.

:func:`layover_shadow_mask` flags layover (1) and shadow (2) per target pixel, active
and passive, by scanning each zero-Doppler line of the grid from near to far range (SNAP's
rule: layover where a point's slant range is not beyond every nearer point's, or not short of
every farther point's; shadow where its look angle does not exceed every nearer point's).

The pixels' slant ranges and look angles come from terrain correction's coordinate model
(:func:`bigearthnet_s1.geocoding.coordinates_on_grid`). Flags are uint8 bits:
:data:`MASK_LAYOVER` (1), :data:`MASK_SHADOW` (2).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from affine import Affine
from numpy.typing import NDArray

from bigearthnet_s1.coordinate_model import GeocodingStats
from bigearthnet_s1.dem import Dem, FlatDem, open_dem
from bigearthnet_s1.errors import GeometryError, InputError
from bigearthnet_s1.geocoding import FASTMATH, coordinates_on_grid, lerp_index
from bigearthnet_s1.grid import MapGrid
from bigearthnet_s1.orbit import geodetic_to_ecef
from bigearthnet_s1.radar_geometry import as_geometry

__all__ = ["MASK_LAYOVER", "MASK_SHADOW", "layover_shadow_mask"]

#: layover/shadow mask values (bits)
MASK_LAYOVER = 1
MASK_SHADOW = 2


@numba.njit(cache=True)
def _scan_axis0(rng: NDArray, cosl: NDArray, sgn: int, shift: float, tol_r: float, tol_c: float,
                mask: NDArray) -> None:
    """Layover/shadow along scan lines that advance one row per step (``sgn`` = +1: rows in
    increasing order are nearer to farther range) and ``shift`` columns per row. ``rng``:
    slant range (m), ``cosl``: cosine of the look angle (NaN: no data). Sets MASK bits."""
    h, w = rng.shape
    max_r = np.full((h, w), np.nan)
    min_c = np.full((h, w), np.nan)
    min_r = np.full((h, w), np.nan)
    order = np.arange(h) if sgn > 0 else np.arange(h - 1, -1, -1)
    # near -> far: running max of range (layover) and min of cos(look angle) (shadow)
    for k in range(h):
        r = order[k]
        rp = r - sgn
        for c in range(w):
            pr = math.nan
            pc = math.nan
            if 0 <= rp < h:
                x = c - shift
                j = int(math.floor(x))
                f = x - j
                if j >= 0 and j + 1 < w:
                    a0, a1 = max_r[rp, j], max_r[rp, j + 1]
                    b0, b1 = min_c[rp, j], min_c[rp, j + 1]
                    pr = a0 if a1 != a1 else (a1 if a0 != a0 else a0 * (1 - f) + a1 * f)
                    pc = b0 if b1 != b1 else (b1 if b0 != b0 else b0 * (1 - f) + b1 * f)
            v = rng[r, c]
            cv = cosl[r, c]
            if v != v:
                max_r[r, c] = pr
                min_c[r, c] = pc
                continue
            if pr == pr and v < pr - tol_r:
                mask[r, c] |= 1
            if pc == pc and cv > pc + tol_c:
                mask[r, c] |= 2
            max_r[r, c] = v if pr != pr else max(v, pr)
            min_c[r, c] = cv if pc != pc else min(cv, pc)
    # far -> near: running min of range (the near end of a layover)
    for k in range(h - 1, -1, -1):
        r = order[k]
        rn = r + sgn
        for c in range(w):
            nr_ = math.nan
            if 0 <= rn < h:
                x = c + shift
                j = int(math.floor(x))
                f = x - j
                if j >= 0 and j + 1 < w:
                    a0, a1 = min_r[rn, j], min_r[rn, j + 1]
                    nr_ = a0 if a1 != a1 else (a1 if a0 != a0 else a0 * (1 - f) + a1 * f)
            v = rng[r, c]
            if v != v:
                min_r[r, c] = nr_
                continue
            if nr_ == nr_ and v > nr_ + tol_r:
                mask[r, c] |= 1
            min_r[r, c] = v if nr_ != nr_ else min(v, nr_)


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def _range_and_look(line: NDArray, rng: NDArray, hgt: NDArray, rng0: float, rho_e: NDArray, step: int,
                    tl: NDArray, rho_s: NDArray) -> tuple[NDArray, NDArray]:
    """Slant range (m, float64) and the cosine of the look angle of every pixel of a coordinate
    grid (NaN where there is no solution): law of cosines with the sensor's geocentric radius
    at the pixel's line (``rho_s`` tabulated at lines ``tl``) and the point's (the ellipsoid's
    radius ``rho_e`` on a lattice every ``step`` pixels, bilinear, plus the height)."""
    h, w = line.shape
    nr, nc = rho_e.shape
    r_out = np.empty((h, w))
    c_out = np.empty((h, w))
    for r in numba.prange(h):
        fa = min(r / step, nr - 1.0)
        a = min(int(fa), nr - 2) if nr > 1 else 0
        wa = fa - a if nr > 1 else 0.0
        a1 = a + 1 if nr > 1 else a
        for c in range(w):
            li = line[r, c]
            rg = rng[r, c]
            if not (li == li and rg == rg):
                r_out[r, c] = math.nan
                c_out[r, c] = math.nan
                continue
            fb = min(c / step, nc - 1.0)
            b = min(int(fb), nc - 2) if nc > 1 else 0
            wb = fb - b if nc > 1 else 0.0
            b1 = b + 1 if nc > 1 else b
            re = (rho_e[a, b] * (1 - wb) + rho_e[a, b1] * wb) * (1 - wa) + (rho_e[a1, b] * (1 - wb) + rho_e[a1, b1] * wb) * wa
            k, wt = lerp_index(tl, li)
            rs = rho_s[k] * (1 - wt) + rho_s[k + 1] * wt
            R = rg + rng0
            rp = re + hgt[r, c]
            r_out[r, c] = R
            c_out[r, c] = (rs * rs + R * R - rp * rp) / (2.0 * rs * R)
    return r_out, c_out


def layover_shadow_mask(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int],
    factor: int | None = None, convention: str | None = None, tolerance: float = 0.05,
) -> NDArray[np.uint8]:
    """Layover (bit 1, :data:`MASK_LAYOVER`) and shadow (bit 2, :data:`MASK_SHADOW`) of every
    target pixel (uint8; 3 = both, 0 = neither or outside the scene), active and passive.

    Each pixel's slant range and look angle come from the coordinate model (heights sampled
    once from the DEM's posts, as terrain correction); the grid is scanned along its
    zero-Doppler lines (the direction in which the image line stays constant and the range
    grows) from near to far range: a pixel is laid over when its range does not exceed the
    largest range of the nearer pixels, or is not below the smallest range of the farther
    ones; it is in shadow when its look angle does not exceed the largest look angle of the
    nearer pixels (SNAP's rule, applied on the map grid). ``factor``: the scan runs on a grid
    ``factor`` times coarser (default: about the DEM's post spacing, at most 20 Mpx), whose
    flags every target pixel it covers takes (nearest). A flat DEM gives no flags.
    """
    geo = as_geometry(annotation, convention)
    geo.check_orbit()
    dem_ = open_dem(dem)
    grid = MapGrid(crs, transform, shape)
    h, w = grid.shape
    if isinstance(dem_, FlatDem):
        return np.zeros((h, w), dtype=np.uint8)
    px = min(math.hypot(grid.transform.a, grid.transform.d), math.hypot(grid.transform.b, grid.transform.e))
    if factor is None:
        f = max(1, round(dem_.resolution_m / px)) if math.isfinite(dem_.resolution_m) else 1
        f = max(f, math.ceil(math.sqrt(h * w / 20e6)))
    else:
        f = int(factor)
        if f < 1:
            raise InputError(f"layover_shadow_mask: factor {factor} must be >= 1")
    posts = dem_.posts(grid.crs, grid.transform, grid.shape)
    mh, mw = math.ceil(h / f), math.ceil(w / f)
    mgrid = MapGrid(grid.crs, grid.transform @ Affine.scale(f), (mh, mw))
    stats = GeocodingStats(tolerance_px=tolerance)
    out, rng0 = coordinates_on_grid(geo, mgrid, posts, tolerance, stats)
    line, hgt = out[0], out[2]
    ok = np.isfinite(line) & np.isfinite(out[3])
    if not ok.any():
        return np.zeros((h, w), dtype=np.uint8)
    # look angle: law of cosines with the sensor's and the point's geocentric radii
    lmin, lmax = float(np.nanmin(line)), float(np.nanmax(line))
    tl = np.linspace(lmin - 1.0, lmax + 1.0, 257)
    pos, _, _ = geo.orbit.interpolate(geo.t0 + tl * geo.dt)
    step = 32
    rr = np.arange(0, mh + step - 1, step, dtype=np.float64)
    cc = np.arange(0, mw + step - 1, step, dtype=np.float64)
    lon, lat = mgrid.lonlat(rr[:, None] + 0 * cc[None, :], 0 * rr[:, None] + cc[None, :])
    rho_e = np.ascontiguousarray(np.linalg.norm(geodetic_to_ecef(lon, lat, 0.0), axis=-1))
    rng, cosl = _range_and_look(line, out[3], hgt, rng0, rho_e, step, tl, np.linalg.norm(pos, axis=-1))
    # scan direction (mask pixels): along constant line, towards increasing range
    r_c, c_c = (mh - 1) / 2.0, (mw - 1) / 2.0
    lo3, la3 = mgrid.lonlat(np.array([r_c, r_c, r_c + 1.0]), np.array([c_c, c_c + 1.0, c_c]))
    hm = np.full(3, float(np.nanmean(hgt[ok])))
    l3, s3 = geo.solve_range(lo3, la3, hm)
    g_l = np.array([l3[2] - l3[0], l3[1] - l3[0]])  # d line / d (row, col)
    g_r = np.array([s3[2] - s3[0], s3[1] - s3[0]])
    d = g_r - (g_r @ g_l) / (g_l @ g_l) * g_l
    if not np.all(np.isfinite(d)) or np.hypot(*d) == 0:
        raise GeometryError(f"{geo.name}: no range direction on the target grid")
    d = d / np.hypot(*d)
    mask = np.zeros((mh, mw), dtype=np.uint8)
    tol_r, tol_c = 0.05, 1e-7
    if abs(d[0]) >= abs(d[1]):
        _scan_axis0(np.ascontiguousarray(rng), np.ascontiguousarray(cosl), 1 if d[0] > 0 else -1,
                    float(d[1] / abs(d[0])), tol_r, tol_c, mask)
    else:
        mt = np.zeros((mw, mh), dtype=np.uint8)
        _scan_axis0(np.ascontiguousarray(rng.T), np.ascontiguousarray(cosl.T), 1 if d[1] > 0 else -1,
                    float(d[0] / abs(d[1])), tol_r, tol_c, mt)
        mask = np.ascontiguousarray(mt.T)
    mask[~ok] = 0
    if f == 1:
        return mask
    return np.ascontiguousarray(np.repeat(np.repeat(mask, f, axis=0), f, axis=1)[:h, :w])
