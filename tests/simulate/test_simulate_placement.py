"""Orbit placement: every BigEarthNet tile can be simulated at its sensing time on both passes
with the default geometry; an impossible swath position falls back to the nearest feasible one;
a target no orbit of the pass sees fails with a message naming tile, time and pass."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import numpy as np
import pytest
import shapely

from bigearthnet_s1.errors import GeometryError


def _first_acquisitions():  # -> list[TileAcquisition], one per tile, its earliest sensing time
    from bigearthnet_s1.tiles import read_patch_table

    first: dict[str, object] = {}
    for a in sorted(read_patch_table(), key=lambda a: a.sensing_time):
        first.setdefault(a.tile_id, a)
    return list(first.values())


def test_every_bigearthnet_tile_is_placed_on_both_passes() -> None:
    """All 56 tiles of the patch table (37-70 N, -10..32 E), at their first sensing time, with
    the default arguments: the orbit is found for ascending and descending, the target centre
    stays mid-swath (38.15 deg, no fallback needed), the image footprint holds all the tile's
    patches, and the footprint has the pass's shape (descending: first line north of the last
    and far range west of near range; ascending: the other way round)."""
    from bigearthnet_s1.simulate import describe_product

    acquisitions = _first_acquisitions()
    assert len(acquisitions) == 56
    lats = [a.footprint_wgs84.centroid.y for a in acquisitions]
    assert min(lats) < 38 and max(lats) > 67.5  # the table's whole latitude span (tile centres 37.5-68.0 N)
    for a in acquisitions:
        target = a.patches_footprint_wgs84 if a.patches else a.footprint_wgs84
        for pass_direction in ("ascending", "descending"):
            d = describe_product(tile=a, time=a.sensing_time, pass_direction=pass_direction)
            what = f"{a.key} {pass_direction}"
            assert d["pass"] == pass_direction.upper(), what
            assert d["swath_position"] == 0.5 and d["target_incidence_deg"] == pytest.approx(38.15), what
            (ln_lon, ln_lat), (lf_lon, lf_lat), (ff_lon, ff_lat), (fn_lon, fn_lat) = d["footprint_wgs84"]
            footprint = shapely.Polygon(d["footprint_wgs84"])
            assert footprint.is_valid and footprint.contains(target), what
            first_lat, last_lat = 0.5 * (ff_lat + fn_lat), 0.5 * (ln_lat + lf_lat)
            near_lon, far_lon = 0.5 * (ln_lon + fn_lon), 0.5 * (lf_lon + ff_lon)
            if pass_direction == "descending":
                assert first_lat > last_lat and far_lon < near_lon, what
            else:
                assert first_lat < last_lat and far_lon > near_lon, what


@pytest.mark.parametrize(("lon", "lat", "incidence", "ascending"), [
    (30.30099539436791, 62.67602010985362, 38.15, False),  # 35VPK 2018-02-04 (the demo's report)
    (30.30099539436791, 62.67602010985362, 38.15, True),
    (-9.0, 37.5, 30.4, True),
    (31.0, 69.8, 45.9, False),
    (167.36, -77.96, 33.0, True),  # near the south polar gap, close to the orbit's turning point
])
def test_grid_search_finds_the_orbit_of_the_spherical_guess(lon: float, lat: float, incidence: float,
                                                            ascending: bool) -> None:
    """The grid-search fallback of the placement lands on the same orbit as the spherical first
    guess, and that orbit sees the point right-looking, with zero Doppler, at the incidence."""
    from bigearthnet_s1.orbit import geodetic_to_ecef
    from bigearthnet_s1.simulate import _geodetic_normal, _solve_kepler

    k1 = _solve_kepler(lon, lat, 0.0, incidence, ascending)
    k2 = _solve_kepler(lon, lat, 0.0, incidence, ascending, spherical_guess=False)
    assert abs(k1.lam - k2.lam) < 1e-9 and abs(k1.u_c - k2.u_c) < 1e-9
    p, v = k2.state(0.0)
    t = geodetic_to_ecef(lon, lat, 0.0)
    look = t - p
    assert abs(float(v @ look)) / (np.linalg.norm(v) * np.linalg.norm(look)) < 1e-9
    assert math.degrees(math.acos(float(_geodetic_normal(lon, lat) @ -look) / np.linalg.norm(look))) == pytest.approx(
        incidence, abs=1e-8)
    assert float(look @ np.cross(v, p)) > 0  # right of the velocity
    assert (v[2] > 0) == ascending


def test_infeasible_swath_position_falls_back_to_the_nearest(caplog: pytest.LogCaptureFixture) -> None:
    """At 77.5 S a right-looking orbit sees the point only up to ~37.8 deg incidence (its
    turning point is at 81.8 S): mid-swath (38.15 deg) is impossible, the nearest feasible
    position (just below 0.5) is used and logged; a feasible request is kept as is."""
    from bigearthnet_s1.simulate import describe_product

    box = (160.0, -77.55, 160.1, -77.45)
    for pass_direction in ("ascending", "descending"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bigearthnet_s1.simulate"):
            d = describe_product(bounds_wgs84=box, time="2020-01-10T12:00:00", pass_direction=pass_direction)
        assert 0.4 < d["swath_position"] < 0.5
        assert d["target_incidence_deg"] == pytest.approx(30.4 + 15.5 * d["swath_position"])
        assert shapely.Polygon(d["footprint_wgs84"]).contains(shapely.box(*box))
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(messages) == 1 and f"no {pass_direction} orbit" in messages[0]
        assert f"nearest feasible swath_position {d['swath_position']:.3f}" in messages[0]
        # the boundary: a little further out has no orbit of this pass
        from bigearthnet_s1.simulate import _incidence_at, _solve_kepler

        with pytest.raises(GeometryError):
            _solve_kepler(160.05, -77.5, 0.0, _incidence_at(d["swath_position"] + 0.01), pass_direction == "ascending")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bigearthnet_s1.simulate"):
        d = describe_product(bounds_wgs84=box, time="2020-01-10T12:00:00", pass_direction="ascending",
                             swath_position=0.3)
    assert d["swath_position"] == 0.3 and not caplog.records


def test_no_feasible_position_names_tile_time_and_pass() -> None:
    """Tile 58CES (79.7 S) lies in the south polar gap of a right-looking SAR: no swath position
    of either pass sees it, and the error says which tile, time and pass."""
    from bigearthnet_s1.simulate import describe_product
    from bigearthnet_s1.tiles import TileAcquisition, TileGrid, mgrs_tile_origin

    epsg, ulx, uly = mgrs_tile_origin("58CES")
    tile = TileAcquisition("58CES", datetime(2020, 1, 10, 9, 0, tzinfo=UTC), None, TileGrid(epsg, ulx, uly), ())
    with pytest.raises(GeometryError, match=r"tile 58CES_20200110T090000 at 2020-01-10T21:30:00\.000000Z: no "
                                            r"descending right-looking .* anywhere across the IW swath"):
        describe_product(tile=tile, time="2020-01-10T21:30:00", pass_direction="descending")
