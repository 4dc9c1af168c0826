"""Labels and reBEN at archive scale: reading, labelling, relabelling, side by side with references.

1. A reBEN-style ``metadata.parquet`` of the whole v1 archive (590,326 rows, synthesised here
   from the bundled patch-name table: ``patch_id`` built like reBEN's, two labels, a split)
   read as the S2 source (``reben.read_reben``) vs the patch-name table (``tiles.read_patch_table``,
   the reference: same patches, no labels), and as a label source (``labels.open_label_source``).
2. ``labels.apply_labels`` on every table patch (patches/s).
3. ``relabel_archive`` on N v1 patches (JSON rewrite + index) vs the bare file system work it
   needs (read, write to a temporary, rename the same N JSONs), as a ratio.

Usage: ``python bench/bench_labels.py [N_RELABEL]`` (default 2000). About a minute.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bigearthnet_s1 import archive, labels, patch_table, reben, tiles
from bigearthnet_s1.relabel import relabel_archive


def synth_metadata(acqs: list[tiles.TileAcquisition], path: Path) -> int:
    splits = itertools.cycle(["train", "train", "validation", "test"])
    cols: dict[str, list] = {c: [] for c in reben.METADATA_COLUMNS}
    for a in acqs:
        for p in a.patches:
            cols["patch_id"].append(reben.v2_patch_id(a, p))
            cols["labels"].append(["Arable land", "Pastures"])
            cols["split"].append(next(splits))
            cols["country"].append(p.country)
            cols["s1_name"].append(None)
            cols["s2v1_name"].append(p.s2_name)
            cols["contains_seasonal_snow"].append(False)
            cols["contains_cloud_or_shadow"].append(False)
    pq.write_table(pa.table(cols, schema=pa.schema([
        ("patch_id", pa.string()), ("labels", pa.list_(pa.string())), ("split", pa.string()),
        ("country", pa.string()), ("s1_name", pa.string()), ("s2v1_name", pa.string()),
        ("contains_seasonal_snow", pa.bool_()), ("contains_cloud_or_shadow", pa.bool_())])), path)
    return len(cols["patch_id"])


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_reading(tmp: Path) -> None:
    acqs, t_table = timed(tiles.read_patch_table)
    n = synth_metadata(acqs, tmp / "metadata.parquet")
    patch_table._load_table.cache_clear()
    patch_table.country_index.cache_clear()
    _, t_table = timed(tiles.read_patch_table)  # the reference, cold cache
    patch_table._load_table.cache_clear()
    patch_table.country_index.cache_clear()
    racqs, t_reben = timed(reben.read_reben, tmp / "metadata.parquet")
    assert sum(len(a.patches) for a in racqs) == n
    _, t_one = timed(reben.read_reben, tmp / "metadata.parquet", tiles=["33UUP"])
    source, t_src = timed(labels.open_label_source, tmp / "metadata.parquet")
    (labelled, stats), t_apply = timed(labels.apply_labels, acqs, source)
    assert stats.labelled == n and labelled[0].patches[0].labels == ("Arable land", "Pastures")
    print(f"reBEN metadata, {n} rows ({(tmp / 'metadata.parquet').stat().st_size / 1e6:.1f} MB):")
    print(f"  read as S2 source          {t_reben:6.1f} s  ({n / t_reben:8.0f} rows/s)")
    print(f"  patch-name table (ref.)    {t_table:6.1f} s  ({n / t_table:8.0f} rows/s)   ratio {t_reben / t_table:.2f}")
    print(f"  one tile (33UUP)           {t_one:6.1f} s")
    print(f"  open as label source       {t_src:6.1f} s  ({n / t_src:8.0f} rows/s)")
    print(f"  apply_labels, all patches  {t_apply:6.1f} s  ({n / t_apply:8.0f} patches/s)")


def bench_relabel(tmp: Path, n: int) -> None:
    side = int(np.ceil(np.sqrt(n)))
    epsg, ulx, uly = tiles.mgrs_tile_origin("33UUP")
    grid = tiles.MapGrid.tile(epsg, ulx, uly)
    from datetime import UTC, datetime

    patches = []
    for k in range(n):
        col, row = k % side, k // side
        x0, y0, x1, y1 = grid.patch_bounds(col, row)
        patches.append(tiles.Patch(f"S2A_MSIL2A_20170613T101031_{col}_{row}", col, row, (), x0, y0, x1, y1,
                                   "Austria", labels_known=False))
    tile = tiles.TileAcquisition("33UUP", datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC), None, grid, tuple(patches))
    win = grid.window_for_patches(patches)
    vv = np.full((int(win.height), int(win.width)), -12.0, dtype=np.float32)
    scene = archive.SceneRef.from_scene_id("S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC")
    root = tmp / "archive"
    archive.write_tile_patches(root, tile, vv, vv - 7, window=win, patch_scenes={p.s2_name: scene for p in patches})
    archive.merge_index(root)
    s2 = tmp / "s2"  # a label source: BigEarthNet-S2-style JSONs
    wkt = archive.utm_wkt(epsg)
    for p in patches:
        d = s2 / p.s2_name
        d.mkdir(parents=True)
        meta = {"labels": ["Pastures"], "coordinates": {"ulx": p.ulx, "uly": p.uly, "lrx": p.lrx, "lry": p.lry},
                "projection": wkt, "tile_source": "S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101608.SAFE",
                "acquisition_date": "2017-06-13 10:10:31"}
        (d / f"{p.s2_name}_labels_metadata.json").write_text(json.dumps(meta))
    source, t_src = timed(labels.open_label_source, s2)
    rep, t_rel = timed(relabel_archive, root, source)
    assert rep.changed == n and not rep.missing
    # reference: the bare file work, same JSONs: read, write a temporary, rename
    jsons = [root / d.name / f"{d.name}_labels_metadata.json" for d in archive.iter_patch_dirs(root)]
    t0 = time.perf_counter()
    for js in jsons:
        data = js.read_bytes()
        tmp_js = js.with_name(f".{js.name}.tmp")
        tmp_js.write_bytes(data)
        os.replace(tmp_js, js)
    t_ref = time.perf_counter() - t0
    print(f"relabel, {n} v1 patches (1 index part):")
    print(f"  open the S2 label source   {t_src:6.2f} s  ({n / t_src:8.0f} patches/s)")
    print(f"  relabel_archive            {t_rel:6.2f} s  ({n / t_rel:8.0f} patches/s)")
    print(f"  bare read+write+rename     {t_ref:6.2f} s  ({n / t_ref:8.0f} patches/s)   ratio {t_rel / t_ref:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tmp = Path(tempfile.mkdtemp(prefix="bench-labels-"))
    try:
        bench_reading(tmp)
        bench_relabel(tmp, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
