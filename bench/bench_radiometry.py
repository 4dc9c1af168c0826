"""Benchmark of the radar-geometry chain (border noise, thermal noise, calibration, Refined Lee).

Input: a full-size IW GRDH dual-polarisation scene built here from the real S1B Rome
metadata (pinned sarsen 0.9.6 release via ``bigearthnet_s1.testdata``; the VH metadata is the
VV metadata relabelled) with
synthetic speckled DN (uncompressed striped GeoTIFF like ESA's, zero no-value margins).

Each measurement runs in its own child process; peak memory is the child's
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (includes numpy, numba and GDAL allocations,
unlike tracemalloc). Measured:
- ours, whole chain, tile-sized window (11,000 x 11,000 px), both polarisations
- ours, whole chain, full scene, both polarisations
- ours, calibration only (sigma0 from DN, no noise removal or filter), tile window, VV
- xarray-sentinel 0.9.6 ``calibrate_intensity`` on the same tile window, VV

Usage: python bench/bench_radiometry.py [--workdir DIR] [--keep] [--skip-full]
Targets (issue #5): tile window, both pols, < 20 s and < 4 GB peak on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
S1B = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
TILE = (7000, 2800, 11000, 11000)  # col_off, row_off, width, height


# ------------------------------------------------------------------------------- scene
def build_scene(workdir: Path) -> Path:
    """Copy the S1B metadata, add VH files, write synthetic DN for VV and VH."""
    import rasterio
    import rasterio.errors

    from bigearthnet_s1 import testdata

    src = testdata.s1b_rome_safe()
    assert src.name == S1B
    dst = workdir / S1B
    if (dst / ".complete").exists():
        return dst
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tiff"))
    for d in [dst, *dst.rglob("*")]:  # the cache is read-only; so would be the copy
        d.chmod(d.stat().st_mode | 0o200)
    for f in list(dst.rglob("*-vv-*.xml")):
        vh = f.with_name(f.name.replace("-vv-", "-vh-").replace("-001.xml", "-002.xml"))
        text = f.read_text().replace("<polarisation>VV</polarisation>", "<polarisation>VH</polarisation>")
        vh.write_text(re.sub(r"<imageNumber>001</imageNumber>", "<imageNumber>002</imageNumber>", text))
    lines, samples = 16705, 26102
    rng = np.random.default_rng(0)
    rows_per_block = 512
    cols = np.arange(samples)
    # a smooth sigma0 pattern (fields of ~1-2 km) times 4.4-look speckle, through A ~ 660 and N ~ 2000
    for pol, s0_mean in (("VV", 0.06), ("VH", 0.012)):
        name = f"s1b-iw-grd-{pol.lower()}-20211223t051122-20211223t051147-030148-039993-{'001' if pol == 'VV' else '002'}.tiff"
        blocks = []
        for k in range(3):
            pattern = s0_mean * (1 + 0.6 * np.sin(cols / 150.0 + k)[None, :] * np.cos(np.arange(rows_per_block) / 97.0 + k)[:, None])
            s0 = pattern * rng.gamma(4.4, 1 / 4.4, size=(rows_per_block, samples))
            dn = np.sqrt(s0 * 660.0**2 + 2000.0)
            blocks.append(np.clip(np.rint(dn), 1, 65535).astype(np.uint16))
        profile = dict(driver="GTiff", width=samples, height=lines, count=1, dtype="uint16")  # striped, uncompressed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(dst / "measurement" / name, "w", **profile)
        with ds:
            for i, r0 in enumerate(range(0, lines, rows_per_block)):
                h = min(rows_per_block, lines - r0)
                block = np.roll(blocks[i % 3][:h], 37 * i, axis=1)
                block[:, :60] = 0  # no-value margins (IPF >= 2.90 writes them as 0)
                block[:, samples - 45:] = 0
                ds.write(block, 1, window=rasterio.windows.Window(0, r0, samples, h))
    (dst / ".complete").touch()
    return dst


# ------------------------------------------------------------------------------- children
def _child(kind: str, safe: str) -> dict:
    from rasterio.windows import Window

    from bigearthnet_s1.radiometry import radar_chain
    from bigearthnet_s1.safe import open_safe

    p = open_safe(safe)
    tile = Window(*TILE)
    # warm-up (loads numba's on-disk cache; parses the XML once), not timed
    radar_chain(p, "VV", Window(1000, 1000, 64, 64))
    t0 = time.perf_counter()
    info: dict = {}
    if kind == "chain_tile_both":
        for pol in ("VV", "VH"):
            out = radar_chain(p, pol, tile)
            info[pol] = float(np.nanmean(out[::50, ::50]))
            del out
    elif kind == "chain_full_both":
        for pol in ("VV", "VH"):
            out = radar_chain(p, pol, None)
            info[pol] = float(np.nanmean(out[::100, ::100]))
            del out
    elif kind == "ours_calibrate_tile_vv":
        out = radar_chain(p, "VV", tile, border=False, thermal=False, speckle=None)
        info["VV"] = float(np.nanmean(out[::50, ::50]))
    elif kind == "xarray_sentinel_tile_vv":
        import xarray as xr
        import xarray_sentinel

        ds = xr.open_dataset(safe, engine="sentinel-1", group="IW/VV")
        cal = xr.open_dataset(safe, engine="sentinel-1", group="IW/VV/calibration")
        c, r, w, h = TILE
        dn = ds.measurement.isel(azimuth_time=slice(r, r + h), ground_range=slice(c, c + w))
        out = xarray_sentinel.calibrate_intensity(dn, cal.sigmaNought).values
        info["VV"] = float(np.nanmean(out[::50, ::50]))
    else:
        raise SystemExit(f"unknown measurement {kind}")
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"kind": kind, "seconds": seconds, "peak_gb": peak_kb / 1024**2, "check": info}


def measure(kind: str, safe: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(safe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"measurement {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated scene")
    ap.add_argument("--skip-full", action="store_true", help="skip the full-scene measurement")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SAFE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_radiometry_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        safe = build_scene(workdir)
        print(f"scene: {safe.name} VV+VH, 26102 x 16705 px per pol, synthetic DN "
              f"(built in {time.perf_counter() - t:.1f} s) in {workdir}")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
        # compile numba kernels into the on-disk cache once, outside the measurements
        subprocess.run([sys.executable, "-c", "import numpy as np; from bigearthnet_s1 import speckle, radiometry as r;"
                        "x=np.random.rand(40,40).astype('f4');[speckle.speckle_filter(x,f) for f in speckle.FILTERS];"
                        "r.to_db(x); r.calibrate(np.ones((4,4),'u2'),np.ones((4,4),'f4'),np.ones((4,4),'f4'))"],
                       check=True)
        results = {}
        kinds = ["chain_tile_both", "ours_calibrate_tile_vv", "xarray_sentinel_tile_vv"]
        if not args.skip_full:
            kinds.insert(1, "chain_full_both")
        labels = {
            "chain_tile_both": "ours: whole chain, 11000x11000 window, VV+VH",
            "chain_full_both": "ours: whole chain, full scene 26102x16705, VV+VH",
            "ours_calibrate_tile_vv": "ours: sigma0 calibration only, 11000x11000 window, VV",
            "xarray_sentinel_tile_vv": "xarray-sentinel calibrate_intensity, 11000x11000 window, VV",
        }
        print(f"{'measurement':<62} {'time s':>8} {'peak GB':>8}")
        for k in kinds:
            r = measure(k, safe)
            results[k] = r
            print(f"{labels[k]:<62} {r['seconds']:8.1f} {r['peak_gb']:8.2f}", flush=True)
        tile = results["chain_tile_both"]
        xs = results["xarray_sentinel_tile_vv"]
        ours_cal = results["ours_calibrate_tile_vv"]
        print(f"target (tile window, both pols): < 20 s and < 4 GB -> "
              f"{'MET' if tile['seconds'] < 20 and tile['peak_gb'] < 4 else 'NOT MET'}")
        print(f"ratio xarray-sentinel / ours, calibration only, same window (VV): "
              f"time {xs['seconds'] / ours_cal['seconds']:.1f}x, peak memory {xs['peak_gb'] / ours_cal['peak_gb']:.1f}x")
        print(f"ratio xarray-sentinel (VV, calibration only) / ours (VV+VH, whole chain), same window: "
              f"time {xs['seconds'] / tile['seconds']:.2f}x, peak memory {xs['peak_gb'] / tile['peak_gb']:.2f}x")
        same = abs(xs["check"]["VV"] / ours_cal["check"]["VV"] - 1)
        print(f"check: mean sigma0 of the window, ours vs xarray-sentinel: relative difference {same:.1e}")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
