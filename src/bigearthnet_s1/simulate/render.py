"""Rendering the rasters: the measurement GeoTIFFs (DN of VV and VH) and the truth GeoTIFF.

The image of a full scene is 2 x 420 M pixels, each needing a ground-map lookup, LUT
interpolation and a speckle draw; numpy temporaries would need tens of GB and several minutes,
so these loops are numba kernels run in threads (they release the GIL; counter-based random
numbers keep the result independent of the thread count). The kernels take the scene as one
typed bundle of arrays (:class:`_RenderInputs`, a NamedTuple numba passes as a struct)."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.geocoding import lerp_index
from bigearthnet_s1.simulate.frame import HeightFn, _forward_geocode, _Frame
from bigearthnet_s1.simulate.luts import _Borders, _Luts
from bigearthnet_s1.simulate.mission import ENL
from bigearthnet_s1.simulate.planning import _Target
from bigearthnet_s1.simulate.scene import (
    LAND_CLASSES,
    POINT_TARGET_SIGMA0,
    GroundMap,
    _in_river,
    _mix64,
    _parcel_class,
    _render_truth,
    _seed_hash,
)


class _MappingGrid(NamedTuple):
    """Forward-geocoded ground points (tile-CRS metres) at ``lines`` x ``pixels`` of the image;
    the renderer interpolates them bilinearly (see :func:`_mapping_grid`)."""

    lines: NDArray[np.int64]
    pixels: NDArray[np.int64]
    x: NDArray[np.float64]  # (lines, pixels)
    y: NDArray[np.float64]


class _Splats(NamedTuple):
    """Point targets split over their 4 neighbouring pixels: the entries of line ``l`` are
    ``start[l]:start[l + 1]``, at ``pixel`` (increasing), adding sigma0 ``vv``/``vh`` (linear)."""

    start: NDArray[np.int64]  # (lines + 1,)
    pixel: NDArray[np.int64]
    vv: NDArray[np.float64]
    vh: NDArray[np.float64]


class _LutRows(NamedTuple):
    """The annotated LUTs at full range resolution, for the renderer: A_sigma (amplitude, the
    same for VV and VH) and noise power (DN^2) rows at their lines, the azimuth noise LUT of each
    IW sub-swath at every line, and the sub-swath of every pixel."""

    cal_lines: NDArray[np.int64]
    cal: NDArray[np.float64]  # (cal_lines, samples)
    noise_lines: NDArray[np.int64]
    noise_vv: NDArray[np.float64]  # (noise_lines, samples)
    noise_vh: NDArray[np.float64]
    az_vv: NDArray[np.float64]  # (3, lines)
    az_vh: NDArray[np.float64]
    swath_of: NDArray[np.int8]  # (samples,)


class _RenderInputs(NamedTuple):
    """Everything the measurement kernels read, as one typed bundle (numba passes a NamedTuple
    of arrays as a struct: no per-pixel cost over separate arguments)."""

    ground: GroundMap
    grid: _MappingGrid
    luts: _LutRows
    borders: _Borders
    points: _Splats
    speckle: NDArray[np.float64]  # inverse CDF of the speckle (see _speckle_table)
    seed: np.uint64  # of the speckle's counter-based random numbers
    border_level: float  # border noise: I = border_level * N * speckle (0: none)


@numba.njit(cache=True, nogil=True)
def _render_line(
    line: int, out_vv: NDArray[np.uint16], out_vh: NDArray[np.uint16], stats: NDArray[np.float64], s: _RenderInputs,
) -> None:
    """One line of :func:`_render_lines`."""
    g, m, lut, b, pts, table = s.ground, s.grid, s.luts, s.borders, s.points, s.speckle
    ns = out_vv.shape[0]
    nt = table.size - 1
    kc, wc = lerp_index(lut.cal_lines, float(line))
    kn, wn = lerp_index(lut.noise_lines, float(line))
    kg, wg = lerp_index(m.lines, float(line))
    zn = b.zero_near[line]
    vf = b.valid_first[line]
    vl = b.valid_last[line]
    zf = b.zero_far[line]
    k_pt = pts.start[line]
    k_end = pts.start[line + 1]
    next_pt = pts.pixel[k_pt] if k_pt < k_end else -1
    cnt = 0.0
    s1v = 0.0
    s2v = 0.0
    s1h = 0.0
    s2h = 0.0
    jg = 0
    base = s.seed ^ (np.uint64(line) << np.uint64(32))
    seed_h = _seed_hash(g.seed)
    last_ci = -(1 << 40)
    last_cj = -(1 << 40)
    par_vv = 0.0
    par_vh = 0.0
    inv_parcel = 1.0 / g.parcel
    row_x = (1.0 - wg) * m.x[kg] + wg * m.x[kg + 1]  # the mapping grid interpolated to this line
    row_y = (1.0 - wg) * m.y[kg] + wg * m.y[kg + 1]
    g_pixels = m.pixels
    inv_gp = 1.0 / (g_pixels[1] - g_pixels[0])
    for p in range(ns):
        extra_vv = 0.0
        extra_vh = 0.0
        if p == next_pt:
            extra_vv = pts.vv[k_pt]
            extra_vh = pts.vh[k_pt]
            k_pt += 1
            next_pt = pts.pixel[k_pt] if k_pt < k_end else -1
        if p < zn or p > zf:
            out_vv[p] = 0
            out_vh[p] = 0
            continue
        while jg < g_pixels.size - 2 and p >= g_pixels[jg + 1]:
            jg += 1
            inv_gp = 1.0 / (g_pixels[jg + 1] - g_pixels[jg])
        wp = (p - g_pixels[jg]) * inv_gp
        x = row_x[jg] + wp * (row_x[jg + 1] - row_x[jg])
        y = row_y[jg] + wp * (row_y[jg + 1] - row_y[jg])
        ci = int(math.floor((x - g.ulx) * inv_parcel))
        cj = int(math.floor((g.uly - y) * inv_parcel))
        if ci != last_ci or cj != last_cj:
            k, jitter = _parcel_class(ci, cj, seed_h, g.cum_w, g.jitter_db)
            f_par = 10.0 ** (jitter / 10.0)
            par_vv = g.vv_lin[k] * f_par
            par_vh = g.vh_lin[k] * f_par
            last_ci = ci
            last_cj = cj
        if _in_river(x, y, g):
            s_vv = g.vv_lin[0]
            s_vh = g.vh_lin[0]
        else:
            s_vv = par_vv
            s_vh = par_vh
        a_vv = (1.0 - wc) * lut.cal[kc, p] + wc * lut.cal[kc + 1, p]
        a_vh = a_vv  # A_sigma does not depend on the polarisation
        sw = lut.swath_of[p]
        n_vv = ((1.0 - wn) * lut.noise_vv[kn, p] + wn * lut.noise_vv[kn + 1, p]) * lut.az_vv[sw, line]
        n_vh = ((1.0 - wn) * lut.noise_vh[kn, p] + wn * lut.noise_vh[kn + 1, p]) * lut.az_vh[sw, line]
        # speckle: inverse CDF table of Gamma(ENL, 1/ENL), one hash per pixel and polarisation
        h = _mix64(base ^ np.uint64(p))
        u = float(h >> np.uint64(40)) * (nt / 16777216.0)
        i = int(u)
        f = u - i
        sp_vv = table[i] + f * (table[i + 1] - table[i])
        h2 = _mix64(h ^ np.uint64(0x632BE59BD9B4E019))
        u = float(h2 >> np.uint64(40)) * (nt / 16777216.0)
        i = int(u)
        f = u - i
        sp_vh = table[i] + f * (table[i + 1] - table[i])
        if p < vf or p > vl:
            i_vv = s.border_level * n_vv * sp_vv
            i_vh = s.border_level * n_vh * sp_vh
        else:
            i_vv = (s_vv * a_vv * a_vv + n_vv) * sp_vv + extra_vv * a_vv * a_vv
            i_vh = (s_vh * a_vh * a_vh + n_vh) * sp_vh + extra_vh * a_vh * a_vh
        d_vv = math.sqrt(i_vv) + 0.5
        d_vh = math.sqrt(i_vh) + 0.5
        dv = 65535 if d_vv >= 65535.0 else int(d_vv)
        dh = 65535 if d_vh >= 65535.0 else int(d_vh)
        out_vv[p] = dv
        out_vh[p] = dh
        if dv > 0:
            cnt += 1.0
            s1v += dv
            s2v += float(dv) * dv
            s1h += dh
            s2h += float(dh) * dh
    stats[0] = cnt
    stats[1] = s1v
    stats[2] = s2v
    stats[3] = s1h
    stats[4] = s2h


@numba.njit(cache=True, nogil=True)
def _render_lines(
    l0: int, out_vv: NDArray[np.uint16], out_vh: NDArray[np.uint16], stats: NDArray[np.float64], s: _RenderInputs,
) -> None:
    """DN of lines l0 .. l0 + out.shape[0] - 1 for both polarisations.

    Per pixel: ground point by bilinear interpolation of the forward-geocoded grid
    (``s.grid``), sigma0 from the ground map (``s.ground``), A_sigma (amplitude) bilinearly
    interpolated from the calibration vectors, noise power bilinear from the range vectors
    times the azimuth vector of the pixel's sub-swath (``s.luts``);
    I = (sigma0 A^2 + N) * speckle + point_target_sigma0 * A^2, DN = round(sqrt(I)).
    Pixels before ``zero_near`` / after ``zero_far`` are 0; between those and the valid span
    [valid_first, valid_last] they hold border noise (I = border_level * N * speckle).
    stats[row] = (count, sum DN vv, sum DN^2 vv, sum DN vh, sum DN^2 vh) over DN > 0.
    """
    for r in range(out_vv.shape[0]):
        _render_line(l0 + r, out_vv[r], out_vh[r], stats[r], s)


@numba.njit(cache=True)
def _quicklook_add(dn: NDArray[np.uint16], l0: int, f: int, stride: int, out: NDArray[np.float64], cnt: NDArray[np.float64]) -> None:
    """Accumulate DN^2 of every ``stride``-th line and pixel of ``dn`` (lines l0..) into f x f blocks."""
    nl, ns = dn.shape
    nbc = out.shape[1]
    start = (stride - l0 % stride) % stride
    for r in range(start, nl, stride):
        row = (l0 + r) // f
        if row >= out.shape[0]:
            break
        for c in range(0, min(ns, nbc * f), stride):
            v = float(dn[r, c])
            out[row, c // f] += v * v
            cnt[row, c // f] += 1.0


def _speckle_table(enl: float = ENL, n: int = 65536) -> NDArray[np.float64]:
    """Inverse CDF of Gamma(enl, 1/enl) at u = k/n, k = 0..n (last node at the 1 - 1/(4n)
    quantile), scaled so that linear interpolation between nodes has mean exactly 1."""
    from scipy.special import gammaincinv

    u = np.arange(n + 1, dtype=np.float64) / n
    u[-1] = 1.0 - 0.25 / n
    q = gammaincinv(enl, u) / enl
    q[0] = 0.0
    mean = float(np.mean(0.5 * (q[1:] + q[:-1])))
    return q / mean


def _point_splats(points: dict[str, NDArray[Any]], lines: int) -> _Splats:
    """Bilinear splat of each target over its 4 neighbouring pixels (the weights' centroid is
    the exact position); returns per-line offsets and sorted (pixel, vv, vh) entries."""
    if points["line"].size == 0:
        return _Splats(np.zeros(lines + 1, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    l0 = np.floor(points["line"]).astype(np.int64)
    p0 = np.floor(points["pixel"]).astype(np.int64)
    fl = points["line"] - l0
    fp = points["pixel"] - p0
    ent_l, ent_p, ent_w = [], [], []
    for dl, wl in ((0, 1 - fl), (1, fl)):
        for dp, wp in ((0, 1 - fp), (1, fp)):
            ent_l.append(l0 + dl)
            ent_p.append(p0 + dp)
            ent_w.append(wl * wp)
    el, ep, ew = np.concatenate(ent_l), np.concatenate(ent_p), np.concatenate(ent_w)
    key = el * (1 << 32) + ep
    uniq, inv = np.unique(key, return_inverse=True)
    w = np.bincount(inv, weights=ew)
    ul = uniq >> 32
    up = uniq & 0xFFFFFFFF
    start = np.searchsorted(ul, np.arange(lines + 1)).astype(np.int64)
    vv, vh = (np.asarray(w * s, dtype=np.float64) for s in POINT_TARGET_SIGMA0)
    return _Splats(start, up.astype(np.int64), vv, vh)


def _mapping_grid(
    frame: _Frame, target: _Target, heights: HeightFn | None, step: int, stats: dict[str, Any]
) -> _MappingGrid:
    """Forward-geocoded ground points (tile-CRS x, y) every ``step`` lines and pixels (last line
    and pixel included), plus the last and first line on each side of every polynomial block
    boundary (the geometry jumps there, so no interpolation may span one); the renderer
    interpolates them bilinearly. ``stats`` gets the convergence of the height iteration."""
    b = frame.block_boundaries()
    b = b[(b > 0) & (b < frame.lines - 1)]
    edges = np.concatenate([np.ceil(b) - 1.0, np.ceil(b)]).astype(np.int64)  # last of one block, first of the next
    g_lines = np.unique(np.concatenate([np.arange(0, frame.lines - 1, step), [frame.lines - 1], edges]).astype(np.int64))
    g_pixels = np.append(np.arange(0, frame.samples - 1, step), frame.samples - 1).astype(np.int64)
    gx = np.empty((g_lines.size, g_pixels.size))
    gy = np.empty_like(gx)
    rows_per = max(1, 400_000 // g_pixels.size)
    for r0 in range(0, g_lines.size, rows_per):
        ll, pp = np.meshgrid(g_lines[r0 : r0 + rows_per].astype(np.float64), g_pixels.astype(np.float64), indexing="ij")
        g = _forward_geocode(frame, ll, pp, heights)
        stats["max_height_misfit_m"] = max(stats.get("max_height_misfit_m", 0.0), float(g["misfit"].max()))
        stats["points_off_the_dem_by_1cm"] = stats.get("points_off_the_dem_by_1cm", 0) + int((g["misfit"] > 0.01).sum())
        x, y = target.from_wgs84(g["lon"].ravel(), g["lat"].ravel())
        gx[r0 : r0 + rows_per] = x.reshape(ll.shape)
        gy[r0 : r0 + rows_per] = y.reshape(ll.shape)
    return _MappingGrid(g_lines, g_pixels, gx, gy)


@dataclass
class _ImageStats:
    """Statistics of the measurement DN (over DN > 0) and the quick-look they make."""

    mean: dict[str, float]
    std: dict[str, float]
    quicklook: NDArray[np.float64]  # (2, rows, cols) mean DN^2 of VV, VH


def _render_inputs(
    luts: _Luts, borders: _Borders, ground: GroundMap, grid: _MappingGrid, splats: _Splats, seed: int,
    border_noise: bool,
) -> _RenderInputs:
    """The bundle the measurement kernels read (speckle seeded by ``seed``; border noise at
    0.3 x the noise floor when ``border_noise``, as IPF < 2.9 products)."""
    rows = _LutRows(luts.cal_lines, luts.cal_rows, luts.noise_lines, luts.noise_rows["VV"], luts.noise_rows["VH"],
                    luts.az_rows["VV"], luts.az_rows["VH"], luts.swath_of)
    return _RenderInputs(ground, grid, rows, borders, splats, _speckle_table(), np.uint64(_seed64(seed)),
                         0.3 if border_noise else 0.0)


def _render_measurements(
    paths: dict[str, Path], inputs: _RenderInputs, shape: tuple[int, int], gcps: list[Any],
    tags: dict[str, dict[str, str]], chunk: int = 256,
) -> _ImageStats:
    """Write the VV and VH measurement GeoTIFFs (``shape`` = (lines, samples), uint16 DN,
    uncompressed strips as ESA's, with the GCPs and TIFF tags), ``chunk`` lines at a time;
    returns their statistics and quick-look."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.windows import Window

    nl, ns = shape
    f = max(1, int(round(max(ns / 520.0, nl / 350.0))))
    stride = max(1, f // 4)
    ql = np.zeros((2, (nl + f - 1) // f, max(ns // f, 1)))
    ql_cnt = np.zeros_like(ql)
    totals = np.zeros(5)
    profile = dict(driver="GTiff", width=ns, height=nl, count=1, dtype="uint16", gcps=gcps, crs=CRS.from_epsg(4326))
    out_vv = np.empty((chunk, ns), np.uint16)
    out_vh = np.empty((chunk, ns), np.uint16)
    stats = np.zeros((chunk, 5))
    with rasterio.open(paths["VV"], "w", **profile) as dst_vv, rasterio.open(paths["VH"], "w", **profile) as dst_vh, \
            ThreadPoolExecutor(_threads()) as pool:
        dst_vv.update_tags(**tags["VV"])
        dst_vh.update_tags(**tags["VH"])
        for l0 in range(0, nl, chunk):
            n = min(chunk, nl - l0)
            # the lambda runs inside this iteration (_in_threads waits), so the loop variables are current
            _in_threads(pool, n, lambda a, b: _render_lines(l0 + a, out_vv[a:b], out_vh[a:b], stats[a:b], inputs))  # noqa: B023
            win = Window(0, l0, ns, n)
            dst_vv.write(out_vv[:n], 1, window=win)
            dst_vh.write(out_vh[:n], 1, window=win)
            totals += stats[:n].sum(axis=0)
            _quicklook_add(out_vv[:n], l0, f, stride, ql[0], ql_cnt[0])
            _quicklook_add(out_vh[:n], l0, f, stride, ql[1], ql_cnt[1])
    cnt = max(totals[0], 1.0)
    mean = {"VV": totals[1] / cnt, "VH": totals[3] / cnt}
    std = {
        "VV": math.sqrt(max(totals[2] / cnt - mean["VV"] ** 2, 0.0)),
        "VH": math.sqrt(max(totals[4] / cnt - mean["VH"] ** 2, 0.0)),
    }
    return _ImageStats(mean, std, ql / np.maximum(ql_cnt, 1.0))


def _threads() -> int:
    """Worker threads for the compiled loops (they release the GIL): the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _in_threads(pool: ThreadPoolExecutor, n: int, fn: Callable[[int, int], None]) -> None:
    """Run ``fn(a, b)`` over rows [0, n) split into one block per thread (the compiled kernels
    release the GIL); row 0 runs first on its own so that a first call compiles only once."""
    fn(0, 1)
    if n <= 1:
        return
    edges = np.linspace(1, n, min(_threads(), n - 1) + 1).round().astype(int)
    for f in [pool.submit(fn, int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]:
        f.result()


def _seed64(seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"bigearthnet-s1 simulate {int(seed)}".encode()).digest()[:8], "little")


def _write_truth(
    path: Path, target: _Target, ground: GroundMap, points: dict[str, NDArray[Any]], tags: dict[str, str]
) -> dict[str, Any]:
    """Truth GeoTIFF: band 1 VV, band 2 VH sigma0 (linear, float32) on the target's 10 m grid;
    point targets added to the pixel that holds them. Returns statistics for the JSON."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.windows import Window

    (x0, y0), (ny, nx) = target.truth_origin, target.truth_shape
    transform = Affine(10.0, 0.0, x0, 0.0, -10.0, y0)
    profile = dict(
        driver="GTiff", width=nx, height=ny, count=2, dtype="float32", crs=CRS.from_epsg(target.epsg),
        transform=transform, tiled=True, blockxsize=512, blockysize=512, compress="zstd", zstd_level=1,
        interleave="band",
    )
    counts = np.zeros(len(LAND_CLASSES), np.int64)
    pc = np.floor((points["x"] - x0) / 10.0).astype(np.int64)
    pr = np.floor((y0 - points["y"]) / 10.0).astype(np.int64)
    with rasterio.open(path, "w", **profile) as dst:
        dst.set_band_description(1, "VV")
        dst.set_band_description(2, "VH")
        dst.update_tags(**tags)
        step = 1024
        for r0 in range(0, ny, step):
            n = min(step, ny - r0)
            vv = np.empty((n, nx), np.float32)
            vh = np.empty((n, nx), np.float32)
            cls = np.empty((n, nx), np.uint8)
            with ThreadPoolExecutor(_threads()) as pool:
                # the lambda runs inside this iteration (_in_threads waits), so r0/vv/vh/cls are current
                _in_threads(pool, n, lambda a, b: _render_truth(ground, x0, y0 - (r0 + a) * 10.0, 10.0,  # noqa: B023
                                                                vv[a:b], vh[a:b], cls[a:b]))  # noqa: B023
            sel = (pr >= r0) & (pr < r0 + n) & (pc >= 0) & (pc < nx)
            vv[pr[sel] - r0, pc[sel]] += POINT_TARGET_SIGMA0[0]
            vh[pr[sel] - r0, pc[sel]] += POINT_TARGET_SIGMA0[1]
            counts += np.bincount(cls.ravel(), minlength=len(LAND_CLASSES))
            dst.write(vv, 1, window=Window(0, r0, nx, n))
            dst.write(vh, 2, window=Window(0, r0, nx, n))
    return {"class_pixels": {LAND_CLASSES[i][0]: int(c) for i, c in enumerate(counts)}, "transform": list(transform)[:6]}
