"""Benchmark: terrain correction of one whole S2 tile (10,980 x 10,980 px at 10 m) from one
full-size dual-pol scene, and a comparison with sarsen on a 2000 x 2000 sub-grid.

Geometry: the real S1B annotation from the pinned sarsen 0.9.6 release (``bigearthnet_s1.testdata``,
fetched and verified on first use; orbit, srgr polynomials; a
26,102 x 16,705 px scene over central Italy) and the S2 tile 33TUG inside it. DEM: a synthetic
1 arc-second GeoTIFF in EPSG:9707 (EGM96 heights, so the geoid path runs) with relief up to
about 1,700 m. Image: synthetic linear values (VV, VH) over the radar window the tile needs.

The tile run happens in a child process (numba's compiled kernel comes from its on-disk cache,
warmed by a first tiny call that is timed separately); the child reports its wall time and
peak memory (``ru_maxrss``), which includes the radar window (~1 GB) and the two output
bands (~1 GB) besides terrain correction's own working memory. Targets: < 20 s, < 4 GB.

sarsen 0.9.6 runs ``terrain_correction`` on a copy of the product whose measurement holds
synthetic DNs in the sub-grid's window, with the DEM put on the sub-grid as ellipsoidal
heights (sarsen outputs on the DEM's grid); ours runs on the same DEM file, grid and input.

The child then times the layover/shadow mask of the whole tile (image and output freed
first). Steep terrain: on a 1000 x 1000 px sub-grid over a synthetic DEM of ridges with 45 deg
flanks and 2,000 m of relief (EGM96, 1"), the coordinate model's (line, pixel) against the
exact range-Doppler solution at every pixel (the DEM's bilinear height + geoid there): p50,
p99, max in px, and the largest height difference.

Run: ``.venv/bin/python bench/bench_terrain.py [--against GIT_REV]`` (about 3-4 minutes; 2 cores;
~5 GB peak). ``--against a007b52`` also times the whole tile with the geocoding module of that
revision (before heights were sampled once and the conventions existed), in the same child
process after ours, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from bigearthnet_s1 import testdata

ROOT = Path(__file__).resolve().parents[1]
SAFE = testdata.s1b_rome_safe()  # real S1B metadata (cached after the first run)
TILE_ID = "33TUG"
N = 10980
SUB = 2000


def tile_grid() -> tuple[int, Affine]:
    from bigearthnet_s1.tiles import mgrs_tile_origin

    epsg, ulx, uly = mgrs_tile_origin(TILE_ID)
    return epsg, Affine(10.0, 0.0, ulx, 0.0, -10.0, uly)


def write_dem(path: Path) -> None:
    """Synthetic terrain (EGM96 heights, int16, 1"): ridges and valleys at several scales."""
    step = 1.0 / 3600.0
    lon0, lat1, lon1, lat0 = 12.40, 42.60, 14.10, 41.30
    w, h = round((lon1 - lon0) / step), round((lat1 - lat0) / step)
    lon = lon0 + (np.arange(w) + 0.5) * step
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="int16", nodata=-32768,
                       crs="EPSG:9707", transform=Affine(step, 0, lon0, 0, -step, lat1), tiled=True,
                       blockxsize=512, blockysize=512, compress="deflate") as ds:
        for r0 in range(0, h, 512):
            lat = lat1 - (np.arange(r0, min(h, r0 + 512)) + 0.5) * step
            LA, LO = np.meshgrid(lat, lon, indexing="ij")
            z = (600 + 500 * np.sin(LO * 9.1) * np.cos(LA * 7.3) + 350 * np.sin(LO * 41.0 + LA * 23.0)
                 + 120 * np.sin(LO * 173.0) * np.sin(LA * 151.0) + 25 * np.sin(LO * 900.0 + LA * 700.0))
            ds.write(np.clip(z, 0, None).astype(np.int16)[None], window=((r0, r0 + z.shape[0]), (0, w)))


def child(args: argparse.Namespace) -> None:
    """Terrain-correct the whole tile; print JSON figures."""
    from rasterio.windows import Window

    from bigearthnet_s1 import geocoding as G
    from bigearthnet_s1 import layover as L
    from bigearthnet_s1.dem import open_dem
    from bigearthnet_s1.safe import open_safe

    ann = open_safe(SAFE).annotation("VV")
    epsg, t = tile_grid()
    dem = open_dem(args.dem)
    rwin = Window(*json.loads(args.window))
    h, w = int(rwin.height), int(rwin.width)
    rng = np.random.default_rng(0)
    img = np.empty((2, h, w), dtype=np.float32)
    for k, scale in ((0, 0.1), (1, 0.02)):
        img[k] = rng.random((h, w), dtype=np.float32)
        img[k] *= scale
        img[k] += 0.1 * scale
    # warm-up: numba kernels from the cache (or compiled), tiny grid
    t0 = time.perf_counter()
    small_t = t @ Affine.translation(N // 2, N // 2)
    G.terrain_correct(img, rwin, ann, dem, crs=epsg, transform=small_t, shape=(64, 64))
    warm = time.perf_counter() - t0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = ru0.ru_maxrss
    load0 = os.getloadavg()[0]
    stats = G.GeocodingStats()
    t0 = time.perf_counter()
    c_start = time.process_time()
    out = G.terrain_correct(img, rwin, ann, dem, crs=epsg, transform=t, shape=(N, N), stats=stats)
    wall = time.perf_counter() - t0
    cpu_proc = time.process_time() - c_start
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    rss = ru1.ru_maxrss
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    figures = {
        "wall_s": wall, "cpu_s": cpu, "load_before": load0, "load_after": os.getloadavg()[0], "warmup_s": warm,
        "maxrss_gb": rss / 1024**2, "rss_before_gb": rss_before / 1024**2,
        "valid_fraction": float(np.isfinite(out[0]).mean()), "blocks": stats.blocks, "skipped": stats.skipped,
        "steps": stats.steps, "max_model_error_px": stats.max_error_px, "exact_points": stats.exact_points,
        "boundary_pixels": stats.boundary_pixels, "image_gb": img.nbytes / 1024**3, "output_gb": out.nbytes / 1024**3,
        "process_cpu_s": cpu_proc,
    }
    del out
    if args.ref_module:
        # the same tile through a reference implementation (an earlier geocoding.py), after ours
        import importlib.util

        spec = importlib.util.spec_from_file_location("geocoding_ref", args.ref_module)
        assert spec is not None and spec.loader is not None
        R = importlib.util.module_from_spec(spec)
        sys.modules["geocoding_ref"] = R  # dataclasses look their module up
        spec.loader.exec_module(R)
        R.terrain_correct(img, rwin, ann, dem, crs=epsg, transform=small_t, shape=(64, 64))
        t0, c0 = time.perf_counter(), time.process_time()
        ref = R.terrain_correct(img, rwin, ann, dem, crs=epsg, transform=t, shape=(N, N))
        figures.update(ref_wall_s=time.perf_counter() - t0, ref_cpu_s=time.process_time() - c0)
        del ref
    del img
    t0 = time.perf_counter()
    c0 = time.process_time()
    mask = L.layover_shadow_mask(ann, dem, crs=epsg, transform=t, shape=(N, N))
    figures.update(mask_wall_s=time.perf_counter() - t0, mask_cpu_s=time.process_time() - c0,
                   layover_fraction=float(np.mean(mask & 1)), shadow_fraction=float(np.mean((mask & 2) > 0)),
                   maxrss_after_mask_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
    print(json.dumps(figures))


def sarsen_compare(tmp: Path, dem_path: Path) -> dict:
    import sarsen

    from bigearthnet_s1 import geocoding as G
    from bigearthnet_s1.dem import RasterDem, open_dem
    from bigearthnet_s1.safe import open_safe

    ann = open_safe(SAFE).annotation("VV")
    epsg, t = tile_grid()
    sub_t = t @ Affine.translation(3000, 3000)
    heights = open_dem(dem_path).heights(epsg, sub_t, (SUB, SUB))
    sub_dem = tmp / "sub_dem_ellipsoidal.tif"
    with rasterio.open(sub_dem, "w", driver="GTiff", width=SUB, height=SUB, count=1, dtype="float32", crs=epsg,
                       transform=sub_t, tiled=True, blockxsize=512, blockysize=512) as ds:
        ds.write(heights, 1)
    dem = RasterDem(sub_dem, vertical="ellipsoid")
    rwin = G.radar_window_for_grid(ann, dem, crs=epsg, transform=sub_t, shape=(SUB, SUB), margin=8)
    safe = tmp / SAFE.name
    shutil.copytree(SAFE, safe, ignore=shutil.ignore_patterns("*.tiff"))
    meas = next((SAFE / "measurement").iterdir()).name
    rng = np.random.default_rng(1)
    dn = (50 + 200 * rng.random((int(rwin.height), int(rwin.width)))).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(safe / "measurement" / meas, "w", driver="GTiff", width=ann.samples, height=ann.lines,
                           count=1, dtype="uint16", tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                           sparse_ok=True) as ds:
            ds.write(dn, 1, window=rwin)
        product = sarsen.Sentinel1SarProduct(str(safe), measurement_group="IW/VV")
        beta0 = product.beta_nought().isel(
            azimuth_time=slice(int(rwin.row_off), int(rwin.row_off + rwin.height)),
            ground_range=slice(int(rwin.col_off), int(rwin.col_off + rwin.width))).values.astype(np.float32)
        t0 = time.perf_counter()
        gtc = sarsen.terrain_correction(product, str(sub_dem), output_urlpath=str(tmp / "GTC.tif"),
                                        interp_method="linear")
        theirs = gtc.values
        t_sarsen = time.perf_counter() - t0
    G.terrain_correct(beta0, rwin, ann, dem, crs=epsg, transform=sub_t, shape=(64, 64))  # warm
    t0 = time.perf_counter()
    G.terrain_correct(beta0, rwin, ann, dem, crs=epsg, transform=sub_t, shape=(SUB, SUB))
    t_ours = time.perf_counter() - t0
    # the values are compared in sarsen's own geometry convention (the input is noise: in the
    # esa convention every pixel moves by ~0.2 px, which noise turns into dB differences)
    ours = G.terrain_correct(beta0, rwin, ann, dem, crs=epsg, transform=sub_t, shape=(SUB, SUB), convention="sarsen")
    if gtc.y.values[0] < gtc.y.values[-1]:
        theirs = theirs[::-1]
    ok = np.isfinite(ours) & np.isfinite(theirs) & (ours > 0) & (theirs > 0)
    d_db = 10 * np.log10(ours[ok] / theirs[ok])
    return {"sarsen_s": t_sarsen, "ours_s": t_ours, "ratio": t_sarsen / t_ours,
            "sarsen_mpx_s": SUB * SUB / t_sarsen / 1e6, "ours_mpx_s": SUB * SUB / t_ours / 1e6,
            "median_abs_db_diff": float(np.median(np.abs(d_db))), "compared_px": int(ok.sum())}


def steep_figures(tmp: Path) -> dict:
    """Coordinate model vs the exact solution at every pixel of a 1000 x 1000 px sub-grid of the
    tile over 2,000 m ridges with 45 deg flanks (module doc)."""
    import pyproj
    from scipy import ndimage

    from bigearthnet_s1 import geocoding as G
    from bigearthnet_s1.dem import egm96_undulation, open_dem
    from bigearthnet_s1.radar_geometry import RadarGeometry
    from bigearthnet_s1.safe import open_safe

    ann = open_safe(SAFE).annotation("VV")
    epsg, t = tile_grid()
    n = 1000
    sub_t = t @ Affine.translation(6000, 6000)
    x0, y0 = sub_t.c, sub_t.f
    to_ll = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True)
    lon_c, lat_c = to_ll.transform(x0 + 5000.0, y0 - 5000.0)
    step = 1.0 / 3600.0
    lon0, lat1 = lon_c - 0.12, lat_c + 0.09
    w, h = round(0.24 / step), round(0.18 / step)
    lo, la = np.meshgrid(lon0 + (np.arange(w) + 0.5) * step, lat1 - (np.arange(h) + 0.5) * step)
    x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(lo, la)
    u1 = x - x0 - 5000.0
    u2 = (x - x0) * 0.6 - (y - y0) * 0.8 + 3000.0
    z = 150.0 + np.maximum(np.clip(2000.0 - np.abs(u1), 0, None), np.clip(1800.0 - np.abs(np.mod(u2, 5200.0) - 2600.0), 0, None))
    path = tmp / "ridges_egm96.tif"
    dt = Affine(step, 0, lon0, 0, -step, lat1)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", crs="EPSG:9707",
                       transform=dt) as ds:
        ds.write(z.astype(np.float32), 1)
    t0 = time.perf_counter()
    line, pixel, hgt = G.radar_coordinates(ann, open_dem(path), crs=epsg, transform=sub_t, shape=(n, n), heights=True)
    t_model = time.perf_counter() - t0
    rr, cc = np.mgrid[0:n, 0:n].astype(np.float64)
    xs, ys = sub_t @ (cc + 0.5, rr + 0.5)
    plon, plat = to_ll.transform(xs, ys)
    col, row = ~dt @ (plon, plat)
    href = ndimage.map_coordinates(z, [row - 0.5, col - 0.5], order=1) + egm96_undulation(plon, plat)
    t0 = time.perf_counter()
    le, pe = RadarGeometry.from_annotation(ann).solve(plon.ravel(), plat.ravel(), href.ravel())
    t_exact = time.perf_counter() - t0
    err = np.hypot(line.ravel() - le, pixel.ravel() - pe)
    return {"relief_m": float(z.max() - z.min()), "p50": float(np.median(err)), "p99": float(np.percentile(err, 99)),
            "max": float(err.max()), "height_max_m": float(np.abs(hgt - href).max()), "model_s": t_model,
            "exact_s": t_exact}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--dem")
    ap.add_argument("--window")
    ap.add_argument("--no-sarsen", action="store_true")
    ap.add_argument("--against", metavar="GIT_REV",
                    help="also time the whole tile with geocoding.py of this git revision (side by side, CPU ratio)")
    ap.add_argument("--ref-module", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    from bigearthnet_s1 import geocoding as G
    from bigearthnet_s1.dem import open_dem
    from bigearthnet_s1.safe import open_safe

    with tempfile.TemporaryDirectory(prefix="bench-terrain-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        dem_path = tmp / "dem_egm96_1arcsec.tif"
        write_dem(dem_path)
        ann = open_safe(SAFE).annotation("VV")
        epsg, t = tile_grid()
        t1 = time.perf_counter()
        rwin = G.radar_window_for_grid(ann, open_dem(dem_path), crs=epsg, transform=t, shape=(N, N))
        t_win = time.perf_counter() - t1
        print(f"setup: synthetic DEM written in {t1 - t0:.1f} s; radar window {rwin} found in {t_win:.2f} s")
        win_json = json.dumps([int(rwin.col_off), int(rwin.row_off), int(rwin.width), int(rwin.height)])
        extra = []
        if args.against:
            ref_src = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.against}:src/bigearthnet_s1/geocoding.py"],
                                     check=True, capture_output=True, text=True).stdout
            (tmp / "geocoding_ref.py").write_text(ref_src)
            extra = ["--ref-module", str(tmp / "geocoding_ref.py")]
        res = subprocess.run([sys.executable, __file__, "--child", "--dem", str(dem_path), "--window", win_json, *extra],
                             check=True, capture_output=True, text=True)
        fig = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"whole tile {TILE_ID}: {N} x {N} px from a {rwin.width} x {rwin.height} px dual-pol radar window")
        print(f"  terrain correction (DEM read + geoid + model + 2 bands): {fig['wall_s']:.2f} s wall "
              f"({N * N / fig['wall_s'] / 1e6:.1f} Mpx/s), {fig['cpu_s']:.1f} s CPU   target < 20 s")
        print(f"  machine load average {fig['load_before']:.1f} -> {fig['load_after']:.1f} on {os.cpu_count()} cores "
              f"(other processes share them: wall time above grows with it)")
        print(f"  peak memory of the child process: {fig['maxrss_gb']:.2f} GB (before: {fig['rss_before_gb']:.2f} GB; "
              f"image {fig['image_gb']:.2f} GB, output {fig['output_gb']:.2f} GB)   target < 4 GB")
        print(f"  coordinate model: {fig['blocks']} blocks ({fig['skipped']} skipped), steps {fig['steps']}, "
              f"{fig['exact_points']} exact solutions, max check error {fig['max_model_error_px']:.4f} px")
        print(f"  valid output fraction {fig['valid_fraction']:.3f}; warm-up call {fig['warmup_s']:.1f} s; "
              f"{fig['boundary_pixels']} pixels at polynomial block boundaries solved exactly")
        if "ref_cpu_s" in fig:
            print(f"  against geocoding.py of {args.against} on the same tile, same process: {fig['ref_wall_s']:.2f} s wall, "
                  f"{fig['ref_cpu_s']:.1f} s CPU; ours / theirs: {fig['process_cpu_s'] / fig['ref_cpu_s']:.2f} in CPU time, "
                  f"{fig['wall_s'] / fig['ref_wall_s']:.2f} in wall time (target < 2)")
        print(f"  layover/shadow mask of the whole tile: {fig['mask_wall_s']:.2f} s wall, {fig['mask_cpu_s']:.1f} s CPU; "
              f"layover {100 * fig['layover_fraction']:.2f} %, shadow {100 * fig['shadow_fraction']:.2f} % of the tile; "
              f"peak memory {fig['maxrss_after_mask_gb']:.2f} GB")
        st = steep_figures(tmp)
        print(f"steep terrain ({st['relief_m']:.0f} m relief, 45 deg ridges), 1000 x 1000 px vs the exact solution "
              f"per pixel: p50 {st['p50']:.4f} px, p99 {st['p99']:.4f} px (target < 0.02), max {st['max']:.4f} px "
              f"(target < 0.05); heights within {st['height_max_m']:.3f} m of the DEM's bilinear value + geoid "
              f"(target < 0.05 m); model {st['model_s']:.2f} s, exact solution {st['exact_s']:.1f} s")
        if not args.no_sarsen:
            c = sarsen_compare(tmp, dem_path)
            print(f"sub-grid {SUB} x {SUB}: sarsen {c['sarsen_s']:.1f} s ({c['sarsen_mpx_s']:.3f} Mpx/s), "
                  f"ours {c['ours_s']:.2f} s ({c['ours_mpx_s']:.1f} Mpx/s): ratio {c['ratio']:.0f}x "
                  f"(goal >= 10x, aim 50x); median |dB difference| {c['median_abs_db_diff']:.4f} "
                  f"over {c['compared_px']} px (ours in sarsen's convention)")
            print(f"  sarsen on the whole tile at its sub-grid rate: ~{N * N / c['sarsen_mpx_s'] / 1e6 / 60:.0f} min; "
                  f"whole-tile ratio ~{N * N / c['sarsen_mpx_s'] / 1e6 / fig['wall_s']:.0f}x")


if __name__ == "__main__":
    main()
