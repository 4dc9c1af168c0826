"""Alignment with the real BigEarthNet examples, and the quicklook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.windows import Window

from bigearthnet_s1.archive import SceneRef
from bigearthnet_s1.mosaic import SceneOnGrid, mosaic_tile
from bigearthnet_s1.quicklook import NODATA_RGB, OUTLINE_LEFT_OUT, SCENE_COLOURS, write_quicklook
from bigearthnet_s1.tiles import read_s2_archive


def test_written_patches_align_with_their_s2_patches(s2_example: Path, s1_example: Path, tmp_path: Path) -> None:
    """Every written S1 patch has exactly its S2 patch's transform and CRS (the real example
    patches of five tile acquisitions, four UTM zones), and the real S1 example's transform."""
    real_s1 = {}
    for d in s1_example.iterdir():
        vv = next(d.glob("*_VV.tif"), None)
        if vv is not None:
            with rasterio.open(vv) as ds:
                real_s1[tuple(d.name.rsplit("_", 3)[1:])] = ds.transform  # (tile, col, row) -> transform
    n = 0
    matched: set[tuple[str, str, str]] = set()
    for tile in read_s2_archive(s2_example, countries=False):
        win = tile.grid.window_for_patches(tile.patches)
        h, w = int(win.height), int(win.width)
        rng = np.random.default_rng(n)
        data = np.stack([rng.uniform(-20, 0, (h, w)), rng.uniform(-30, -10, (h, w))]).astype(np.float32)
        ref = SceneRef.from_scene_id(
            f"S1A_IW_GRDH_1SDV_{tile.sensing_time:%Y%m%dT%H%M%S}_{tile.sensing_time:%Y%m%dT%H%M%S}_017018_01C579_7EEC")
        m = mosaic_tile(tile, [SceneOnGrid(scene=ref, window=win, data=data)])
        rows = m.write(tmp_path / "archive")
        for row in rows:
            s1_dir = tmp_path / "archive" / row["s1_name"]
            s2_dir = s2_example / row["s2_name"]
            with rasterio.open(s1_dir / f"{row['s1_name']}_VV.tif") as a, \
                    rasterio.open(s2_dir / f"{row['s2_name']}_B02.tif") as b:
                assert a.transform == b.transform  # exactly, no tolerance
                assert a.crs.to_epsg() == b.crs.to_epsg() == tile.epsg
                assert (a.width, a.height) == (b.width, b.height) == (120, 120)
                patch = tile.patch(row["s2_name"])
                pr, pc = patch.row * 120 - int(win.row_off), patch.col * 120 - int(win.col_off)
                np.testing.assert_array_equal(a.read(1), data[0, pr:pr + 120, pc:pc + 120])
            key = (tile.tile_id, str(row["col"]), str(row["row"]))
            if key in real_s1:
                assert real_s1[key] == patch.transform
                matched.add(key)
            n += 1
    assert n == 6
    assert len(matched) >= 1, f"no real S1 example patch matched ({sorted(real_s1)})"


def test_quicklook(mk, tmp_path: Path) -> None:
    tile = mk.tile(range(10, 14), range(20, 23))
    a = mk.scene(mk.ref(2.0), Window(1200, 2400, 300, 360), -8.0, -14.0)
    b = mk.scene(mk.ref(-20.0), Window(1200, 2400, 480, 360), -15.0, -25.0)
    b.data[:, 250:300, 400:480] = np.nan  # an incomplete patch (13, 22)
    m = mosaic_tile(tile, [a, b])
    p = write_quicklook(tmp_path / "ql" / f"{tile.key}.png", m, max_size=240)
    img = np.asarray(Image.open(p).convert("RGB"))
    gap = 8
    f = 2  # 480 px wide mosaic -> panels of 240 px
    pw = 240
    assert img.shape[1] == 2 * pw + 3 * gap
    # false colour inside a patch of scene a (away from outlines): VV -8 dB, VH -14 dB
    r, g, bl = img[gap + 30, gap + 30]
    assert r == round((-8 + 25) / 25 * 255) and g == round((-14 + 30) / 25 * 255) and bl == round(6 / 15 * 255)
    # provenance panel: scene colours, black where no data
    assert tuple(img[gap + 30, 2 * gap + pw + 30]) == SCENE_COLOURS[0]
    assert tuple(img[gap + 30, 2 * gap + pw + 200]) == SCENE_COLOURS[1]
    assert tuple(img[gap + 275 // f, 2 * gap + pw + 440 // f]) == (0, 0, 0)
    assert tuple(img[gap + 275 // f, gap + 440 // f]) == NODATA_RGB
    # the incomplete patch is outlined in red: its top edge at row 240 px -> 120 in the panel
    assert tuple(img[gap + 240 // f, gap + 420 // f]) == OUTLINE_LEFT_OUT[:3]
    assert not list(p.parent.glob(".*"))  # atomic: no temporary left
