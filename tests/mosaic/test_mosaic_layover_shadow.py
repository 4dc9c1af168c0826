"""Layover/shadow flags through the mosaic: each pixel takes the flags of the scene it came from,
the provenance file carries them as a second band, and the index counts them per patch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
import rasterio
from rasterio.windows import Window

from bigearthnet_s1.archive import merge_index
from bigearthnet_s1.engine import write_geotiff
from bigearthnet_s1.grid import MapGrid
from bigearthnet_s1.mosaic import SceneOnGrid, mosaic_tile


def _p(col: int, row: int) -> str:
    return f"S2A_MSIL2A_20170613T101031_{col}_{row}"


def _flags(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.zeros(shape, dtype=np.uint8)
    f[rng.random(shape) < 0.03] = 1
    f[rng.random(shape) < 0.02] |= 2
    return f


def test_flags_follow_the_provenance_and_are_counted_per_patch(mk, tmp_path) -> None:
    tile = mk.tile(range(10, 13), range(20, 22))  # window cols 1200..1560, rows 2400..2640
    near = mk.scene(mk.ref(1.0), Window(1200, 2400, 240, 240), -10.0, -16.0)  # patches 10, 11
    far = mk.scene(mk.ref(30.0), Window(1200, 2400, 360, 240), -12.0, -18.0)  # all patches
    near.data[:, 130:140, 10:20] = np.nan  # patch (10, 21) is incomplete in the near scene: far fills it
    fn, ff = _flags((240, 240), 1), _flags((240, 360), 2)
    near = dataclasses.replace(near, mask=fn)
    far = dataclasses.replace(far, mask=ff)
    m = mosaic_tile(tile, [far, near])
    assert m.layover_shadow is not None
    want = np.where(m.provenance == 1, np.pad(fn, ((0, 0), (0, 120))), ff)  # index 1 = near
    np.testing.assert_array_equal(m.layover_shadow, want)
    assert m.patches[_p(10, 21)].scene == 0  # taken whole from the far scene
    rows = m.write(tmp_path / "archive")
    by = {r["s2_name"]: r for r in rows}
    for col in (10, 11, 12):
        for row in (20, 21):
            sl = np.s_[120 * (row - 20):120 * (row - 19), 120 * (col - 10):120 * (col - 9)]
            assert by[_p(col, row)]["layover_px"] == int(np.count_nonzero(want[sl] & 1))
            assert by[_p(col, row)]["shadow_px"] == int(np.count_nonzero(want[sl] & 2))
    assert all(r["layover_px"] > 0 and r["shadow_px"] > 0 for r in rows)
    index = pq.read_table(merge_index(tmp_path / "archive")).to_pandas()
    assert {"layover_px", "shadow_px"} <= set(index.columns)
    assert dict(zip(index["s2_name"], index["layover_px"], strict=True)) == {k: v["layover_px"] for k, v in by.items()}
    # the provenance file: band 2 holds the flags, -1 where there is no pixel
    prov = m.write_provenance(tmp_path / "prov.tif")
    with rasterio.open(prov) as ds:
        assert ds.count == 2 and ds.descriptions == ("PROVENANCE", "LAYOVER_SHADOW")
        np.testing.assert_array_equal(ds.read(2), np.where(m.provenance >= 0, want.astype(np.int8), -1))


def test_flags_read_from_the_scene_geotiff(mk, tmp_path) -> None:
    """preprocess writes the flags as a last float32 band LAYOVER_SHADOW (NaN no data)."""
    tile = mk.tile(range(10, 12), range(20, 21))
    win = Window(1200, 2400, 240, 120)
    grid = MapGrid(tile.grid.crs, tile.grid.window_transform(win), (120, 240))
    flags = _flags((120, 240), 3).astype(np.float32)
    vv = np.full((120, 240), -11.0, np.float32)
    flags[:, :5] = np.nan
    vv[:, :5] = np.nan
    ref = mk.ref(2.0)
    path = write_geotiff(tmp_path / "scene.tif", np.stack([vv, vv - 6, flags]), grid,
                         descriptions=["VV", "VH", "LAYOVER_SHADOW"],
                         tags={"SCENE_ID": ref.scene_id, "START_TIME": ref.start_time.isoformat()})
    s = SceneOnGrid.from_geotiff(path, tile)
    assert s.mask_band == 3 and s.has_mask
    got = s.read_mask(Window(1180, 2400, 300, 120))  # reaching beyond the scene: 0 there
    assert got.shape == (120, 300) and (got[:, :20] == 0).all() and (got[:, 260:] == 0).all()
    np.testing.assert_array_equal(got[:, 20:260], np.nan_to_num(flags).astype(np.uint8))
    m = mosaic_tile(tile, [s])
    assert m.layover_shadow is not None and int(m.layover_shadow.sum()) == int(np.nansum(flags[:, 5:]))


def test_without_flags_the_counts_are_unknown(mk, tmp_path) -> None:
    """A scene GeoTIFF without the flags band (older, or made elsewhere): null counts, not 0."""
    tile = mk.tile(range(10, 11), range(20, 21))
    with_flags = dataclasses.replace(mk.scene(mk.ref(1.0), Window(1200, 2400, 120, 120), -10.0, -16.0),
                                     mask=np.ones((120, 120), np.uint8))
    without = mk.scene(mk.ref(2.0), Window(1200, 2400, 120, 120), -10.0, -16.0)
    m = mosaic_tile(tile, [with_flags, without])
    assert m.layover_shadow is None
    rows = m.write(tmp_path / "archive")
    assert rows[0]["layover_px"] is None and rows[0]["shadow_px"] is None
    index = pq.read_table(merge_index(tmp_path / "archive")).to_pandas()
    assert index["layover_px"].isna().all()
