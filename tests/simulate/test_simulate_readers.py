"""Simulated products open in xarray-sentinel and in the project's reader (folder and zip)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import rasterio


def test_xarray_sentinel_opens_every_group(sim_new) -> None:
    import xarray_sentinel

    path = str(sim_new.safe)
    root = xarray_sentinel.open_sentinel1_dataset(path)
    truth = json.loads(sim_new.truth_json.read_text())
    assert root.attrs["orbit_number"] == truth["absolute_orbit"]
    assert root.attrs["relative_orbit_number"] == truth["relative_orbit"]
    assert root.attrs["pass"] == truth["pass"]
    assert root.attrs["transmitter_receiver_polarisations"] == ["VV", "VH"]
    assert root.attrs["product_type"] == "GRD"
    groups = set(root.attrs["subgroups"])
    for pol in ("VV", "VH"):
        for sub in ("", "/orbit", "/attitude", "/azimuth_fm_rate", "/dc_estimate", "/gcp", "/coordinate_conversion",
                    "/noise_range", "/noise_azimuth", "/calibration"):
            g = f"IW/{pol}{sub}"
            assert g in groups
            ds = xarray_sentinel.open_sentinel1_dataset(path, group=g)
            assert len(ds.variables) > 0, g
    meas = xarray_sentinel.open_sentinel1_dataset(path, group="IW/VV").measurement
    assert meas.shape == (truth["lines"], truth["samples"])
    assert meas.attrs["azimuth_time_interval"] == pytest.approx(truth["azimuth_time_interval"], rel=1e-12)
    gcp = xarray_sentinel.open_sentinel1_dataset(path, group="IW/VV/gcp")
    assert gcp.latitude.shape[1] == 21
    orbit = xarray_sentinel.open_sentinel1_dataset(path, group="IW/VV/orbit")
    assert np.all(np.diff(orbit.azimuth_time.values).astype("timedelta64[ms]").astype(int) == 10_000)


def test_xarray_sentinel_calibration_matches_the_lut(sim_old) -> None:
    """calibrate_intensity (xarray-sentinel's own LUT interpolation) of the simulated DN gives
    sigma0 whose mean over the valid image is the truth's order of magnitude; and the LUT it
    reads is sigma = 474 / sqrt(sin(incidence))."""
    import xarray_sentinel

    path = str(sim_old.safe)
    meas = xarray_sentinel.open_sentinel1_dataset(path, group="IW/VV").measurement
    cal = xarray_sentinel.open_sentinel1_dataset(path, group="IW/VV/calibration")
    assert np.all(cal.betaNought.values == 474.0)
    cos_inc = (cal.gamma.values / cal.sigmaNought.values) ** 2
    inc = np.degrees(np.arccos(cos_inc))
    assert 30.0 < inc.min() and inc.max() < 46.5
    assert np.allclose(cal.sigmaNought.values, 474.0 / np.sqrt(np.sin(np.radians(inc))), rtol=2e-6)
    lines = meas.sizes["azimuth_time"]
    block = meas.isel(azimuth_time=slice(lines // 2 - 100, lines // 2 + 100),
                      ground_range=slice(meas.sizes["ground_range"] // 2 - 100, meas.sizes["ground_range"] // 2 + 100))
    sigma0 = xarray_sentinel.calibrate_intensity(block, cal.sigmaNought)
    db = 10 * np.log10(float(sigma0.mean()))
    assert -20.0 < db < -3.0


@pytest.mark.parametrize("as_zip", [False, True])
def test_project_reader(sim_new, rome_bounds, as_zip: bool) -> None:
    from bigearthnet_s1.safe import open_safe

    truth = json.loads(sim_new.truth_json.read_text())
    path = sim_new.safe.with_suffix(".zip") if as_zip else sim_new.safe
    with zipfile.ZipFile(sim_new.safe.with_suffix(".zip")) as z:
        assert f"{sim_new.safe.name}/manifest.safe" in z.namelist()
    with open_safe(path) as p:
        assert p.name == truth["product"]
        assert (p.mission, p.mode, p.product_type) == ("S1B", "IW", "GRD")
        assert p.polarisations == ("VV", "VH")
        assert p.ipf_version == pytest.approx(3.40)
        assert (p.absolute_orbit, p.relative_orbit) == (truth["absolute_orbit"], truth["relative_orbit"])
        assert p.datatake_id == truth["datatake_id"]
        assert p.pass_direction == "DESCENDING"
        assert p.footprint.contains(__import__("shapely").box(*rome_bounds))
        for pol in ("VV", "VH"):
            a = p.annotation(pol)
            assert (a.lines, a.samples) == (truth["lines"], truth["samples"])
            assert a.range_pixel_spacing == 10.0
            assert a.terrain_height == pytest.approx(truth["terrain_height_m"])
            n = p.noise(pol)
            assert n.has_azimuth and len(n.azimuth_blocks) == len(truth["swaths"])
            c = p.calibration(pol)
            assert c.line[0] == 0 and c.line[-1] >= a.lines - 1 and c.pixel[0, -1] == a.samples - 1
            dn = p.read_dn(pol)
            with rasterio.open(next(sim_new.safe.glob(f"measurement/*-{pol.lower()}-*.tiff"))) as src:
                assert np.array_equal(dn, src.read(1))
            # DN = 0 exactly on the recorded borders, never inside
            rows = np.arange(a.lines)
            zn, zf = np.array(truth["borders"]["zero_near"]), np.array(truth["borders"]["zero_far"])
            cols = np.arange(a.samples)[None, :]
            outside = (cols < zn[:, None]) | (cols > zf[:, None])
            assert np.all(dn[outside] == 0)
            assert np.mean(dn[~outside] == 0) < 1e-4
            assert rows.size == dn.shape[0]


def test_measurement_tiff_like_real(sim_old) -> None:
    """uint16, one band, GCPs in EPSG:4326 equal to the annotation's geolocation grid, the
    real products' TIFF tags."""
    from bigearthnet_s1.safe import open_safe

    with open_safe(sim_old.safe) as p:
        g = p.annotation("VV").gcps
    f = next(sim_old.safe.glob("measurement/*-vv-*.tiff"))
    with rasterio.open(f) as src:
        assert src.count == 1 and src.dtypes[0] == "uint16" and src.compression is None
        gcps, crs = src.gcps
        assert crs.to_epsg() == 4326
        assert len(gcps) == g.line.size
        got = np.array([[c.row, c.col, c.x, c.y, c.z] for c in gcps])
        assert np.allclose(got, np.stack([g.line, g.pixel, g.longitude, g.latitude, g.height], axis=1), atol=1e-9)
        tags = src.tags()
        assert tags["TIFFTAG_SOFTWARE"] == "Sentinel-1 IPF 002.84"
        assert tags["TIFFTAG_IMAGEDESCRIPTION"] == "Sentinel-1A IW GRD HR L1"


def test_old_ipf_noise_is_range_only(sim_old) -> None:
    from bigearthnet_s1.safe import open_safe

    with open_safe(sim_old.safe) as p:
        assert p.ipf_version == pytest.approx(2.84)
        n = p.noise("VH")
        assert not n.has_azimuth
        assert all(v.min() > 0 for v in n.range_values)


def test_preview_files(sim_new) -> None:
    from PIL import Image

    ql = sim_new.safe / "preview" / "quick-look.png"
    with Image.open(ql) as im:
        assert im.mode == "RGB" and 100 < im.width < 700 and 100 < im.height < 700
        assert np.asarray(im).max() > 0
    kml = (sim_new.safe / "preview" / "map-overlay.kml").read_text()
    assert "<gx:LatLonQuad>" in kml and "quick-look.png" in kml
    html = (sim_new.safe / "preview" / "product-preview.html").read_text()
    assert sim_new.safe.name.removesuffix(".SAFE").rsplit("_", 1)[0] in html


def test_support_files(sim_new) -> None:
    names = {p.name for p in (sim_new.safe / "support").iterdir()}
    assert {"s1-level-1-product.xsd", "s1-level-1-noise.xsd", "s1-level-1-calibration.xsd", "s1-level-1-rfi.xsd",
            "s1-object-types.xsd", "s1-level-1-measurement.xsd", "s1-level-1-quicklook.xsd", "s1-map-overlay.xsd",
            "s1-product-preview.xsd"} <= names
    for f in (sim_new.safe / "support").iterdir():
        __import__("xml.etree.ElementTree").etree.ElementTree.parse(f)
