"""Round trip of the radiometry: simulate -> the project's reader and radiometry (border and
thermal noise removal, calibration) -> mean sigma0 of homogeneous parcels equals the truth;
point targets at their annotated radar positions; speckle statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from scipy.interpolate import RegularGridInterpolator


def _truth_in_radar_geometry(sim, product, pol: str) -> tuple[np.ndarray, np.ndarray]:
    """Truth sigma0 for every radar pixel (NaN near parcel edges and the river) and a parcel
    key, through the annotation's geolocation grid (independent of the simulator's code)."""
    truth = json.loads(sim.truth_json.read_text())
    a = product.annotation(pol)
    g = a.gcps
    lines, pixels = np.unique(g.line), np.unique(g.pixel)
    ll, pp = np.meshgrid(np.arange(a.lines, dtype=float), np.arange(a.samples, dtype=float), indexing="ij")
    pts = np.stack([ll.ravel(), pp.ravel()], axis=1)
    lon = RegularGridInterpolator((lines, pixels), g.grid("longitude"))(pts)
    lat = RegularGridInterpolator((lines, pixels), g.grid("latitude"))(pts)
    x, y = Transformer.from_crs(4326, int(truth["crs"].split(":")[1]), always_xy=True).transform(lon, lat)
    with rasterio.open(sim.truth_tif) as t:
        band = t.read(1 if pol == "VV" else 2)
        inv = ~t.transform

    def sample(dx: float, dy: float) -> np.ndarray:
        c, r = inv @ (x + dx, y + dy)
        c, r = np.floor(np.asarray(c)).astype(int), np.floor(np.asarray(r)).astype(int)
        ok = (c >= 0) & (r >= 0) & (c < band.shape[1]) & (r < band.shape[0])
        out = np.full(c.shape, np.nan)
        out[ok] = band[r[ok], c[ok]]
        return out

    centre = sample(0.0, 0.0)
    homogeneous = np.ones(centre.shape, bool)
    for dx, dy in ((60, 0), (-60, 0), (0, 60), (0, -60), (40, 40), (-40, -40), (40, -40), (-40, 40)):
        homogeneous &= sample(dx, dy) == centre
    centre[~homogeneous] = np.nan
    centre = centre.reshape(ll.shape)
    for t in truth["point_targets"]["targets"]:  # their energy spreads over neighbouring pixels
        li, pi = int(round(t["line"])), int(round(t["pixel"]))
        centre[max(li - 3, 0):li + 4, max(pi - 3, 0):pi + 4] = np.nan
    return centre, centre


@pytest.mark.parametrize("which,pol", [("sim_old", "VV"), ("sim_old", "VH"), ("sim_new", "VV"), ("sim_new", "VH")])
def test_sigma0_round_trip(request: pytest.FixtureRequest, which: str, pol: str) -> None:
    """Per homogeneous parcel, the mean calibrated, noise-removed sigma0 equals the truth within
    its standard error (speckle is independent from pixel to pixel): every parcel within 4.5
    standard errors, no bias over the parcels (mean within 0.03 dB)."""
    from bigearthnet_s1.radiometry import radar_chain
    from bigearthnet_s1.safe import open_safe

    sim = request.getfixturevalue(which)
    with open_safe(sim.safe) as p:
        sigma0 = radar_chain(p, pol, None, border=True, thermal=True, calibration="sigma0", speckle=None)
        raw = radar_chain(p, pol, None, border=True, thermal=False, calibration="sigma0", speckle=None)
        truth, _ = _truth_in_radar_geometry(sim, p, pol)
    ok = np.isfinite(truth) & np.isfinite(sigma0)
    values, inverse, counts = np.unique(truth[ok], return_inverse=True, return_counts=True)
    s = sigma0[ok].astype(np.float64)
    mean = np.bincount(inverse, weights=s) / counts
    var = np.bincount(inverse, weights=s * s) / counts - mean**2
    mean_raw = np.bincount(inverse, weights=raw[ok].astype(np.float64)) / counts  # signal + noise
    big = (counts >= 1000) & (10 * np.log10(values) > -24.0)  # parcels well above the noise floor
    assert big.sum() >= 5, f"only {big.sum()} homogeneous parcels"
    z = (mean[big] - values[big]) / np.sqrt(var[big] / counts[big])
    assert np.max(np.abs(z)) < 4.5, z
    # speckle multiplies signal + noise: std = (sigma0 + noise) / sqrt(ENL)
    cv_ratio = np.sqrt(var[big]) / (mean_raw[big] / np.sqrt(4.4))
    assert np.all(np.abs(cv_ratio - 1.0) < 0.12), cv_ratio
    err_db = 10 * np.log10(np.sum(mean[big] * counts[big]) / np.sum(values[big] * counts[big]))
    assert abs(err_db) < 0.03


def test_point_targets_at_their_positions(sim_old) -> None:
    """The DN^2 excess of each target centres on its annotated (line, pixel) to 0.05 px."""
    truth = json.loads(sim_old.truth_json.read_text())
    targets = truth["point_targets"]["targets"]
    assert len(targets) >= 4
    with rasterio.open(next(sim_old.safe.glob("measurement/*-vv-*.tiff"))) as src:
        dn2 = src.read(1).astype(float) ** 2
    for t in targets:
        l0, p0 = int(round(t["line"])), int(round(t["pixel"]))
        win = dn2[l0 - 4:l0 + 5, p0 - 4:p0 + 5]
        ring = np.concatenate([win[0], win[-1], win[1:-1, 0], win[1:-1, -1]])
        excess = np.clip(win - np.median(ring), 0, None)
        excess[excess < 0.05 * excess.max()] = 0
        rr, cc = np.mgrid[-4:5, -4:5]
        cl = (excess * rr).sum() / excess.sum() + l0
        cp = (excess * cc).sum() / excess.sum() + p0
        assert abs(cl - t["line"]) < 0.05 and abs(cp - t["pixel"]) < 0.05, (t, cl, cp)
        assert excess.max() > 100 * np.median(ring)


def test_speckle_enl_and_border_noise(sim_old) -> None:
    """Intensity in homogeneous parcels is Gamma-distributed with ENL ~4.4; the IPF 2.84 border
    noise band holds ~0.3 x the annotated noise power (below the noise floor, so removable)."""
    from bigearthnet_s1.radiometry import noise_power
    from bigearthnet_s1.safe import open_safe

    truth = json.loads(sim_old.truth_json.read_text())
    with open_safe(sim_old.safe) as p:
        dn = p.read_dn("VV").astype(float)
        _, key = _truth_in_radar_geometry(sim_old, p, "VV")
        noise = noise_power(p.noise("VV"), rasterio.windows.Window(0, 0, dn.shape[1], dn.shape[0]))
    zn, vf = np.array(truth["borders"]["zero_near"]), np.array(truth["borders"]["valid_first"])
    vl = np.array(truth["borders"]["valid_last"])
    cols = np.arange(dn.shape[1])[None, :]
    ok = np.isfinite(key) & (cols >= vf[:, None]) & (cols <= vl[:, None])
    enl = []
    for v in np.unique(key[ok]):
        sel = ok & (key == v)
        if sel.sum() > 1000:
            i = dn[sel] ** 2
            enl.append(i.mean() ** 2 / i.var())
    assert len(enl) >= 10
    assert 4.1 < np.median(enl) < 4.7
    band = (cols >= zn[:, None]) & (cols < vf[:, None])
    assert band.sum() > 10_000
    ratio = (dn[band] ** 2).mean() / noise[band].mean()
    assert 0.25 < ratio < 0.35
