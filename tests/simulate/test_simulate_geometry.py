"""Geometry of simulated products: GCPs round-trip through the shared zero-Doppler solver,
orbit shape and numbering, incidence angles, full-scene dimensions."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from bigearthnet_s1.orbit import SPEED_OF_LIGHT, ecef_to_geodetic, geodetic_to_ecef

OMEGA = 7.2921150e-5


@pytest.mark.parametrize("which", ["sim_old", "sim_new"])
def test_gcps_round_trip_through_zero_doppler(request: pytest.FixtureRequest, which: str) -> None:
    """GCP lat/lon/height -> ECEF -> Orbit.zero_doppler gives the GCP's azimuth time and slant
    range to better than 1e-3 pixel (the ground range pixel of 10 m is >= 5 m of slant range)."""
    from bigearthnet_s1.safe import open_safe

    sim = request.getfixturevalue(which)
    with open_safe(sim.safe) as p:
        a = p.annotation("VH")
    g = a.gcps
    xyz = geodetic_to_ecef(g.longitude, g.latitude, g.height)
    t, rng = a.orbit.zero_doppler(xyz)
    t_gcp = a.orbit.seconds(g.azimuth_time)
    assert np.max(np.abs(t - t_gcp)) / a.azimuth_time_interval < 1e-3
    r_gcp = g.slant_range_time * SPEED_OF_LIGHT / 2
    assert np.max(np.abs(rng - r_gcp)) < 1e-3 * 10.0 * math.sin(math.radians(30.0))
    # the annotated times are zero-Doppler times: the line's time plus the bistatic residual
    # (tau - tau_ref) / 2 after a bulk correction at one reference range, as in real products
    d = t_gcp - (a.orbit.seconds(a.first_line_time) + g.line * a.azimuth_time_interval)
    slope, _ = np.polyfit(g.slant_range_time, d, 1)
    assert slope == pytest.approx(0.5, abs=1e-3)
    tau_ref = np.median(g.slant_range_time - 2 * d)
    assert np.max(np.abs(d - (g.slant_range_time - tau_ref) / 2)) < 1.5e-6  # the annotation's microseconds
    assert g.slant_range_time.min() < tau_ref < g.slant_range_time.max() or a.samples < 5000
    # slant ranges are those of the image grid (the ground-to-slant polynomial of the line's block)
    assert np.max(np.abs(a.slant_range(g.line, g.pixel) - r_gcp)) < 1e-6
    # right-looking: the ground point lies to the right of the velocity
    pos, vel, _ = a.orbit.interpolate(t)
    right = np.cross(vel, pos / np.linalg.norm(pos, axis=-1, keepdims=True))
    assert np.all(np.einsum("...i,...i", xyz - pos, right) > 0)


def test_gcp_heights_follow_the_dem(sim_new, rome_dem: Path) -> None:
    """With a DEM the GCPs sit on it: height = the DEM's (bilinear between posts) where the DEM
    has data, and the grid is not flat (Rome's hills)."""
    import rasterio

    from bigearthnet_s1.safe import open_safe

    with open_safe(sim_new.safe) as p:
        g = p.annotation("VV").gcps
    with rasterio.open(rome_dem) as d:
        dem = d.read(1).astype(float)
        inv = ~d.transform
        nodata = d.nodata
    col, row = inv @ (g.longitude, g.latitude)
    col, row = np.asarray(col) - 0.5, np.asarray(row) - 0.5
    inside = (col >= 0) & (row >= 0) & (col < dem.shape[1] - 1) & (row < dem.shape[0] - 1)
    c0, r0 = np.floor(col[inside]).astype(int), np.floor(row[inside]).astype(int)
    fc, fr = col[inside] - c0, row[inside] - r0
    corners = np.stack([dem[r0, c0], dem[r0, c0 + 1], dem[r0 + 1, c0], dem[r0 + 1, c0 + 1]])
    ok = np.all(corners != nodata, axis=0)
    h = ((1 - fr) * ((1 - fc) * corners[0] + fc * corners[1]) + fr * ((1 - fc) * corners[2] + fc * corners[3]))
    assert ok.sum() > 50
    assert np.max(np.abs(h[ok] - g.height[inside][ok])) < 0.01
    assert np.ptp(g.height) > 20.0


def _inclination_deg(pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
    v_inertial = vel + np.cross([0.0, 0.0, OMEGA], pos)
    h = np.cross(pos, v_inertial)
    return np.degrees(np.arccos(h[:, 2] / np.linalg.norm(h, axis=1)))


@pytest.mark.parametrize("which", ["sim_old", "sim_new"])
def test_orbit_state_vectors(request: pytest.FixtureRequest, which: str) -> None:
    """Near-polar sun-synchronous orbit: 98.18 deg inclination, ~700 km up, ~7.6 km/s, vectors
    every 10 s spanning the scene with a minute to spare, velocities the derivative of positions."""
    from bigearthnet_s1.safe import open_safe

    sim = request.getfixturevalue(which)
    with open_safe(sim.safe) as p:
        a = p.annotation("VV")
    o = a.orbit
    assert np.allclose(np.diff(o.times), 10.0)
    assert o.times[0] <= o.seconds(a.first_line_time) - 50 and o.times[-1] >= o.seconds(a.last_line_time) + 50
    _, _, alt = ecef_to_geodetic(o.positions)
    assert np.all((alt > 680e3) & (alt < 730e3))
    assert np.allclose(np.linalg.norm(o.velocities, axis=1), 7590, atol=30)
    assert np.allclose(_inclination_deg(o.positions, o.velocities), 98.18, atol=0.01)
    central = (o.positions[2:] - o.positions[:-2]) / 20.0
    assert np.max(np.abs(central - o.velocities[1:-1])) < 0.5  # m/s (O(h^2) differencing error ~0.15)
    truth = json.loads(sim.truth_json.read_text())
    going_north = o.velocities[:, 2].mean() > 0
    assert going_north == (truth["pass"] == "ASCENDING")
    heading = a.platform_heading
    assert (-25 < heading < -5) if going_north else (-175 < heading < -155)


def test_incidence_angles_and_pixel_spacing(sim_old) -> None:
    """Incidence on the GCP grid grows with range within 30..46 deg; successive pixels are
    10 m apart on the ground and successive lines ~10 m apart along track."""
    from bigearthnet_s1.safe import open_safe

    with open_safe(sim_old.safe) as p:
        a = p.annotation("VV")
    g = a.gcps
    inc = g.grid("incidence_angle")
    assert np.all(np.diff(inc, axis=1) > 0)
    assert 30.0 < inc.min() and inc.max() < 46.0
    assert abs(a.incidence_angle_mid_swath - 38.15) < 1.0  # target mid-swath (swath_position 0.5)
    xyz = geodetic_to_ecef(g.longitude, g.latitude, g.height).reshape(g.shape + (3,))
    pix = g.grid("pixel")
    lines = g.grid("line")
    dx = np.linalg.norm(np.diff(xyz, axis=1), axis=-1) / np.diff(pix, axis=1)
    dy = np.linalg.norm(np.diff(xyz, axis=0), axis=-1) / np.diff(lines, axis=0)
    assert np.allclose(dx, 10.0, rtol=2e-3)
    assert np.allclose(dy, 10.0, rtol=1e-2)


def test_full_scene_geometry(tile_33uup) -> None:
    """A full IW slice (planned, not rendered): ~16,800 lines x ~26,000 samples, 30.4 deg at the
    near edge and 45.9 at the far edge, the tile's centre mid-swath."""
    from bigearthnet_s1 import simulate

    pr = simulate._prepare(simulate._Request(
        tile=tile_33uup, bounds_wgs84=None, time="2017-06-13T16:50:43", size="full", pass_direction="auto", dem=None,
        seed=0, mission=None, ipf_version=None, swath_position=0.5, azimuth_position=0.5, margin_m=5000.0))
    f = pr.plan.frame
    assert 16_500 < f.lines < 17_100 and 25_000 < f.samples < 26_700
    edge = simulate._forward_geocode(f, np.array([0.0, 0.0, f.lines - 1.0, f.lines - 1.0]),
                                     np.array([0.0, f.samples - 1.0, 0.0, f.samples - 1.0]))
    assert np.allclose(edge["incidence"][[0, 2]], 30.4, atol=0.15)
    assert np.allclose(edge["incidence"][[1, 3]], 45.9, atol=0.15)
    assert f.fit_residual < 1e-3  # ground-to-slant polynomial vs the exact ellipsoid section (m)
    assert 0.00147 < f.dt < 0.00151


BIGEARTHNET_SCENES = [  # BigEarthNet-S1 example patches: (tile, S1 scene of the patch)
    ("33UUP", "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"),
    ("29UPU", "S1A_IW_GRDH_1SDV_20170617T064724_20170617T064749_017070_01C718_CED2"),
    ("35VPK", "S1A_IW_GRDH_1SDV_20170925T043256_20170925T043321_018527_01F38C_31E2"),
    ("29SND", "S1A_IW_GRDH_1SDV_20171221T064238_20171221T064303_019797_021ACD_16F1"),
    ("35VPK", "S1A_IW_GRDH_1SDV_20180204T043253_20180204T043318_020452_022F7E_8893"),
]


@pytest.mark.parametrize("tile_id,scene", BIGEARTHNET_SCENES)
def test_real_scenes_get_their_real_orbit_numbers(s1_example: Path, s2_example: Path, tile_id: str, scene: str) -> None:
    """At the start time of a real BigEarthNet scene over its tile, with the pass from local
    solar time, the simulator names the real satellite, absolute orbit (hence relative orbit),
    pass and IPF; datatake ids of the anchor orbits are the real ones; a full-size product
    spans 25 s as the real slices (start and stop seconds of the real name)."""
    from bigearthnet_s1 import tiles
    from bigearthnet_s1.simulate import describe_product

    start = datetime.strptime(scene.split("_")[4], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    acq = min((a for a in tiles.read_s2_archive(s2_example) if a.tile_id == tile_id),
              key=lambda a: abs((a.sensing_time - start).total_seconds()))
    d = describe_product(tile=acq, time=start, pass_direction="auto", size="full")
    parts = scene.split("_")
    assert d["name_prefix"] == "_".join(parts[:8])
    assert d["mission"] == parts[0]
    assert d["absolute_orbit"] == int(parts[6])
    assert d["relative_orbit"] == (int(parts[6]) - 73) % 175 + 1
    assert d["name_prefix"].startswith("_".join(parts[:5]))
    assert d["ipf_version"] == "002.84"
    assert d["datatake_id"] == parts[7]  # these scenes are among the datatake anchors
    assert d["pass"] == ("ASCENDING" if start.hour > 12 else "DESCENDING")


def test_real_s1b_product_time_gets_its_identity(rome_bounds, real_s1b: Path) -> None:
    """The real S1B product's start time over Rome: S1B, orbit 30148, datatake 039993, IPF 3.40."""
    from bigearthnet_s1.simulate import describe_product

    d = describe_product(bounds_wgs84=rome_bounds, time="2021-12-23T05:11:22.594441", pass_direction="auto")
    assert (d["mission"], d["absolute_orbit"], d["relative_orbit"], d["datatake_id"], d["ipf_version"], d["pass"]) == (
        "S1B", 30148, 22, "039993", "003.40", "DESCENDING")
    assert real_s1b.name.startswith(d["name_prefix"][:32])
