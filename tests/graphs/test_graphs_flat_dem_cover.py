"""The "flat" DEM covers the whole target grid, not just the product footprint.

A scene edge that cuts through a patch leaves the patch's 1200 m cell reaching past the
footprint; at 70 deg N (the northernmost BigEarthNet tiles) a cell spans 0.032 deg of longitude,
more than the DEM's margin of two 0.01 deg posts (plus at most one post of rounding).
Checked with the real coverage test of ``dem.open_dem(...).heights``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from bigearthnet_s1 import preprocess as P
from bigearthnet_s1.dem import open_dem
from bigearthnet_s1.errors import DemError
from bigearthnet_s1.grid import MapGrid


def test_flat_dem_covers_patch_cells_past_a_high_latitude_footprint(tmp_path: Path) -> None:
    # One 120 x 120 patch cell of UTM 34N at about 70 N, 22.9 E (tile 34WFV's latitude).
    grid = MapGrid(CRS.from_epsg(32634), Affine(10, 0, 500040, 0, -10, 7770000), (120, 120))
    lon0, lat0, lon1, lat1 = grid.bounds_wgs84()
    assert 69.9 < lat0 < 70.1 and lon1 - lon0 > 0.031
    # A footprint whose east edge just reaches the cell's west edge.
    fp_bounds = (lon0 - 2.0, lat0 - 0.5, lon0, lat1 + 0.5)

    old = P.write_flat_dem(tmp_path / "old.tif", fp_bounds)
    with pytest.raises(DemError, match="does not cover"):
        open_dem(old, vertical="ellipsoid").heights(grid.crs, grid.transform, grid.shape)

    bounds = P.flat_dem_bounds(fp_bounds, grid)
    assert bounds[:2] == fp_bounds[:2] and bounds[2] == pytest.approx(lon1) and bounds[3] == fp_bounds[3]
    new = P.write_flat_dem(tmp_path / "new.tif", bounds)
    h = open_dem(new, vertical="ellipsoid").heights(grid.crs, grid.transform, grid.shape)
    assert h.shape == (120, 120) and np.all(h == 0.0)
