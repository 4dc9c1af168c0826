"""Labels for a table-sourced build: from the BigEarthNet-S2 examples, and counted when unknown."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bigearthnet_s1 import archive, labels, pipeline, tiles, validation
from bigearthnet_s1.archive import SceneRef, validate_archive
from bigearthnet_s1.errors import LabelError


def test_table_with_s2_labels_gives_the_real_s1_json_bytes(s2_example: Path, s1_example: Path,
                                                            example_s1: dict[str, Path], tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The bundled 590,326-row table has no labels; with the S2 examples as label source the six
    example patches get their real labels, and with the real scene their JSON is byte for byte
    the real BigEarthNet-S1 one. The other patches of those tile acquisitions are unlabeled and
    said so."""
    keys = sorted({a.key for a in tiles.read_s2_archive(s2_example)})
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    work = pipeline.WorkDir(tmp_path / "work")
    with caplog.at_level(logging.WARNING, logger="bigearthnet_s1.pipeline"):
        refs = pipeline.prepare_run(work, "table", tiles=keys, catalog="local", catalog_root=str(catalog),
                                    labels_from=str(s2_example))
    total = sum(r["patches"] for r in refs)
    assert [r["key"] for r in refs] == keys and total > 20_000
    assert f"{total - 6} of {total} patches have no labels" in caplog.text
    seen = 0
    for ref in refs:
        tile = pipeline.load_tile(work, ref["key"])
        for p in tile.patches:
            if p.s2_name not in example_s1:
                assert p.labels == () and not p.labels_known
                continue
            seen += 1
            d = example_s1[p.s2_name]
            real = (d / f"{d.name}_labels_metadata.json").read_bytes()
            assert list(p.labels) == json.loads(real)["labels"] and p.labels_known
            scene = SceneRef.from_scene_id(json.loads(real)["scene_source"])
            assert archive.s1_patch_name(scene.scene_id, tile.tile_id, p.col, p.row) == d.name
            assert archive.encode_metadata(archive.patch_metadata(tile, p, scene)) == real
    assert seen == 6


def test_build_from_table_labelled_and_not(build, example_table: Path, s2_example: Path,
                                           example_s1: dict[str, Path], sim_catalog: dict, names) -> None:
    NEIGHBOUR_S2, REAL_S1 = names.NEIGHBOUR_S2, names.REAL_S1
    unl_archive, unl = build("unlabeled", example_table)
    lab_archive, lab = build("labelled", example_table, labels_from=str(s2_example))
    # summary: both patches written, the counts of unlabeled ones
    assert (unl["patches"], unl["unlabeled_patches"]) == (2, 2)
    assert (lab["patches"], lab["unlabeled_patches"]) == (2, 1)
    # index: labels_known per patch
    idx = pq.read_table(lab_archive / "index.parquet").to_pandas().set_index("s2_name")
    real = example_s1["S2A_MSIL2A_20170613T101031_87_48"]
    real_meta = json.loads((real / f"{real.name}_labels_metadata.json").read_text())
    assert list(idx.loc["S2A_MSIL2A_20170613T101031_87_48", "labels"]) == real_meta["labels"]
    assert bool(idx.loc["S2A_MSIL2A_20170613T101031_87_48", "labels_known"]) is True
    assert bool(idx.loc[NEIGHBOUR_S2, "labels_known"]) is False and len(idx.loc[NEIGHBOUR_S2, "labels"]) == 0
    assert pq.read_table(unl_archive / "index.parquet")["labels_known"].to_pylist() == [False, False]
    # the patch the real archive has: same folder name (same acquisition), same JSON but for
    # the simulated product's stop time, orbit, datatake and CRC in scene_source
    mine = lab_archive / real.name
    assert mine.is_dir() and sim_catalog["real"].startswith(REAL_S1)
    meta = json.loads((mine / f"{real.name}_labels_metadata.json").read_text())
    assert meta["scene_source"] == sim_catalog["real"]
    assert archive.encode_metadata({**meta, "scene_source": real_meta["scene_source"]}) == (
        real / f"{real.name}_labels_metadata.json").read_bytes()
    # validate: a warning class with a count, not an error
    for root, n in ((unl_archive, 2), (lab_archive, 1)):
        rep = validate_archive(root)
        assert (rep.ok, rep.bad) == (2, [])
        assert rep.warning_counts() == {validation.WARN_UNLABELED: n}
    proc = subprocess.run([sys.executable, "-m", "bigearthnet_s1.cli", "validate", str(unl_archive)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ok: 2\nbad: 0\nwarnings: 2\n" in proc.stdout
    assert f"       2  {validation.WARN_UNLABELED}" in proc.stdout


def test_label_source_errors(tmp_path: Path, s2_example: Path) -> None:
    with pytest.raises(LabelError, match="label source not found"):
        labels.open_label_source(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(LabelError, match="not a .parquet file nor a BigEarthNet folder"):
        labels.open_label_source(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelError, match="no BigEarthNet-S2 or -S1 patch folders"):
        labels.open_label_source(tmp_path / "empty")
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    work = pipeline.WorkDir(tmp_path / "work")
    with pytest.raises(pipeline.ParameterError, match="label source '/no/such' does not exist"):
        pipeline.prepare_run(work, str(s2_example), catalog="local", catalog_root=str(catalog),
                             labels_from="/no/such")
    assert not work.root.exists()


def test_label_sources_agree_on_the_examples(s2_example: Path, s1_example: Path, build, example_table: Path,
                                            reben_metadata: Path, names) -> None:
    """The S2 folder, the real S1 archive and an archive built here (with its index beside the
    patch folders) are label sources giving the same 43-class labels; reBEN gives 19 and splits."""
    s2 = labels.open_label_source(s2_example)
    s1 = labels.open_label_source(s1_example)
    built, _ = build("labelled", example_table, labels_from=str(s2_example))
    ours = labels.open_label_source(built)
    assert (s2.kind, s1.kind, ours.kind) == ("s2-v1", "s1-v1", "s1-v1") and len(s2) == len(s1) == 6
    for name in ("S2A_MSIL2A_20170613T101031_87_48", "S2B_MSIL2A_20170924T93020_69_24"):
        assert s2.lookup(name) == s1.lookup(name) and s2.lookup(name)
    assert ours.lookup("S2A_MSIL2A_20170613T101031_87_48") == s2.lookup("S2A_MSIL2A_20170613T101031_87_48")
    assert ours.lookup(names.NEIGHBOUR_S2) is None  # built unlabeled: [] means not known
    rb = labels.open_label_source(reben_metadata.parent)
    assert rb.kind == "reben" and rb.nomenclature == 19
    assert rb.lookup("S2B_MSIL2A_20170924T93020_69_24") == ("Coniferous forest", "Mixed forest", "Inland wetlands")
    assert rb.split_of(names.NEIGHBOUR_S2) == "test" and s2.split_of(names.NEIGHBOUR_S2) is None
