"""Round trip on the real S1B geometry: simulate GRD pixels from a known map pattern over known
terrain (an independent radar -> ground forward model, see conftest), terrain-correct them
back onto a 10 m UTM grid, and measure where the bright points and the edge land."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine

from bigearthnet_s1 import geocoding as G
from bigearthnet_s1.coordinate_model import INITIAL_STEP
from bigearthnet_s1.dem import FlatDem, RasterDem, egm96_undulation
from bigearthnet_s1.radar_geometry import RadarGeometry

X0, Y0 = 290000.0, 4656000.0
T = Affine(10.0, 0.0, X0, 0.0, -10.0, Y0)
SHAPE = (400, 400)
EDGE_X = X0 + 3450.0


def _points() -> np.ndarray:
    pts = []
    for i, x in enumerate(np.arange(X0 + 150, X0 + 3000, 270.0)):
        for j, y in enumerate(np.arange(Y0 - 150, Y0 - 3850, -270.0)):
            pts.append((x + 7.3 * (j % 5), y - 4.1 * (i % 7)))  # sub-pixel positions vary
    return np.array(pts)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, s1b_annotation, gh) -> SimpleNamespace:
    """GRD window simulated over a 700 m hill; DEM file in EPSG:4326 (ellipsoidal heights)."""
    tmp = tmp_path_factory.mktemp("roundtrip")
    hill = gh.Hill(X0 + 2000.0, Y0 - 2000.0, peak=700.0, sigma=900.0)
    dem_path = gh.write_dem(tmp / "hill.tif", hill, 4326, Affine(1 / 3600, 0, 12.44, 0, -1 / 3600, 42.06),
                            (432, 432), to_utm=True)
    dem = RasterDem(dem_path, vertical="ellipsoid")
    win = G.radar_window_for_grid(s1b_annotation, dem, crs=gh.UTM33, transform=T, shape=SHAPE, margin=8)
    assert win is not None
    pts = _points()
    pattern = gh.PointPattern(pts, edge_x=EDGE_X, edge_step=0.2)
    fw = gh.forward_model(s1b_annotation, win, pattern, hill)
    return SimpleNamespace(hill=hill, dem=dem, dem_path=dem_path, window=win, points=pts, image=fw.image, tmp=tmp)


def _errors(gh, out: np.ndarray, pts: np.ndarray) -> np.ndarray:
    off = gh.centroid_offsets(out, T, pts, background=0.05)
    ok = np.isfinite(off[:, 0])
    assert ok.sum() > 0.9 * len(pts)
    return np.hypot(off[ok, 0], off[ok, 1])


@pytest.mark.parametrize("resampling", ["bilinear", "bicubic", "nearest"])
def test_round_trip_points_over_a_hill(scene, s1b_annotation, gh, resampling) -> None:
    out = G.terrain_correct(scene.image, scene.window, s1b_annotation, scene.dem, crs=gh.UTM33, transform=T,
                            shape=SHAPE, resampling=resampling)
    assert out.shape == SHAPE and out.dtype == np.float32
    assert np.isfinite(out).all()  # the window covers the grid
    d = _errors(gh, out, scene.points)
    rms, worst = float(np.sqrt(np.mean(d**2))), float(d.max())
    print(f"{resampling}: {d.size} points, RMS {rms:.3f} px, max {worst:.3f} px")
    # forward model and terrain correction in the same (the product's) geometry convention:
    # what is left is the centroiding of resampled points (nearest: up to half a pixel)
    lim_rms, lim_max = (0.15, 0.35) if resampling == "nearest" else (0.05, 0.1)
    assert rms < lim_rms
    assert worst < lim_max


def test_other_conventions_are_measurably_off(scene, s1b_annotation, gh) -> None:
    """Control: the product's points through SNAP's or sarsen's convention land ~0.2 px off
    (the bistatic residual and the polynomial interpolation), which the test above would see."""
    for conv in ("snap", "sarsen"):
        out = G.terrain_correct(scene.image, scene.window, s1b_annotation, scene.dem, crs=gh.UTM33, transform=T,
                                shape=SHAPE, convention=conv)
        d = _errors(gh, out, scene.points)
        assert np.sqrt(np.mean(d**2)) > 0.1, conv


def test_round_trip_edge_position(scene, s1b_annotation, gh) -> None:
    out = G.terrain_correct(scene.image, scene.window, s1b_annotation, scene.dem, crs=gh.UTM33, transform=T,
                            shape=SHAPE)
    col_true = (EDGE_X - X0) / 10.0 - 0.5  # pixel-centre coordinate of the edge
    c0 = int(col_true) - 6
    prof = np.median(out[20:380, c0:c0 + 13], axis=0)  # median over rows: robust to nothing else there
    lo, hi = np.median(out[20:380, c0 - 10:c0 - 5]), np.median(out[20:380, c0 + 18:c0 + 23])
    assert hi - lo == pytest.approx(0.2, abs=0.02)
    mid = 0.5 * (lo + hi)
    k = int(np.argmax(prof > mid))
    crossing = c0 + k - 1 + (mid - prof[k - 1]) / (prof[k] - prof[k - 1])
    assert abs(crossing - col_true) < 0.3


def test_without_the_hill_points_land_far_off(scene, s1b_annotation, gh) -> None:
    """Control: the test can see terrain errors (a flat DEM puts the hilltop points many px off)."""
    out = G.terrain_correct(scene.image, scene.window, s1b_annotation, FlatDem(60.0), crs=gh.UTM33, transform=T,
                            shape=SHAPE)
    off = gh.centroid_offsets(out, T, scene.points, background=0.05, half=12)
    d = np.hypot(off[:, 0], off[:, 1])
    assert np.nanmax(d) > 5.0


def test_coordinate_model_matches_exact_solution(scene, s1b_annotation, gh) -> None:
    stats = G.GeocodingStats()
    line, pixel = G.radar_coordinates(s1b_annotation, scene.dem, crs=gh.UTM33, transform=T, shape=SHAPE, stats=stats)
    geo = RadarGeometry.from_annotation(s1b_annotation)
    rng = np.random.default_rng(1)
    rr, cc = rng.integers(0, SHAPE[0], 400), rng.integers(0, SHAPE[1], 400)
    x, y = T @ (cc + 0.5, rr + 0.5)
    import pyproj

    lon, lat = pyproj.Transformer.from_crs(gh.UTM33, 4326, always_xy=True).transform(x, y)
    le, pe = geo.solve(lon, lat, scene.hill(x, y))
    # the model interpolates the DEM bilinearly from its own posts; the hill is smooth enough
    # that this adds < 0.01 px: the difference is the coordinate model's error
    assert np.abs(line[rr, cc] - le).max() < 0.05
    assert np.abs(pixel[rr, cc] - pe).max() < 0.05
    assert 0 < stats.max_error_px < 0.05


def test_refinement_where_the_tolerance_is_not_met(scene, s1b_annotation, gh) -> None:
    """A tolerance the initial lattice cannot meet makes the blocks refine their step."""
    stats = G.GeocodingStats()
    G.radar_coordinates(s1b_annotation, scene.dem, crs=gh.UTM33, transform=T, shape=SHAPE, tolerance=5e-4,
                        stats=stats)
    assert min(stats.steps) < INITIAL_STEP
    assert stats.max_error_px <= 5e-4


def test_geoid_referenced_dem(scene, s1b_annotation, gh) -> None:
    """DEM file in EPSG:9707 (EGM96 heights): the geoid (~48 m here) must be added, or points
    shift by several pixels."""
    hill = scene.hill
    path = gh.write_dem(scene.tmp / "hill_egm96.tif", hill, "EPSG:9707",
                        Affine(1 / 3600, 0, 12.44, 0, -1 / 3600, 42.06), (432, 432), to_utm=True)
    pattern = gh.PointPattern(scene.points)
    fw = gh.forward_model(s1b_annotation, scene.window, pattern, hill, geoid=egm96_undulation)
    dem = RasterDem(path)
    assert dem.vertical == "egm96"
    out = G.terrain_correct(fw.image, scene.window, s1b_annotation, dem, crs=gh.UTM33, transform=T, shape=SHAPE)
    d = _errors(gh, out, scene.points)
    assert np.sqrt(np.mean(d**2)) < 0.3 and d.max() < 1.0
    wrong = G.terrain_correct(fw.image, scene.window, s1b_annotation, RasterDem(path, vertical="ellipsoid"),
                              crs=gh.UTM33, transform=T, shape=SHAPE)
    off = gh.centroid_offsets(wrong, T, scene.points, background=0.05, half=10)
    assert np.nanmedian(np.hypot(off[:, 0], off[:, 1])) > 2.0


def test_dual_pol_stack_and_nan_no_data(scene, s1b_annotation, gh) -> None:
    """A (2, h, w) stack gives two bands; NaN in the radar image stays NaN on the grid (only
    where the nearest radar sample is NaN), and the rest is untouched."""
    img = np.stack([scene.image, 2 * scene.image])
    img[1, :, : img.shape[2] // 2] = np.nan
    out = G.terrain_correct(img, scene.window, s1b_annotation, scene.dem, crs=gh.UTM33, transform=T, shape=SHAPE)
    assert out.shape == (2,) + SHAPE
    single = G.terrain_correct(scene.image, scene.window, s1b_annotation, scene.dem, crs=gh.UTM33, transform=T,
                               shape=SHAPE)
    np.testing.assert_array_equal(out[0], single)
    line, pixel = G.radar_coordinates(s1b_annotation, scene.dem, crs=gh.UTM33, transform=T, shape=SHAPE)
    nan_side = (pixel - scene.window.col_off) < img.shape[2] // 2 - 0.5
    assert np.isnan(out[1][nan_side]).all()
    good = (pixel - scene.window.col_off) > img.shape[2] // 2 + 1
    np.testing.assert_allclose(out[1][good], 2 * single[good], rtol=1e-6)
