"""``relabel`` makes an unlabeled archive identical to a labeled build, in both layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bigearthnet_s1 import archive, labels, validation
from bigearthnet_s1.relabel import relabel_archive


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, except the merged index and GeoJSON (compared
    as tables: GeoParquet metadata records no time, but compare values, not writer bytes)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if rel not in ("index.parquet", "patches.geojson", "metadata.parquet") and not rel.startswith("index/"):
                out[rel] = p.read_bytes()
    return out


def _table(path: Path):
    return pq.read_table(path).to_pandas()


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_relabel_of_unlabeled_archive_equals_labeled_build(layout: str, build, example_table: Path,
                                                           s2_example: Path, copy_tree, tmp_path: Path) -> None:
    unl, _ = build(f"unlabeled-{layout}", example_table, layout=layout)
    lab, _ = build(f"labelled-{layout}", example_table, layout=layout, labels_from=str(s2_example))
    target = copy_tree(unl, tmp_path / "relabelled")
    before = _files(target)
    assert before != _files(lab) if layout == "v1" else before == _files(lab)  # v2: labels only in metadata

    rep = relabel_archive(target, s2_example)
    assert (rep.patches, rep.labelled, rep.changed) == (2, 1, 1 if layout == "v1" else 0)
    assert rep.missing == ["S1A_IW_GRDH_1SDV_20170613T165043_33UUP_86_48"]
    after = _files(target)
    assert after == _files(lab)  # JSON byte for byte; rasters untouched
    tifs = [k for k in before if k.endswith(".tif")]
    assert len(tifs) == 4 and all(before[k] == after[k] for k in tifs)
    for part in sorted((lab / "index").glob("*.parquet")):
        assert _table(target / "index" / part.name).equals(_table(part))
    assert _table(target / "index.parquet").equals(_table(lab / "index.parquet"))
    assert json.loads((target / "patches.geojson").read_text()) == json.loads((lab / "patches.geojson").read_text())
    if layout == "v2":
        meta = _table(target / "metadata.parquet")
        assert meta.equals(_table(lab / "metadata.parquet"))
        # 43-class labels of the S2 example, in the 19-class nomenclature reBEN's metadata uses
        row = meta.set_index("s2v1_name").loc["S2A_MSIL2A_20170613T101031_87_48"]
        assert list(row["labels"]) == ["Arable land", "Land principally occupied by agriculture, with "
                                       "significant areas of natural vegetation"]
        assert bool(row["labels_known"]) is True
    # again: nothing to change
    again = relabel_archive(target, s2_example)
    assert again.changed == 0 and _files(target) == after


def test_relabel_cli_replaces_labels_and_reports(build, example_table: Path, reben_metadata: Path,
                                                 copy_tree, tmp_path: Path, names) -> None:
    """reBEN labels (19 classes) replace 43-class ones; a source that knows every patch leaves
    none unlabeled; the report is JSON; a killed relabel's temporary is swept."""
    lab, _ = build("unlabeled-v1", example_table, layout="v1")
    target = copy_tree(lab, tmp_path / "a")
    name = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"
    js = target / name / f"{name}_labels_metadata.json"
    stale = js.with_name(f".{js.name}.1234abcd.relabel")
    stale.write_bytes(b"half")
    proc = subprocess.run([sys.executable, "-m", "bigearthnet_s1.cli", "relabel", str(target),
                           "--labels-from", str(reben_metadata)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert (rep["patches"], rep["labelled"], rep["unlabeled"], rep["json_rewritten"]) == (2, 2, 0, 2)
    assert not stale.exists()
    meta = json.loads(js.read_text())
    assert meta["labels"] == names.REBEN_ROWS["S2A_MSIL2A_20170613T101031_87_48"][0]
    assert list(meta) == list(archive.JSON_KEYS)
    # the split came with the reBEN labels: the index has it, and torchgeo's split files appear
    idx = _table(target / "index.parquet").set_index("s2_name")
    assert idx.loc[names.NEIGHBOUR_S2, "split"] == "test"
    assert (target / "bigearthnet-train.csv").read_text() == f"S2A_MSIL2A_20170613T101031_87_48,{name}\n"
    # validate: 19-class names in v1 JSON are a warning (torchgeo's BigEarthNet wants 43); the
    # neighbour's "Pastures", "Broad-leaved forest" are spelled the same in both: no warning
    rep2 = archive.validate_archive(target)
    assert rep2.bad == [] and rep2.warning_counts() == {validation.WARN_19_IN_V1: 1}
    assert rep2.warnings[validation.WARN_19_IN_V1] == [target / name]
    missing = subprocess.run([sys.executable, "-m", "bigearthnet_s1.cli", "relabel", str(target),
                              "--labels-from", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "label source not found" in missing.stderr


def test_nomenclature_mapping() -> None:
    assert len(labels.CLASSES_43) == 43 and len(labels.CLASSES_19) == 19
    assert labels.to_19(["Sea and ocean", "Non-irrigated arable land", "Rice fields", "Bare rock"]) == (
        "Arable land", "Marine waters")
    assert labels.to_19(["Transitional woodland/shrub", "Peatbogs", "Pastures"]) == (
        "Pastures", "Transitional woodland, shrub", "Inland wetlands")
    assert labels.to_19(["Urban fabric"]) == ("Urban fabric",)  # already 19-class
    assert labels.nomenclature(["Pastures"]) == 43 and labels.nomenclature(["Arable land"]) == 19
    assert labels.nomenclature(["Arable land", "Peatbogs"]) is None
    # every 19-class name is reached from some 43-class name
    assert {labels.TO_19[c] for c in labels.CLASSES_43} - {None} == set(labels.CLASSES_19)
    with pytest.raises(labels.LabelError, match="'Lava'"):
        labels.to_19(["Lava"])
    assert labels.patch_key("S2B_MSIL2A_20170924T93020_69_24") == labels.patch_key(
        "S2B_MSIL2A_20170924T093020_N9999_R136_T35VPK_69_24") == "S2B_20170924T093020_69_24"
