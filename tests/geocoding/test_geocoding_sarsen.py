"""Cross-check with sarsen on the real S1B geometry and the real Rome DEM.

A copy of the real product gets a measurement TIFF whose window over Rome holds a known
pattern (bright points on a background with an edge); ours and sarsen's ``terrain_correction``
geocode it on the same DEM and grid (sarsen outputs on the DEM's grid, so the DEM is first put
on our 10 m UTM grid as ellipsoidal heights)."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from bigearthnet_s1 import geocoding as G
from bigearthnet_s1.dem import RasterDem, open_dem

CRS = 32633
T = Affine(10.0, 0.0, 290000.0, 0.0, -10.0, 4656000.0)
SHAPE = (300, 300)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, s1b_rome_safe: Path, rome_dem: Path, s1b_annotation) -> SimpleNamespace:
    import sarsen

    tmp = tmp_path_factory.mktemp("sarsen")
    safe = tmp / s1b_rome_safe.name
    shutil.copytree(s1b_rome_safe, safe, ignore=shutil.ignore_patterns("*.tiff"))
    # the same heights for both: the real DEM (EGM96) as ellipsoidal heights on our grid
    heights = open_dem(rome_dem).heights(CRS, T, SHAPE)
    dem_path = tmp / "rome_ellipsoidal_utm.tif"
    with rasterio.open(dem_path, "w", driver="GTiff", width=SHAPE[1], height=SHAPE[0], count=1, dtype="float32",
                       crs=CRS, transform=T) as ds:
        ds.write(heights, 1)
    dem = RasterDem(dem_path, vertical="ellipsoid")
    win = G.radar_window_for_grid(s1b_annotation, dem, crs=CRS, transform=T, shape=SHAPE, margin=20)
    assert win is not None
    nh, nw = int(win.height), int(win.width)
    L, P = np.mgrid[0:nh, 0:nw].astype(np.float64)
    dn = np.where(P < nw // 2, 100.0, 160.0)  # an edge along azimuth
    amp = np.zeros((nh, nw))
    for i in range(16, nh - 16, 31):
        for j in range(16, nw - 16, 33):
            amp += 900.0 * np.exp(-((L - i - 0.3) ** 2 + (P - j + 0.2) ** 2) / (2 * 1.5**2))
    dn = np.round(np.sqrt(dn**2 + amp**2)).astype(np.uint16)
    meas_name = os.listdir(s1b_rome_safe / "measurement")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(safe / "measurement" / meas_name, "w", driver="GTiff", width=s1b_annotation.samples,
                           height=s1b_annotation.lines, count=1, dtype="uint16", tiled=True, blockxsize=512,
                           blockysize=512, compress="deflate", sparse_ok=True) as ds:
            ds.write(dn, 1, window=win)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        product = sarsen.Sentinel1SarProduct(str(safe), measurement_group="IW/VV")
        gtc = sarsen.terrain_correction(product, str(dem_path), output_urlpath=str(tmp / "GTC.tif"),
                                        interp_method="linear")
        theirs = gtc.values.astype(np.float32)
        # sarsen's beta nought of the window feeds ours (same calibration, same input)
        beta0 = product.beta_nought().isel(
            azimuth_time=slice(int(win.row_off), int(win.row_off) + nh),
            ground_range=slice(int(win.col_off), int(win.col_off) + nw),
        ).values.astype(np.float32)
    # put sarsen's output in our row order, by its coordinates (it flips y to ascending)
    ys, xs = gtc.y.values, gtc.x.values
    if ys[0] < ys[-1]:
        theirs, ys = theirs[::-1], ys[::-1]
    cx, _ = T @ (np.arange(SHAPE[1]) + 0.5, np.zeros(SHAPE[1]))
    _, cy = T @ (np.zeros(SHAPE[0]), np.arange(SHAPE[0]) + 0.5)
    np.testing.assert_allclose(xs, cx)
    np.testing.assert_allclose(ys, cy)
    ours = G.terrain_correct(beta0, win, s1b_annotation, dem, crs=CRS, transform=T, shape=SHAPE)
    return SimpleNamespace(ours=ours, theirs=theirs)


def test_same_features_as_sarsen(pair) -> None:
    ours, theirs = pair.ours, pair.theirs
    bright = ours > np.nanpercentile(ours, 98.5)
    labels, n = ndimage.label(ndimage.binary_dilation(bright, iterations=1))
    assert n > 40
    idx = range(1, n + 1)
    co = np.array(ndimage.center_of_mass(np.clip(ours - np.nanmedian(ours), 0, None), labels, idx))
    cs = np.array(ndimage.center_of_mass(np.clip(theirs - np.nanmedian(theirs), 0, None), labels, idx))
    d = np.hypot(*(co - cs).T)
    print(f"{n} features: mean offset {d.mean():.3f} px, max {d.max():.3f} px")
    assert d.mean() < 0.5
    assert d.max() < 1.0


def test_same_backscatter_as_sarsen(pair) -> None:
    ours, theirs = pair.ours, pair.theirs
    ok = np.isfinite(ours) & np.isfinite(theirs) & (ours > 0) & (theirs > 0)
    assert ok.mean() > 0.99
    diff = 10 * np.log10(ours[ok]) - 10 * np.log10(theirs[ok])
    print(f"dB difference: median {np.median(diff):.4f}, median |d| {np.median(np.abs(diff)):.4f}")
    assert abs(np.median(diff)) < 0.2
    assert np.median(np.abs(diff)) < 0.2
    # the edge is there in both (a 4 dB step)
    assert 10 * np.log10(np.nanmax(ours) / np.nanmin(ours)) > 4.0
