"""The DAG end to end for one tile on a real PostgreSQL metadata DB.

Asserts the task states, the map indexes labelled by tile key, a retry recorded (the
preprocess step fails once on purpose through the pipeline's test hook), the asset event of
the tile, XCom sizes, and the archive written; then re-runs and checks nothing is redone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

KEY = "33UUP_20170613T101031"


@pytest.fixture(scope="module")
def runs(af, postgres, one_tile_sample: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("pg-run")
    home = base / "airflow-home"
    home.mkdir()
    env = af.env(home, postgres.create_database("e2e"), BIGEARTHNET_S1_FAIL_ONCE=f"preprocess:{KEY}")
    af.migrate(env)
    work, archive = base / "work", base / "archive"
    conf = {"s2_source": str(one_tile_sample["s2"]), "tiles": ["33UUP"], "catalog": "local",
            "catalog_root": str(one_tile_sample["catalog"]), "dem": "flat", "engine": "native",
            "work_dir": str(work), "archive_dir": str(archive),
            "catalog_conn_id": None}  # emptied in the trigger form: null
    # third run: a second tile that no product covers fails alone; 33UUP stays done
    two = {**conf, "tiles": ["33UUP", "29SND"]}
    first, second, third = af.dag_test(env, [{"conf": conf, "logical_date": "2017-06-13T00:00:00Z"},
                                             {"conf": conf, "logical_date": "2017-06-14T00:00:00Z"},
                                             {"conf": two, "logical_date": "2017-06-15T00:00:00Z"}])
    return {"first": first, "second": second, "third": third, "work": work, "archive": archive, "env": env}


def _tis(run: dict, task_id: str) -> list[dict]:
    return sorted((t for t in run["tis"] if t["task_id"] == task_id), key=lambda t: t["map_index"])


@pytest.mark.postgres
def test_run_succeeds_with_every_task_done(runs: dict) -> None:
    run = runs["first"]
    assert run["state"] == "success", [(t["task_id"], t["map_index"], t["state"]) for t in run["tis"]]
    states = {(t["task_id"], t["map_index"]): t["state"] for t in run["tis"]}
    assert all(s == "success" for s in states.values()), states
    for tid in ("discover_tiles", "plan_downloads", "plan_pairs", "summary"):
        assert states[(tid, -1)] == "success"


@pytest.mark.postgres
def test_mapped_instances_are_labelled_by_tile_and_product(runs: dict, one_tile_sample: dict) -> None:
    run = runs["first"]
    for tid in ("lookup_footprint", "select_orbits", "assemble_tile"):
        tis = _tis(run, tid)
        assert [t["rendered_map_index"] for t in tis] == [KEY], tid
    downloads = _tis(run, "download")
    assert len(downloads) == 1  # one product covers the tile's patch: one orbit chosen of three
    assert downloads[0]["rendered_map_index"] in one_tile_sample["products"]
    pre = _tis(run, "preprocess")
    assert len(pre) == 1 and pre[0]["rendered_map_index"].startswith(KEY + " S1")


@pytest.mark.postgres
def test_retry_is_recorded(runs: dict) -> None:
    run = runs["first"]
    (pre,) = _tis(run, "preprocess")
    assert pre["try_number"] == 2 and pre["state"] == "success"
    hist = [h for h in run["history"] if h["task_id"] == "preprocess"]
    assert [(h["try_number"], h["state"]) for h in hist] == [(1, "failed")]
    assert "injected failure of preprocess" in run["output"]
    others = {t["task_id"]: t["try_number"] for t in run["tis"] if t["task_id"] != "preprocess"}
    assert set(others.values()) == {1}


@pytest.mark.postgres
def test_archive_contents_asset_event_and_small_xcom(runs: dict, one_tile_sample: dict) -> None:
    from bigearthnet_s1.archive import validate_archive

    archive: Path = runs["archive"]
    patch_dirs = sorted(p for p in archive.iterdir() if p.is_dir() and p.name.startswith("S1"))
    assert len(patch_dirs) == 1
    d = patch_dirs[0]
    assert d.name.endswith("_33UUP_87_48")
    meta = json.loads((d / f"{d.name}_labels_metadata.json").read_text())
    assert meta["corresponding_s2_patch"] == "S2A_MSIL2A_20170613T101031_87_48"
    assert meta["scene_source"] in one_tile_sample["products"]
    for pol in ("VV", "VH"):
        with rasterio.open(d / f"{d.name}_{pol}.tif") as ds:
            assert (ds.width, ds.height, ds.dtypes[0]) == (120, 120, "float32")
            assert ds.transform.c == 404400 and ds.transform.f == 5342400
            a = ds.read(1)
        assert np.isfinite(a).all()
        assert -30 < float(np.median(a)) < 5  # dB, not linear power
    report = validate_archive(archive)
    assert report.ok == 1 and report.bad == []
    import pandas as pd

    index = pd.read_parquet(archive / "index.parquet")
    assert list(index["s1_name"]) == [d.name]
    assert list(index["tile_key"]) == [KEY]

    run = runs["first"]
    events = [e for e in run["asset_events"] if e["asset"] == "bigearthnet_s1_archive"]
    assert len(events) == 1 and events[0]["task_id"] == "assemble_tile"
    assert events[0]["extra"]["tile"] == KEY and events[0]["extra"]["patches"] == 1
    assert max(x["bytes"] for x in run["xcom"]) < 4096  # XCom carries small JSON only


@pytest.mark.postgres
def test_second_run_redoes_nothing(runs: dict) -> None:
    run = runs["second"]
    assert run["state"] == "success"
    out = run["output"]
    summary = next(x for x in run["xcom"] if x["task_id"] == "summary")
    assert summary
    assert "preprocessed in" not in out  # the processed GeoTIFF was reused
    from bigearthnet_s1.pipeline import WorkDir

    work = WorkDir(runs["work"])
    first, last = (json.loads(work.summary_file(runs[r]["run_id"]).read_text()) for r in ("first", "second"))
    assert first["written"] == 1
    assert last["ok"] == 1 and last["written"] == 0 and last["patches"] == 1 and last["failed"] == {}


@pytest.mark.postgres
def test_backfill_creates_one_run_per_day_of_sensing_times(af, runs: dict, postgres) -> None:
    """``airflow backfill create`` over the archive's year plans daily runs (data intervals)."""
    import subprocess

    env = runs["env"]
    proc = subprocess.run([str(Path(af.python).with_name("airflow")), "backfill", "create", "--dag-id",
                           "bigearthnet_s1", "--from-date", "2017-06-01", "--to-date", "2017-06-05", "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = [line.split("|")[1].strip() for line in proc.stdout.splitlines()
               if line.startswith("| 2017-")]
    assert planned == [f"2017-06-0{d} 00:00:00+00:00" for d in range(1, 6)]


@pytest.mark.postgres
def test_a_failing_tile_fails_alone_and_the_summary_names_it(runs: dict) -> None:
    run = runs["third"]
    assert run["state"] == "failed"
    by_label = {(t["task_id"], t["rendered_map_index"]): t for t in run["tis"]}
    other = "29SND_20171221T112501"
    assert by_label[("assemble_tile", KEY)]["state"] == "success"
    failed = [t for t in run["tis"] if t["state"] == "failed"]
    assert {t["task_id"] for t in failed} == {"summary"} | {t["task_id"] for t in failed if t["rendered_map_index"] == other}
    assert all(t["try_number"] == 1 for t in failed), "a tile without coverage is not retried"
    summary = next(t for t in run["tis"] if t["task_id"] == "summary")
    assert summary["state"] == "failed"
    assert f"1 of 2 tiles failed: {other}: no Sentinel-1 product covers" in run["output"]
    assert (runs["archive"] / "index.parquet").exists()
