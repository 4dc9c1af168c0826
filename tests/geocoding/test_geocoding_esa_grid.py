"""The product's own truth: every geolocation grid point (azimuth time, slant range time, line,
pixel, lat, lon, height) of the real Sentinel-1 product and of simulated ones of both IPF eras
maps through the forward model (lat, lon, height -> line, pixel) onto its annotated line and
pixel to < 0.01 line and < 0.01 px (max), in the "esa" convention; SNAP's and sarsen's
conventions miss by ~0.2 line and up to ~0.5 px (they are controls: the test can fail)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyproj
import pytest
from affine import Affine

from bigearthnet_s1 import geocoding as G
from bigearthnet_s1.dem import FlatDem
from bigearthnet_s1.radar_geometry import RadarGeometry, bistatic_reference
from bigearthnet_s1.safe import open_safe


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, rome_dem: Path, gh) -> dict[str, Path]:
    """Two small simulated products over terrain (so that the polynomial blocks have their own
    terrain heights): IPF 2.84 (2017, BigEarthNet's era) over a synthetic massif, IPF 3.40
    (2021) over the real Rome DEM."""
    from bigearthnet_s1.simulate import simulate_product

    tmp = tmp_path_factory.mktemp("esa-grid-sim")
    cx, cy = pyproj.Transformer.from_crs(4326, gh.UTM33, always_xy=True).transform(11.5, 42.5)
    massif = gh.Hill(cx, cy, peak=1500.0, sigma=6000.0, base=200.0)
    dem = gh.write_dem(tmp / "massif.tif", massif, 4326, Affine(1 / 1200, 0, 10.8, 0, -1 / 1200, 43.0), (1200, 1680),
                       to_utm=True)
    old = simulate_product(tmp / "old", bounds_wgs84=(11.45, 42.45, 11.55, 42.55), time="2017-06-13T05:10:00",
                           dem=dem, ipf_version="002.84", margin_m=3000.0, seed=3)
    new = simulate_product(tmp / "new", bounds_wgs84=(12.48, 41.98, 12.52, 42.02), time="2021-12-23T05:11:22.594441",
                           dem=rome_dem, ipf_version="003.40", margin_m=1500.0, seed=4)
    return {"sim_ipf284": old, "sim_ipf340": new}


@pytest.fixture(params=["real_s1b", "sim_ipf284", "sim_ipf340"])
def product(request, s1b_rome_safe: Path) -> SimpleNamespace:
    if request.param == "real_s1b":
        path = s1b_rome_safe
    else:
        path = request.getfixturevalue("simulated")[request.param]
    with open_safe(path) as p:
        ann = p.annotation("VV")
    return SimpleNamespace(name=request.param, ann=ann)


def test_every_grid_point_maps_onto_its_line_and_pixel(product) -> None:
    ann, g = product.ann, product.ann.gcps
    geo = RadarGeometry.from_annotation(ann)
    assert geo.convention == "esa" and np.isfinite(geo.tau_ref)
    line, pixel = geo.solve(g.longitude, g.latitude, g.height)
    dl, dp = np.abs(line - g.line), np.abs(pixel - g.pixel)
    print(f"{product.name}: {g.line.size} points, line max {dl.max():.4f}, pixel max {dp.max():.5f}")
    assert g.line.size >= 40
    assert dl.max() < 0.01
    assert dp.max() < 0.01


@pytest.mark.parametrize("convention", ["snap", "sarsen"])
def test_snap_and_sarsen_conventions_miss_the_grid(product, convention: str) -> None:
    """Without the bistatic residual the lines are off by up to ~0.18 (the residual at the
    swath edges); the pixels differ where the polynomials of neighbouring blocks differ."""
    ann, g = product.ann, product.ann.gcps
    geo = RadarGeometry.from_annotation(ann, convention=convention)
    line, pixel = geo.solve(g.longitude, g.latitude, g.height)
    dl, dp = np.abs(line - g.line).max(), np.abs(pixel - g.pixel).max()
    print(f"{product.name} {convention}: line max {dl:.4f}, pixel max {dp:.4f}")
    if product.name.startswith("real"):  # whole swaths
        assert dl > 0.15
        assert dp > 0.2
    else:  # a few km of range only: a smaller residual, but beyond the test's 0.01
        assert dl > 0.02


def test_bistatic_reference_lies_in_iw2(product) -> None:
    """The bulk bistatic correction is taken at the middle of IW2 (ETAD ATBD): the value read
    off the grid lies inside IW2's slant range times (real products: the swath merge bounds)."""
    ann = product.ann
    tau_ref = bistatic_reference(ann)
    assert tau_ref is not None
    iw2 = [b for b in ann.swath_bounds if b.swath == "IW2"]
    if iw2 and product.name.startswith("real"):
        mid = ann.lines / 2.0
        near = ann.slant_range(mid, float(np.median([b.first_sample for b in iw2]))) * 2 / 299_792_458.0
        far = ann.slant_range(mid, float(np.median([b.last_sample for b in iw2]))) * 2 / 299_792_458.0
        assert near < tau_ref < far
    g = ann.gcps
    assert g.slant_range_time.min() - 1e-4 < tau_ref < g.slant_range_time.max() + 1e-4


def test_the_terrain_correction_kernel_reproduces_the_grid(s1b_rome_safe: Path) -> None:
    """Through the whole kernel (coordinate model, polynomial choice per pixel): a 10 m UTM grid
    whose pixel centre sits exactly on a grid point, geocoded at that point's height, gives
    the point's annotated (line, pixel)."""
    ann = open_safe(s1b_rome_safe).annotation("VV")
    g = ann.gcps
    idx = np.linspace(0, g.line.size - 1, 15).astype(int)
    for k in idx:
        epsg = 32600 + int((g.longitude[k] + 180) // 6) + 1
        x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(g.longitude[k], g.latitude[k])
        t = Affine(10.0, 0.0, x - 20.5 * 10.0, 0.0, -10.0, y + 20.5 * 10.0)  # pixel (20, 20) centred on the point
        line, pixel = G.radar_coordinates(ann, FlatDem(float(g.height[k])), crs=epsg, transform=t, shape=(41, 41),
                                          tolerance=0.002)
        assert abs(line[20, 20] - g.line[k]) < 0.01, k
        assert abs(pixel[20, 20] - g.pixel[k]) < 0.01, k
