"""Fixtures for the label, reBEN and loader tests.

* ``example_table``: a patch-name table in the schema of ``s1_s2_name_country_season.csv``
  (header ``s1_name,s2_name,country,season``), our own rows: the six real example pairs plus
  the neighbour 86_48 of the 33UUP example patch, which no label source knows.
* ``reben_metadata``: a reBEN-style ``metadata.parquet`` (our own rows for the example patches
  and that neighbour; 19-class labels, splits, flags; ``s1_name`` as reBEN pairs them).
* ``sim_catalog``: a local catalogue with two simulated S1A products over 33UUP: the real
  example's acquisition (2017-06-13T16:50:43, ascending, the one the real patch names and our
  reBEN rows pair with) and a morning descending pass closer to the S2 sensing time.
* ``builds``: the builds the tests compare, made once (one work folder, one archive each).
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bigearthnet_s1 import pipeline

TILE_KEY = "33UUP_20170613T101031"
REAL_S1 = "S1A_IW_GRDH_1SDV_20170613T165043"  # the real example's acquisition over 33UUP
NEIGHBOUR_S2 = "S2A_MSIL2A_20170613T101031_86_48"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def example_s1(s1_example: Path) -> dict[str, Path]:
    """S2 name -> the real BigEarthNet-S1 example patch folder that names it."""
    out = {}
    for d in sorted(p for p in s1_example.iterdir() if p.is_dir()):
        out[_read_json(d / f"{d.name}_labels_metadata.json")["corresponding_s2_patch"]] = d
    assert len(out) == 6
    return out


@pytest.fixture(scope="session")
def example_table(example_s1: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bigearthnet_s1.tiles import country_of

    rows = [(d.name, s2, country_of(s2), "Summer") for s2, d in example_s1.items()]
    rows.append((f"{REAL_S1}_33UUP_86_48", NEIGHBOUR_S2, "Austria", "Summer"))
    path = tmp_path_factory.mktemp("table") / "s1_s2_name_country_season.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["s1_name", "s2_name", "country", "season"])
        w.writerows(sorted(rows))
    return path


#: our reBEN rows: v1 name -> (19-class labels, split, snow, cloud)
REBEN_ROWS = {
    "S2A_MSIL2A_20170613T101031_87_48": (["Arable land", "Land principally occupied by agriculture, with "
                                          "significant areas of natural vegetation"], "train", False, False),
    NEIGHBOUR_S2: (["Pastures", "Broad-leaved forest"], "test", False, True),
    "S2A_MSIL2A_20170617T113321_36_85": (["Arable land", "Pastures"], "validation", False, False),
    "S2A_MSIL2A_20170617T113321_4_55": (["Pastures"], "train", False, False),
    "S2A_MSIL2A_20171221T112501_56_35": (["Complex cultivation patterns", "Broad-leaved forest"], "test", False, False),
    "S2B_MSIL2A_20170924T93020_69_24": (["Coniferous forest", "Mixed forest", "Inland wetlands"], "train", True, False),
    "S2B_MSIL2A_20180204T94161_57_38": (["Arable land", "Coniferous forest", "Mixed forest"], "train", True, False),
}


@pytest.fixture(scope="session")
def reben_metadata(example_s1: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bigearthnet_s1.names import parse_s1_patch_name
    from bigearthnet_s1.tiles import country_of

    s1_of = {s2: d.name for s2, d in example_s1.items()}
    s1_of[NEIGHBOUR_S2] = f"{REAL_S1}_33UUP_86_48"
    orbits = {"33UUP": 22, "29UPU": 80, "29SND": 37}
    rows = []
    for s2, (labels, split, snow, cloud) in REBEN_ROWS.items():
        f = parse_s1_patch_name(s1_of[s2])
        mission, date, time_, col, row = s2.split("_")[0], s2.split("_")[2][:8], s2.split("_")[2][9:], *s2.split("_")[3:]
        orbit = orbits.get(f["tile_id"], 136 if "20170924" in s2 else 36)
        pid = f"{mission}_MSIL2A_{date}T{time_.rjust(6, '0')}_N9999_R{orbit:03d}_T{f['tile_id']}_{col}_{row}"
        rows.append({"patch_id": pid, "labels": labels, "split": split, "country": country_of(s2) or "Austria",
                     "s1_name": s1_of[s2], "s2v1_name": s2, "contains_seasonal_snow": snow,
                     "contains_cloud_or_shadow": cloud})
    path = tmp_path_factory.mktemp("reben") / "metadata.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="session")
def sim_catalog(example_table: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from bigearthnet_s1 import tiles
    from bigearthnet_s1.simulate import simulate_product

    (tile,) = [t for t in tiles.read_patch_table(example_table, tiles=["33UUP"])]
    assert tile.key == TILE_KEY and len(tile.patches) == 2
    real_only = tmp_path_factory.mktemp("catalog-real")
    both = tmp_path_factory.mktemp("catalog-both")
    real = simulate_product(real_only, tile=tile, time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC),
                            pass_direction="ascending", mission="S1A", seed=1)
    shutil.copytree(real, both / real.name)
    decoy = simulate_product(both, tile=tile, time=datetime(2017, 6, 13, 5, 1, 20, tzinfo=UTC),
                             pass_direction="descending", mission="S1A", seed=2)
    return {"real_only": real_only, "both": both, "real": real.name.removesuffix(".SAFE"),
            "decoy": decoy.name.removesuffix(".SAFE")}


@pytest.fixture(scope="session")
def build(sim_catalog: dict, tmp_path_factory: pytest.TempPathFactory):
    """Factory: ``build(name, source, catalog="real_only"|"both", **kwargs) -> (archive,
    summary)``; one work folder per catalogue (preprocessed scenes are reused), one archive per
    name (``name`` may end in a folder name such as ``BigEarthNet-S1-v1.0``)."""
    base = tmp_path_factory.mktemp("builds")
    done: dict[str, tuple[Path, dict]] = {}

    def make(name: str, source: str | Path, catalog: str = "real_only", **kwargs) -> tuple[Path, dict]:
        if name not in done:
            work = pipeline.WorkDir(base / f"work-{catalog}", base / name)
            summary = pipeline.build(work, str(source), tiles=["33UUP"], catalog="local",
                                     catalog_root=str(sim_catalog[catalog]), run_id=name.replace("/", "_"),
                                     **kwargs)
            assert summary["failed"] == {}, summary
            done[name] = (work.archive, summary)
        return done[name]

    return make


@pytest.fixture(scope="session")
def names():
    """The constants above, as a fixture (test modules cannot import conftest in importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(TILE_KEY=TILE_KEY, REAL_S1=REAL_S1, NEIGHBOUR_S2=NEIGHBOUR_S2, REBEN_ROWS=REBEN_ROWS)


@pytest.fixture
def copy_tree():
    def copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    return copy
