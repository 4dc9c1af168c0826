"""Archive writing rate: patches per second (VV + VH GeoTIFF + JSON, atomic folder rename).

Writes one synthetic tile acquisition of 30 x 30 = 900 patches (tile 33UUP grid) three ways:
``write_patch`` in a loop, ``write_tile_patches`` (adds the index part), and a re-run that
skips the existing patches. Also times ``validate_archive``. Target: >= 2000 patches/s for
writing. The rate is bounded by the file system (a patch is a folder and three files: four
creates and a rename), so the run is repeated on /dev/shm (tmpfs, when present) to show the
writer's own cost apart from the disk's. Runs in well under 30 s.
Usage: ``python bench/bench_archive.py [N_SIDE] [DIR ...]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from bigearthnet_s1 import archive, tiles


def make_tile(n: int) -> tiles.TileAcquisition:
    epsg, ulx, uly = tiles.mgrs_tile_origin("33UUP")
    grid = tiles.MapGrid.tile(epsg, ulx, uly)
    patches = []
    for row in range(n):
        for col in range(n):
            x0, y0, x1, y1 = grid.patch_bounds(col, row)
            patches.append(
                tiles.Patch(
                    f"S2A_MSIL2A_20170613T101031_{col}_{row}", col, row,
                    ("Non-irrigated arable land", "Pastures"), x0, y0, x1, y1, "Austria",
                )
            )
    t = datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC)
    return tiles.TileAcquisition("33UUP", t, None, grid, tuple(patches))


def raw_fs_rate(root: Path, count: int, data: bytes) -> float:
    """The file system's own ceiling: mkdir + three file writes + rename per patch, no library."""
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(count):
        tmp = root / f".p{i}.tmp"
        tmp.mkdir()
        for k in range(3):
            with open(tmp / f"f{k}", "wb") as fh:
                fh.write(data if k < 2 else data[:1100])
        os.replace(tmp, root / f"p{i}")
    return count / (time.perf_counter() - t0)


def run(n: int, base: str | None) -> None:
    tile = make_tile(n)
    scene = archive.SceneRef.from_scene_id(
        "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
    )
    rng = np.random.default_rng(0)
    vv = rng.normal(-10, 3, (n * 120, n * 120)).astype(np.float32)
    vh = vv - 7.0
    window = Window(0, 0, n * 120, n * 120)
    scenes = {p.s2_name: scene for p in tile.patches}
    count = len(tile.patches)
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-", dir=base))
    print(f"--- {count} patches under {tmp.parent} ---")
    try:
        rate = raw_fs_rate(tmp / "raw", count, b"\0" * 58024)
        print(f"file system ceiling:     {rate:8.0f} patches/s (mkdir + 3 writes + rename, no library code)")
        root = tmp / "a"
        t0 = time.perf_counter()
        for p in tile.patches:
            sl = np.s_[p.row * 120 : (p.row + 1) * 120, p.col * 120 : (p.col + 1) * 120]
            archive.write_patch(root, tile, p, scene, vv[sl], vh[sl])
        dt = time.perf_counter() - t0
        print(f"write_patch loop:        {count} patches in {dt:.2f} s = {count / dt:8.0f} patches/s")

        root = tmp / "b"
        t0 = time.perf_counter()
        archive.write_tile_patches(root, tile, vv, vh, window=window, patch_scenes=scenes)
        dt = time.perf_counter() - t0
        print(f"write_tile_patches:      {count} patches in {dt:.2f} s = {count / dt:8.0f} patches/s (incl. index part)")

        t0 = time.perf_counter()
        archive.write_tile_patches(root, tile, vv, vh, window=window, patch_scenes=scenes)
        dt = time.perf_counter() - t0
        print(f"re-run (all skipped):    {count} patches in {dt:.2f} s = {count / dt:8.0f} patches/s")

        t0 = time.perf_counter()
        archive.merge_index(root)
        print(f"merge_index:             {time.perf_counter() - t0:.2f} s")

        t0 = time.perf_counter()
        report = archive.validate_archive(root)
        dt = time.perf_counter() - t0
        assert report.ok == count and not report.bad
        print(f"validate_archive:        {count} patches in {dt:.2f} s = {count / dt:8.0f} patches/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    import geopandas  # noqa: F401  (import cost is paid once per process, not per tile)
    import pyarrow.parquet  # noqa: F401

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    bases = sys.argv[2:] or [None] + (["/dev/shm"] if Path("/dev/shm").is_dir() else [])
    for base in bases:
        run(n, base)


if __name__ == "__main__":
    main()
