"""Fixtures shared by every test area.

Real data comes from two places: the BigEarthNet example patches inside the
``bigearthnet-common`` wheel, and ``../shared/data`` beside the repository (real Sentinel-1
metadata, a real DEM, recorded catalogue responses). CI has both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bigearthnet_s1 import samples

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("BIGEARTHNET_S1_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    raise RuntimeError(
        f"shared test data not found (looked in {', '.join(map(str, candidates))}); "
        "set BIGEARTHNET_S1_SHARED_DATA"
    )


@pytest.fixture(autouse=True)
def _forget_registered_secrets():
    """Secrets registered for redaction are process-wide: a test's password (say "wrong")
    must not be redacted from the next test's messages."""
    yield
    from bigearthnet_s1 import redact

    redact.forget_secrets()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: s1-grd/, dem/, catalog/ (read-only)."""
    return _shared_data_dir()


@pytest.fixture(scope="session")
def s1b_rome_safe(shared_data: Path) -> Path:
    """Real S1B IW GRDH product over central Italy (VV only; zero-filled measurement)."""
    return shared_data / "s1-grd" / "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"


@pytest.fixture(scope="session")
def s1a_beira_safe(shared_data: Path) -> Path:
    """Real S1A IW GRDH product over Mozambique (VV+VH metadata; no measurement files)."""
    return shared_data / "s1-grd" / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.SAFE"


@pytest.fixture(scope="session")
def rome_dem(shared_data: Path) -> Path:
    """Real 30 m DEM over Rome, EPSG:9707 (WGS84 + EGM96 heights), int16, nodata -32768."""
    return shared_data / "dem" / "Rome-30m-DEM.tif"


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
