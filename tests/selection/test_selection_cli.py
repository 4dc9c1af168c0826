"""``bigearthnet-s1 select`` offline: the real BigEarthNet-S2 example patches against a local
catalogue of products built from a real manifest.safe, one per example patch's real S1 scene
(name, orbit, data-take and times as in the real BigEarthNet-S1 example), plus decoys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigearthnet_s1.cli import main
from bigearthnet_s1.tiles import read_tiles

# the real scene of each example tile acquisition (scene_source of the BigEarthNet-S1 example)
SCENES = {
    "29SND_20171221T112501": ("S1A_IW_GRDH_1SDV_20171221T064238_20171221T064303_019797_021ACD_16F1", "DESCENDING"),
    "29UPU_20170617T113321": ("S1A_IW_GRDH_1SDV_20170617T064724_20170617T064749_017070_01C718_CED2", "DESCENDING"),
    "33UUP_20170613T101031": ("S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC", "ASCENDING"),
    "35VPK_20170924T093019": ("S1A_IW_GRDH_1SDV_20170925T043256_20170925T043321_018527_01F38C_31E2", "DESCENDING"),
    "35VPK_20180204T094200": ("S1A_IW_GRDH_1SDV_20180204T043253_20180204T043318_020452_022F7E_8893", "DESCENDING"),
}
DECOY_LATER = "S1B_IW_GRDH_1SDV_20170615T051500_20170615T051525_006188_00AEDE_ABCD"  # 33UUP, 2 days later
DECOY_EW = "S1A_EW_GRDM_1SDV_20170617T064724_20170617T064749_017070_01C718_AAAA"


@pytest.fixture
def setup(tmp_path: Path, s2_example: Path, s1b_rome_safe: Path, swath, product_writer, s1_example: Path):
    tiles = {t.key: t for t in read_tiles(s2_example)}
    assert set(tiles) == set(SCENES)
    # the scene names really are the example's scene_source values
    sources = {json.loads(p.read_text())["scene_source"] for p in s1_example.glob("*/*_labels_metadata.json")}
    assert sources == {name for name, _ in SCENES.values()}
    root = tmp_path / "products"
    template = s1b_rome_safe / "manifest.safe"  # the real S1B manifest, edited per product
    for i, (key, (name, direction)) in enumerate(sorted(SCENES.items())):
        c = tiles[key].patches_footprint_wgs84.centroid
        product_writer(root, template, name, direction, swath(c.x, c.y, direction, cross_offset_km=20), as_zip=i % 2 == 1)
    c = tiles["33UUP_20170613T101031"].footprint_wgs84.centroid
    product_writer(root, template, DECOY_LATER, "DESCENDING", swath(c.x, c.y, "DESCENDING"))
    c = tiles["29UPU_20170617T113321"].footprint_wgs84.centroid
    product_writer(root, template, DECOY_EW, "DESCENDING", swath(c.x, c.y, "DESCENDING"), mode="EW")
    return s2_example, root


def test_select_local_prints_one_json_line_per_tile(setup, capsys) -> None:
    s2_root, root = setup
    assert main(["select", str(s2_root), "--catalog", "local", "--root", str(root)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    results = [json.loads(line) for line in out]
    assert [r["tile_key"] for r in results] == sorted(SCENES)
    for r in results:
        name, direction = SCENES[r["tile_key"]]
        assert r["covered"] is True and r["coverage"] >= 0.999
        assert [p["name"] for p in r["products"]] == [name]
        p = r["products"][0]
        assert p["orbit_direction"] == direction and p["source"] == "local" and p["url"].startswith(str(root))
        assert p["relative_orbit"] == (int(name.split("_")[6]) - 73) % 175 + 1
        assert r["window_days"] == 3.0 and r["windows_tried"] == [3.0]
        assert len(r["time_gaps"]) == 1 and r["time_gaps"][0] < 2 * 86400
    uup = next(r for r in results if r["tile_key"] == "33UUP_20170613T101031")
    assert uup["time_gaps"] == [(16 * 3600 + 50 * 60 + 43) - (10 * 3600 + 10 * 60 + 31)]
    assert [d["name"] for d in uup["decisions"]] == [SCENES["33UUP_20170613T101031"][0], DECOY_LATER]
    assert "not needed" in uup["decisions"][1]["reason"]


def test_select_brief_output_file_and_uncovered(setup, tmp_path: Path, capsys) -> None:
    s2_root, root = setup
    for p in root.glob("*20171221T064238*"):  # take away 29SND's product
        p.unlink() if p.is_file() else __import__("shutil").rmtree(p)
    out = tmp_path / "sel" / "selection.jsonl"
    code = main(["select", str(s2_root), "--catalog", "local", "--root", str(root), "--brief",
                 "--tiles", "29SND,33UUP", "--max-window-days", "6", "--output", str(out), "--fail-uncovered"])
    assert code == 1
    assert capsys.readouterr().out == ""
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["tile_key"] for x in lines] == ["29SND_20171221T112501", "33UUP_20170613T101031"]
    snd, uup = lines
    assert snd["covered"] is False and snd["products"] == [] and snd["uncovered_fraction"] == 1.0
    assert snd["window_days"] == 6.0
    assert uup["covered"] is True and uup["products"][0]["time_gap_days"] == pytest.approx(0.278, abs=1e-3)
    assert set(uup) == {"tile_key", "covered", "coverage", "uncovered_fraction", "window_days", "products", "candidates"}
    assert [p.name for p in out.parent.iterdir()] == ["selection.jsonl"]  # no temporary left


def test_select_errors_are_reported(setup, tmp_path: Path, capsys) -> None:
    s2_root, _ = setup
    assert main(["select", str(s2_root), "--catalog", "local", "--root", str(tmp_path / "none")]) == 1
    assert "is not a folder" in capsys.readouterr().err
