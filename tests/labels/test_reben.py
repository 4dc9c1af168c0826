"""BigEarthNet v2 (reBEN) in and out: metadata.parquet and S2 folder as source, pairing, v2 layout."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio

from bigearthnet_s1 import archive, archive_v2, patch_folder, pipeline, reben, tiles, validation
from bigearthnet_s1.errors import TileError
from bigearthnet_s1.names import parse_s2_patch_name


def test_metadata_as_s2_source(reben_metadata: Path, s2_example: Path, names) -> None:
    acqs = reben.read_reben(reben_metadata)
    # the same tile keys as the BigEarthNet-S2 folder gives (sensing times aligned on the table)
    assert [a.key for a in acqs] == [a.key for a in tiles.read_s2_archive(s2_example)]
    t = next(a for a in acqs if a.key == names.TILE_KEY)
    assert t.s2_product == "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP"
    assert t.grid.epsg == 32633 and (t.grid.ulx, t.grid.uly) == (300000.0, 5400000.0)
    p = t.patch("S2A_MSIL2A_20170613T101031_87_48")
    assert (p.ulx, p.uly, p.lrx, p.lry) == (404400.0, 5342400.0, 405600.0, 5341200.0)  # the v1 square
    assert p.labels == tuple(names.REBEN_ROWS[p.s2_name][0]) and p.labels_known and p.split == "train"
    assert p.v2 == tiles.V2Info("S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48",
                                "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48", False, False)
    assert p.country == "Austria"
    # quirky v1 name kept as s2_name (the one the v1 archive and table use)
    q = next(a for a in acqs if a.key == "35VPK_20170924T093019").patches[0]
    assert q.s2_name == "S2B_MSIL2A_20170924T93020_69_24"
    assert q.v2 is not None and q.v2.patch_id == "S2B_MSIL2A_20170924T093020_N9999_R136_T35VPK_69_24"
    # tile filter and the tile round trip through the work folder's JSON
    assert [a.tile_id for a in reben.read_reben(reben_metadata, tiles=["35VPK"])] == ["35VPK", "35VPK"]
    assert tiles.TileAcquisition.from_json(json.loads(json.dumps(t.to_json()))) == t


def test_metadata_errors_name_file_and_row(tmp_path: Path, reben_metadata: Path) -> None:
    t = pq.read_table(reben_metadata)
    bad = tmp_path / "bad.parquet"
    pq.write_table(t.drop_columns(["labels"]), bad)
    with pytest.raises(TileError, match=r"bad.parquet: not a reBEN metadata file: missing column\(s\) labels"):
        reben.read_reben(bad)
    rows = t.to_pylist()
    rows[2]["split"] = "training"
    pq.write_table(pa.Table.from_pylist(rows), bad)
    with pytest.raises(TileError, match=r"bad.parquet row 3: split 'training' is not one of train, validation, test"):
        reben.read_reben(bad)
    rows = t.to_pylist()
    rows[0]["s1_name"] = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_1_1"
    pq.write_table(pa.Table.from_pylist(rows), bad)
    with pytest.raises(TileError, match="row 1: s1_name .* is not a BigEarthNet-S1 name of patch"):
        reben.read_reben(bad)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(TileError, match="x.parquet: not a readable Parquet file"):
        reben.read_reben(tmp_path / "x.parquet")


def test_s2_relative_orbit_from_time_matches_the_examples(s2_example: Path) -> None:
    """The orbit model against every example patch's L1C product name (both missions)."""
    seen = 0
    for d in sorted(s2_example.iterdir()):
        src = json.loads((d / f"{d.name}_labels_metadata.json").read_text())["tile_source"]
        mission, orbit = src[:3], int(src.split("_")[4][1:])
        t, _, _ = parse_s2_patch_name(d.name)
        assert reben.s2_relative_orbit(mission, t) == orbit, (d.name, src)
        seen += 1
    assert seen == 6
    # 143 tracks in 10 days: one period later is the next relative orbit
    t = datetime.fromisoformat("2017-06-13T10:10:31+00:00")
    assert reben.s2_relative_orbit("S2A", t) == 22
    from datetime import timedelta
    assert reben.s2_relative_orbit("S2A", t + timedelta(seconds=864000 / 143)) == 23
    assert reben.s2_relative_orbit("S2A", t + timedelta(days=10)) == 22


def test_patch_id_for_table_patches() -> None:
    (acq,) = [a for a in tiles.read_patch_table(tiles=["33UUP"]) if a.key == "33UUP_20170613T101031"]
    p = acq.patch("S2A_MSIL2A_20170613T101031_87_48")
    assert reben.v2_patch_id(acq, p) == "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"


def _v2_s2_folder(s2_example: Path, reben_metadata: Path, root: Path) -> Path:
    """A reBEN-style S2 folder (``BigEarthNet-S2/<product>/<patch_id>/<patch_id>_B02.tif ...``)
    made of the example patches' band files, with the metadata beside it."""
    rows = {r["s2v1_name"]: r["patch_id"] for r in pq.read_table(reben_metadata).to_pylist()}
    for d in sorted(s2_example.iterdir()):
        pid = rows[d.name]
        dest = root / reben.S2_DIR / reben.s2_product(pid) / pid
        dest.mkdir(parents=True)
        for f in d.glob("*.tif"):
            shutil.copy(f, dest / f.name.replace(d.name, pid))
    shutil.copy(reben_metadata, root / reben.METADATA_FILE)
    return root


def test_v2_s2_folder_as_source(s2_example: Path, reben_metadata: Path, tmp_path: Path, names) -> None:
    root = _v2_s2_folder(s2_example, reben_metadata, tmp_path / "reben")
    acqs = reben.read_reben(root)
    assert sum(len(a.patches) for a in acqs) == 6  # the folder decides: the neighbour row has no folder
    meta_acqs = {a.key: a for a in reben.read_reben(reben_metadata)}
    for a in acqs:
        for p in a.patches:
            q = meta_acqs[a.key].patch(p.s2_name)
            assert (p.ulx, p.uly, p.labels, p.split, p.v2) == (q.ulx, q.uly, q.labels, q.split, q.v2)
    assert pipeline.read_tiles(root / reben.S2_DIR, ["33UUP"])[0].patches[0].labels == ()  # no metadata there
    # a GeoTIFF off its square is refused, naming the file
    pid = "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"
    b02 = root / reben.S2_DIR / reben.s2_product(pid) / pid / f"{pid}_B02.tif"
    with rasterio.open(b02, "r+") as ds:
        t = ds.transform
        ds.transform = rasterio.Affine(t.a, t.b, t.c + 1200, t.d, t.e, t.f)
    with pytest.raises(TileError, match=rf"{pid}_B02.tif: origin \(405600.0, 5342400.0\) is not square 87_48"):
        reben.read_reben(root)
    assert len(reben.read_reben(root, tiles=["29UPU"])) == 1  # other tiles are not opened


def test_build_v2_layout_with_reben_pairing(build, reben_metadata: Path, sim_catalog: dict, names) -> None:
    root, summary = build("v2-reben", reben_metadata, catalog="both", layout="v2", pairing="reben")
    assert summary["patches"] == 2 and summary["unlabeled_patches"] == 0
    # folders: BigEarthNet-S1/<prefix>/<s1_name>/ with VV and VH only
    prefix = root / "BigEarthNet-S1" / names.REAL_S1
    assert sorted(p.name for p in (root / "BigEarthNet-S1").iterdir()) == [names.REAL_S1]
    got = sorted(p.name for p in prefix.iterdir())
    assert got == [f"{names.REAL_S1}_33UUP_86_48", f"{names.REAL_S1}_33UUP_87_48"]
    for n in got:
        assert sorted(f.name for f in (prefix / n).iterdir()) == [f"{n}_VH.tif", f"{n}_VV.tif"]
    assert not list(root.glob("S1*"))  # no v1 folders
    # metadata.parquet: reBEN's columns, then provenance
    meta = pq.read_table(root / "metadata.parquet")
    assert meta.column_names == [*reben.METADATA_COLUMNS, *archive_v2.PROVENANCE_COLUMNS]
    src = {r["s2v1_name"]: r for r in pq.read_table(reben_metadata).to_pylist()}
    for r in meta.to_pylist():
        s = src[r["s2v1_name"]]
        for c in ("patch_id", "labels", "split", "country", "s1_name", "contains_seasonal_snow",
                  "contains_cloud_or_shadow"):
            assert r[c] == s[c], c  # s1_name: this build paired as reBEN did
        assert r["scene_id"] == sim_catalog["real"] and r["labels_known"] is True
        assert r["s1_time"].isoformat() == "2017-06-13T16:50:43+00:00"
        assert abs(r["time_gap_hours"] - 6.67) < 0.01 and r["valid_fraction"] == 1.0
    rep = archive.validate_archive(root)
    assert (rep.layouts, rep.ok, rep.bad, rep.warnings) == (["v2"], 2, [], {})
    sel = json.loads((root.parent / "work-both" / "selection" / f"{names.TILE_KEY}.json").read_text())
    assert sel["pairing"] == "reben" and [p["name"] for p in sel["products"]] == [sim_catalog["real"]]
    assert {d["name"]: d["kept"] for d in sel["decisions"]} == {sim_catalog["real"]: True, sim_catalog["decoy"]: False}


def test_v2_and_v1_rasters_are_the_same_bytes(build, reben_metadata: Path, names) -> None:
    v2, _ = build("v2-reben", reben_metadata, catalog="both", layout="v2", pairing="reben")
    v1, _ = build("v1-reben", reben_metadata, catalog="both", layout="v1", pairing="reben")
    for d in (v2 / "BigEarthNet-S1" / names.REAL_S1).iterdir():
        for pol in ("VV", "VH"):
            assert (d / f"{d.name}_{pol}.tif").read_bytes() == (v1 / d.name / f"{d.name}_{pol}.tif").read_bytes()


def test_select_pairing_picks_anew_and_keeps_rebens_in_the_index(build, reben_metadata: Path, sim_catalog: dict,
                                                                 names) -> None:
    root, _ = build("v2-select", reben_metadata, catalog="both", layout="v2", pairing="select")
    meta = pq.read_table(root / "metadata.parquet").to_pandas()
    decoy_prefix = sim_catalog["decoy"][:32]
    assert set(meta["scene_id"]) == {sim_catalog["decoy"]}  # closer in time to the S2 sensing
    assert all(n.startswith(decoy_prefix) for n in meta["s1_name"])
    idx = pq.read_table(root / "index.parquet").to_pandas()
    assert sorted(idx["reben_s1_name"]) == sorted(f"{names.REAL_S1}_33UUP_{c}_48" for c in (86, 87))
    assert sorted(idx["path"]) == sorted(f"BigEarthNet-S1/{decoy_prefix}/{n}" for n in meta["s1_name"])


def test_reben_pairing_needs_reben_names(example_table: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "c"
    catalog.mkdir()
    with pytest.raises(pipeline.ParameterError, match="pairing 'reben' needs reBEN's s1_name"):
        pipeline.prepare_run(pipeline.WorkDir(tmp_path / "w"), str(example_table), tiles=["33UUP"],
                             catalog="local", catalog_root=str(catalog), pairing="reben")
    with pytest.raises(pipeline.ParameterError, match="layout must be one of v1, v2"):
        pipeline.prepare_run(pipeline.WorkDir(tmp_path / "w"), str(example_table), catalog="local",
                             catalog_root=str(catalog), layout="v3")


def test_validate_v2_finds_what_is_wrong(build, reben_metadata: Path, copy_tree, tmp_path: Path, names) -> None:
    src, _ = build("v2-reben", reben_metadata, catalog="both", layout="v2", pairing="reben")
    root = copy_tree(src, tmp_path / "a")
    prefix = root / "BigEarthNet-S1" / names.REAL_S1
    a, b = f"{names.REAL_S1}_33UUP_86_48", f"{names.REAL_S1}_33UUP_87_48"
    (prefix / a / f"{a}_labels_metadata.json").write_text("{}")  # v2 has no JSON
    wrong = root / "BigEarthNet-S1" / "S1B_IW_GRDH_1SDV_20170612T165809"
    wrong.mkdir()
    shutil.move(prefix / b, wrong / b)  # in the wrong prefix folder
    rep = archive.validate_archive(root)
    got = {p.name: r for p, r in rep.bad}
    assert got[a] == [f"unexpected file: {a}_labels_metadata.json"]
    assert got[b] == [f"bad prefix folder: S1B_IW_GRDH_1SDV_20170612T165809, expected {names.REAL_S1}"]
    # a patch folder missing, a row with bad labels; the metadata missing altogether
    root2 = copy_tree(src, tmp_path / "b")
    shutil.rmtree(root2 / "BigEarthNet-S1" / names.REAL_S1 / a)
    t = pq.read_table(root2 / "metadata.parquet").to_pylist()
    for r in t:
        if r["s1_name"] == b:
            r["labels"], r["labels_known"] = ["Non-irrigated arable land"], True
    pq.write_table(pa.Table.from_pylist(t, schema=pq.read_schema(root2 / "metadata.parquet")), root2 / "metadata.parquet")
    got = {p.name: r for p, r in archive.validate_archive(root2).bad}
    assert got == {a: ["listed in metadata.parquet but missing"],
                   b: ["bad labels: not 19-class names: Non-irrigated arable land"]}
    (root2 / "metadata.parquet").unlink()
    got = {p.name: r for p, r in archive.validate_archive(root2).bad}
    assert list(got) == ["metadata.parquet"] and got["metadata.parquet"][0].startswith("missing metadata.parquet")
    # an unlabeled v2 patch is a warning
    root3 = copy_tree(src, tmp_path / "c")
    t = pq.read_table(root3 / "metadata.parquet").to_pylist()
    t[0]["labels"], t[0]["labels_known"] = [], False
    pq.write_table(pa.Table.from_pylist(t, schema=pq.read_schema(root3 / "metadata.parquet")), root3 / "metadata.parquet")
    rep3 = archive.validate_archive(root3)
    assert rep3.bad == [] and rep3.warning_counts() == {validation.WARN_UNLABELED: 1}


def test_v2_writer_is_atomic_and_resumes(build, reben_metadata: Path, names, tmp_path: Path) -> None:
    """A killed writer leaves a hidden temporary in the prefix folder (swept by the next write
    there); a complete patch is kept, not rewritten."""
    src, _ = build("v2-reben", reben_metadata, catalog="both", layout="v2", pairing="reben")
    (acq,) = [a for a in reben.read_reben(reben_metadata, tiles=["33UUP"])]
    p = acq.patch("S2A_MSIL2A_20170613T101031_87_48")
    scene = archive.SceneRef.from_scene_id(json.loads(json.dumps(
        pq.read_table(src / "metadata.parquet").to_pylist()[0]["scene_id"])))
    root = tmp_path / "arch"
    d = archive_v2.write_patch(root, acq, p, scene, np.full((120, 120), -10.0), np.full((120, 120), -17.0))
    mtime = (d / f"{d.name}_VV.tif").stat().st_mtime_ns
    assert archive_v2.write_patch(root, acq, p, scene, np.zeros((120, 120)), np.zeros((120, 120))) == d
    assert (d / f"{d.name}_VV.tif").stat().st_mtime_ns == mtime
    stale = d.parent / f".{d.name}.tmp-{patch_folder._hostname()}-999999999-deadbeef"
    stale.mkdir()
    q = acq.patch(names.NEIGHBOUR_S2)
    archive_v2.write_patch(root, acq, q, scene, np.full((120, 120), -10.0), np.full((120, 120), -17.0))
    assert not stale.exists()
    with rasterio.open(d / f"{d.name}_VV.tif") as ds:
        assert ds.read(1).mean() == -10.0 and (ds.transform.c, ds.transform.f) == (p.ulx, p.uly)
