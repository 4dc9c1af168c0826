"""The DAG's label source and layout params: unlabeled patches are counted in the summary task log."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest

KEY = "33UUP_20170613T101031"


@pytest.fixture(scope="module")
def label_runs(af, postgres, one_tile_sample: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("labels-run")
    home = base / "airflow-home"
    home.mkdir()
    env = af.env(home, postgres.create_database("labels"))
    af.migrate(env)
    table = base / "table.csv"  # the patch-name table's schema, one row: the 33UUP example patch
    with open(table, "w", newline="") as fh:
        csv.writer(fh).writerows([["s1_name", "s2_name", "country", "season"],
                                  ["S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48",
                                   "S2A_MSIL2A_20170613T101031_87_48", "Austria", "Summer"]])
    conf = {"s2_source": str(table), "tiles": ["33UUP"], "catalog": "local",
            "catalog_root": str(one_tile_sample["catalog"]), "dem": "flat", "engine": "native",
            "work_dir": str(base / "work"), "layout": "v2"}
    unlabeled, labelled = af.dag_test(env, [
        {"conf": {**conf, "archive_dir": str(base / "a")}, "logical_date": "2017-06-13T00:00:00Z"},
        {"conf": {**conf, "archive_dir": str(base / "b"), "labels_from": str(one_tile_sample["s2"])},
         "logical_date": "2017-06-14T00:00:00Z"},
    ])
    return {"unlabeled": unlabeled, "labelled": labelled, "base": base}


def _log(run: dict, task_id: str) -> str:
    """The lines dag.test() printed while ``task_id`` ran (between its start and end markers)."""
    out, inside = [], False
    for line in run["output"].splitlines():
        if f"[DAG TEST] starting task_id={task_id} " in line:
            inside = True
        elif f"[DAG TEST] end task task_id={task_id} " in line:
            inside = False
        elif inside:
            out.append(line)
    assert out, f"no log lines of {task_id}"
    return "\n".join(out)


@pytest.mark.postgres
def test_summary_task_log_counts_unlabeled_patches(label_runs: dict) -> None:
    run = label_runs["unlabeled"]
    assert run["state"] == "success", [(t["task_id"], t["state"]) for t in run["tis"]]
    assert "summary: 1 of 1 patches have no labels" in _log(run, "summary")
    assert "1 of 1 patches have no labels" in _log(run, "discover_tiles")
    meta = pq.read_table(label_runs["base"] / "a" / "metadata.parquet").to_pylist()
    assert [(r["labels"], r["labels_known"]) for r in meta] == [([], False)]


@pytest.mark.postgres
def test_labels_from_param_labels_the_patches(label_runs: dict) -> None:
    run = label_runs["labelled"]
    assert run["state"] == "success"
    assert "have no labels" not in _log(run, "summary")
    (row,) = pq.read_table(label_runs["base"] / "b" / "metadata.parquet").to_pylist()
    assert row["labels"] == ["Arable land", "Land principally occupied by agriculture, with significant areas "
                             "of natural vegetation"] and row["labels_known"] is True
    assert row["patch_id"] == "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"
    assert (label_runs["base"] / "b" / "BigEarthNet-S1").is_dir()
