"""Fixtures shared by every test area.

Real data comes from two places, both pinned public releases on the package registry:

* the BigEarthNet example patches inside the ``bigearthnet-common==2.8.0`` wheel;
* the source distribution of ``sarsen==0.9.6`` (real Sentinel-1 metadata, a real DEM),
  fetched once by :mod:`bigearthnet_s1.testdata`, checked against its pinned SHA-256 and
  cached outside the repository (``make testdata`` pre-fetches it for an offline machine).

Recorded hub replies are not used: ``tests/catalog/fixtures`` holds replies written here in
the hubs' documented schemas.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bigearthnet_s1 import samples, testdata


@pytest.fixture(scope="session")
def s1b_rome_safe() -> Path:
    """Real S1B IW GRDH product over central Italy (IPF 3.40; VV files only, the manifest
    lists VH too; zero-filled measurement). Read-only: copy before changing."""
    return testdata.s1b_rome_safe()


@pytest.fixture(scope="session")
def s1a_slc_manifest() -> Path:
    """manifest.safe of a real S1A IW SLC product (orbit 41314, relative 117, ascending)."""
    return testdata.s1a_slc_manifest()


@pytest.fixture(scope="session")
def rome_dem() -> Path:
    """Real 30 m DEM over Rome, EPSG:9707 (WGS84 + EGM96 heights), int16, nodata -32768."""
    return testdata.rome_dem()


def make_dual_pol(src: Path, dst_root: Path, *, vh_noise_scale: float = 0.71) -> Path:
    """A writable copy of a VV-only product's metadata (no measurement) with the VH files its
    manifest lists made from the VV ones: polarisation and image number relabelled, and the
    range noise LUT scaled by ``vh_noise_scale`` (real VH noise LUTs differ from VV's), so a
    reader that mixed the two polarisations up would get wrong values."""
    dst = dst_root / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tiff"))
    for d in [dst, *dst.rglob("*")]:  # the cache is read-only; so would be the copy
        d.chmod(d.stat().st_mode | 0o200)
    (dst / "measurement").mkdir(exist_ok=True)

    def scaled(m: re.Match[str]) -> str:
        values = " ".join(f"{float(v) * vh_noise_scale:.6e}" for v in m.group(2).split())
        return f"{m.group(1)}{values}{m.group(3)}"

    vv_files = sorted(dst.rglob("*-vv-*-001.xml"))
    assert len(vv_files) == 4, vv_files  # annotation, calibration, noise, RFI
    for f in vv_files:
        text = f.read_text()
        text = text.replace("<polarisation>VV</polarisation>", "<polarisation>VH</polarisation>")
        text = text.replace("<imageNumber>001</imageNumber>", "<imageNumber>002</imageNumber>")
        if f.name.startswith("noise-"):
            text, n = re.subn(r"(<noiseRangeLut[^>]*>)([^<]*)(</noiseRangeLut>)", scaled, text)
            assert n > 0
        f.with_name(f.name.replace("-vv-", "-vh-").replace("-001.xml", "-002.xml")).write_text(text)
    return dst


@pytest.fixture(scope="session")
def s1b_dual_pol_safe(s1b_rome_safe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real S1B metadata as a dual-polarisation product (VV real, VH made from it with a
    different noise LUT; see :func:`make_dual_pol`); no measurement files."""
    return make_dual_pol(s1b_rome_safe, tmp_path_factory.mktemp("s1b-dual-pol"))


#: Start time of the real S1A product S1A_IW_GRDH_1SDV_20210119T031653_..._036201_043ED0_8255
#: (IPF 3.31, descending, relative orbit 79, over Beira, Mozambique).
BEIRA_START = "2021-01-19T03:16:53.799379"


@pytest.fixture(scope="session")
def beira_box() -> tuple[float, float, float, float]:
    """A 21 x 22 km box (lon/lat) inside the real S1A Beira product's footprint."""
    return (33.0, -18.5, 33.2, -18.3)


@pytest.fixture(scope="session")
def s1a_beira_sim(tmp_path_factory: pytest.TempPathFactory, beira_box: tuple[float, float, float, float]) -> Path:
    """A simulated S1A IW GRDH product (VV + VH measurement, IPF 3.31 noise layout with
    azimuth vectors, no RFI files) at the time and place of the real S1A Beira product, so it
    carries that product's identity (orbit 36201, relative 79, datatake 043ED0, descending).
    ``<name>.zip`` lies beside the ``.SAFE`` folder. Read-only by convention: copy first."""
    from bigearthnet_s1.simulate import simulate_product

    return simulate_product(tmp_path_factory.mktemp("s1a-beira-sim"), bounds_wgs84=beira_box, time=BEIRA_START,
                            pass_direction="descending", mission="S1A", ipf_version="003.31", margin_m=1500.0,
                            seed=3, zip=True)


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bigearthnet-examples")


@pytest.fixture(scope="session")
def s2_example(examples_dir: Path) -> Path:
    """The six real BigEarthNet-S2 example patches (read-only: copy before changing)."""
    return samples.s2_example(examples_dir)


@pytest.fixture(scope="session")
def s1_example(examples_dir: Path) -> Path:
    """The six real BigEarthNet-S1 example patches (read-only: copy before changing)."""
    return samples.s1_example(examples_dir)


@pytest.fixture(scope="session")
def one_patch_tile():
    """Factory: a tile acquisition with one 1200 m patch around (lon, lat) on the 1200 m grid
    from the UTM corner (ulx, uly) of tile ``tile_id`` in ``epsg``, sensed at ``time`` (UTC)."""
    import pyproj

    from bigearthnet_s1.tiles import Patch, TileAcquisition, TileGrid

    def make(tile_id: str, epsg: int, ulx: float, uly: float, lon: float, lat: float, time, label: str):
        x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
        col, row = int((x - ulx) // 1200), int((uly - y) // 1200)
        px, py = ulx + 1200 * col, uly - 1200 * row
        patch = Patch(s2_name=f"S2A_MSIL2A_{time:%Y%m%dT%H%M%S}_{col}_{row}", col=col, row=row, labels=(label,),
                      ulx=px, uly=py, lrx=px + 1200, lry=py - 1200)
        return TileAcquisition(tile_id=tile_id, sensing_time=time, s2_product=None,
                               grid=TileGrid(epsg=epsg, ulx=ulx, uly=uly), patches=(patch,))

    return make
