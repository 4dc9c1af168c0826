"""Bad products give a SafeError naming the product and the file; zips read like folders;
our parsing agrees with xarray-sentinel's on the same files."""

from __future__ import annotations

import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.errors
import xarray as xr
from rasterio.windows import Window

from bigearthnet_s1.errors import SafeError
from bigearthnet_s1.safe import open_safe

NAME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"


def _copy(src: Path, root: Path) -> Path:
    dst = root / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tiff"))
    for d in [dst, *dst.rglob("*")]:  # the cache is read-only; so would be the copy
        d.chmod(d.stat().st_mode | 0o200)
    return dst


def _write_measurement(safe: Path, *, tiled_data: bool = True) -> tuple[Path, np.ndarray, Window]:
    p = open_safe(safe)
    rel = p.file("measurement", "VV")
    ann = p.annotation("VV")
    win = Window(1000, 2000, 300, 200)
    dn = np.random.default_rng(0).integers(1, 4000, (200, 300)).astype(np.uint16)
    prof = dict(driver="GTiff", width=ann.samples, height=ann.lines, count=1, dtype="uint16", tiled=True,
                blockxsize=256, blockysize=256, compress="deflate", sparse_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        ds = rasterio.open(safe / rel, "w", **prof)
    with ds:
        ds.write(dn, 1, window=win)
    return safe / rel, dn, win


@pytest.fixture()
def s1b_copy(s1b_rome_safe, tmp_path) -> Path:
    return _copy(s1b_rome_safe, tmp_path)


def _cal_rel(safe: Path) -> str:
    return next((safe / "annotation" / "calibration").glob("calibration-*vv*.xml")).relative_to(safe).as_posix()


def _noise_rel(safe: Path) -> str:
    return next((safe / "annotation" / "calibration").glob("noise-*vv*.xml")).relative_to(safe).as_posix()


def test_missing_calibration_file(s1b_copy):
    rel = _cal_rel(s1b_copy)
    (s1b_copy / rel).unlink()
    p = open_safe(s1b_copy)
    with pytest.raises(SafeError) as exc:
        p.calibration("VV")
    assert NAME in str(exc.value) and rel in str(exc.value) and "missing" in str(exc.value)


def test_missing_noise_file(s1b_copy):
    rel = _noise_rel(s1b_copy)
    (s1b_copy / rel).unlink()
    with pytest.raises(SafeError) as exc:
        open_safe(s1b_copy).noise("VV")
    assert NAME in str(exc.value) and rel in str(exc.value)


def test_polarisation_the_product_lacks(s1b_rome_safe):
    p = open_safe(s1b_rome_safe)
    with pytest.raises(SafeError, match=rf"{NAME}.*no polarisation 'HH'.*VV, VH"):
        p.annotation("HH")
    # VH is listed by the manifest but its files are not in this copy: the file is named
    with pytest.raises(SafeError, match=rf"{NAME}.*annotation/s1b-iw-grd-vh-.*missing"):
        p.annotation("VH")
    with pytest.raises(SafeError, match=rf"{NAME}.*measurement/s1b-iw-grd-vh-.*missing"):
        p.read_dn("VH", Window(0, 0, 10, 10))


def test_missing_measurement(s1b_copy):
    assert not any((s1b_copy / "measurement").iterdir())  # the copy leaves the TIFF out
    with pytest.raises(SafeError, match=rf"{NAME}.*measurement/s1b-iw-grd-vv-.*missing"):
        open_safe(s1b_copy).read_dn("VV", Window(0, 0, 10, 10))


def test_truncated_measurement_tiff(s1b_copy):
    tif, dn, win = _write_measurement(s1b_copy)
    p = open_safe(s1b_copy)
    np.testing.assert_array_equal(p.read_dn("VV", win), dn)
    size = tif.stat().st_size
    with open(tif, "r+b") as f:  # cut into the tile data written last
        f.truncate(size - 2000)
    with pytest.raises(SafeError) as exc:
        open_safe(s1b_copy).read_dn("VV", win)
    assert NAME in str(exc.value) and tif.name in str(exc.value) and "truncated or corrupt" in str(exc.value)
    with open(tif, "r+b") as f:  # header only
        f.truncate(300)
    with pytest.raises(SafeError, match=tif.name):
        open_safe(s1b_copy).read_dn("VV", win)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_measurement_size_mismatch(s1b_copy):
    p = open_safe(s1b_copy)
    rel = p.file("measurement", "VV")
    with rasterio.open(s1b_copy / rel, "w", driver="GTiff", width=100, height=50, count=1, dtype="uint16") as ds:
        ds.write(np.ones((1, 50, 100), np.uint16))
    with pytest.raises(SafeError, match=r"100 x 50 px but the annotation says 26102 x 16705"):
        open_safe(s1b_copy).read_dn("VV", Window(0, 0, 10, 10))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize(("dtype", "count"), [("float32", 1), ("int16", 1), ("uint16", 2)])
def test_measurement_of_the_wrong_type_is_refused(s1b_copy, dtype, count):
    """A measurement of the right size but not one band of uint16 DN (float32 1e6, as a
    hostile or mislabelled product has) must not be cast into garbage sigma0."""
    p = open_safe(s1b_copy)
    rel = p.file("measurement", "VV")
    ann = p.annotation("VV")
    with rasterio.open(s1b_copy / rel, "w", driver="GTiff", width=ann.samples, height=ann.lines, count=count,
                       dtype=dtype, tiled=True, sparse_ok=True) as ds:
        ds.write(np.full((count, 64, 64), 1e6 if dtype == "float32" else 300, dtype), window=Window(0, 0, 64, 64))
    with pytest.raises(SafeError) as exc:
        open_safe(s1b_copy).read_dn("VV", Window(0, 0, 64, 64))
    msg = str(exc.value)
    assert NAME in msg and Path(rel).name in msg and f"{count} band(s) of {dtype}" in msg and "uint16" in msg


XXE = """<?xml version="1.0"?>
<!DOCTYPE calibration [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<calibration><calibrationInformation><absoluteCalibrationConstant>&xxe;</absoluteCalibrationConstant>
</calibrationInformation></calibration>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<product><adsHeader>&lol4;</adsHeader></product>"""


def test_external_entity_is_refused(s1b_copy):
    rel = _cal_rel(s1b_copy)
    (s1b_copy / rel).write_text(XXE)
    with pytest.raises(SafeError) as exc:
        open_safe(s1b_copy).calibration("VV")
    msg = str(exc.value)
    assert NAME in msg and rel in msg and "refused" in msg and "root:" not in msg


def test_billion_laughs_is_refused(s1b_copy):
    rel = next((s1b_copy / "annotation").glob("s1b-*vv*.xml")).relative_to(s1b_copy).as_posix()
    (s1b_copy / rel).write_text(LAUGHS)
    with pytest.raises(SafeError, match=rf"{NAME}.*{rel}.*refused"):
        open_safe(s1b_copy).annotation("VV")


def test_entity_in_manifest_is_refused(s1b_copy):
    (s1b_copy / "manifest.safe").write_text(LAUGHS)
    with pytest.raises(SafeError, match=rf"{NAME}.*manifest.safe.*refused"):
        open_safe(s1b_copy)


def test_malformed_and_incomplete_xml(s1b_copy):
    rel = _noise_rel(s1b_copy)
    (s1b_copy / rel).write_text("<noise><noiseRangeVectorList>")
    with pytest.raises(SafeError, match=rf"{NAME}.*{rel}.*not well-formed"):
        open_safe(s1b_copy).noise("VV")
    rel = _cal_rel(s1b_copy)
    (s1b_copy / rel).write_text("<calibration><calibrationVectorList><calibrationVector><line>0</line>"
                                "</calibrationVector></calibrationVectorList></calibration>")
    with pytest.raises(SafeError, match=rf"{NAME}.*{rel}.*malformed"):
        open_safe(s1b_copy).calibration("VV")


def test_zip_without_manifest(tmp_path):
    z = tmp_path / f"{NAME}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"{NAME}.SAFE/annotation/readme.txt", "no manifest here")
    with pytest.raises(SafeError, match=rf"{NAME}.zip.*manifest.safe is missing"):
        open_safe(z)


def test_not_a_product(tmp_path):
    with pytest.raises(SafeError, match="no such folder or file"):
        open_safe(tmp_path / "nothing.SAFE")
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(SafeError, match="neither a .SAFE folder nor a zip"):
        open_safe(tmp_path / "x.zip")
    (tmp_path / "empty.SAFE").mkdir()
    with pytest.raises(SafeError, match="empty.SAFE.*manifest.safe is missing"):
        open_safe(tmp_path / "empty.SAFE")


def test_zip_reads_like_the_folder(s1b_copy, tmp_path):
    tif, dn, win = _write_measurement(s1b_copy)
    z = tmp_path / f"{NAME}.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(s1b_copy.rglob("*")):
            if f.is_file():
                zf.write(f, f"{NAME}.SAFE/{f.relative_to(s1b_copy).as_posix()}",
                         compress_type=zipfile.ZIP_STORED if f.suffix == ".tiff" else zipfile.ZIP_DEFLATED)
    pz, pf = open_safe(z), open_safe(s1b_copy)
    assert pz.name == pf.name == NAME
    assert (pz.ipf_version, pz.polarisations, pz.available_polarisations) == (3.4, ("VV", "VH"), ("VV",))
    assert pz.measurement_path("VV").startswith("/vsizip/")
    np.testing.assert_array_equal(pz.read_dn("VV", win), dn)
    np.testing.assert_array_equal(pz.calibration("VV").sigma_nought, pf.calibration("VV").sigma_nought)
    assert pz.annotation("VV").gcps.latitude.tolist() == pf.annotation("VV").gcps.latitude.tolist()
    # a corrupt member inside the zip is named too
    zc = tmp_path / "corrupt.zip"
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo(f"{NAME}.SAFE/{_cal_rel(s1b_copy)}")
    start = info.header_offset + 30 + len(info.filename) + 10
    data[start:start + 200] = b"\0" * 200
    zc.write_bytes(bytes(data))
    with pytest.raises(SafeError, match=rf"SAFE product {NAME}: .*(cannot read|not well-formed|malformed)") as exc:
        open_safe(zc).calibration("VV")
    assert "calibration-s1b-iw-grd-vv" in str(exc.value) and "corrupt.zip" in str(exc.value)


def test_metadata_agrees_with_xarray_sentinel(s1b_rome_safe):
    p = open_safe(s1b_rome_safe)
    a = p.annotation("VV")
    gcp = xr.open_dataset(s1b_rome_safe, engine="sentinel-1", group="IW/VV/gcp")
    lat = a.gcps.grid("latitude")
    np.testing.assert_allclose(lat, gcp.latitude.values)
    np.testing.assert_allclose(a.gcps.grid("incidence_angle"), gcp.incidenceAngle.values)
    np.testing.assert_array_equal(np.unique(a.gcps.pixel), gcp.pixel.values)
    orb = xr.open_dataset(s1b_rome_safe, engine="sentinel-1", group="IW/VV/orbit")
    np.testing.assert_allclose(a.orbit.positions, orb.position.values.T)
    np.testing.assert_array_equal(a.orbit.datetime(a.orbit.times), orb.azimuth_time.values)
    cc = xr.open_dataset(s1b_rome_safe, engine="sentinel-1", group="IW/VV/coordinate_conversion")
    np.testing.assert_allclose(np.stack([s.coefficients for s in a.grsr]), cc.grsrCoefficients.values)
    np.testing.assert_allclose([s.slant_range_origin for s in a.srgr], cc.sr0.values)
    nr = xr.open_dataset(s1b_rome_safe, engine="sentinel-1", group="IW/VV/noise_range")
    np.testing.assert_allclose(np.stack(p.noise("VV").range_values), nr.noiseRangeLut.values, rtol=1e-6)
    root = xr.open_dataset(s1b_rome_safe, engine="sentinel-1")
    assert root.attrs["relative_orbit_number"] == p.relative_orbit == 22
    assert root.attrs["orbit_number"] == p.absolute_orbit
