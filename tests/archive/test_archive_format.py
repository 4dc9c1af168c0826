"""The writer against the real BigEarthNet-S1 v1.0 example patches."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from bigearthnet_s1 import archive, geotiff
from bigearthnet_s1.errors import ArchiveError


def _profile(path: Path) -> dict:
    with rasterio.open(path) as ds:
        return {
            "driver": ds.driver,
            "dtype": ds.dtypes[0],
            "count": ds.count,
            "width": ds.width,
            "height": ds.height,
            "crs_wkt": ds.crs.to_wkt(),
            "epsg": ds.crs.to_epsg(),
            "transform": tuple(ds.transform),
            "compression": ds.compression,
            "nodata": ds.nodata,
            "block_shapes": ds.block_shapes,
            "tiled": ds.profile.get("tiled"),
            "interleave": ds.interleaving,
            "tags": ds.tags(),
            "image_structure": ds.tags(ns="IMAGE_STRUCTURE"),
            "descriptions": ds.descriptions,
        }


def test_written_patches_equal_the_real_ones(example_pairs, tmp_path: Path) -> None:
    for pair in example_pairs:
        out = archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
        assert out.name == pair.s1_dir.name
        assert sorted(f.name for f in out.iterdir()) == sorted(f.name for f in pair.s1_dir.iterdir())
        for pol in ("VV", "VH"):
            mine, real = out / f"{out.name}_{pol}.tif", pair.s1_dir / f"{out.name}_{pol}.tif"
            prof = _profile(mine)
            assert prof == _profile(real)
            assert prof["dtype"] == "float32" and (prof["width"], prof["height"], prof["count"]) == (120, 120, 1)
            assert prof["compression"] is None and prof["nodata"] is None and prof["tiled"] is False
            assert prof["transform"][:6] == (10.0, 0.0, pair.patch.ulx, 0.0, -10.0, pair.patch.uly)
            with rasterio.open(mine) as a, rasterio.open(real) as b:
                np.testing.assert_array_equal(a.read(1), b.read(1))
            # byte for byte, headers included
            assert mine.read_bytes() == real.read_bytes()
        js_mine = out / f"{out.name}_labels_metadata.json"
        js_real = pair.s1_dir / js_mine.name
        mine_meta = json.loads(js_mine.read_text())
        assert list(mine_meta) == list(archive.JSON_KEYS) == list(pair.meta)
        assert list(mine_meta["coordinates"]) == ["ulx", "uly", "lrx", "lly"]
        assert mine_meta == pair.meta
        assert js_mine.read_bytes() == js_real.read_bytes()  # one line, same spacing, no newline


def test_read_back_with_bigearthnet_common(example_pairs, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic v1-style decorators in bigearthnet-common
        from bigearthnet_common.base import get_s1_patch_directories, read_S1_json

    for pair in example_pairs:
        archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
    dirs = sorted(get_s1_patch_directories(tmp_path))
    assert [d.name for d in dirs] == sorted(p.s1_dir.name for p in example_pairs)
    for pair in example_pairs:
        d = tmp_path / pair.s1_dir.name
        data = read_S1_json(d / f"{d.name}_labels_metadata.json")
        assert data["coordinates"] == {
            "ulx": pair.patch.ulx,
            "uly": pair.patch.uly,
            "lrx": pair.patch.lrx,
            "lry": pair.patch.lry,
        }
        assert data["corresponding_s2_patch"] == pair.patch.s2_name
        assert data["scene_source"] == pair.meta["scene_source"]
        assert data["labels"] == list(pair.patch.labels)


def test_utm_wkt_matches_the_real_projection_strings(example_pairs) -> None:
    for pair in example_pairs:
        assert archive.utm_wkt(pair.tile.epsg) == pair.meta["projection"]
    south = archive.utm_wkt(32737)
    assert 'PROJCS["WGS 84 / UTM zone 37S"' in south
    assert 'PARAMETER["false_northing",10000000]' in south and 'AUTHORITY["EPSG","32737"]]' in south
    with pytest.raises(ArchiveError, match="EPSG:4326"):
        archive.utm_wkt(4326)


def test_geotiff_bytes_for_other_zones_read_back(tmp_path: Path) -> None:
    """A one-digit southern zone (shorter citation, word-aligned data) still reads correctly."""
    rng = np.random.default_rng(1)
    a = rng.normal(-12, 4, (120, 120)).astype(np.float32)
    a[:3, :5] = np.nan
    for epsg in (32601, 32709, 32760):
        path = tmp_path / f"{epsg}.tif"
        path.write_bytes(geotiff.geotiff_bytes(a, 399960.0, 9100020.0, epsg))
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == epsg
            assert tuple(ds.transform)[:6] == (10.0, 0.0, 399960.0, 0.0, -10.0, 9100020.0)
            np.testing.assert_array_equal(ds.read(1), a)


def test_patch_names() -> None:
    sid = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
    assert archive.s1_patch_name(sid, "33UUP", 87, 48) == "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"
    assert archive.s1_patch_name(sid + ".SAFE", "33UUP", 0, 0) == "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_0_0"
    with pytest.raises(ArchiveError, match="not a Sentinel-1 product id"):
        archive.s1_patch_name("S1A_IW_GRDH_1SDV_20170613T165043", "33UUP", 1, 1)
    with pytest.raises(ArchiveError, match="not valid"):
        archive.s1_patch_name(sid, "33UUP", 91, 1)
    ref = archive.SceneRef.from_scene_id(sid)
    assert ref.start_time == datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC)
    assert archive.SceneRef.from_json(ref.to_json()) == ref
    with pytest.raises(ArchiveError, match="tz-aware"):
        archive.SceneRef(sid, datetime(2017, 6, 13, 16, 50, 43))


def test_write_patch_rejects_wrong_shapes(example_pairs, tmp_path: Path) -> None:
    pair = example_pairs[0]
    with pytest.raises(ArchiveError, match=f"{pair.s1_dir.name}: VH has shape \\(120, 119\\)"):
        archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh[:, :119])
    assert list(tmp_path.iterdir()) == []


def test_write_patch_rejects_infinite_and_empty_bands(example_pairs, tmp_path: Path) -> None:
    pair = example_pairs[0]
    vv = pair.vv.copy()
    vv[3, 4] = -np.inf  # 10 * log10(0)
    with pytest.raises(ArchiveError, match=f"{pair.s1_dir.name}: VV has infinite dB values"):
        archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, vv, pair.vh)
    with pytest.raises(ArchiveError, match=f"{pair.s1_dir.name}: VH has no valid pixel"):
        archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, np.full((120, 120), np.nan))
    assert list(tmp_path.iterdir()) == []
    # NaN where there is no data is kept as NaN (no nodata tag, as in v1.0)
    vh = pair.vh.copy()
    vh[:10] = np.nan
    out = archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, vh)
    got = archive.read_patch_arrays(out)["VH"]
    assert np.isnan(got[:10]).all() and np.array_equal(got[10:], pair.vh[10:])
    assert archive.check_patch(out) == []
