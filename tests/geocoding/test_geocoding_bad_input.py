"""Bad input to terrain correction: clear errors or documented fills, never shifted output."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window

from bigearthnet_s1 import geocoding as G
from bigearthnet_s1 import layover as L
from bigearthnet_s1.dem import FlatDem, open_dem
from bigearthnet_s1.errors import DemError, GeometryError, InputError
from bigearthnet_s1.orbit import Orbit
from bigearthnet_s1.radar_geometry import RadarGeometry

UTM = 32633
T = Affine(10.0, 0.0, 290000.0, 0.0, -10.0, 4656000.0)


@pytest.fixture(scope="module")
def win(s1b_annotation) -> Window:
    w = G.radar_window_for_grid(s1b_annotation, "flat", crs=UTM, transform=T, shape=(100, 100))
    assert w is not None
    return w


def test_grid_the_scene_does_not_touch(s1b_annotation, win) -> None:
    far = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5200000.0)  # 47 N, east of the swath
    assert G.radar_window_for_grid(s1b_annotation, "flat", crs=UTM, transform=far, shape=(100, 100)) is None
    img = np.ones((int(win.height), int(win.width)), dtype=np.float32)
    with pytest.raises(GeometryError, match="does not overlap the scene"):
        G.terrain_correct(img, win, s1b_annotation, "flat", crs=UTM, transform=far, shape=(100, 100))


def test_grid_partly_outside_the_window_is_nan_there(s1b_annotation, win) -> None:
    """Pixels whose radar position lies outside the given window are no-data, not edge copies."""
    img = np.ones((int(win.height), int(win.width)), dtype=np.float32)
    big = G.terrain_correct(img, win, s1b_annotation, "flat", crs=UTM, transform=T @ Affine.translation(-50, -50),
                            shape=(200, 200))
    assert np.isnan(big[:20, :20]).all()  # outside the window
    assert (big[60:140, 60:140] == 1.0).all()  # the window's grid part


def test_grid_reaching_beyond_the_scene_edge(s1b_annotation) -> None:
    """A grid over the scene's far-range edge: NaN beyond the last column, data before it."""
    geo = RadarGeometry.from_annotation(s1b_annotation)
    # find where the last column lies at line ~8000 on a flat ellipsoid
    g = s1b_annotation.gcps
    k = np.argmin(np.abs(g.line - 8000) + np.abs(g.pixel - (s1b_annotation.samples - 1)))
    import pyproj

    x, y = pyproj.Transformer.from_crs(4326, UTM, always_xy=True).transform(g.longitude[k], g.latitude[k])
    t = Affine(10.0, 0.0, round(x) - 1000.0, 0.0, -10.0, round(y) + 1000.0)
    w = G.radar_window_for_grid(s1b_annotation, FlatDem(g.height[k]), crs=UTM, transform=t, shape=(200, 200))
    assert w is not None and w.col_off + w.width == s1b_annotation.samples  # clipped to the image
    img = np.ones((int(w.height), int(w.width)), dtype=np.float32)
    out = G.terrain_correct(img, w, s1b_annotation, FlatDem(g.height[k]), crs=UTM, transform=t, shape=(200, 200))
    line, pixel = G.radar_coordinates(s1b_annotation, FlatDem(g.height[k]), crs=UTM, transform=t, shape=(200, 200))
    inside = pixel <= geo.samples - 0.5
    assert inside.any() and (~inside).any()
    assert np.isnan(out[~inside]).all()
    assert (out[inside & (pixel < geo.samples - 2)] == 1.0).all()


def test_orbit_not_spanning_the_scene(s1b_annotation, win) -> None:
    o = s1b_annotation.orbit
    keep = o.times < 70.0  # the scene runs from about 61 s to 86 s after the first vector
    short = Orbit.from_state_vectors(o.datetime(o.times[keep]), o.positions[keep], o.velocities[keep])
    bad = dataclasses.replace(s1b_annotation, orbit=short)
    img = np.ones((int(win.height), int(win.width)), dtype=np.float32)
    with pytest.raises(GeometryError, match="orbit state vectors span"):
        G.terrain_correct(img, win, bad, "flat", crs=UTM, transform=T, shape=(100, 100))
    with pytest.raises(GeometryError, match="orbit state vectors span"):
        G.radar_window_for_grid(bad, "flat", crs=UTM, transform=T, shape=(100, 100))


def test_dem_not_covering_the_grid(s1b_annotation, win, rome_dem: Path) -> None:
    img = np.ones((int(win.height), int(win.width)), dtype=np.float32)
    outside = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 4656000.0)  # east of the Rome DEM
    with pytest.raises(DemError, match="does not cover"):
        G.terrain_correct(img, win, s1b_annotation, open_dem(rome_dem), crs=UTM, transform=outside, shape=(100, 100))


def test_bad_arguments(s1b_annotation, win) -> None:
    img = np.ones((int(win.height), int(win.width)), dtype=np.float32)
    with pytest.raises(InputError, match="resampling"):
        G.terrain_correct(img, win, s1b_annotation, "flat", crs=UTM, transform=T, shape=(10, 10), resampling="lanczos")
    with pytest.raises(InputError, match="does not match window"):
        G.terrain_correct(img[:-1], win, s1b_annotation, "flat", crs=UTM, transform=T, shape=(10, 10))
    with pytest.raises(InputError, match="empty"):
        G.terrain_correct(img, win, s1b_annotation, "flat", crs=UTM, transform=T, shape=(0, 10))


def test_layover_and_shadow_on_a_ridge(s1b_annotation, tmp_path: Path, gh) -> None:
    """S1B descending, right-looking: the sensor is to the east. A ridge whose east face rises
    at 50 deg (steeper than the ~43 deg incidence) lays over, and so does the plain in front of
    it out to where its ranges reach the crest's (passive layover, ~600 m from the crest); its
    west face falling at 63 deg (steeper than the ~47 deg elevation angle) is in shadow, and so
    is the plain behind it out to ~560 m from the crest; gentle slopes are neither."""
    xr = 292000.0

    def ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        east = np.clip(600.0 - 1.2 * (x - xr), 0.0, None)  # x > xr: falls eastwards at 1.2
        west = np.clip(600.0 - 2.0 * (xr - x), 0.0, None)  # x < xr: falls westwards at 2.0
        gentle = 0.3 * np.clip(289500.0 - x, 0.0, None)  # a gentle slope further west
        return np.where(x >= xr, east, west) + gentle + 50.0

    path = gh.write_dem(tmp_path / "ridge.tif", ridge, UTM, Affine(10.0, 0, 288000.0, 0, -10.0, 4657000.0), (300, 700))
    dem = open_dem(path, vertical="ellipsoid")
    t = Affine(10.0, 0.0, 288200.0, 0.0, -10.0, 4656800.0)
    mask = L.layover_shadow_mask(s1b_annotation, dem, crs=UTM, transform=t, shape=(200, 650))
    cols = np.arange(650)
    x = 288200.0 + (cols + 0.5) * 10.0
    rows = slice(20, 180)
    east_face = (x > xr + 40) & (x < xr + 460)
    west_face = (x < xr - 40) & (x > xr - 260)
    passive_layover = (x > xr + 520) & (x < xr + 580)
    passive_shadow = (x < xr - 320) & (x > xr - 520)
    flat = (x > xr + 680)
    gentle = (x < 289400.0) & (x > 288300.0)
    assert (mask[rows][:, east_face] == L.MASK_LAYOVER).mean() > 0.95
    assert (mask[rows][:, west_face] == L.MASK_SHADOW).mean() > 0.95
    assert (mask[rows][:, passive_layover] == L.MASK_LAYOVER).mean() > 0.95
    assert (mask[rows][:, passive_shadow] == L.MASK_SHADOW).mean() > 0.95
    assert (mask[rows][:, flat] == 0).all()
    assert (mask[rows][:, gentle] == 0).all()
