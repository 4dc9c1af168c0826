"""Native engine throughput: ``preprocess.preprocess`` (the full SNAP graph run natively) on a
simulated product, in output pixels per second; plus the cost of graph parse + validate +
render (ms), which every run pays.

Simulates (simulate.py, seed 3) a VV+VH product for N x N patches of tile 33UUP (default
N = 8: 960 x 960 px of the tile grid), then runs the full graph and the no-calibration
fallback with a flat DEM, twice each (the first run includes numba compilation where the
cache is cold; the second is reported). Also reports the agreement with the simulator's
ground truth (mean dB difference and correlation of the VV band).
Usage: ``python bench/bench_graphs.py [N]``. Takes about a minute for N = 8 on 2 cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio

from bigearthnet_s1 import graph, tiles
from bigearthnet_s1.preprocess import preprocess
from bigearthnet_s1.simulate import simulate_product


def make_tile(n: int) -> tiles.TileAcquisition:
    epsg, ulx, uly = tiles.mgrs_tile_origin("33UUP")
    grid = tiles.MapGrid.tile(epsg, ulx, uly)
    patches = []
    for row in range(40, 40 + n):
        for col in range(80, 80 + n):
            x0, y0, x1, y1 = grid.patch_bounds(col, row)
            patches.append(tiles.Patch(f"S2A_MSIL2A_20170613T101031_{col}_{row}", col, row, ("Pastures",), x0, y0, x1, y1))
    return tiles.TileAcquisition("33UUP", datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC), None, grid, tuple(patches))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    tile = make_tile(n)
    t0 = time.perf_counter()
    reps = 200
    for _ in range(reps):
        graph.render("full", graph.RenderParams(input=Path("/x/manifest.safe"), output=Path("/x/o.tif"), epsg=32633,
                                                grid_origin=(tile.grid.ulx, tile.grid.uly), dem=graph.DemChoice("SRTM 1Sec HGT")))
    print(f"graph load + render + validate: {(time.perf_counter() - t0) / reps * 1e3:.2f} ms")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        safe = simulate_product(tmp, tile=tile, time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC), seed=3)
        print(f"simulate {n}x{n} patches: {time.perf_counter() - t0:.1f} s")
        for g in ("full", "nocal"):
            for _attempt in (1, 2):
                t0 = time.perf_counter()
                out = preprocess(safe, tile, tmp / f"{g}.tif", engine="native", dem="flat", graph=g)
                dt = time.perf_counter() - t0
            with rasterio.open(out) as ds:
                px = ds.width * ds.height
                data = ds.read(1)
            print(f"native preprocess ({g}, VV+VH, {ds.width} x {ds.height} px): {dt:.2f} s, "
                  f"{px / dt / 1e6:.2f} Mpx/s of tile grid")
            if g == "full":
                truth = next(tmp.glob("*.truth.tif"))
                with rasterio.open(truth) as t, rasterio.open(out) as o:
                    ref = 10 * np.log10(t.read(1, window=rasterio.windows.from_bounds(*o.bounds, transform=t.transform)))
                d = data - ref
                ok = np.isfinite(d)
                print(f"  vs truth (VV): mean {np.mean(d[ok]):+.3f} dB, std {np.std(d[ok]):.3f} dB, "
                      f"corr {np.corrcoef(data[ok], ref[ok])[0, 1]:.4f}")


if __name__ == "__main__":
    main()
