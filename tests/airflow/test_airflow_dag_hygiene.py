"""DAG hygiene: fast import, no import errors, no heavy imports at parse time, no cycles,
retries and pools on every task, the UI labels and the schedule the docs promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HEAVY = ["numpy", "pandas", "rasterio", "geopandas", "shapely", "pyproj", "scipy", "numba",
         "xarray", "sentinelsat", "pyarrow", "bigearthnet_s1.pipeline", "bigearthnet_s1.tiles",
         "bigearthnet_s1.catalog", "bigearthnet_s1.engine", "bigearthnet_s1.preprocess", "bigearthnet_s1.archive"]

PARSE = r'''
import json, sys, time, importlib.util
import airflow.sdk, airflow.sdk.definitions.retry_policy  # Airflow itself is loaded by the parser anyway
before = set(sys.modules)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("bigearthnet_s1_dag", sys.argv[1] if len(sys.argv) > 1 else "dags/bigearthnet_s1_dag.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
dt = time.perf_counter() - t0
heavy = %r
print(json.dumps({"seconds": dt, "loaded": sorted(m for m in heavy if m in sys.modules),
                  "new": len(set(sys.modules) - before)}))
'''


def test_dag_file_imports_fast_and_light(af, airflow_home: Path) -> None:
    env = af.env(airflow_home, "sqlite:///" + str(airflow_home / "airflow.db"))
    proc = af.run_py(PARSE % HEAVY, env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = af.last_json(proc)
    assert out["loaded"] == [], f"heavy modules imported at parse time: {out['loaded']}"
    assert out["seconds"] < 2.0, f"DAG file took {out['seconds']:.2f} s to import"


DAGBAG = r'''
import json
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.dag_cycle_tester import check_cycle
bag = DagBag(dag_folder=%r)
dag = bag.dags.get("bigearthnet_s1")
out = {"errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}
if dag is not None:
    check_cycle(dag)
    out["tasks"] = {t.task_id: {"retries": t.retries, "pool": t.pool, "backoff": t.retry_exponential_backoff,
                                "retry_delay": t.retry_delay.total_seconds(),
                                "max_retry_delay": t.max_retry_delay.total_seconds() if t.max_retry_delay else None,
                                "policy": type(t.retry_policy).__name__ if t.retry_policy else None,
                                "map_index_template": t.map_index_template,
                                "mapped": type(t).__name__ in ("MappedOperator",) or hasattr(t, "expand_input"),
                                "downstream": sorted(t.downstream_task_ids),
                                "outlets": [getattr(a, "name", None) for a in t.outlets],
                                "trigger_rule": str(t.trigger_rule)}
                    for t in dag.tasks}
    out["schedule"] = [type(dag.timetable).__name__, getattr(dag.timetable, "_expression", None)]
    out["catchup"] = dag.catchup
    out["params"] = sorted(dag.params.keys())
    out["param_schema"] = {k: dag.params.get_param(k).schema for k in dag.params.keys()}
print(json.dumps(out, default=str))
'''


@pytest.fixture(scope="module")
def dagbag(af, tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = af.env(home, "sqlite:///" + str(home / "airflow.db"))
    proc = af.run_py(DAGBAG % str(af.repo / "dags"), env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return af.last_json(proc)


def test_dagbag_has_no_import_errors(dagbag: dict) -> None:
    assert dagbag["errors"] == {}
    assert dagbag["dags"] == ["bigearthnet_s1"]


def test_every_task_retries_with_backoff_and_has_a_pool(dagbag: dict) -> None:
    tasks = dagbag["tasks"]
    assert set(tasks) == {"discover_tiles", "lookup_footprint", "select_orbits", "plan_downloads",
                          "plan_pairs", "download",
                          "preprocess", "assemble_tile", "summary"}
    for tid, t in tasks.items():
        assert t["retries"] >= 1, tid
        assert t["backoff"] >= 2.0, tid  # exponential: each delay at least doubles
        assert t["max_retry_delay"] and t["max_retry_delay"] <= 3600, tid
        assert t["policy"] == "ExceptionRetryPolicy", tid
        assert t["pool"], tid
    assert tasks["download"]["pool"] == "bigearthnet_s1_download"
    assert tasks["preprocess"]["pool"] == "bigearthnet_s1_cpu"
    assert tasks["assemble_tile"]["pool"] == "bigearthnet_s1_cpu"


def test_wiring_mapping_labels_and_asset(dagbag: dict) -> None:
    t = dagbag["tasks"]
    assert t["discover_tiles"]["downstream"] == ["lookup_footprint", "summary"]
    assert t["lookup_footprint"]["downstream"] == ["select_orbits"]
    assert t["select_orbits"]["downstream"] == ["assemble_tile", "plan_downloads", "plan_pairs"]
    assert t["plan_downloads"]["downstream"] == ["download"]
    assert t["plan_pairs"]["downstream"] == ["preprocess"]
    assert t["download"]["downstream"] == ["preprocess"]
    assert t["preprocess"]["downstream"] == ["assemble_tile"]
    assert t["assemble_tile"]["downstream"] == ["summary"]
    for tid in ("lookup_footprint", "select_orbits", "download", "preprocess", "assemble_tile"):
        assert t[tid]["map_index_template"], f"{tid} has no map_index_template"
    assert t["assemble_tile"]["outlets"] == ["bigearthnet_s1_archive"]


def test_schedule_params_and_trigger_form(dagbag: dict) -> None:
    # data-interval runs: each run covers one day of S2 sensing times (backfills rebuild day by day)
    assert dagbag["schedule"][0] == "CronDataIntervalTimetable", dagbag["schedule"]
    assert dagbag["catchup"] is False
    for name in ("s2_source", "tiles", "start", "end", "catalog", "catalog_conn_id", "dem", "engine",
                 "work_dir", "archive_dir", "coverage_tolerance"):
        assert name in dagbag["params"]
    schema = dagbag["param_schema"]
    assert schema["engine"]["enum"] == ["native", "snap"]
    assert schema["catalog"]["enum"] == ["local", "cdse", "dhus", "asf"]
    assert schema["layout"]["enum"] == ["v1", "v2"] and schema["pairing"]["enum"] == ["select", "reben"]
    assert "labels_from" in dagbag["params"]
    assert schema["tiles"]["type"] == ["null", "array"]  # null: all tiles (the form sends an emptied field as null)


PLUGIN_FILES = r'''
import json, sys
from airflow.sdk._shared.module_loading import find_path_from_directory
print(json.dumps(sorted(find_path_from_directory(sys.argv[1], ".airflowignore"))))
'''


def test_plugin_package_is_kept_out_of_the_plugin_manager(af, airflow_home: Path) -> None:
    """Airflow's plugin manager imports every .py under plugins/ unless .airflowignore excludes it."""
    import subprocess

    plugins = af.repo / "plugins"
    env = af.env(airflow_home, "sqlite:///" + str(airflow_home / "airflow.db"))
    proc = subprocess.run([af.python, "-c", PLUGIN_FILES, str(plugins)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [Path(p).relative_to(plugins).as_posix() for p in json.loads(proc.stdout.strip().splitlines()[-1])]
    assert (plugins / "bigearthnet_s1_airflow" / "triggers.py").is_file()
    assert not [f for f in files if f.startswith("bigearthnet_s1_airflow/")], files
