"""Orbit interpolation and zero-Doppler geometry against a real Sentinel-1 annotation.

The real S1B product's geolocation grid gives, for each ground point (lat, lon, height),
the zero-Doppler azimuth time and two-way slant range time that ESA's processor computed.
Our solver must reproduce both from the orbit state vectors alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest
from defusedxml import ElementTree as ET

from bigearthnet_s1.errors import GeometryError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, Orbit, ecef_to_geodetic, geodetic_to_ecef


def _annotation(safe: Path) -> ET.ElementTree:
    (xml,) = sorted((safe / "annotation").glob("s1b-iw-grd-vv-*.xml"))
    return ET.parse(xml)


def _orbit(tree) -> Orbit:
    osv = tree.findall(".//orbitList/orbit")
    times = np.array([np.datetime64(o.findtext("time")) for o in osv])
    pos = np.array([[float(o.findtext(f"position/{a}")) for a in "xyz"] for o in osv])
    vel = np.array([[float(o.findtext(f"velocity/{a}")) for a in "xyz"] for o in osv])
    return Orbit.from_state_vectors(times, pos, vel)


def _gcps(tree) -> dict[str, np.ndarray]:
    pts = tree.findall(".//geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    out = {k: np.array([float(p.findtext(k)) for p in pts]) for k in ("latitude", "longitude", "height", "slantRangeTime")}
    out["azimuthTime"] = np.array([np.datetime64(p.findtext("azimuthTime")) for p in pts])
    return out


def test_geodetic_ecef_matches_pyproj_and_round_trips() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(-180, 180, 1000)
    lat = rng.uniform(-89, 89, 1000)
    h = rng.uniform(-400, 9000, 1000)
    xyz = geodetic_to_ecef(lon, lat, h)
    ref = pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True).transform(lon, lat, h)
    np.testing.assert_allclose(xyz, np.stack(ref, axis=-1), atol=1e-6)
    lon2, lat2, h2 = ecef_to_geodetic(xyz)
    np.testing.assert_allclose(lon2, lon, atol=1e-10)
    np.testing.assert_allclose(lat2, lat, atol=1e-10)
    np.testing.assert_allclose(h2, h, atol=1e-5)


def test_interpolation_is_exact_at_state_vectors_and_smooth_between(s1b_rome_safe: Path) -> None:
    orbit = _orbit(_annotation(s1b_rome_safe))
    pos, vel, _ = orbit.interpolate(orbit.times)
    np.testing.assert_allclose(pos, orbit.positions, atol=1e-6)
    np.testing.assert_allclose(vel, orbit.velocities, atol=1e-6)
    # Between vectors the speed stays that of a ~693 km orbit (about 7.5 km/s in ECEF).
    t = np.linspace(orbit.times[0], orbit.times[-1], 500)
    _, v, _ = orbit.interpolate(t)
    speed = np.linalg.norm(v, axis=-1)
    assert np.all((speed > 7400) & (speed < 7700))
    # Numerical derivative of the interpolated position equals the interpolated velocity.
    dt = 1e-3
    p1, _, _ = orbit.interpolate(t[1:-1] + dt)
    p0, _, _ = orbit.interpolate(t[1:-1] - dt)
    np.testing.assert_allclose((p1 - p0) / (2 * dt), v[1:-1], atol=1e-3)


def test_zero_doppler_reproduces_real_geolocation_grid(s1b_rome_safe: Path) -> None:
    tree = _annotation(s1b_rome_safe)
    orbit = _orbit(tree)
    g = _gcps(tree)
    xyz = geodetic_to_ecef(g["longitude"], g["latitude"], g["height"])
    t, rng = orbit.zero_doppler(xyz)
    t_ref = orbit.seconds(g["azimuthTime"])
    rng_ref = g["slantRangeTime"] * SPEED_OF_LIGHT / 2
    # ESA computed the grid with the same orbit; agreement is far below a pixel (1.5 ms, 10 m).
    assert np.max(np.abs(t - t_ref)) < 1e-5  # seconds; ~7 cm along track
    assert np.max(np.abs(rng - rng_ref)) < 0.01  # metres
    assert t.shape == t_ref.shape and np.all(np.isfinite(t))


def test_zero_doppler_outside_orbit_span_is_nan(s1b_rome_safe: Path) -> None:
    orbit = _orbit(_annotation(s1b_rome_safe))
    far = geodetic_to_ecef(np.array([12.5, 12.5]), np.array([41.9, -60.0]), np.array([0.0, 0.0]))
    t, rng = orbit.zero_doppler(far)
    assert np.isfinite(t[0]) and np.isnan(t[1]) and np.isnan(rng[1])
    with pytest.raises(GeometryError, match="orbit state vectors span"):
        orbit.check_span(orbit.times[0] - 100.0, orbit.times[-1])


def test_orbit_rejects_too_few_or_duplicate_vectors() -> None:
    times = np.array(["2021-01-01T00:00:00", "2021-01-01T00:00:10", "2021-01-01T00:00:10", "2021-01-01T00:00:20"], dtype="datetime64[ns]")
    with pytest.raises(GeometryError, match="strictly increasing"):
        Orbit.from_state_vectors(times, np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(GeometryError, match="at least 4"):
        Orbit.from_state_vectors(times[:2], np.zeros((2, 3)), np.zeros((2, 3)))
