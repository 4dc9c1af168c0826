"""Benchmark of the scene simulator (issue #8: a full-size product in under 2 minutes).

Measured, each in its own child process (wall time and peak RSS of the child, numba's cache
warmed first so that compilation is not counted):
- full: a whole IW slice (~26,000 x 16,800 px per polarisation, VV+VH, uncompressed striped
  GeoTIFFs as ESA's, plus the truth GeoTIFF over the whole 33UUP tile), flat;
- full + zip: the same with its .zip;
- small: the BigEarthNet example patch of 33UUP plus 5 km (~1,300 x 1,300 px), as the demo;
- small + DEM: 4 x 4 km plus 1.5 km on the real Rome DEM.

Usage: python bench/bench_simulate.py [--workdir DIR] [--keep] [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bigearthnet_s1 import testdata

REPO = Path(__file__).resolve().parents[1]
ROME_DEM = testdata.rome_dem()  # real DEM of the pinned sarsen 0.9.6 release (cached after the first run)

CHILD = r"""
import json, sys, time, resource
from datetime import UTC, datetime
from bigearthnet_s1 import simulate, tiles
case, out = sys.argv[1], sys.argv[2]
epsg, ulx, uly = tiles.mgrs_tile_origin("33UUP")
grid = tiles.TileGrid(epsg, ulx, uly)
x0, y0, x1, y1 = grid.patch_bounds(87, 48)
patch = tiles.Patch("S2A_MSIL2A_20170613T101031_87_48", 87, 48, (), x0, y0, x1, y1)
when = datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC)
start = "2017-06-13T16:50:43"
t0 = time.perf_counter()
if case.startswith("full"):
    tile = tiles.TileAcquisition("33UUP", when, None, grid, ())
    safe = simulate.simulate_product(out, tile=tile, time=start, size="full", pass_direction="auto",
                                     zip=case.endswith("zip"), overwrite=True)
elif case == "small":
    tile = tiles.TileAcquisition("33UUP", when, None, grid, (patch,))
    safe = simulate.simulate_product(out, tile=tile, time=start, pass_direction="auto", overwrite=True)
elif case == "small-dem":
    safe = simulate.simulate_product(out, bounds_wgs84=(12.48, 41.98, 12.52, 42.02), time="2021-12-23T05:11:22.594441",
                                     pass_direction="auto", dem=sys.argv[3], margin_m=1500.0, overwrite=True)
else:
    raise SystemExit(f"unknown case {case}")
dt = time.perf_counter() - t0
truth = json.loads((safe.parent / (safe.name[:-5] + ".truth.json")).read_text())
size = sum(f.stat().st_size for f in safe.rglob("*") if f.is_file())
print(json.dumps({"seconds": dt, "lines": truth["lines"], "samples": truth["samples"], "name": safe.name,
                  "safe_mb": size / 1e6, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_case(case: str, workdir: Path) -> dict:
    out = workdir / case
    args = [sys.executable, "-c", CHILD, case, str(out)] + ([str(ROME_DEM)] if case == "small-dem" else [])
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{case} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    if not getattr(run_case, "keep", False):
        shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the products")
    ap.add_argument("--skip-full", action="store_true", help="only the small cases")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run_case.keep = args.keep  # type: ignore[attr-defined]
    try:
        print("warming numba's cache ...", flush=True)
        run_case("small", workdir)
        cases = ["small", "small-dem"] + ([] if args.skip_full else ["full", "full-zip"])
        for case in cases:
            r = run_case(case, workdir)
            px = r["lines"] * r["samples"]
            print(f"{case:10s} {r['samples']:6d} x {r['lines']:6d} px x 2 pols: simulate_product {r['seconds']:6.1f} s "
                  f"(process {r['process_seconds']:5.1f} s), {2 * px / r['seconds'] / 1e6:6.1f} Mpx/s, "
                  f"SAFE {r['safe_mb']:7.1f} MB, peak RSS {r['rss_mb']:6.0f} MB", flush=True)
            if case == "full":
                verdict = "OK" if r["seconds"] < 120 else "TOO SLOW"
                print(f"  target (issue #8): full-size product < 120 s -> {verdict}", flush=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average now: {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())} on "
          f"{__import__('os').cpu_count()} CPUs; self RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
