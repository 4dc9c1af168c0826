"""The chain on real metadata with test DN: noise removal recovers the known sigma0, the
border mask marks exactly the margins written, windows are independent of each other."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from bigearthnet_s1 import radiometry as R
from bigearthnet_s1 import speckle as S


def _recovered(scene, pol, name, dense, **kw):
    p = scene.open()
    win = scene.windows[name]
    out, flags = R.radar_chain(p, pol, win, speckle=None, return_flags=True, **kw)
    truth = scene.truth[pol][name]
    a = dense["calibration"](p, pol, win)
    n = dense["noise"](p, pol, win)
    dn_exact = np.sqrt(truth * a * a + n)
    return p, win, out, flags, truth, a, n, dn_exact


@pytest.mark.parametrize("scene_fixture,pol", [("s1b_scene", "VV"), ("dual_scene", "VV"), ("dual_scene", "VH"),
                                               ("old_ipf_scene", "VH")])
@pytest.mark.parametrize("name", ["middle", "left", "right"])
def test_thermal_noise_removal_recovers_sigma0(request, scene_fixture, pol, name, dense):
    scene = request.getfixturevalue(scene_fixture)
    p, win, out, flags, truth, a, n, dn_exact = _recovered(scene, pol, name, dense)
    margins = dense["margins"](win, scene.lines, scene.samples)
    above = (truth * a * a > n) & ~margins  # signal above the noise floor
    assert above.sum() > 0.2 * truth.size
    # the only error left is DN quantisation: |DN^2 - DN_exact^2| <= (DN_exact + 1/4)
    bound = (dn_exact + 0.25) / (a * a)
    err = np.abs(out.astype(np.float64) - truth)
    assert (err[above] <= bound[above] * 1.0001 + 1e-7 * truth[above]).all()
    # without noise removal the same pixels are biased high by N / A^2
    raw = R.radar_chain(p, pol, win, speckle=None, thermal=False)
    bias = raw.astype(np.float64) - truth
    noisy = above & (n > 0)  # the noise LUT is 0 in the far-range no-value area
    np.testing.assert_allclose(np.median(bias[noisy] / (n / (a * a))[noisy]), 1.0, atol=0.05)
    # pixels whose DN^2 fell below the noise are floored and flagged, never negative
    dn = scene.dn[pol][name].astype(np.float64)
    clipped = (dn * dn < n) & ~margins
    assert ((flags & R.FLAG_NOISE_CLIPPED) > 0)[~margins].tolist() == clipped[~margins].tolist()
    np.testing.assert_allclose(out[clipped], R.NOISE_FLOOR_DN2 / (a[clipped] ** 2), rtol=1e-5)
    assert np.nanmin(out) > 0


@pytest.mark.parametrize("scene_fixture", ["s1b_scene", "dual_scene", "old_ipf_scene"])
def test_border_mask_marks_exactly_the_margins(request, scene_fixture, dense):
    scene = request.getfixturevalue(scene_fixture)
    p = scene.open()
    for name, win in scene.windows.items():
        expected = dense["margins"](win, scene.lines, scene.samples)
        assert expected.any() or name == "middle"
        mask = R.border_noise_mask(p, win)
        assert mask.tolist() == expected.tolist(), name
        # the chain turns them into no-data, for every polarisation (co-pol mask)
        for pol in p.available_polarisations:
            out, flags = R.radar_chain(p, pol, win, speckle=None, return_flags=True)
            assert np.isnan(out[expected]).all()
            assert not np.isnan(out[~expected]).any()
            assert (((flags & R.FLAG_BORDER) > 0) | ((flags & R.FLAG_NO_VALUE) > 0))[expected].all()


def test_old_ipf_margins_need_the_threshold_method(old_ipf_scene, dense):
    """IPF < 2.90: margins are low but not zero; zero-only masking misses them all, the
    ESA thresholding finds exactly them; forcing it on a window that does not reach the
    image edge reads the margin from the image."""
    p = old_ipf_scene.open()
    assert p.ipf_version < 2.90
    win = old_ipf_scene.windows["left"]
    expected = dense["margins"](win, old_ipf_scene.lines, old_ipf_scene.samples)
    assert not R.border_noise_mask(p, win, params=R.BorderParameters(method="zero")).any()
    assert R.border_noise_mask(p, win).tolist() == expected.tolist()
    inner = Window(60, win.row_off + 10, 200, 50)  # starts inside some lines' margins
    sub_expected = expected[10:60, 60:260]
    assert sub_expected.any() and not sub_expected.all()
    assert R.border_noise_mask(p, inner).tolist() == sub_expected.tolist()


def test_window_results_do_not_depend_on_the_window(dual_scene):
    """A window's result equals the same pixels of a bigger window's result (speckle halo is
    read from the image, strips join seamlessly)."""
    p = dual_scene.open()
    big = dual_scene.windows["middle"]
    full = R.radar_chain(p, "VH", big, strip_rows=256)
    sub = Window(big.col_off + 101, big.row_off + 203, 300, 280)
    part = R.radar_chain(p, "VH", sub, strip_rows=97)
    np.testing.assert_array_equal(part, full[203:483, 101:401])
    # strips in worker threads (serial kernels) == strips in order in this thread (parallel kernels)
    one = R.radar_chain(p, "VH", sub, strip_rows=97, workers=1)
    np.testing.assert_array_equal(one, part)
    lee_sigma = {"speckle": "Lee Sigma", "strip_rows": 64}
    np.testing.assert_array_equal(R.radar_chain(p, "VV", big, workers=1, **lee_sigma),
                                  R.radar_chain(p, "VV", big, workers=3, **lee_sigma))
    # and the speckle filter in the chain is the plain filter on the calibrated image
    cal = R.radar_chain(p, "VH", big, speckle=None)
    np.testing.assert_array_equal(S.refined_lee(cal)[3:-3, 3:-3], full[3:-3, 3:-3])


def test_beta0_gamma0_and_uncalibrated(s1b_scene, dense):
    p = s1b_scene.open()
    win = s1b_scene.windows["middle"]
    kw = dict(speckle=None, border=False)
    s0 = R.radar_chain(p, "VV", win, **kw).astype(np.float64)
    b0 = R.radar_chain(p, "VV", win, calibration="beta0", **kw)
    g0 = R.radar_chain(p, "VV", win, calibration="gamma0", **kw)
    dn2 = R.radar_chain(p, "VV", win, calibration=None, **kw)
    a_s = dense["calibration"](p, "VV", win, "sigma0")
    np.testing.assert_allclose(b0, s0 * (a_s / dense["calibration"](p, "VV", win, "beta0")) ** 2, rtol=1e-5)
    np.testing.assert_allclose(g0, s0 * (a_s / dense["calibration"](p, "VV", win, "gamma0")) ** 2, rtol=1e-5)
    np.testing.assert_allclose(dn2, s0 * a_s * a_s, rtol=1e-5)
    # beta0 > sigma0 > 0 at these incidence angles (beta0 = sigma0 / sin(theta))
    assert (b0 > s0).all()


def test_dual_pol_vh_uses_the_co_pol_border(dual_scene, dense):
    p = dual_scene.open()
    win = dual_scene.windows["left"]
    expected = dense["margins"](win, dual_scene.lines, dual_scene.samples)
    vh = R.radar_chain(p, "VH", win, speckle="Lee", speckle_params={"filterSizeX": 5, "filterSizeY": 5})
    assert np.isnan(vh[expected]).all() and not np.isnan(vh[~expected]).any()
    truth = dual_scene.truth["VH"]["left"]
    assert np.nanmax(vh) <= truth.max() * 1.01  # Lee output lies between the pixel and its local mean
    db = R.to_db(vh)
    assert np.nanmin(db) >= R.DEFAULT_FLOOR_DB and np.nanmedian(db) == pytest.approx(
        np.median(10 * np.log10(truth[~expected])), abs=1.5)


def test_chain_rejects_bad_arguments(s1b_scene):
    p = s1b_scene.open()
    with pytest.raises(R.RadiometryError):
        R.radar_chain(p, "VV", Window(0, 0, 10, 10), calibration="sigma7")
    with pytest.raises(S.SpeckleFilterError, match="Frost"):
        R.radar_chain(p, "VV", Window(0, 0, 10, 10), speckle="Frost")
    with pytest.raises(R.SafeError, match="not inside"):
        R.radar_chain(p, "VV", Window(26000, 0, 200, 10))


def test_product_already_noise_corrected_is_refused(s1b_scene, tmp_path):
    import shutil

    dst = tmp_path / s1b_scene.path.name
    shutil.copytree(s1b_scene.path, dst)
    ann = next((dst / "annotation").glob("s1b-*.xml"))
    ann.write_text(ann.read_text().replace(
        "<thermalNoiseCorrectionPerformed>false</thermalNoiseCorrectionPerformed>",
        "<thermalNoiseCorrectionPerformed>true</thermalNoiseCorrectionPerformed>"))
    from bigearthnet_s1.safe import open_safe

    p = open_safe(dst)
    win = Window(9000, 5000, 16, 16)
    with pytest.raises(R.RadiometryError, match="already been performed"):
        R.radar_chain(p, "VV", win)
    assert R.radar_chain(p, "VV", win, thermal=False).shape == (16, 16)
    assert R.BorderParameters.from_snap(borderLimit="300", trimThreshold="0.7") == R.BorderParameters(
        border_limit=300, trim_threshold=0.7)
