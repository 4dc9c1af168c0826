"""validate_archive and ``bigearthnet-s1 validate`` on the real example and corrupted copies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from bigearthnet_s1 import archive, geotiff
from bigearthnet_s1.errors import ArchiveError


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bigearthnet_s1.cli", *args], capture_output=True, text=True, timeout=300
    )


def _rewrite_tif(path: Path, array: np.ndarray, **overrides) -> None:
    with rasterio.open(path) as ds:
        profile = ds.profile
    profile.update(width=array.shape[1], height=array.shape[0], dtype=array.dtype, **overrides)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(array, 1)


def _edit_json(d: Path, fn) -> None:
    p = d / f"{d.name}_labels_metadata.json"
    p.write_text(json.dumps(fn(json.loads(p.read_text()))))


def test_real_example_is_valid(s1_example: Path) -> None:
    report = archive.validate_archive(s1_example)
    assert (report.ok, report.bad) == (6, [])
    res = _cli("validate", str(s1_example))
    assert res.returncode == 0, res.stderr
    assert "ok: 6" in res.stdout and "bad: 0" in res.stdout


@pytest.fixture
def corrupted(s1_example: Path, tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """A copy of the real example with one kind of damage per patch; name -> expected reasons."""
    root = tmp_path / "s1"
    shutil.copytree(s1_example, root)
    d = {p.name.split("_")[-3] + "_" + "_".join(p.name.split("_")[-2:]): p for p in root.iterdir()}
    expected: dict[str, list[str]] = {}

    # wrong size: VV 100 x 100
    p = d["33UUP_87_48"]
    with rasterio.open(p / f"{p.name}_VV.tif") as ds:
        a = ds.read(1)
    _rewrite_tif(p / f"{p.name}_VV.tif", a[:100, :100])
    expected[p.name] = ["bad size: VV is 100x100, expected 120x120"]

    # wrong dtype: VH as float64
    p = d["29UPU_36_85"]
    with rasterio.open(p / f"{p.name}_VH.tif") as ds:
        a = ds.read(1)
    _rewrite_tif(p / f"{p.name}_VH.tif", a.astype(np.float64))
    expected[p.name] = ["bad dtype: VH is float64, expected float32"]

    # missing JSON key, and keys out of order in another
    p = d["29UPU_4_55"]
    _edit_json(p, lambda m: {k: v for k, v in m.items() if k != "scene_source"})
    expected[p.name] = ["missing JSON key: scene_source"]
    p = d["35VPK_69_24"]
    _edit_json(p, lambda m: {"coordinates": m["coordinates"], **{k: v for k, v in m.items() if k != "coordinates"}})
    expected[p.name] = ["bad JSON key order"]

    # CRS of the GeoTIFF differs from the JSON projection; compressed; infinite values
    p = d["29SND_56_35"]
    with rasterio.open(p / f"{p.name}_VV.tif") as ds:
        a = ds.read(1)
    _rewrite_tif(p / f"{p.name}_VV.tif", a, crs=CRS.from_epsg(32630))
    b = a.copy()
    b[5, 5] = np.inf
    _rewrite_tif(p / f"{p.name}_VH.tif", b, compress="deflate", nodata=-9999.0)
    expected[p.name] = [
        "CRS mismatch: VV is EPSG:32630, JSON projection EPSG:32629",
        "bad compression: VH is deflate",
        "bad nodata tag: VH",
        "bad values: VH has infinite values",
    ]

    # lry instead of lly, shifted origin, and an extra file
    p = d["35VPK_57_38"]
    def lry(m: dict) -> dict:
        c = m["coordinates"]
        m["coordinates"] = {"ulx": c["ulx"] + 10, "uly": c["uly"], "lrx": c["lrx"] + 10, "lry": c["lly"]}
        return m
    _edit_json(p, lry)
    (p / "notes.txt").write_text("x")
    expected[p.name] = ["bad coordinates: keys ['ulx', 'uly', 'lrx', 'lry']", "unexpected file: notes.txt"]
    return root, expected


def test_corrupted_copy_is_rejected_with_reasons(corrupted) -> None:
    root, expected = corrupted
    report = archive.validate_archive(root)
    assert report.ok == 0 and len(report.bad) == 6
    got = {p.name: reasons for p, reasons in report.bad}
    assert set(got) == set(expected)
    for name, wanted in expected.items():
        for w in wanted:
            assert any(r.startswith(w) for r in got[name]), (name, w, got[name])
    # nothing else is flagged for the single-damage patches
    for key in ("33UUP_87_48", "29UPU_36_85", "29UPU_4_55"):
        name = next(n for n in got if key in n)
        assert len(got[name]) == 1, got[name]

    res = _cli("validate", str(root))
    assert res.returncode == 1
    assert "ok: 0" in res.stdout and "bad: 6" in res.stdout
    for text in ("bad size: VV is 100x100", "bad dtype: VH is float64", "missing JSON key: scene_source"):
        assert text in res.stdout
    res = _cli("validate", str(root), "--json")
    assert res.returncode == 1 and len(json.loads(res.stdout)["bad"]) == 6


def test_more_damage(example_pairs, tmp_path: Path) -> None:
    pair = example_pairs[0]
    out = archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
    assert archive.check_patch(out) == []
    name = out.name
    nan = np.full((120, 120), np.nan, np.float32)
    (out / f"{name}_VV.tif").write_bytes(geotiff.geotiff_bytes(nan, pair.patch.ulx, pair.patch.uly, pair.tile.epsg))
    assert archive.check_patch(out) == ["bad values: VV has no valid pixel"]
    (out / f"{name}_VV.tif").unlink()
    assert archive.check_patch(out) == [f"missing file: {name}_VV.tif"]

    _edit_json(out, lambda m: {**m, "acquisition_time": "2017-06-13 16:50:43"})
    assert any(r.startswith("bad acquisition_time") for r in archive.check_patch(out))

    bad_name = tmp_path / "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87"
    bad_name.mkdir()
    (tmp_path / "stray.txt").write_text("x")
    report = archive.validate_archive(tmp_path)
    reasons = {p.name: r for p, r in report.bad}
    assert reasons[bad_name.name][0].startswith("bad folder name")
    assert reasons["stray.txt"] == ["not a patch folder: a file in the archive root"]


def test_validate_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no patch folders"):
        archive.validate_archive(tmp_path)
    with pytest.raises(ArchiveError, match="not found"):
        archive.validate_archive(tmp_path / "missing")
    res = _cli("validate", str(tmp_path))
    assert res.returncode == 1 and "no patch folders" in res.stderr


def test_impossible_times_and_positions_in_folder_names_are_reported_not_raised(example_pairs, tmp_path: Path) -> None:
    """A folder name that matches the pattern but holds a date that does not exist (month 13)
    or a col/row beyond 90 is a bad patch named in the report, not an exception."""
    pair = example_pairs[0]
    good = archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
    short = "_".join(good.name.split("_")[:4])  # "S1A_IW_GRDH_1SDV"
    for bad in (f"{short}_20171313T165043_{pair.tile.tile_id}_1_2", f"{short}_20170613T165043_{pair.tile.tile_id}_95_2"):
        d = tmp_path / bad
        shutil.copytree(good, d)
        for f in list(d.iterdir()):
            f.rename(d / f.name.replace(good.name, bad))
    report = archive.validate_archive(tmp_path)
    assert report.ok == 1
    got = {p.name: r for p, r in report.bad}
    assert set(got) == {f"{short}_20171313T165043_{pair.tile.tile_id}_1_2", f"{short}_20170613T165043_{pair.tile.tile_id}_95_2"}
    for name, reasons in got.items():
        assert reasons[0].startswith("bad folder name") and name in reasons[0], reasons
