"""Fixtures for the mosaic tests: a tile with a block of patches, scenes as arrays on its grid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from rasterio.windows import Window

from bigearthnet_s1.archive import SceneRef
from bigearthnet_s1.mosaic import SceneOnGrid
from bigearthnet_s1.tiles import MapGrid, Patch, TileAcquisition

SENSING = datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC)


def make_tile(cols: range, rows: range, tile_id: str = "33UUP") -> TileAcquisition:
    grid = MapGrid.tile(epsg=32633, ulx=300000.0, uly=5400000.0)
    patches = []
    for r in rows:
        for c in cols:
            ulx, uly = grid.ulx + 1200.0 * c, grid.uly - 1200.0 * r
            patches.append(Patch(s2_name=f"S2A_MSIL2A_20170613T101031_{c}_{r}", col=c, row=r,
                                 labels=("Pastures",), ulx=ulx, uly=uly, lrx=ulx + 1200.0, lry=uly - 1200.0))
    return TileAcquisition(tile_id=tile_id, sensing_time=SENSING, s2_product=None, grid=grid, patches=tuple(patches))


def scene_ref(hours: float, orbit: int = 17018) -> SceneRef:
    t = SENSING + timedelta(hours=hours)
    t0 = t.strftime("%Y%m%dT%H%M%S")
    t1 = (t + timedelta(seconds=25)).strftime("%Y%m%dT%H%M%S")
    return SceneRef(f"S1A_IW_GRDH_1SDV_{t0}_{t1}_{orbit:06d}_01C579_7EEC", t)


def constant_scene(ref: SceneRef, window: Window, vv: float, vh: float) -> SceneOnGrid:
    h, w = int(window.height), int(window.width)
    data = np.stack([np.full((h, w), vv, np.float32), np.full((h, w), vh, np.float32)])
    return SceneOnGrid(scene=ref, window=window, data=data)


@pytest.fixture
def mk():
    return SimpleNamespace(tile=make_tile, ref=scene_ref, scene=constant_scene, SENSING=SENSING)
