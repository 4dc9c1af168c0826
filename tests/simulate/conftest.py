"""Simulated products shared by the simulator's tests (session scope: each is made once).

* ``sim_old``: BigEarthNet's own example, tile 33UUP at the real S1 scene's start time
  2017-06-13T16:50:43 (ascending, IPF 2.84: old noise format, border noise), 2 x 1 patches;
* ``sim_new``: the real S1B product's time over Rome (IPF 3.40: azimuth noise, RFI files),
  on the real Rome DEM, also zipped;
* ``real_s1b``: the real S1B product's folder (pinned sarsen release, IPF 3.40).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Sim:
    safe: Path
    truth_json: Path
    truth_tif: Path
    tile: object | None


def _tile_33uup(cols: tuple[int, ...], rows: tuple[int, ...]):  # -> TileAcquisition
    from bigearthnet_s1.tiles import Patch, TileAcquisition, TileGrid, mgrs_tile_origin

    epsg, ulx, uly = mgrs_tile_origin("33UUP")
    grid = TileGrid(epsg, ulx, uly)
    patches = []
    for c in cols:
        for r in rows:
            x0, y0, x1, y1 = grid.patch_bounds(c, r)
            patches.append(Patch(f"S2A_MSIL2A_20170613T101031_{c}_{r}", c, r, (), x0, y0, x1, y1))
    return TileAcquisition("33UUP", datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC), None, grid, tuple(patches))


def _sim(safe: Path, tile: object | None) -> Sim:
    stem = safe.name.removesuffix(".SAFE")
    return Sim(safe, safe.parent / f"{stem}.truth.json", safe.parent / f"{stem}.truth.tif", tile)


@pytest.fixture(scope="session")
def tile_33uup():
    return _tile_33uup((87, 88), (48,))


@pytest.fixture(scope="session")
def sim_old(tmp_path_factory: pytest.TempPathFactory, tile_33uup) -> Sim:
    from bigearthnet_s1.simulate import simulate_product

    safe = simulate_product(tmp_path_factory.mktemp("sim-old"), tile=tile_33uup,
                            time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC), pass_direction="auto", seed=1)
    return _sim(safe, tile_33uup)


@pytest.fixture(scope="session")
def rome_bounds() -> tuple[float, float, float, float]:
    """A 3.3 x 4.4 km box on the Rome DEM (lon/lat); with its 1.5 km margin the product stays on the DEM."""
    return (12.48, 41.98, 12.52, 42.02)


@pytest.fixture(scope="session")
def sim_new(tmp_path_factory: pytest.TempPathFactory, rome_dem: Path, rome_bounds) -> Sim:
    from bigearthnet_s1.simulate import simulate_product

    safe = simulate_product(tmp_path_factory.mktemp("sim-new"), bounds_wgs84=rome_bounds,
                            time="2021-12-23T05:11:22.594441", pass_direction="auto", dem=rome_dem, seed=2,
                            margin_m=1500.0, zip=True)
    return _sim(safe, None)


@pytest.fixture(scope="session")
def real_s1b(s1b_rome_safe: Path) -> Path:
    return s1b_rome_safe
