"""Round trip through the scene simulator: a synthetic SAFE product over a hill (E's
``simulate_product``, radar -> ground with its own geometry code), read and calibrated by
``safe``/``radiometry``, terrain-corrected back onto the tile grid and compared with the
simulator's truth: point-target positions and sigma0."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import from_bounds

from bigearthnet_s1 import geocoding as G
from bigearthnet_s1.dem import RasterDem
from bigearthnet_s1.radiometry import radar_chain
from bigearthnet_s1.safe import open_safe
from bigearthnet_s1.simulate import simulate_product
from bigearthnet_s1.tiles import MapGrid, Patch, TileAcquisition


@pytest.fixture(scope="module")
def sim(tmp_path_factory, gh) -> SimpleNamespace:
    from datetime import UTC, datetime

    tmp = tmp_path_factory.mktemp("simulated")
    grid = MapGrid.tile(epsg=32633, ulx=300000.0, uly=5400000.0)
    patches = []
    for r in range(40, 43):
        for c in range(40, 43):
            ulx, uly = grid.ulx + 1200.0 * c, grid.uly - 1200.0 * r
            patches.append(Patch(f"S2A_MSIL2A_20170613T101031_{c}_{r}", c, r, ("Pastures",), ulx, uly,
                                 ulx + 1200.0, uly - 1200.0))
    tile = TileAcquisition("33UUP", datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC), None, grid, tuple(patches))
    x0, y0 = grid.ulx + 1200.0 * 40, grid.uly - 1200.0 * 40
    hill = gh.Hill(x0 + 1800.0, y0 - 1800.0, peak=600.0, sigma=900.0, base=100.0)
    dem_path = gh.write_dem(tmp / "hill.tif", hill, 32633, Affine(20.0, 0, x0 - 6000.0, 0, -20.0, y0 + 6000.0),
                            (780, 780))
    safe_path = simulate_product(tmp, tile=tile, time="2017-06-13T05:10:00", size="small", dem=dem_path)
    truth = json.loads(safe_path.with_name(safe_path.name.replace(".SAFE", ".truth.json")).read_text())
    product = open_safe(safe_path)
    ann = product.annotation("VV")
    win = grid.window_for_patches(patches)
    t = grid.window_transform(win)
    shape = (int(win.height), int(win.width))
    dem = RasterDem(dem_path, vertical="ellipsoid")  # the simulator treats heights as ellipsoidal
    rwin = G.radar_window_for_grid(ann, dem, crs=32633, transform=t, shape=shape)
    assert rwin is not None
    sigma0 = np.stack([radar_chain(product, pol, rwin, speckle=None) for pol in ("VV", "VH")])
    out = G.terrain_correct(sigma0, rwin, ann, dem, crs=32633, transform=t, shape=shape)
    with rasterio.open(safe_path.with_name(safe_path.name.replace(".SAFE", ".truth.tif"))) as ds:
        tw = from_bounds(t.c, t.f + shape[0] * t.e, t.c + shape[1] * t.a, t.f, ds.transform)
        tw = tw.round_offsets().round_lengths()
        truth_img = ds.read(window=tw)
    pts = truth["point_targets"]["targets"]
    return SimpleNamespace(out=out, truth_img=truth_img, transform=t, shape=shape,
                           points=np.array([(p["x"], p["y"]) for p in pts]))


def test_point_targets_land_where_the_simulator_put_them(sim, gh) -> None:
    off = gh.centroid_offsets(sim.out[0], sim.transform, sim.points, background=float(np.nanmedian(sim.out[0])),
                              half=3)
    ok = np.isfinite(off[:, 0])
    assert ok.sum() >= 8  # the targets inside the 3 x 3 patches (one per patch)
    d = np.hypot(off[ok, 0], off[ok, 1])
    print(f"{ok.sum()} simulated point targets: RMS {np.sqrt(np.mean(d**2)):.3f} px, max {d.max():.3f} px")
    assert np.sqrt(np.mean(d**2)) < 0.3
    assert d.max() < 1.0


def test_sigma0_matches_the_truth(sim) -> None:
    """Mean sigma0 away from the point targets equals the truth map's (speckle averages out)."""
    assert sim.truth_img.shape == (2,) + sim.shape
    keep = np.ones(sim.shape, bool)
    inv = ~sim.transform
    for x, y in sim.points:
        c, r = inv @ (x, y)
        keep[max(0, int(r) - 4):int(r) + 5, max(0, int(c) - 4):int(c) + 5] = False
    assert np.isfinite(sim.out).all()
    for band in (0, 1):
        ratio = sim.out[band][keep].mean() / sim.truth_img[band][keep].mean()
        assert ratio == pytest.approx(1.0, abs=0.03)
