"""LUT interpolation and calibration against independent evaluations and xarray-sentinel."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import xarray_sentinel
from rasterio.windows import Window

from bigearthnet_s1 import radiometry as R
from bigearthnet_s1.safe import open_safe


@pytest.mark.parametrize("kind", ["sigma0", "beta0", "gamma0", "dn"])
def test_calibration_lut_equals_dense_bilinear(s1b_rome_safe, kind, dense):
    p = open_safe(s1b_rome_safe)
    cal = p.calibration("VV")
    # windows across vector lines (668 apart) and LUT samples (40 px apart), plus the far corner
    for win in (Window(17, 640, 123, 61), Window(26102 - 90, 16705 - 40, 90, 40), Window(0, 0, 50, 3)):
        ours = R.calibration_lut(cal, win, kind)
        ref = dense["calibration"](p, "VV", win, kind)
        assert ours.dtype == np.float32 and ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=2e-7)
    # sigma0 LUT really varies along range in this product: the test is not trivial
    lut = R.calibration_lut(cal, Window(0, 100, 26102, 1), "sigma0")
    assert lut.max() - lut.min() > 50


@pytest.mark.parametrize("safe_fixture,pol", [("s1b_rome_safe", "VV"), ("s1b_dual_pol_safe", "VH")])
def test_noise_power_equals_dense_evaluation(request, safe_fixture, pol, dense):
    p = open_safe(request.getfixturevalue(safe_fixture))
    n = p.noise(pol)
    assert n.has_azimuth
    b1 = n.azimuth_blocks[0]
    wins = [
        Window(b1.last_sample - 300, 5000, 600, 300),  # across the IW1/IW2 block boundary
        Window(0, 0, 200, 50),
        Window(p.annotation(pol).samples - 700, p.annotation(pol).lines - 30, 700, 30),  # far range: LUT = 0 at the end
    ]
    for win in wins:
        ours = R.noise_power(n, win)
        ref = dense["noise"](p, pol, win)
        np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=1e-3)
    # the azimuth LUT matters: without it the noise differs by up to ~13 % here
    win = wins[0]
    rng_only = R._bilinear(n.range_line, n.range_pixel, n.range_values,
                           np.arange(5000, 5300), np.arange(win.col_off, win.col_off + 600))
    assert np.abs(R.noise_power(n, win) / rng_only - 1).max() > 0.01


def test_noise_power_of_a_simulated_ipf331_product(s1a_beira_sim, dense):
    """A second product (simulated S1A, IPF 3.31, one sub-swath): VV and VH noise equal the
    dense evaluation of their own LUTs, which differ."""
    p = open_safe(s1a_beira_sim)
    ann = p.annotation("VV")
    wins = [Window(0, 0, 300, 200), Window(ann.samples // 2 - 150, ann.lines // 2 - 100, 300, 200),
            Window(ann.samples - 300, ann.lines - 200, 300, 200)]
    for pol in ("VV", "VH"):
        n = p.noise(pol)
        assert n.has_azimuth and [b.swath for b in n.azimuth_blocks] == ["IW2"]
        for win in wins:
            np.testing.assert_allclose(R.noise_power(n, win), dense["noise"](p, pol, win), rtol=2e-6, atol=1e-3)
    vv, vh = (R.noise_power(p.noise(pol), wins[1]) for pol in ("VV", "VH"))
    assert np.abs(vh / vv - 1).max() > 0.05


def test_noise_without_azimuth_lut_is_range_only(old_ipf_scene, dense):
    """IPF < 2.9 layout: no azimuth vectors; the range LUT alone, bilinear (as SNAP)."""
    p = old_ipf_scene.open()
    n = p.noise("VH")
    assert not n.has_azimuth and p.ipf_version == pytest.approx(2.84)
    win = Window(9000, 600, 500, 700)
    np.testing.assert_allclose(R.noise_power(n, win), dense["noise"](p, "VH", win), rtol=2e-6, atol=1e-3)


@pytest.mark.parametrize("scene_fixture,pol", [("s1b_scene", "VV"), ("dual_scene", "VV"), ("dual_scene", "VH")])
def test_calibration_equals_xarray_sentinel(request, scene_fixture, pol):
    """sigma0 without noise removal equals xarray-sentinel's calibrate_intensity on the same
    DN and LUT (xarray-sentinel parses the calibration XML itself)."""
    scene = request.getfixturevalue(scene_fixture)
    p = scene.open()
    cal_ds = xr.open_dataset(scene.path, engine="sentinel-1", group=f"IW/{pol}/calibration")
    for name in ("middle", "left"):
        win = scene.windows[name]
        dn = p.read_dn(pol, win)
        rows = np.arange(win.row_off, win.row_off + win.height)
        cols = np.arange(win.col_off, win.col_off + win.width)
        da = xr.DataArray(dn, coords={"line": rows, "pixel": cols}, dims=("line", "pixel"))
        for kind, var in (("sigma0", "sigmaNought"), ("beta0", "betaNought"), ("gamma0", "gamma")):
            ref = xarray_sentinel.calibrate_intensity(da, cal_ds[var]).values
            ours = R.calibrate(dn, R.calibration_lut(p.calibration(pol), win, kind))
            valid = dn > 0
            assert valid.sum() > 0.8 * dn.size
            np.testing.assert_allclose(ours[valid], ref[valid], rtol=1e-5)
            assert np.isnan(ours[~valid]).all()  # DN 0 is ESA's no-value marker


def test_calibrate_noise_subtraction_floor_and_flags():
    dn = np.array([[0, 10, 100], [50, 3, 65535]], dtype=np.uint16)
    lut = np.full(dn.shape, 500.0, dtype=np.float32)
    noise = np.full(dn.shape, 2000.0, dtype=np.float32)
    out, flags = R.calibrate(dn, lut, noise, return_flags=True)
    expected = (dn.astype(np.float64) ** 2 - 2000.0) / 500.0**2
    clipped = expected < 0
    clipped[0, 0] = False
    assert np.isnan(out[0, 0]) and flags[0, 0] == R.FLAG_NO_VALUE
    np.testing.assert_allclose(out[~clipped & (dn > 0)], expected[~clipped & (dn > 0)], rtol=1e-6)
    np.testing.assert_allclose(out[clipped], R.NOISE_FLOOR_DN2 / 500.0**2, rtol=1e-6)
    assert ((flags & R.FLAG_NOISE_CLIPPED) > 0).tolist() == clipped.tolist()
    # scalar LUT 1.0 gives noise-removed DN^2
    np.testing.assert_allclose(R.calibrate(dn[:, 1:], 1.0), dn[:, 1:].astype(np.float64) ** 2, rtol=1e-6)


def test_to_db_floor():
    lin = np.array([1.0, 0.1, 1e-3, 0.0, -1.0, np.nan, 1e-6], dtype=np.float32)
    db = R.to_db(lin)
    np.testing.assert_allclose(db[:3], [0.0, -10.0, -30.0], atol=1e-5)
    assert db[3] == db[4] == db[6] == R.DEFAULT_FLOOR_DB
    assert np.isnan(db[5])
    assert R.to_db(lin, floor_db=-20.0)[2] == -20.0
    assert db.dtype == np.float32


def test_unknown_lut_kind_is_refused(s1b_rome_safe):
    p = open_safe(s1b_rome_safe)
    with pytest.raises(R.RadiometryError, match="unknown calibration LUT"):
        R.calibration_lut(p.calibration("VV"), Window(0, 0, 5, 5), "sigma1")
