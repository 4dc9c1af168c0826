"""Speckle filters: equal to straightforward per-pixel reference implementations of SNAP's
algorithms on small images, preserve the mean and raise the ENL on homogeneous areas,
keep edges (Refined Lee), handle no-data, validate SNAP parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bigearthnet_s1 import speckle as S

LOOKS = 4.4  # IW GRDH equivalent number of looks


def _gamma_field(shape, mean=0.1, looks=LOOKS, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.gamma(looks, mean / looks, size=shape)).astype(np.float32)


def _neighbours(img, y, x, hy, hx):
    """Window values (NaN = no-data or outside) as a (2hy+1, 2hx+1) float64 array."""
    h, w = img.shape
    out = np.full((2 * hy + 1, 2 * hx + 1), np.nan)
    for j in range(-hy, hy + 1):
        for i in range(-hx, hx + 1):
            if 0 <= y + j < h and 0 <= x + i < w:
                out[j + hy, i + hx] = img[y + j, x + i]
    return out


def _mean_var(vals):
    v = vals[~np.isnan(vals)]
    m = v.mean()
    var = ((v - m) ** 2).sum() / (v.size - 1) if v.size > 1 else 0.0
    return m, var, v.size


# ---------------------------------------------------------------- reference implementations
def ref_boxcar(img, sx, sy):
    out = np.full(img.shape, np.nan)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            if not np.isnan(img[y, x]):
                out[y, x] = np.nanmean(_neighbours(img, y, x, sy // 2, sx // 2))
    return out


def ref_lee(img, sx, sy, enl):
    cu = 1 / math.sqrt(enl)
    out = np.full(img.shape, np.nan)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            cp = img[y, x]
            if np.isnan(cp):
                continue
            m, var, _ = _mean_var(_neighbours(img, y, x, sy // 2, sx // 2))
            if m <= 0 or var <= 0:
                out[y, x] = m
                continue
            ci = math.sqrt(var) / m
            if ci < cu:
                out[y, x] = m
            else:
                w = 1 - cu * cu / (ci * ci)
                out[y, x] = cp * w + m * (1 - w)
    return out


def ref_gamma_map(img, sx, sy, enl):
    cu = 1 / math.sqrt(enl)
    out = np.full(img.shape, np.nan)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            cp = img[y, x]
            if np.isnan(cp):
                continue
            m, var, _ = _mean_var(_neighbours(img, y, x, sy // 2, sx // 2))
            if m <= 0 or var <= 0:
                out[y, x] = m
                continue
            ci = math.sqrt(var) / m
            if ci <= cu:
                out[y, x] = m
            elif ci < math.sqrt(2) * cu:
                alpha = (1 + cu * cu) / (ci * ci - cu * cu)
                b = alpha - enl - 1
                d = m * m * b * b + 4 * alpha * enl * m * cp
                out[y, x] = (b * m + math.sqrt(d)) / (2 * alpha)
            else:
                out[y, x] = cp
    return out


def _snap_noise_variance(nv):
    """SNAP: sort the first n-1 normalised variances, average the first min(5, n)."""
    n = len(nv)
    if n == 0:
        return 0.0
    head = sorted(nv[: n - 1]) + nv[n - 1:]
    return sum(head[: min(5, n)]) / min(5, n)


def _subareas(win):
    """3x3 sub-areas of a 7x7 window at stride 2, row-major: list of 9 arrays."""
    return [win[2 * j:2 * j + 3, 2 * i:2 * i + 3] for j in range(3) for i in range(3)]


def _norm_var(sub):
    m = sub.mean()
    return (((sub - m) ** 2).sum() / 8) / (m * m) if m > 0 else 0.0


def _direction_pixels(win, d):
    pts = []
    for y in range(7):
        for x in range(7):
            if ((d == 0 and x >= 3) or (d == 1 and x >= y) or (d == 2 and y <= 3) or (d == 3 and x < 7 - y)
                    or (d == 4 and x < 4) or (d == 5 and x < y + 1) or (d == 6 and y >= 3) or (d == 7 and x >= 6 - y)):
                pts.append(win[y, x])
    assert len(pts) == 28
    return np.array(pts)


def ref_refined_lee(img):
    out = np.full(img.shape, np.nan)
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            c = img[y, x]
            if np.isnan(c):
                continue
            win = _neighbours(img, y, x, 3, 3)
            subs = _subareas(win)
            nv = [_norm_var(s) for s in subs if not np.isnan(s).any()]
            if np.isnan(win).any():  # local statistics on the valid pixels
                m, var, _ = _mean_var(win)
            else:
                sm = np.array([s.mean() for s in subs]).reshape(3, 3)
                g = [abs(sm[1, 0] - sm[1, 2]), abs(sm[0, 2] - sm[2, 0]), abs(sm[0, 1] - sm[2, 1]), abs(sm[0, 0] - sm[2, 2])]
                direction = int(np.argmax(g))  # first maximum, as SNAP's strict '<' scan
                if direction == 0:
                    d = 4 if abs(sm[1, 0] - sm[1, 1]) < abs(sm[1, 1] - sm[1, 2]) else 0
                elif direction == 1:
                    d = 1 if abs(sm[0, 2] - sm[1, 1]) < abs(sm[1, 1] - sm[2, 0]) else 5
                elif direction == 2:
                    d = 2 if abs(sm[0, 1] - sm[1, 1]) < abs(sm[1, 1] - sm[2, 1]) else 6
                else:
                    d = 3 if abs(sm[0, 0] - sm[1, 1]) < abs(sm[1, 1] - sm[2, 2]) else 7
                m, var, _ = _mean_var(_direction_pixels(win, d))
            if var <= 0:
                out[y, x] = m
                continue
            sv = _snap_noise_variance(nv)
            vx = max((var - m * m * sv) / (1 + sv), 0.0)
            out[y, x] = m + vx / var * (c - m)
    return out


def _mmse(vals, sv2, centre):
    m, var, n = _mean_var(np.asarray(vals, dtype=float))
    if var == 0:
        return m
    vx = max((var - m * m * sv2) / (1 + sv2), 0.0)
    b = vx / var
    return (1 - b) * m + b * centre


def ref_lee_sigma(img, looks=1, half=3, thalf=1, i1=0.084, i2=3.941, svp=0.8191):
    h, w = img.shape
    valid = np.sort(img[~np.isnan(img)].astype(np.float64))
    z98 = valid[max(0, int(valid.size * 0.98) - 1)]
    sv2 = 1.0 / looks
    point = np.zeros(img.shape, bool)
    out = np.full(img.shape, np.nan)
    for y in range(h):
        for x in range(w):
            v = float(img[y, x])
            if np.isnan(v):
                continue
            if point[y, x]:
                out[y, x] = v
                continue
            if y - half < 0 or y + half >= h or x - half < 0 or x + half >= w:
                nb = _neighbours(img, y, x, half, half)
                out[y, x] = _mmse(nb[~np.isnan(nb)], sv2, v)
                continue
            tw = _neighbours(img, y, x, thalf, thalf)
            if v > z98 and np.sum(~np.isnan(tw) & (tw > z98)) > 5:
                for j in range(-thalf, thalf + 1):
                    for i in range(-thalf, thalf + 1):
                        if tw[j + thalf, i + thalf] > z98:
                            point[y + j, x + i] = True
                out[y, x] = v
                continue
            mean_est = _mmse(tw[~np.isnan(tw)], sv2, v)
            fw = _neighbours(img, y, x, half, half)
            sel = fw[~np.isnan(fw) & (fw >= mean_est * i1) & (fw <= mean_est * i2)]
            out[y, x] = v if sel.size == 0 else _mmse(sel, svp * svp, v)
    return out


@pytest.fixture(scope="module")
def small_image():
    """Speckled image with an edge, a bright point-target cluster and no-data holes."""
    img = _gamma_field((30, 34), mean=0.05, seed=3)
    img[:, 17:] *= 8.0  # vertical edge
    img[10:13, 5:8] = 40.0  # bright cluster (Lee Sigma point target)
    img[20, 25] = np.nan
    img[0:2, 30:] = np.nan
    img[25:, 0:3] = np.nan
    return img


def test_boxcar_lee_gamma_equal_reference(small_image):
    np.testing.assert_allclose(S.boxcar(small_image, 5, 3), ref_boxcar(small_image, 5, 3), rtol=1e-5)
    for enl in (1.0, 4.4):
        np.testing.assert_allclose(S.lee(small_image, 3, 5, enl=enl), ref_lee(small_image, 3, 5, enl), rtol=1e-5)
        np.testing.assert_allclose(S.gamma_map(small_image, 5, 5, enl=enl), ref_gamma_map(small_image, 5, 5, enl),
                                   rtol=1e-5)


def test_refined_lee_equals_reference(small_image):
    ours = S.refined_lee(small_image)
    ref = ref_refined_lee(small_image.astype(np.float64))
    np.testing.assert_allclose(ours, ref, rtol=2e-5)
    assert np.isnan(ours).tolist() == np.isnan(small_image).tolist()


def test_lee_sigma_equals_reference(small_image):
    ours = S.lee_sigma(small_image)  # SNAP defaults: 1 look, 7x7, 3x3 target window, sigma 0.9
    ref = ref_lee_sigma(small_image.astype(np.float64))
    np.testing.assert_allclose(ours, ref, rtol=2e-5)
    assert (ours[10:13, 5:8] == 40.0).all()  # point target kept
    other = S.lee_sigma(small_image, numLooksStr="2", windowSize="5x5", sigmaStr="0.7")
    np.testing.assert_allclose(other, ref_lee_sigma(small_image.astype(np.float64), looks=2, half=2,
                                                    i1=0.418, i2=1.972, svp=0.4062), rtol=2e-5)


@pytest.mark.parametrize(
    "name,params,min_gain,max_gain",
    [
        # Boxcar N pixels: ENL x ~N for uncorrelated speckle
        ("Boxcar", {}, 8.0, 10.0),
        ("Boxcar", {"filterSizeX": 5, "filterSizeY": 5}, 22.0, 27.0),
        # Lee / Gamma Map with enl=1 (SNAP default) on 4.4-look data: Ci < Cu, i.e. the mean
        ("Lee", {}, 8.0, 10.0),
        ("Gamma Map", {}, 8.0, 10.0),
        # Lee with the data's ENL keeps part of the pixel: gain smaller but > 1
        ("Lee", {"enl": LOOKS, "filterSizeX": 5, "filterSizeY": 5}, 1.5, 25.0),
        # Refined Lee: 28-pixel edge-aligned average, minus what the local noise estimate lets through
        ("Refined Lee", {}, 5.0, 28.0),
        # Lee Sigma (1-look defaults): MMSE over the 7x7 pixels in the sigma range
        ("Lee Sigma", {}, 20.0, 49.0),
    ],
)
def test_homogeneous_area_mean_preserved_and_enl_raised(name, params, min_gain, max_gain):
    img = _gamma_field((400, 400), mean=0.1, seed=7)
    out = S.speckle_filter(img, name, **params)
    inner = (slice(10, -10), slice(10, -10))
    enl_in = S.equivalent_number_of_looks(img[inner])
    enl_out = S.equivalent_number_of_looks(out[inner])
    assert enl_in == pytest.approx(LOOKS, rel=0.05)
    assert min_gain * enl_in <= enl_out <= max_gain * enl_in, (name, enl_out / enl_in)
    assert np.mean(out[inner]) == pytest.approx(np.mean(img[inner]), rel=0.01)


def test_refined_lee_keeps_edges_boxcar_blurs_them():
    img = _gamma_field((200, 200), mean=0.02, seed=11)
    img[:, 100:] *= 10.0  # 0.02 | 0.2 vertical edge
    rl = S.refined_lee(img)
    bc = S.boxcar(img, 7, 7)
    # the two dark columns next to the edge: a 7x7 boxcar mixes 2-3 bright columns in
    # (about +0.05 to +0.08); Refined Lee picks the dark side's sub-window (error 4x smaller)
    rl_err = abs(np.mean(rl[20:-20, 98:100]) - 0.02)
    bc_err = abs(np.mean(bc[20:-20, 98:100]) - 0.02)
    assert bc_err > 0.04 and rl_err < 0.25 * bc_err


def test_filters_are_nodata_aware():
    img = _gamma_field((60, 60), seed=5)
    img[30:40, 30:40] = np.nan
    img[0, :] = np.nan
    for name in S.FILTERS:
        out = S.speckle_filter(img, name)
        assert np.isnan(out).tolist() == np.isnan(img).tolist(), name
        assert np.all(out[~np.isnan(out)] > 0), name


def test_snap_parameter_handling():
    name, p = S.normalise_parameters("Gamma-MAP", filterSizeX="5", filterSizeY="7", estimateENL="true", enl="2.5")
    assert name == "Gamma Map" and (p["filterSizeX"], p["filterSizeY"], p["estimateENL"], p["enl"]) == (5, 7, True, 2.5)
    assert S.normalise_parameters("Mean")[0] == "Boxcar"
    assert S.SNAP_DEFAULTS["windowSize"] == "7x7" and S.SNAP_DEFAULTS["sigmaStr"] == "0.9"
    assert S.filter_halo("Refined Lee") == (3, 3)
    assert S.filter_halo("Lee", filterSizeX=5, filterSizeY=9) == (4, 2)
    assert S.filter_halo("Lee Sigma", windowSize="11x11") == (5, 5)
    with pytest.raises(S.SpeckleFilterError, match="not implemented"):
        S.speckle_filter(np.ones((5, 5), np.float32), "IDAN")
    with pytest.raises(S.SpeckleFilterError, match="unknown speckle filter"):
        S.speckle_filter(np.ones((5, 5), np.float32), "Wiener")
    with pytest.raises(S.SpeckleFilterError, match="filterSize"):
        S.speckle_filter(np.ones((5, 5), np.float32), "Lee", filterSize=5)
    with pytest.raises(S.SpeckleFilterError, match="numLooksStr"):
        S.speckle_filter(np.ones((5, 5), np.float32), "Lee Sigma", numLooksStr="7")
    # estimateENL uses the image's own ENL (4.4 here): Lee then keeps part of each pixel
    img = _gamma_field((100, 100), seed=2)
    est = S.lee(img, 5, 5, estimateENL=True)
    np.testing.assert_allclose(est, S.lee(img, 5, 5, enl=S.equivalent_number_of_looks(img)), rtol=1e-6)
