"""write_tile_patches, the index parts and merge_index."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
from pyproj import Transformer
from rasterio.windows import Window
from shapely import Point

from bigearthnet_s1 import archive, patch_folder, tiles
from bigearthnet_s1.errors import ArchiveError

OTHER_SCENE = archive.SceneRef.from_scene_id(
    "S1B_IW_GRDH_1SDV_20170618T064650_20170618T064715_006124_00AC4B_1A2B"
)


@pytest.fixture
def upu(example_pairs):
    """Tile 29UPU with its real patch (4, 55) plus three made-up neighbours, and dB arrays for
    the 3 x 3-patch window (4..6, 55..57) holding the real VV/VH at (4, 55)."""
    pair = next(p for p in example_pairs if p.patch.col == 4 and p.patch.row == 55)
    real = pair.patch
    grid = pair.tile.grid

    def made_up(col: int, row: int) -> tiles.Patch:
        ulx, uly, lrx, lry = grid.patch_bounds(col, row)
        return tiles.Patch(f"S2A_MSIL2A_20170617T113321_{col}_{row}", col, row, ("Pastures",), ulx, uly, lrx, lry, "Ireland")

    tile = dataclasses.replace(pair.tile, patches=(real, made_up(5, 55), made_up(4, 56), made_up(6, 57)))
    window = tile.grid.window_for_patches(tile.patches)
    assert window == Window(480, 6600, 360, 360)
    rng = np.random.default_rng(7)
    vv = rng.normal(-10, 3, (360, 360)).astype(np.float32)
    vh = rng.normal(-17, 3, (360, 360)).astype(np.float32)
    vv[:120, :120], vh[:120, :120] = pair.vv, pair.vh
    vh[120:150, 0:120] = np.nan  # patch (4, 56): 30 of 120 rows without data in VH
    scenes = {real.s2_name: pair.scene, tile.patches[1].s2_name: pair.scene, tile.patches[2].s2_name: OTHER_SCENE}
    return pair, tile, window, vv, vh, scenes


def test_patches_without_valid_pixels_are_not_written(upu, tmp_path: Path) -> None:
    pair, tile, window, vv, vh, scenes = upu
    vv = vv.copy()
    vv[0:120, 120:240] = np.nan  # patch (5, 55) has no VV at all
    rows = archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    assert sorted(r["s2_name"] for r in rows) == [pair.patch.s2_name, "S2A_MSIL2A_20170617T113321_4_56"]
    assert not (tmp_path / "S1A_IW_GRDH_1SDV_20170617T064724_29UPU_5_55").exists()


def test_write_tile_patches(upu, tmp_path: Path) -> None:
    pair, tile, window, vv, vh, scenes = upu
    rows = archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    names = sorted(d.name for d in tmp_path.iterdir() if d.is_dir() and d.name != "index")
    assert names == [
        "S1A_IW_GRDH_1SDV_20170617T064724_29UPU_4_55",
        "S1A_IW_GRDH_1SDV_20170617T064724_29UPU_5_55",
        "S1B_IW_GRDH_1SDV_20170618T064650_29UPU_4_56",
    ]  # (6, 57) has no scene: not written
    real = tmp_path / pair.s1_dir.name
    for f in pair.s1_dir.iterdir():
        assert (real / f.name).read_bytes() == f.read_bytes()
    arrays = archive.read_patch_arrays(tmp_path / "S1B_IW_GRDH_1SDV_20170618T064650_29UPU_4_56")
    np.testing.assert_array_equal(arrays["VV"], vv[120:240, 0:120])
    np.testing.assert_array_equal(arrays["VH"], vh[120:240, 0:120])
    name = "S1B_IW_GRDH_1SDV_20170618T064650_29UPU_4_56"
    meta = json.loads((tmp_path / name / f"{name}_labels_metadata.json").read_text())
    assert meta["coordinates"] == {"ulx": 604800, "uly": 5832840, "lrx": 606000, "lly": 5831640}
    assert meta["acquisition_time"] == "2017-06-18T06:46:50"

    by = {r["s2_name"]: r for r in rows}
    assert len(rows) == 3
    r = by[pair.patch.s2_name]
    assert r["s1_name"] == pair.s1_dir.name and r["scene_id"] == pair.meta["scene_source"]
    # S1 06:47:24 vs S2 11:33:21 on 2017-06-17
    assert r["time_gap_hours"] == pytest.approx((4 * 3600 + 45 * 60 + 57) / 3600)
    assert r["valid_fraction"] == 1.0
    assert by["S2A_MSIL2A_20170617T113321_4_56"]["valid_fraction"] == pytest.approx(90 / 120)
    assert by["S2A_MSIL2A_20170617T113321_4_56"]["time_gap_hours"] == pytest.approx((19 * 3600 + 13 * 60 + 29) / 3600)
    assert r["labels"] == ["Pastures"] and r["country"] == "Ireland" and r["tile_key"] == "29UPU_20170617T113321"

    part = pq.read_table(tmp_path / "index" / "29UPU_20170617T113321.parquet").to_pylist()
    assert [p["s1_name"] for p in part] == [x["s1_name"] for x in rows]
    lon, lat = Transformer.from_crs(32629, 4326, always_xy=True).transform(604800 + 600, 5834040 - 600)
    from shapely import from_wkb

    g = from_wkb(part[0]["geometry"])
    assert g.contains(Point(lon, lat)) and g.area == pytest.approx(1.8e-4, rel=0.2)
    assert (part[0]["ulx"], part[0]["uly"], part[0]["lrx"], part[0]["lry"]) == (604800, 5834040, 606000, 5832840)
    assert part[0]["s1_time"].isoformat() == "2017-06-17T06:47:24+00:00"


def test_rerun_skips_complete_patches_and_overwrite_rewrites(upu, tmp_path: Path, monkeypatch) -> None:
    pair, tile, window, vv, vh, scenes = upu
    archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    written: list[str] = []
    real_write = patch_folder._write_file
    monkeypatch.setattr(patch_folder, "_write_file", lambda p, d: (written.append(os.path.basename(p)), real_write(p, d)))
    rows = archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    assert written == [] and len(rows) == 3  # nothing rewritten; the index part still lists all
    vv2 = vv + 1
    archive.write_tile_patches(tmp_path, tile, vv2, vh, window=window, patch_scenes=scenes, overwrite=True)
    assert len(written) == 9
    got = archive.read_patch_arrays(tmp_path / pair.s1_dir.name)["VV"]
    np.testing.assert_array_equal(got, pair.vv + 1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_window_errors(upu, tmp_path: Path) -> None:
    pair, tile, window, vv, vh, scenes = upu
    with pytest.raises(ArchiveError, match="29UPU_20170617T113321: arrays"):
        archive.write_tile_patches(tmp_path, tile, vv[:-1], vh, window=window, patch_scenes=scenes)
    small = Window(480, 6600, 240, 240)  # patch (6, 57) outside, but it has no scene: fine
    rows = archive.write_tile_patches(tmp_path, tile, vv[:240, :240], vh[:240, :240], window=small, patch_scenes=scenes)
    assert len(rows) == 3
    with pytest.raises(ArchiveError, match="S2A_MSIL2A_20170617T113321_4_56.*outside the window"):
        archive.write_tile_patches(
            tmp_path, tile, vv[:120, :240], vh[:120, :240], window=Window(480, 6600, 240, 120), patch_scenes=scenes
        )


def test_merge_index(upu, example_pairs, tmp_path: Path) -> None:
    pair, tile, window, vv, vh, scenes = upu
    archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    uup = next(p for p in example_pairs if p.tile.tile_id == "33UUP")
    w = uup.tile.grid.window_for_patches(uup.tile.patches)
    archive.write_tile_patches(tmp_path, uup.tile, uup.vv, uup.vh, window=w, patch_scenes={uup.patch.s2_name: uup.scene})
    out = archive.merge_index(tmp_path)
    assert out == tmp_path / "index.parquet"
    gdf = gpd.read_parquet(out)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 4
    assert list(gdf["tile_key"]) == ["29UPU_20170617T113321"] * 3 + ["33UUP_20170613T101031"]
    row = gdf[gdf.s1_name == uup.s1_dir.name].iloc[0]
    assert row["country"] == "Austria" and list(row["labels"]) == list(uup.patch.labels)
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(405000, 5341800)
    assert row.geometry.contains(Point(lon, lat))
    assert row["time_gap_hours"] == pytest.approx((6 * 3600 + 40 * 60 + 12) / 3600)
    assert pq.read_metadata(out).metadata[b"geo"]  # GeoParquet metadata
    fc = json.loads((tmp_path / "patches.geojson").read_text())
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    props = {f["properties"]["s1_name"]: f["properties"] for f in fc["features"]}
    assert props[uup.s1_dir.name]["s1_time"] == "2017-06-13T16:50:43Z"
    assert gpd.read_file(tmp_path / "patches.geojson").crs.to_epsg() == 4326
    # merging again after a re-run of one tile: no duplicates
    archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    assert len(gpd.read_parquet(archive.merge_index(tmp_path))) == 4
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_infinite_values_in_the_window_are_an_error(upu, tmp_path: Path) -> None:
    pair, tile, window, vv, vh, scenes = upu
    vh = vh.copy()
    vh[130, 7] = -np.inf
    with pytest.raises(ArchiveError, match="29UPU_20170617T113321: VH has infinite dB values.*row 130, col 7"):
        archive.write_tile_patches(tmp_path, tile, vv, vh, window=window, patch_scenes=scenes)
    assert not [p for p in tmp_path.iterdir() if p.name != "index"] if tmp_path.exists() else True
