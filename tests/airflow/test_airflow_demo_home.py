"""The README's "open the UI" and "run it yourself" lines, as written, on the demo's AIRFLOW_HOME.

``demo.init_airflow`` writes the demo's home (airflow.cfg, SQLite DB, pools) as ``make demo``
does; then ``airflow api-server``, ``airflow scheduler`` and ``airflow dag-processor`` start as
separate processes with nothing but AIRFLOW_HOME set. Separately started components must
share one JWT secret: without it the api-server rejects the scheduler's task tokens and every
task fails with "Invalid auth token". Through the REST API (as the UI does): the DAG is
unpaused, which starts a scheduled run with the default params (skipped with one log line:
nothing configured), and a run is triggered with the form's optional fields emptied (null)
for the sample tile, on a catalogue folder whose products are missing: the tile fails. The
products are put back, ``lookup_footprint`` and downstream are cleared, and the run must then
succeed and write a valid archive (the cleared lookup does not reuse the empty search).
"""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

DAG = "bigearthnet_s1"
KEY = "33UUP_20170613T101031"
SKIP_LINE = "scheduled run skipped, no catalogue configured for this deployment: no local catalogue folder"


def _cfg(home: Path) -> configparser.RawConfigParser:
    cfg = configparser.RawConfigParser()
    cfg.read(home / "airflow.cfg")
    return cfg


@pytest.mark.slow
def test_separately_started_components_on_the_demo_home(live, one_tile_sample: dict, tmp_path: Path) -> None:
    from bigearthnet_s1 import demo
    from bigearthnet_s1.archive import validate_archive

    home = tmp_path / "airflow"
    port = live.free_port()
    demo.init_airflow(home, port)
    cfg = _cfg(home)
    keys = {(s, k): cfg.get(s, k, fallback="") for s, k in demo.SHARED_SECRETS}
    assert all(len(v) >= 32 for v in keys.values()), keys
    assert cfg.get("core", "execution_api_server_url") == f"http://localhost:{port}/execution/"
    assert stat.S_IMODE((home / "airflow.cfg").stat().st_mode) == 0o600
    demo.init_airflow(home, port)  # the demo re-run: the keys stay (running components stay valid)
    assert {(s, k): _cfg(home).get(s, k) for s, k in demo.SHARED_SECRETS} == keys

    # nothing but AIRFLOW_HOME, as the README's lines
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["AIRFLOW_HOME"] = str(home)
    comps = live.Components(tmp_path, env)
    api = live.Api(f"http://127.0.0.1:{port}")
    try:
        comps.start("api-server", "api-server")
        comps.start("scheduler", "scheduler")
        comps.start("dag-processor", "dag-processor")
        api.wait_ready(comps, "api-server")
        api.login(demo.UI_USER, demo.UI_PASSWORD)
        api.wait_dag(DAG, comps)

        work = tmp_path / "work"
        catalog = tmp_path / "catalog"  # the products are missing at first
        catalog.mkdir()
        form = {k: v["value"] if isinstance(v, dict) and "value" in v else v
                for k, v in api.json("GET", f"/api/v2/dags/{DAG}/details")["params"].items()}
        conf = {**form, "s2_source": str(one_tile_sample["s2"]), "catalog": "local",
                "catalog_root": str(catalog), "work_dir": str(work),
                # emptied in the form: sent as null
                "tiles": None, "catalog_conn_id": None, "archive_dir": None,
                # the sample tile's day only (the sample's products cover 33UUP alone)
                "start": "2017-06-13T00:00:00Z", "end": "2017-06-14T00:00:00Z"}
        bad = api.call("POST", f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None,
                                                                    "conf": {**conf, "s2_source": None}})
        assert bad.status_code in (400, 422), bad.text[:500]  # Airflow's own param validation refuses it
        manual = api.json("POST", f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
        api.json("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": False})

        run_id = manual["dag_run_id"]
        run = api.wait_run(DAG, run_id, comps, timeout=600)
        failed = {(t["task_id"], t["rendered_map_index"]): t["state"] for t in api.task_instances(DAG, run_id)}
        assert run["state"] == "failed", failed
        assert failed[("discover_tiles", None)] == "success" and failed[("summary", None)] == "failed"
        assert failed[("lookup_footprint", KEY)] == "success"  # it found nothing
        assert failed[("assemble_tile", KEY)] == "failed", sorted(failed.items(), key=str)  # nothing covers it

        # the user puts the products back and clears the tile's lookup and everything downstream
        shutil.copytree(one_tile_sample["catalog"], catalog, dirs_exist_ok=True)
        cleared = api.json("POST", f"/api/v2/dags/{DAG}/clearTaskInstances",
                           json={"dry_run": False, "dag_run_id": run_id, "task_ids": ["lookup_footprint"],
                                 "include_downstream": True, "only_failed": False, "reset_dag_runs": True})
        assert {t["task_id"] for t in cleared["task_instances"]} >= {"lookup_footprint", "select_orbits", "summary"}
        assert api.json("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")["state"] in ("queued", "running")
        run = api.wait_run(DAG, run_id, comps, timeout=600)
        tis = api.task_instances(DAG, run_id)
        states = sorted((t["task_id"], t["map_index"], t["state"]) for t in tis)
        assert run["state"] == "success", f"{states}\n{comps.logs()}"
        assert all(s == "success" for _, _, s in states), states
        lookup = next(t for t in tis if t["task_id"] == "lookup_footprint")
        assert lookup["try_number"] == 2  # the cleared try, which searched again
        report = validate_archive(work / "archive")  # archive_dir null: <work>/archive
        assert report.ok == 1 and report.bad == []

        # unpausing made a scheduled run with the default params: skipped, not failed
        t0 = time.monotonic()
        while True:
            runs = api.json("GET", f"/api/v2/dags/{DAG}/dagRuns", params={"run_type": "scheduled"})["dag_runs"]
            if runs and runs[0]["state"] in ("success", "failed"):
                break
            assert time.monotonic() - t0 < 300, f"no finished scheduled run: {runs}\n{comps.logs()}"
            time.sleep(1)
        (sched,) = runs
        sched_tis = {(t["task_id"], t["map_index"]): t["state"] for t in api.task_instances(DAG, sched["dag_run_id"])}
        assert sched["state"] == "success", sched_tis
        assert sched_tis[("discover_tiles", -1)] == "skipped" and sched_tis[("summary", -1)] == "skipped"
        assert "failed" not in sched_tis.values()
        logs = list((home / "logs" / f"dag_id={DAG}").glob(f"run_id={sched['dag_run_id']}/task_id=discover_tiles/*.log"))
        text = "".join(p.read_text(errors="replace") for p in logs)
        assert text.count(SKIP_LINE) == 1, text[-3000:]
    finally:
        comps.stop()
