"""Benchmark of the scene simulator (issue #8: a full-size product in under 2 minutes).

Measured, each in its own child process (wall and CPU time of ``simulate_product``, peak RSS
of the child, numba's cache warmed first so that compilation is not counted):
- full: a whole IW slice (~26,000 x 16,800 px per polarisation, VV+VH, uncompressed striped
  GeoTIFFs as ESA's, plus the truth GeoTIFF over the whole 33UUP tile), flat;
- full + zip: the same with its .zip;
- small: the BigEarthNet example patch of 33UUP plus 5 km (~1,300 x 1,300 px), as the demo;
- small + DEM: 4 x 4 km plus 1.5 km on the real Rome DEM.

``--against REV`` also runs every case with the library of git revision REV (its
``src/bigearthnet_s1`` extracted to a temporary folder and put first on the child's
PYTHONPATH), alternating ours and theirs ``--repeat`` times, prints the ratios of the best
times (ours / theirs: wall, CPU, and CPU inside the measurement kernel ``_render_lines``, summed
over its threads, which I/O and other processes disturb least) and says whether the two products are byte-identical (every file of the
SAFE, the truth GeoTIFF and JSON, the zip's members): a refactoring must leave them so.

Usage: python bench/bench_simulate.py [--workdir DIR] [--keep] [--skip-full] [--against REV [--repeat N]]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from bigearthnet_s1 import testdata

REPO = Path(__file__).resolve().parents[1]
ROME_DEM = testdata.rome_dem()  # real DEM of the pinned sarsen 0.9.6 release (cached after the first run)

CHILD = r"""
import importlib, json, sys, threading, time, resource
from datetime import UTC, datetime
from bigearthnet_s1 import simulate, tiles
case, out = sys.argv[1], sys.argv[2]
# CPU time inside the measurement kernel (summed over threads), whatever its signature: the
# module that renders the measurements looks _render_lines up at each call
kernel, lock = [0.0], threading.Lock()
for name in ("bigearthnet_s1.simulate.render", "bigearthnet_s1.simulate"):
    try:
        mod = importlib.import_module(name)
    except ImportError:
        continue
    if hasattr(mod, "_render_lines") and hasattr(mod, "_render_measurements"):
        untimed = mod._render_lines
        def timed(*args):
            t = time.thread_time()
            untimed(*args)
            with lock:
                kernel[0] += time.thread_time() - t
        mod._render_lines = timed
        break
epsg, ulx, uly = tiles.mgrs_tile_origin("33UUP")
grid = tiles.TileGrid(epsg, ulx, uly)
x0, y0, x1, y1 = grid.patch_bounds(87, 48)
patch = tiles.Patch("S2A_MSIL2A_20170613T101031_87_48", 87, 48, (), x0, y0, x1, y1)
when = datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC)
start = "2017-06-13T16:50:43"
t0, c0 = time.perf_counter(), time.process_time()
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
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
truth = json.loads((safe.parent / (safe.name[:-5] + ".truth.json")).read_text())
size = sum(f.stat().st_size for f in safe.rglob("*") if f.is_file())
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "kernel_cpu_seconds": kernel[0], "lines": truth["lines"], "samples": truth["samples"],
                  "name": safe.name, "safe_mb": size / 1e6,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "module": simulate.__file__}))
"""


def run_case(case: str, out: Path, pythonpath: Path | None = None) -> dict:
    """One case in a child process; ``pythonpath``: the ``src`` folder of another revision."""
    args = [sys.executable, "-c", CHILD, case, str(out)] + ([str(ROME_DEM)] if case == "small-dem" else [])
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{case} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    if pythonpath is not None and not result["module"].startswith(str(pythonpath)):
        raise SystemExit(f"{case}: the child imported {result['module']}, not the revision under {pythonpath}")
    return result


def digests(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``folder``; of a zip, of its members' names,
    compression and bytes (a zip records its members' modification times, which differ
    between two runs)."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h = hashlib.sha256()
        if f.suffix == ".zip":
            with zipfile.ZipFile(f) as zf:
                for info in zf.infolist():
                    h.update(f"{info.filename} {info.compress_type} {info.CRC}\n".encode())
                    h.update(zf.read(info))
        else:
            h.update(f.read_bytes())
        out[f.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def extract_revision(rev: str, dest: Path) -> Path:
    """``src/bigearthnet_s1`` of git revision ``rev`` under ``dest``; returns the ``src`` folder."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "src/bigearthnet_s1"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.extractall(dest, filter="data")
    return dest / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the products")
    ap.add_argument("--skip-full", action="store_true", help="only the small cases")
    ap.add_argument("--against", metavar="GIT_REV", help="also run every case with the library of this git revision")
    ap.add_argument("--repeat", type=int, default=None, help="runs per case and side (default 1, with --against 2)")
    args = ap.parse_args()
    repeat = args.repeat or (2 if args.against else 1)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sides: list[tuple[str, Path | None]] = [("ours", None)]
    try:
        if args.against:
            rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.against], check=True,
                                 capture_output=True, text=True).stdout.strip()
            sides.append((rev, extract_revision(args.against, workdir / f"rev-{rev}")))
        print("warming numba's cache ...", flush=True)
        for label, path in sides:
            run_case("small", workdir / "warm" / label, path)
        shutil.rmtree(workdir / "warm", ignore_errors=True)
        cases = ["small", "small-dem"] + ([] if args.skip_full else ["full", "full-zip"])
        for case in cases:
            best: dict[str, dict] = {}
            for k in range(repeat):
                for label, path in sides:
                    out = workdir / case / label
                    if k > 0 or out.exists():
                        shutil.rmtree(out, ignore_errors=True)
                    r = run_case(case, out, path)
                    if label not in best:
                        best[label] = r
                    else:  # the best of each figure over the runs
                        for key in ("seconds", "cpu_seconds", "kernel_cpu_seconds"):
                            best[label][key] = min(best[label][key], r[key])
            r = best["ours"]
            px = r["lines"] * r["samples"]
            print(f"{case:10s} {r['samples']:6d} x {r['lines']:6d} px x 2 pols: simulate_product {r['seconds']:6.1f} s "
                  f"(CPU {r['cpu_seconds']:6.1f} s, of it render kernel {r['kernel_cpu_seconds']:6.1f} s; "
                  f"process {r['process_seconds']:5.1f} s), "
                  f"{2 * px / r['seconds'] / 1e6:6.1f} Mpx/s, SAFE {r['safe_mb']:7.1f} MB, peak RSS {r['rss_mb']:6.0f} MB",
                  flush=True)
            if case == "full":
                verdict = "OK" if r["seconds"] < 120 else "TOO SLOW"
                print(f"  target (issue #8): full-size product < 120 s -> {verdict}", flush=True)
            if len(sides) > 1:
                label = sides[1][0]
                t = best[label]
                mine, theirs = digests(workdir / case / "ours"), digests(workdir / case / label)
                differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
                same = "byte-identical" if not differ else f"DIFFER in {len(differ)} files: {', '.join(differ[:6])}"
                print(f"  {label}: {t['seconds']:6.1f} s (CPU {t['cpu_seconds']:6.1f} s, render kernel "
                      f"{t['kernel_cpu_seconds']:6.1f} s), peak RSS {t['rss_mb']:6.0f} MB; ours / {label} (best of {repeat}): "
                      f"wall {r['seconds'] / t['seconds']:.3f}, CPU {r['cpu_seconds'] / t['cpu_seconds']:.3f}, "
                      f"render kernel CPU {r['kernel_cpu_seconds'] / t['kernel_cpu_seconds']:.3f}; "
                      f"outputs {same} ({len(mine)} files)", flush=True)
            if not args.keep:
                shutil.rmtree(workdir / case, ignore_errors=True)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average now: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs; self RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
