"""Fixtures for the pipeline tests: a synthetic many-patch tile with a preprocessed scene."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

SCENE = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"


@pytest.fixture
def big_tile_work(tmp_path: Path):
    """A work dir holding tile 33UUP with ``n x n`` patches (from col/row 10), its selection
    (one product) and that product's preprocessed GeoTIFF, as the earlier steps leave them.

    Returns a factory ``make(n) -> (WorkDir, key, tile)``. The dB values are a deterministic
    function of the pixel position, so a test can check any patch's content.
    """
    import rasterio

    from bigearthnet_s1 import pipeline
    from bigearthnet_s1.tiles import MapGrid, Patch, TileAcquisition, mgrs_tile_origin

    def make(n: int):
        epsg, ulx, uly = mgrs_tile_origin("33UUP")
        t = datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC)
        patches = tuple(
            Patch(s2_name=f"S2A_MSIL2A_20170613T101031_{c}_{r}", col=c, row=r, labels=("Pastures",),
                  ulx=ulx + 1200 * c, uly=uly - 1200 * r, lrx=ulx + 1200 * (c + 1), lry=uly - 1200 * (r + 1))
            for r in range(10, 10 + n) for c in range(10, 10 + n))
        tile = TileAcquisition(tile_id="33UUP", sensing_time=t, s2_product=None,
                               grid=MapGrid.tile(epsg=epsg, ulx=ulx, uly=uly), patches=patches)
        work = pipeline.WorkDir(tmp_path / "work", tmp_path / "archive")
        key = tile.key
        pipeline.write_json(work.tile_file(key), tile.to_json())
        pipeline.write_json(work.selection_file(key), {"products": [{"name": SCENE}], "coverage": 1.0})
        win = tile.grid.window_for_patches(tile.patches)
        h, w = int(win.height), int(win.width)
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        vv = -12.0 + 0.001 * rows - 0.0005 * cols
        vh = vv - 7.0
        out = work.processed_file(key, SCENE)
        out.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(out, "w", driver="GTiff", width=w, height=h, count=2, dtype="float32",
                           crs=tile.grid.crs, transform=tile.grid.window_transform(win), nodata=np.nan) as ds:
            ds.write(np.stack([vv, vh]))
            ds.set_band_description(1, "VV")
            ds.set_band_description(2, "VH")
            ds.update_tags(SCENE_ID=SCENE, START_TIME="2017-06-13T16:50:43.000000Z")
        return work, key, tile

    return make


@pytest.fixture
def json_lines():
    def parse(text: str) -> list[dict]:
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    return parse
