"""Bad BigEarthNet-S2 input: a clear TileError naming the file at fault."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bigearthnet_s1 import names, tiles
from bigearthnet_s1.errors import TileError

UUP = "S2A_MSIL2A_20170613T101031_87_48"
UPU_A = "S2A_MSIL2A_20170617T113321_4_55"
UPU_B = "S2A_MSIL2A_20170617T113321_36_85"


def test_the_unmodified_copy_reads(s2_json_copy: Path) -> None:
    assert len(tiles.read_s2_archive(s2_json_copy, countries=False)) == 5


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(TileError, match=f"{tmp_path}.*empty"):
        tiles.read_s2_archive(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TileError, match="not found"):
        tiles.read_s2_archive(tmp_path / "nope")


@pytest.mark.parametrize(
    "bad_name",
    [
        "S2A_MSIL2A_20170613T251031_87_48",  # hour 25
        "S2A_MSIL2A_20171313T101031_87_48",  # month 13
        "S2A_MSIL2A_20170613T101031_91_48",  # col beyond 90
        "S2A_MSIL1C_20170613T101031_87_48",  # not L2A
        "S2A_MSIL2A_20170613T1010_87_48",  # time too short
        "patch_87_48",
    ],
)
def test_malformed_patch_folder_name(s2_json_copy: Path, bad_name: str) -> None:
    src = s2_json_copy / UUP
    dst = s2_json_copy / bad_name
    dst.mkdir()
    shutil.copy2(src / f"{UUP}_labels_metadata.json", dst / f"{bad_name}_labels_metadata.json")
    with pytest.raises(TileError, match=bad_name):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_stray_folder_without_patches(s2_json_copy: Path) -> None:
    (s2_json_copy / "notes").mkdir()
    with pytest.raises(TileError, match="notes"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_patch_folder_without_json(s2_json_copy: Path) -> None:
    (s2_json_copy / UUP / f"{UUP}_labels_metadata.json").unlink()
    with pytest.raises(TileError, match=f"{UUP}.*missing {UUP}_labels_metadata.json"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


@pytest.mark.parametrize("key", ["labels", "coordinates", "projection", "tile_source"])
def test_json_missing_key(s2_json_copy: Path, edit_json: Callable, key: str) -> None:
    path = edit_json(s2_json_copy, UUP, lambda m: {k: v for k, v in m.items() if k != key})
    with pytest.raises(TileError, match=f"{path}.*missing key.*{key}"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_json_missing_coordinate(s2_json_copy: Path, edit_json: Callable) -> None:
    def drop(m: dict) -> dict:
        del m["coordinates"]["lry"]
        return m

    path = edit_json(s2_json_copy, UUP, drop)
    with pytest.raises(TileError, match=f"{path}.*missing coordinate.*lry"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_lly_is_accepted_for_lry(s2_json_copy: Path, edit_json: Callable) -> None:
    def rename(m: dict) -> dict:
        m["coordinates"] = {"ulx": 404400, "uly": 5342400, "lrx": 405600, "lly": 5341200}
        return m

    edit_json(s2_json_copy, UUP, rename)
    acq = next(a for a in tiles.read_s2_archive(s2_json_copy, countries=False) if a.tile_id == "33UUP")
    assert acq.patches[0].lry == 5341200


def test_broken_json(s2_json_copy: Path) -> None:
    path = s2_json_copy / UUP / f"{UUP}_labels_metadata.json"
    path.write_text('{"labels": [')
    with pytest.raises(TileError, match=f"{path}.*cannot read JSON"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_mixed_crs_in_one_tile(s2_json_copy: Path, edit_json: Callable) -> None:
    def zone30(m: dict) -> dict:
        m["projection"] = m["projection"].replace("UTM zone 29N", "UTM zone 30N").replace(
            '"central_meridian",-9', '"central_meridian",-3'
        ).replace('"EPSG","32629"', '"EPSG","32630"')
        return m

    path = edit_json(s2_json_copy, UPU_B, zone30)
    with pytest.raises(TileError, match=f"{path}.*mixed CRS in tile 29UPU.*EPSG:32630"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_crs_not_the_tiles_zone(s2_json_copy: Path, edit_json: Callable) -> None:
    def zone34(m: dict) -> dict:
        m["projection"] = m["projection"].replace("UTM zone 33N", "UTM zone 34N").replace(
            '"central_meridian",15', '"central_meridian",21'
        ).replace('"EPSG","32633"', '"EPSG","32634"')
        return m

    path = edit_json(s2_json_copy, UUP, zone34)
    with pytest.raises(TileError, match=f"{path}.*EPSG:32634 is not the CRS of MGRS tile 33UUP"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_patch_off_the_tile_grid(s2_json_copy: Path, edit_json: Callable) -> None:
    def shift(m: dict) -> dict:
        c = m["coordinates"]
        m["coordinates"] = {"ulx": c["ulx"] + 10, "uly": c["uly"], "lrx": c["lrx"] + 10, "lry": c["lry"]}
        return m

    path = edit_json(s2_json_copy, UPU_B, shift)
    with pytest.raises(TileError, match=f"{path}.*off the patch grid of tile 29UPU"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_patch_in_the_wrong_tile(s2_json_copy: Path, edit_json: Callable) -> None:
    def far(m: dict) -> dict:
        m["coordinates"] = {"ulx": 504400, "uly": 5342400, "lrx": 505600, "lry": 5341200}
        return m

    path = edit_json(s2_json_copy, UUP, far)
    with pytest.raises(TileError, match=f"{path}.*does not belong to MGRS tile 33UUP"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_not_a_1200m_square(s2_json_copy: Path, edit_json: Callable) -> None:
    def grow(m: dict) -> dict:
        m["coordinates"]["lrx"] += 10
        return m

    path = edit_json(s2_json_copy, UUP, grow)
    with pytest.raises(TileError, match=f"{path}.*not 1200 m square"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_tile_source_without_tile(s2_json_copy: Path, edit_json: Callable) -> None:
    path = edit_json(s2_json_copy, UUP, lambda m: {**m, "tile_source": "S2A_MSIL1C_20170613T101031.SAFE"})
    with pytest.raises(TileError, match=f"{path}.*names no MGRS tile"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_acquisition_date_disagreeing_with_the_name(s2_json_copy: Path, edit_json: Callable) -> None:
    path = edit_json(s2_json_copy, UUP, lambda m: {**m, "acquisition_date": "2017-06-13 12:10:31"})
    with pytest.raises(TileError, match=f"{path}.*acquisition_date.*disagrees"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


def test_duplicate_patch_position(s2_json_copy: Path) -> None:
    # same tile, same overpass, same col/row under a second name (one second later)
    twin = "S2A_MSIL2A_20170617T113322_4_55"
    (s2_json_copy / twin).mkdir()
    meta = json.loads((s2_json_copy / UPU_A / f"{UPU_A}_labels_metadata.json").read_text())
    (s2_json_copy / twin / f"{twin}_labels_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(TileError, match="already has patch 4_55"):
        tiles.read_s2_archive(s2_json_copy, countries=False)


@pytest.mark.parametrize(
    "name",
    ["S2A_MSIL2A_20170613T101031_87", "S2A_MSIL2A_20170613T101061_87_48x", "S2A_MSIL2A_20170230T101031_1_1"],
)
def test_parse_s2_name_rejects(name: str) -> None:
    with pytest.raises(TileError, match="S2"):
        names.parse_s2_patch_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87",
        "S1A_IW_GRDH_1SDV_20170613T165043_33UIP_87_48",
        "S1A_IW_GRDH_1SDV_20170613T255043_33UUP_87_48",
        "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_91",
    ],
)
def test_parse_s1_patch_name_rejects(name: str) -> None:
    with pytest.raises(TileError, match="S1"):
        names.parse_s1_patch_name(name)


def _write_table(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    lines = ["s1_name,s2_name,country,season"] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_small_table_and_its_errors(tmp_path: Path) -> None:
    good = [
        ("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48", UUP, "Austria", "Summer"),
        ("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_86_48", "S2A_MSIL2A_20170613T101031_86_48", "Austria", "Summer"),
        ("S1B_IW_GRDH_1SDV_20170924T043256_35VPK_69_24", "S2B_MSIL2A_20170924T93020_69_24", "Finland", "Fall"),
        ("S1B_IW_GRDH_1SDV_20170924T043256_35VPK_68_24", "S2B_MSIL2A_20170924T093019_68_24", "Finland", "Fall"),
    ]
    acqs = tiles.read_patch_table(_write_table(tmp_path / "t.csv", good))
    assert [(a.key, len(a.patches)) for a in acqs] == [
        ("33UUP_20170613T101031", 2),
        ("35VPK_20170924T093019", 2),  # one overpass; the earliest name time is the sensing time
    ]
    assert acqs[0].patches[0].s2_name == "S2A_MSIL2A_20170613T101031_86_48"
    assert acqs[0].patches[1].country == "Austria"

    bad = [*good, ("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48", "S2A_MSIL2A_20170613T101031_87", "Austria", "S")]
    path = _write_table(tmp_path / "bad.csv", bad)
    with pytest.raises(TileError, match=f"{path}.*malformed patch name in data row 5"):
        tiles.read_patch_table(path)

    swapped = [*good, ("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_5_6", "S2A_MSIL2A_20170613T101031_6_5", "Austria", "S")]
    path = _write_table(tmp_path / "swapped.csv", swapped)
    with pytest.raises(TileError, match=f"{path}.*data row 5.*disagree on col/row"):
        tiles.read_patch_table(path)

    path = _write_table(tmp_path / "one.csv", good)
    with pytest.raises(TileError, match="no patch of tile.*29SND"):
        tiles.read_patch_table(path, tiles=["29SND"])
    with pytest.raises(TileError, match="patch-name table not found"):
        tiles.read_patch_table(tmp_path / "missing.csv")
    (tmp_path / "nocols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TileError, match="nocols.csv"):
        tiles.read_patch_table(tmp_path / "nocols.csv")


def test_an_empty_tile_selection_selects_nothing_from_either_source(tmp_path: Path, s2_json_copy: Path) -> None:
    table = _write_table(
        tmp_path / "t.csv", [("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48", UUP, "Austria", "Summer")]
    )
    assert tiles.read_patch_table(table, tiles=[]) == []
    assert tiles.read_tiles(table, tiles=[]) == []
    assert tiles.read_tiles(s2_json_copy, tiles=[]) == []
