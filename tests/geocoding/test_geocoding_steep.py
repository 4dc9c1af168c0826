"""Steep terrain: a synthetic DEM of ridges with 45 deg (and 60 deg) flanks and 2,000 m of relief
(EGM96 heights, EPSG:9707, 1 arc-second posts) under the real S1B geometry.

* Heights are sampled once: each target pixel's height is the DEM's bilinear value at that
  pixel plus the geoid (computed here with scipy and the bundled EGM96 grid, independently of
  the library's DEM code) to < 0.05 m.
* Geolocation against a dense direct reference (the exact range-Doppler solution at every
  target pixel with that height): p99 < 0.02 px, max < 0.05 px.
* Layover and shadow flags against a brute-force reference: for sampled pixels, a ray march
  towards the sensor (shadow) and the terrain profile in their zero-Doppler plane (layover).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyproj
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from bigearthnet_s1 import geocoding as G
from bigearthnet_s1 import layover as L
from bigearthnet_s1.dem import egm96_undulation, open_dem
from bigearthnet_s1.orbit import WGS84_A, WGS84_B, ecef_to_geodetic, geodetic_to_ecef
from bigearthnet_s1.radar_geometry import RadarGeometry

UTM = 32633
X0, Y0 = 290000.0, 4656000.0
T = Affine(10.0, 0.0, X0 - 1000.0, 0.0, -10.0, Y0 + 3000.0)
N = 800
DEM_STEP = 1.0 / 3600.0
DEM_ORIGIN = (12.38, 42.12)
DEM_SHAPE = (720, 900)


def ridges(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Terrain heights (m) in UTM 33N metres: three ridge systems with sharp crests, up to 2,000 m
    above a 150 m plain: 45 deg flanks (slope 1), except the west flank of the north-south
    ridge, 60 deg (the sensor looks west: that flank is in shadow, its east flank lays over);
    one system repeats every 5.2 km."""
    u1 = x - X0 - 5000.0
    u2 = (x - X0) * 0.6 + (y - Y0) * 0.8 + 4000.0
    u3 = (x - X0) * 0.8 - (y - Y0) * 0.6 - 9000.0
    r1 = np.clip(2000.0 - np.where(u1 < 0, -np.sqrt(3.0) * u1, u1), 0, None)
    r2 = np.clip(1800.0 - np.abs(np.mod(u2, 5200.0) - 2600.0), 0, None)
    r3 = np.clip(1500.0 - np.abs(u3), 0, None)
    return 150.0 + np.maximum(np.maximum(r1, r2), r3)


@pytest.fixture(scope="module")
def steep(tmp_path_factory, s1b_annotation) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("steep")
    h, w = DEM_SHAPE
    lon0, lat1 = DEM_ORIGIN
    lon = lon0 + (np.arange(w) + 0.5) * DEM_STEP
    lat = lat1 - (np.arange(h) + 0.5) * DEM_STEP
    lo, la = np.meshgrid(lon, lat)
    x, y = pyproj.Transformer.from_crs(4326, UTM, always_xy=True).transform(lo, la)
    z = ridges(x, y).astype(np.float32)
    path = tmp / "ridges_egm96.tif"
    transform = Affine(DEM_STEP, 0, lon0, 0, -DEM_STEP, lat1)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32", crs="EPSG:9707",
                       transform=transform) as ds:
        ds.write(z, 1)
    # reference heights at every target pixel centre: DEM bilinear (scipy) + geoid
    rr, cc = np.mgrid[0:N, 0:N].astype(np.float64)
    xs, ys = T @ (cc + 0.5, rr + 0.5)
    plon, plat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(xs, ys)
    col, row = ~transform @ (plon, plat)
    href = ndimage.map_coordinates(z.astype(np.float64), [row - 0.5, col - 0.5], order=1) + egm96_undulation(plon, plat)
    return SimpleNamespace(dem=open_dem(path), z=z, lon=plon, lat=plat, href=href, dem_transform=transform)


def test_the_terrain_is_steep(steep) -> None:
    assert steep.z.max() - steep.z.min() > 1990.0
    # 45 deg flanks: 1 m of height per metre across the ridges (the DEM's posts are ~23 x 31 m)
    dz = np.abs(np.diff(steep.href, axis=1)) / 10.0
    assert np.percentile(dz, 90) > 0.5 and dz.max() > 0.95


def test_heights_sampled_once(steep, s1b_annotation) -> None:
    line, pixel, hgt = G.radar_coordinates(s1b_annotation, steep.dem, crs=UTM, transform=T, shape=(N, N), heights=True)
    d = np.abs(hgt.astype(np.float64) - steep.href)
    print(f"height vs DEM bilinear + geoid: max {d.max():.4f} m")
    assert d.max() < 0.05


def test_geolocation_against_dense_direct_reference(steep, s1b_annotation) -> None:
    stats = G.GeocodingStats()
    line, pixel = G.radar_coordinates(s1b_annotation, steep.dem, crs=UTM, transform=T, shape=(N, N), stats=stats)
    geo = RadarGeometry.from_annotation(s1b_annotation)
    le, pe = geo.solve(steep.lon.ravel(), steep.lat.ravel(), steep.href.ravel())
    err = np.hypot(line.ravel() - le, pixel.ravel() - pe)
    p99, worst = np.percentile(err, 99), err.max()
    print(f"{err.size} px: p50 {np.median(err):.4f}, p99 {p99:.4f}, max {worst:.4f} px; {stats}")
    assert np.isfinite(err).all()
    assert stats.boundary_pixels > 0  # polynomial block boundaries cross the grid (solved exactly)
    assert p99 < 0.02
    assert worst < 0.05


# ----------------------------------------------------------------------------- layover/shadow
def _ray_ellipsoid(p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """First intersection of rays p + r d (unit d) with the WGS84 ellipsoid (h = 0)."""
    w = np.array([1 / WGS84_A**2, 1 / WGS84_A**2, 1 / WGS84_B**2])
    qa = (d * d * w).sum(-1)
    qb = 2 * (d * p * w).sum(-1)
    qc = (p * p * w).sum(-1) - 1
    r = (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
    return p + r[..., None] * d


def _terrain(steep, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Ellipsoidal terrain height: the DEM bilinear between its posts, plus the geoid."""
    col, row = ~steep.dem_transform @ (lon, lat)
    z = ndimage.map_coordinates(steep.z.astype(np.float64), [np.asarray(row) - 0.5, np.asarray(col) - 0.5], order=1,
                                mode="nearest")
    return z + egm96_undulation(lon, lat)


def _reference_flags(ann, steep, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Layover (1) / shadow (2) of target pixels, brute force.

    Shadow: the straight line from the pixel's terrain point P towards the sensor (at P's
    zero-Doppler time) passes below the terrain somewhere within 4 km (2 m steps).
    Layover: in P's zero-Doppler plane, the terrain profile (points every ~5 m of ground,
    +-12 km, each put exactly into the plane) has a point nearer to the ground track whose
    slant range is not below P's, or a farther one whose range is not above P's."""
    plon, plat = steep.lon[rows, cols], steep.lat[rows, cols]
    ph = steep.href[rows, cols]
    xyz = geodetic_to_ecef(plon, plat, ph)
    t, _ = ann.orbit.zero_doppler(xyz, tol=1e-9)
    s, v, _ = ann.orbit.interpolate(t)
    rng_p = np.linalg.norm(xyz - s, axis=-1)
    # shadow: march towards the sensor
    u = (s - xyz) / rng_p[:, None]
    steps = np.arange(2.0, 4000.0, 2.0)
    x = xyz[:, None, :] + steps[None, :, None] * u[:, None, :]
    xlon, xlat, xh = ecef_to_geodetic(x)
    shad = (_terrain(steep, xlon, xlat) > xh).any(axis=1)
    # layover: the terrain profile in the zero-Doppler plane
    ev = v / np.linalg.norm(v, axis=-1, keepdims=True)
    down = -(s - (s * ev).sum(-1, keepdims=True) * ev)
    down /= np.linalg.norm(down, axis=-1, keepdims=True)
    right = np.cross(ev, -down)
    d = geodetic_to_ecef(plon, plat, 0.0) - s
    phi_p = np.arctan2((d * right).sum(-1), (d * down).sum(-1))
    dphi = 5.0 * np.cos(np.radians(40.0)) / rng_p
    k = np.arange(-2400, 2401)
    phi = phi_p[:, None] + k[None, :] * dphi[:, None]
    dirs = np.cos(phi)[..., None] * down[:, None, :] + np.sin(phi)[..., None] * right[:, None, :]
    q = _ray_ellipsoid(np.broadcast_to(s[:, None, :], dirs.shape), dirs)
    qlon, qlat, _ = ecef_to_geodetic(q)
    for _ in range(4):  # lift onto the terrain, back into the plane (along the velocity), repeat
        q = geodetic_to_ecef(qlon, qlat, _terrain(steep, qlon, qlat))
        q = q - ((q - s[:, None, :]) * ev[:, None, :]).sum(-1, keepdims=True) * ev[:, None, :]
        qlon, qlat, qh = ecef_to_geodetic(q)
    assert np.abs(qh - _terrain(steep, qlon, qlat)).max() < 0.01
    rq = np.linalg.norm(q - s[:, None, :], axis=-1)
    near, far = k[None, :] < -1, k[None, :] > 1
    lay = (np.where(near, rq, -np.inf).max(1) >= rng_p) | (np.where(far, rq, np.inf).min(1) <= rng_p)
    return lay.astype(np.uint8) * L.MASK_LAYOVER | shad.astype(np.uint8) * L.MASK_SHADOW


@pytest.mark.parametrize("factor", [1, None])
def test_layover_and_shadow_flags_against_profiles(steep, s1b_annotation, factor) -> None:
    """Per pixel flags of the scan (full resolution, and the default ~DEM-spacing grid) agree
    with the brute-force profiles; the steep ridges give both, in sizeable amounts."""
    mask = L.layover_shadow_mask(s1b_annotation, steep.dem, crs=UTM, transform=T, shape=(N, N), factor=factor)
    assert mask.shape == (N, N) and mask.dtype == np.uint8
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, N, 400), rng.integers(0, N, 400)
    ref = _reference_flags(s1b_annotation, steep, rows, cols)
    got = mask[rows, cols]
    lay_ref, shad_ref = (ref & 1) > 0, (ref & 2) > 0
    print(f"factor {factor}: layover {lay_ref.mean():.2f} (mask {((mask & 1) > 0).mean():.2f}), "
          f"shadow {shad_ref.mean():.2f} (mask {((mask & 2) > 0).mean():.2f}); agreement layover "
          f"{np.mean(((got & 1) > 0) == lay_ref):.3f}, shadow {np.mean(((got & 2) > 0) == shad_ref):.3f}")
    assert lay_ref.mean() > 0.05 and shad_ref.mean() > 0.02  # the terrain has both
    limit = 0.99 if factor == 1 else 0.97
    assert np.mean(((got & 1) > 0) == lay_ref) > limit
    assert np.mean(((got & 2) > 0) == shad_ref) > limit


def test_flat_terrain_has_no_flags(s1b_annotation, tmp_path: Path, gh) -> None:
    path = gh.write_dem(tmp_path / "plain.tif", lambda x, y: 120.0 + 0.02 * (x - X0), UTM,
                        Affine(30.0, 0, X0 - 2000.0, 0, -30.0, Y0 + 4000.0), (400, 400))
    mask = L.layover_shadow_mask(s1b_annotation, open_dem(path, vertical="ellipsoid"), crs=UTM, transform=T,
                                 shape=(300, 300))
    assert not mask.any()
