"""Manifest and annotation fields of the real S1B product (from the pinned sarsen release),
of its dual-polarisation copy, and of a simulated S1A product carrying a real product's identity."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from bigearthnet_s1.safe import open_safe


def test_s1b_rome_manifest(s1b_rome_safe):
    p = open_safe(s1b_rome_safe)
    assert p.name == "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
    assert (p.mission, p.mode, p.product_type) == ("S1B", "IW", "GRD")
    assert p.polarisations == ("VV", "VH")
    assert p.available_polarisations == ("VV",)  # the VH files are not in the test copy
    assert p.ipf_version == pytest.approx(3.40)
    assert (p.absolute_orbit, p.relative_orbit, p.pass_direction) == (30148, 22, "DESCENDING")
    assert p.datatake_id == "039993"  # missionDataTakeID 235923 in hex, as in the product name
    assert p.start_time == datetime(2021, 12, 23, 5, 11, 22, 594441, tzinfo=UTC)
    assert p.stop_time == datetime(2021, 12, 23, 5, 11, 47, 593146, tzinfo=UTC)
    minx, miny, maxx, maxy = p.footprint.bounds
    assert (minx, miny, maxx, maxy) == pytest.approx((11.865704, 40.876698, 15.321935, 42.780445))
    assert p.footprint.contains(__import__("shapely").Point(12.4964, 41.9028))  # Rome


def test_s1a_product_at_the_real_beira_time(s1a_beira_sim, beira_box):
    """Simulated at the start time and place of the real S1A product
    S1A_IW_GRDH_1SDV_20210119T031653_..._036201_043ED0_8255 (IPF 3.31): the manifest reads back
    as that product's real identity, and both polarisations have their files."""
    import shapely

    p = open_safe(s1a_beira_sim)
    assert p.name.startswith("S1A_IW_GRDH_1SDV_20210119T031653_") and p.name.split("_")[6:8] == ["036201", "043ED0"]
    assert (p.mission, p.absolute_orbit, p.relative_orbit, p.pass_direction) == ("S1A", 36201, 79, "DESCENDING")
    assert p.ipf_version == pytest.approx(3.31)
    assert p.datatake_id == "043ED0"
    assert p.polarisations == ("VV", "VH")
    assert p.available_polarisations == ("VV", "VH")
    assert p.footprint.contains(shapely.box(*beira_box))
    vh = p.annotation("VH")
    assert (vh.lines, vh.samples) == (p.annotation("VV").lines, p.annotation("VV").samples)
    assert p.noise("VH").has_azimuth  # IPF 3.x noise layout: range and azimuth vectors


def test_dual_pol_metadata_without_measurement(s1b_dual_pol_safe):
    p = open_safe(s1b_dual_pol_safe)
    assert p.polarisations == ("VV", "VH")
    assert p.available_polarisations == ()  # measurement/ is empty
    vv, vh = p.noise("VV"), p.noise("VH")
    np.testing.assert_allclose(np.stack(vh.range_values), 0.71 * np.stack(vv.range_values), rtol=1e-6)
    assert [b.swath for b in vh.azimuth_blocks] == ["IW1", "IW2", "IW3"]


def test_s1b_annotation(s1b_rome_safe):
    a = open_safe(s1b_rome_safe).annotation("VV")
    assert (a.lines, a.samples) == (16705, 26102)
    assert a.first_line_time == np.datetime64("2021-12-23T05:11:22.594441")
    assert a.azimuth_time_interval == pytest.approx(1.496569996245720e-03)
    assert a.range_pixel_spacing == 10.0 and a.azimuth_pixel_spacing == 10.0
    assert a.radar_frequency == pytest.approx(5.405000454334350e09)
    assert a.pass_direction == "DESCENDING"
    assert len(a.orbit.times) == 16
    assert len(a.srgr) == len(a.grsr) == 28
    assert a.gcps.shape == (10, 21) and a.gcps.line.size == 210
    assert a.gcps.latitude[0] == pytest.approx(42.37675280764677)
    # near-range slant range from the grsr polynomial equals c * slantRangeTime / 2
    assert a.slant_range(0, 0) == pytest.approx(a.slant_range_time * 299_792_458.0 / 2, abs=0.05)
    # srgr and grsr are inverse to each other (pixel -> slant range -> pixel) within 10 cm (the
    # annotated pairs are fitted independently; they agree to ~8 cm here)
    lines = np.array([0.0, 8000.0, 16704.0])[:, None]
    px = np.array([0.0, 9000.0, 26101.0])[None, :]
    assert np.abs(a.ground_pixel(lines, a.slant_range(lines, px)) - px).max() < 1e-2
    assert [b.swath for b in a.swath_bounds] == ["IW1", "IW2", "IW3"]


def test_s1b_luts(s1b_rome_safe):
    p = open_safe(s1b_rome_safe)
    c = p.calibration("VV")
    assert c.line.size == 27 and c.pixel.shape == (27, 654)
    assert c.sigma_nought[0, 0] == pytest.approx(6.638558e02)
    assert c.values("beta0")[0, 0] == pytest.approx(4.739733e02)
    n = p.noise("VV")
    assert n.range_line.size == 27 and n.range_line[-1] == 16704
    assert n.range_values[0][0] == pytest.approx(2.375788e03)
    assert [b.swath for b in n.azimuth_blocks] == ["IW1", "IW2", "IW3"]
    assert n.azimuth_blocks[1].first_sample == 8890 and n.azimuth_blocks[2].last_sample == 26101
