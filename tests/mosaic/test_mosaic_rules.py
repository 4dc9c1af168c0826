"""Mosaic rules: per patch the closest-in-time scene that covers it fully; otherwise a per-pixel
composition in the same order, recorded; provenance; writing through the archive writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from bigearthnet_s1.mosaic import MosaicError, SceneOnGrid, mosaic_tile, scene_order

# patch grid: cols 10..14, rows 20..22 -> window cols 1200..1800, rows 2400..2760 (px)


def _p(col: int, row: int) -> str:
    return f"S2A_MSIL2A_20170613T101031_{col}_{row}"


@pytest.fixture
def case(mk):
    tile = mk.tile(range(10, 15), range(20, 23))
    a = mk.scene(mk.ref(2.0), Window(1200, 2400, 420, 360), -10.0, -16.0)  # cols 10-12 + half of 13
    b_win = Window(1200, 2400, 480, 360)  # cols 10-13
    b = mk.scene(mk.ref(20.0), b_win, -12.0, -18.0)
    b.data[:, 120 + 10:120 + 20, 460:470] = np.nan  # hole in patch (13, 21)
    b.data[:, 240 + 10:240 + 20, 460:470] = np.nan  # hole in patch (13, 22)
    c = mk.scene(mk.ref(-30.0), Window(1200, 2400, 600, 360), -14.0, -20.0)  # cols 10-14
    c.data[:, 240 + 50:240 + 60, 470:480] = np.nan  # a hole in (13, 22) elsewhere than B's
    c.data[:, 120 + 5:120 + 7, 540:560] = np.nan  # hole in (14, 21): nobody else covers it
    c.data[:, 240:360, 480:600] = np.nan  # (14, 22): no data at all
    a.data[1, 30:32, 40:45] = np.nan  # VH only missing in A's (10, 20): A does not cover it fully
    return tile, [c, a, b]  # order given on purpose not by time


def test_choice_per_patch(case) -> None:
    tile, scenes = case
    m = mosaic_tile(tile, scenes)
    assert [m.scenes[i].start_time for i in m.order] == sorted(
        (s.scene.start_time for s in scenes), key=lambda t: abs((t - tile.sensing_time).total_seconds()))
    ia, ib, ic = 1, 2, 0  # indexes into the given list
    for col in (10, 11, 12):
        for row in (20, 21, 22):
            ch = m.patches[_p(col, row)]
            want = ib if (col, row) == (10, 20) else ia  # VV without VH is not valid data
            assert (ch.scene, ch.composed, ch.valid_fraction) == (want, False, 1.0)
    assert (m.patches[_p(13, 20)].scene, m.patches[_p(13, 20)].composed) == (ib, False)  # full beats closer partial
    assert (m.patches[_p(13, 21)].scene, m.patches[_p(13, 21)].composed) == (ic, False)
    comp = m.patches[_p(13, 22)]
    assert comp.composed and comp.valid_fraction == 1.0
    assert comp.contributions == {ia: 60 * 120, ib: 60 * 120 - 100, ic: 100}
    assert comp.scene == ia  # the largest contributor
    assert (m.patches[_p(14, 20)].scene, m.patches[_p(14, 20)].composed) == (ic, False)
    inc = m.patches[_p(14, 21)]
    assert inc.scene == ic and inc.composed and inc.valid_fraction == pytest.approx(1 - 40 / 14400)
    assert m.patches[_p(14, 22)].scene is None and m.patches[_p(14, 22)].valid_fraction == 0.0
    s = m.summary()
    assert (s["patches"], s["single_scene"], s["composed"], s["incomplete"], s["empty"], s["to_write"]) == (
        15, 12, 1, 1, 1, 13)
    assert set(s["composed_patches"]) == {_p(13, 22), _p(14, 21)}
    assert set(m.patch_scenes()) == set(m.patches) - {_p(14, 21), _p(14, 22)}
    assert _p(14, 21) in m.patch_scenes(min_valid_fraction=0.99)


def test_pixels_and_provenance(case) -> None:
    tile, scenes = case
    m = mosaic_tile(tile, scenes)
    assert m.window == Window(1200, 2400, 600, 360)
    assert m.vv_db.shape == m.vh_db.shape == m.provenance.shape == (360, 600)
    # patch (13, 22) = rows 240..360, cols 360..480 of the window
    vv = m.vv_db[240:360, 360:480]
    pr = m.provenance[240:360, 360:480]
    assert (vv[:, :60] == -10.0).all() and (pr[:, :60] == 1).all()  # A's half
    assert (vv[10:20, 100:110] == -14.0).all() and (pr[10:20, 100:110] == 0).all()  # B's hole from C
    rest = np.ones((120, 120), bool)
    rest[:, :60] = False
    rest[10:20, 100:110] = False
    assert (vv[rest] == -12.0).all() and (pr[rest] == 2).all()
    assert (m.vh_db[240:360, 360:480][rest] == -18.0).all()
    # whole single-scene patches: one value, one provenance
    assert (m.vv_db[120:240, 360:480] == -14.0).all() and (m.provenance[120:240, 360:480] == 0).all()
    # no data
    assert np.isnan(m.vv_db[240:360, 480:600]).all() and (m.provenance[240:360, 480:600] == -1).all()
    assert (m.vv_db[:120, :120] == -12.0).all() and (m.provenance[:120, :120] == 2).all()  # (10, 20) from B


def test_strips_do_not_change_the_result(case) -> None:
    tile, scenes = case
    a = mosaic_tile(tile, scenes, strip_patch_rows=1)
    b = mosaic_tile(tile, scenes, strip_patch_rows=10)
    np.testing.assert_array_equal(a.vv_db, b.vv_db)
    np.testing.assert_array_equal(a.provenance, b.provenance)
    assert a.summary() == b.summary()


def test_write_patches_provenance_and_summary(case, tmp_path: Path) -> None:
    tile, scenes = case
    m = mosaic_tile(tile, scenes)
    rows = m.write(tmp_path / "archive")
    assert len(rows) == 13
    written = sorted(p.name for p in (tmp_path / "archive").iterdir() if p.is_dir() and p.name.startswith("S1"))
    assert len(written) == 13
    by_s2 = {r["s2_name"]: r for r in rows}
    comp = by_s2[_p(13, 22)]
    assert comp["scene_id"] == scenes[1].scene.scene_id and comp["valid_fraction"] == 1.0
    d = tmp_path / "archive" / comp["s1_name"]
    meta = json.loads((d / f"{comp['s1_name']}_labels_metadata.json").read_text())
    assert meta["scene_source"] == scenes[1].scene.scene_id
    assert meta["corresponding_s2_patch"] == _p(13, 22)
    with rasterio.open(d / f"{comp['s1_name']}_VV.tif") as ds:
        vv = ds.read(1)
        assert ds.transform == tile.patch(_p(13, 22)).transform  # exact alignment
        assert ds.crs.to_epsg() == 32633
    np.testing.assert_array_equal(vv, m.vv_db[240:360, 360:480])
    p = m.write_provenance(tmp_path / "prov" / "33UUP.tif")
    with rasterio.open(p) as ds:
        assert ds.transform == tile.grid.window_transform(m.window)
        assert ds.nodata == -1 and ds.tags()["SCENE_1"] == scenes[1].scene.scene_id
        np.testing.assert_array_equal(ds.read(1), m.provenance)
    s = json.loads(m.write_summary(tmp_path / "prov" / "33UUP.json").read_text())
    assert s["to_write"] == 13 and s["scenes"][1]["patches"] == 9 and s["scenes"][2]["patches"] == 2


def test_scene_geotiffs_from_the_preprocess_step(mk, tmp_path: Path) -> None:
    """Scenes read from 2-band GeoTIFFs (descriptions VH, VV in that order here; tags), checked
    against the tile grid: misaligned or foreign-CRS files are refused."""
    tile = mk.tile(range(10, 12), range(20, 21))
    g = tile.grid
    ref = mk.ref(1.0)

    def write(path: Path, ulx: float, uly: float, epsg: int = 32633) -> Path:
        data = np.stack([np.full((120, 360), -17.0, np.float32), np.full((120, 360), -11.0, np.float32)])
        with rasterio.open(path, "w", driver="GTiff", width=360, height=120, count=2, dtype="float32",
                           crs=f"EPSG:{epsg}", transform=rasterio.Affine(10, 0, ulx, 0, -10, uly),
                           nodata=float("nan")) as ds:
            ds.write(data)
            ds.set_band_description(1, "VH")
            ds.set_band_description(2, "VV")
            ds.update_tags(SCENE_ID=ref.scene_id, START_TIME=ref.start_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        return path

    ok = write(tmp_path / "ok.tif", g.ulx + 1200 * 10 - 600, g.uly - 1200 * 20)
    s = SceneOnGrid.from_geotiff(ok, tile)
    assert s.window == Window(1140, 2400, 360, 120) and s.scene == ref
    m = mosaic_tile(tile, [s])
    assert (m.vv_db == -11.0).all() and (m.vh_db == -17.0).all()
    with pytest.raises(MosaicError, match="not on the grid"):
        SceneOnGrid.from_geotiff(write(tmp_path / "shifted.tif", g.ulx + 12005.0, g.uly - 24000.0), tile)
    with pytest.raises(MosaicError, match="CRS"):
        SceneOnGrid.from_geotiff(write(tmp_path / "utm32.tif", g.ulx + 12000.0, g.uly - 24000.0, 32632), tile)


def test_bad_mosaic_input(mk) -> None:
    tile = mk.tile(range(10, 12), range(20, 21))
    s = mk.scene(mk.ref(1.0), Window(1200, 2400, 240, 120), -10.0, -15.0)
    with pytest.raises(MosaicError, match="no scenes"):
        mosaic_tile(tile, [])
    with pytest.raises(MosaicError, match="given twice"):
        mosaic_tile(tile, [s, s])
    with pytest.raises(MosaicError, match="does not match window"):
        SceneOnGrid(scene=s.scene, window=Window(1200, 2400, 10, 10), data=s.data)


def test_order_ties_break_on_scene_id(mk) -> None:
    a = mk.scene(mk.ref(3.0, orbit=1), Window(0, 0, 1, 1), 0, 0)
    b = mk.scene(mk.ref(-3.0, orbit=2), Window(0, 0, 1, 1), 0, 0)
    c = mk.scene(mk.ref(1.0, orbit=3), Window(0, 0, 1, 1), 0, 0)
    order = scene_order([a, b, c], mk.SENSING)
    assert order[0] == 2
    assert order[1:] == sorted([0, 1], key=lambda i: [a, b][i].scene.scene_id)
