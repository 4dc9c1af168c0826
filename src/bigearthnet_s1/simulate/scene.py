"""The ground scene: a procedural, land-cover-like sigma0 map on the tile's UTM grid (600 m
parcels with edges on the patch grid, six classes, a meandering river) and bright point
targets at known positions. The map is evaluated wherever a radar or truth pixel lands, by
numba kernels (see :mod:`bigearthnet_s1.simulate.render`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.orbit import geodetic_to_ecef

if TYPE_CHECKING:  # pragma: no cover
    from bigearthnet_s1.simulate.frame import HeightFn
    from bigearthnet_s1.simulate.luts import _Borders
    from bigearthnet_s1.simulate.planning import _Plan, _Target

#: Land-cover-like classes of the ground map: name, sigma0 VV and VH (dB), frequency.
LAND_CLASSES: tuple[tuple[str, float, float, float], ...] = (
    ("water", -22.0, -29.0, 0.08),
    ("urban", -2.0, -10.0, 0.07),
    ("forest", -7.5, -13.0, 0.25),
    ("cropland", -10.0, -17.0, 0.30),
    ("grassland", -11.5, -18.5, 0.20),
    ("bare", -14.0, -23.0, 0.10),
)
PARCEL_M = 600.0  # parcel size: 4 parcels per BigEarthNet patch, edges on the patch grid
PARCEL_JITTER_DB = 1.5  # per-parcel offset, uniform in +-1.5 dB (same for VV and VH)
POINT_TARGET_SIGMA0 = (1000.0, 10.0)  # VV, VH linear sigma0 of the 10 m pixel holding a target
POINT_TARGET_OFFSET_M = 305.0  # target at (ulx + 305 + 1200 i, uly - 305 - 1200 j): a pixel centre
RIVER_HALF_WIDTH_M = 45.0


@numba.njit(cache=True)
def _mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijective 64-bit hash."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _uniform(h: np.uint64) -> float:
    return float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _seed_hash(seed: float) -> np.uint64:
    return _mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))


@numba.njit(cache=True)
def _parcel_class(ci: int, cj: int, seed_h: np.uint64, cum_w: NDArray[np.float64], jitter_db: float) -> tuple[int, float]:
    """(class index, offset in dB) of parcel (ci, cj): column/row on the parcel grid."""
    key = (np.uint64(ci & 0xFFFFFFFF) << np.uint64(32)) | np.uint64(cj & 0xFFFFFFFF)
    h = _mix64(seed_h ^ _mix64(key))
    u = _uniform(h)
    k = 0
    while k < cum_w.size - 1 and u >= cum_w[k]:
        k += 1
    if k == 0:  # water: no offset
        return 0, 0.0
    return k, (2.0 * _uniform(_mix64(h)) - 1.0) * jitter_db


class GroundMap(NamedTuple):
    """The ground map's definition, as the numba kernels take it (a typed bundle: numba passes
    a NamedTuple as a struct). Tile-CRS metres; sigma0 linear.

    Parcels: squares of ``parcel`` m hanging from (``ulx``, ``uly``), each of the class drawn
    from ``cum_w`` (cumulative class frequencies) by a hash of (parcel column, row, ``seed``),
    with an offset uniform in +-``jitter_db`` dB. River: water where
    |y - (river_y0 + river_amp sin(2 pi (x - river_x0) / river_wavelength + river_phase))|
    < river_half_width. ``vv_lin``/``vh_lin``: sigma0 of each class (index 0 is water).
    """

    ulx: float
    uly: float
    parcel: float
    seed: float  # the seed modulo 2^52, exact as a float64
    river_x0: float
    river_y0: float
    river_amp: float
    river_wavelength: float
    river_phase: float
    river_half_width: float
    jitter_db: float
    cum_w: NDArray[np.float64]
    vv_lin: NDArray[np.float64]
    vh_lin: NDArray[np.float64]


@numba.njit(cache=True)
def _in_river(x: float, y: float, g: GroundMap) -> bool:
    """River: |y - (y0 + amp sin(2 pi (x - x0) / wl + phase))| < half width."""
    if abs(y - g.river_y0) > abs(g.river_amp) + g.river_half_width:
        return False
    yr = g.river_y0 + g.river_amp * math.sin(2.0 * math.pi * (x - g.river_x0) / g.river_wavelength + g.river_phase)
    return abs(y - yr) < g.river_half_width


@numba.njit(cache=True)
def _ground_class(x: float, y: float, g: GroundMap) -> tuple[int, float]:
    """(class index, parcel offset in dB) at tile-CRS metres (x, y)."""
    if _in_river(x, y, g):
        return 0, 0.0
    ci = int(math.floor((x - g.ulx) / g.parcel))
    cj = int(math.floor((g.uly - y) / g.parcel))
    return _parcel_class(ci, cj, _seed_hash(g.seed), g.cum_w, g.jitter_db)


@numba.njit(cache=True, nogil=True)
def _render_truth(
    g: GroundMap, x0: float, y0: float, res: float,
    vv: NDArray[np.float32], vh: NDArray[np.float32], cls: NDArray[np.uint8],
) -> None:
    """Truth sigma0 (linear) at the centres of a north-up grid with corner (x0, y0) and pixel
    size ``res`` (m), as many rows and columns as ``vv``; the same map as :func:`_ground_class`,
    with the parcel looked up once per run of pixels."""
    ny, nx = vv.shape
    seed_h = _seed_hash(g.seed)
    for r in range(ny):
        y = y0 - (r + 0.5) * res
        cj = int(math.floor((g.uly - y) / g.parcel))
        last_ci = -(1 << 40)
        k, pv, ph = 0, 0.0, 0.0
        for c in range(nx):
            x = x0 + (c + 0.5) * res
            ci = int(math.floor((x - g.ulx) / g.parcel))
            if ci != last_ci:
                k, jitter = _parcel_class(ci, cj, seed_h, g.cum_w, g.jitter_db)
                f = 10.0 ** (jitter / 10.0)
                pv = g.vv_lin[k] * f
                ph = g.vh_lin[k] * f
                last_ci = ci
            if _in_river(x, y, g):
                vv[r, c] = g.vv_lin[0]
                vh[r, c] = g.vh_lin[0]
                cls[r, c] = 0
            else:
                vv[r, c] = pv
                vh[r, c] = ph
                cls[r, c] = k


def _class_arrays() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Cumulative class frequencies (last one just above 1), sigma0 VV and VH (linear) of
    :data:`LAND_CLASSES`."""
    w = np.array([c[3] for c in LAND_CLASSES])
    cum = np.cumsum(w) / w.sum()
    cum[-1] = 1.0 + 1e-12
    vv = 10.0 ** (np.array([c[1] for c in LAND_CLASSES]) / 10.0)
    vh = 10.0 ** (np.array([c[2] for c in LAND_CLASSES]) / 10.0)
    return cum, vv, vh


def _map_params(target: _Target, seed: int) -> GroundMap:
    """The ground map of a product: parcel grid on the tile corner, one river across the
    target area (meandering east-west through its middle third)."""
    rng = np.random.default_rng([seed, 7])
    west, south, east, north = target.area.bounds
    span = max(east - west, north - south, 2000.0)
    river_y0 = 0.5 * (south + north) + rng.uniform(-0.15, 0.15) * (north - south)  # the draws in this order
    river_amp = rng.uniform(0.05, 0.12) * span
    river_wavelength = rng.uniform(0.6, 1.2) * span
    river_phase = rng.uniform(0, 2 * math.pi)
    cum_w, vv_lin, vh_lin = _class_arrays()
    return GroundMap(
        float(target.anchor[0]), float(target.anchor[1]), PARCEL_M, float(seed % (1 << 52)),
        float(west), float(river_y0), float(river_amp), float(river_wavelength), float(river_phase),
        RIVER_HALF_WIDTH_M, PARCEL_JITTER_DB, cum_w, vv_lin, vh_lin,
    )


def _point_targets(target: _Target, plan: _Plan, heights: HeightFn | None, border: _Borders) -> dict[str, NDArray[Any]]:
    """Corner-reflector-like targets at (ulx + 305 + 1200 i, uly - 305 - 1200 j) inside the truth
    grid (centre of the upper-left parcel of each patch, on a pixel centre), with their exact
    radar position (fractional line/pixel, pixel centres)."""
    (x0, y0), (ny, nx) = target.truth_origin, target.truth_shape
    ax, ay = target.anchor
    step = 2 * PARCEL_M
    i0 = math.ceil((x0 - ax - POINT_TARGET_OFFSET_M) / step)
    i1 = math.floor((x0 + nx * 10.0 - ax - POINT_TARGET_OFFSET_M) / step)
    j0 = math.ceil((ay - y0 - POINT_TARGET_OFFSET_M) / step)
    j1 = math.floor((ay - (y0 - ny * 10.0) - POINT_TARGET_OFFSET_M) / step)
    ii, jj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="xy")
    x = (ax + POINT_TARGET_OFFSET_M + step * ii).ravel().astype(np.float64)
    y = (ay - POINT_TARGET_OFFSET_M - step * jj).ravel().astype(np.float64)
    empty = {k: np.zeros(0) for k in ("x", "y", "lon", "lat", "height", "line", "pixel")}
    if x.size == 0:
        return empty
    lon, lat = target.to_wgs84(x, y)
    h = heights(lon, lat) if heights is not None else np.zeros_like(lon)
    frame = plan.frame
    s, rng = frame.orbit.zero_doppler(geodetic_to_ecef(lon, lat, h), t_guess=float(frame.orbit.seconds(plan.t_c)))
    line = frame.image_line(s, rng)
    ok = np.isfinite(line) & (line >= 1) & (line <= frame.lines - 2)
    pixel = np.full_like(line, np.nan)
    pixel[ok] = frame.pixel_of(line[ok], rng[ok])
    li = np.clip(np.round(np.nan_to_num(line)).astype(np.int64), 0, frame.lines - 1)
    ok &= np.isfinite(pixel) & (pixel >= border.valid_first[li] + 2) & (pixel <= border.valid_last[li] - 2)
    return {"x": x[ok], "y": y[ok], "lon": lon[ok], "lat": lat[ok], "height": h[ok], "line": line[ok], "pixel": pixel[ok]}
