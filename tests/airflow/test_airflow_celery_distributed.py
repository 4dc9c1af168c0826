"""The CeleryExecutor deployment of docker-compose.yaml, without Docker, and a worker killed mid-task.

Started here as separate processes, configured as the compose file configures its containers:
PostgreSQL (metadata DB and Celery result backend), Redis (Celery broker), ``airflow
api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two ``airflow celery
worker`` with distinct hostnames, all reading one config file written once by ``airflow config
list`` (as compose's init does: the shared ``[api_auth] jwt_secret``), the FAB auth manager
and its admin user, the pools. The demo sample (5 S2 tile acquisitions, 15 simulated products
in a local catalogue) runs through the DAG, triggered through the REST API as the UI does.

While a ``preprocess`` task runs on one worker that has already finished other tasks, that
worker's whole process tree (Celery parent, pool processes, task supervisor, task) is frozen,
the task is checked to be still running, and the tree is killed with SIGKILL. The test sets
``[scheduler] task_instance_heartbeat_timeout`` to 20 s (Airflow's default 300 s; compose
120 s), detection every 2 s: the scheduler fails the dead try and the retry runs on the other
worker. Asserted: both workers ran tasks (task instance hostnames), the killed try is recorded
on the dead worker and the retry succeeded on the other, the run succeeded, the archive
validates. A scheduled run (made by unpausing, default params, no catalogue) is skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
DAG = "bigearthnet_s1"
HEARTBEAT_TIMEOUT_S = 20
WORKERS = ("bigearthnet-s1-worker-a", "bigearthnet-s1-worker-b")

#: The task instance's hostname is Airflow's [core] hostname_callable; on one machine both
#: workers would report the same FQDN, so each worker process names itself from its environment.
HOSTNAME_MODULE = '''
import os


def worker_hostname() -> str:
    return os.environ["BIGEARTHNET_S1_TEST_WORKER"]
'''


_COLUMNS = ("task_id", "map_index", "state", "hostname", "try_number", "start_date", "end_date")


def _tis(conn, run_id: str, table: str = "task_instance") -> list[dict]:
    """Task instances of the run (or their earlier tries: ``task_instance_history``), from the metadata DB."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM {table} WHERE dag_id = %s AND run_id = %s", (DAG, run_id))
        return [dict(zip(_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def _freeze(procs: list) -> list:
    """SIGSTOP every process of a tree (re-listing until no new child appeared); the frozen ones."""
    frozen: dict[int, psutil.Process] = {}
    todo = list(procs)
    while todo:
        for p in todo:
            try:
                p.suspend()
                frozen[p.pid] = p
            except psutil.NoSuchProcess:
                pass
        todo = []
        for p in list(frozen.values()):
            try:
                todo += [c for c in p.children(recursive=True) if c.pid not in frozen]
            except psutil.NoSuchProcess:
                pass
    return list(frozen.values())


@pytest.fixture(scope="module")
def deployment(live, postgres, redis_server, tmp_path_factory: pytest.TempPathFactory):
    import psycopg2

    from bigearthnet_s1 import demo

    base = tmp_path_factory.mktemp("celery")
    sample = demo.prepare_sample(base / "sample")
    home = base / "airflow-home"
    (home / "config").mkdir(parents=True)
    ident = base / "ident"
    ident.mkdir()
    (ident / "bigearthnet_s1_test_hostname.py").write_text(HOSTNAME_MODULE)
    db = postgres.create_database("celery")
    api_port = live.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BIGEARTHNET_S1_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        # one config file for every component, written once (compose: init's `airflow config list`)
        "AIRFLOW_CONFIG": str(home / "config" / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # as docker-compose.yaml
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db.replace("postgresql+psycopg2://", "postgresql://"),
        "AIRFLOW__CELERY__BROKER_URL": redis_server.url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__WORKERS": "1",
        # ports of this machine's other users stay free
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(live.free_port()),
        "BIGEARTHNET_S1_RETRY_DELAY": "1",
        "PYTHONUNBUFFERED": "1",
    })
    comps = live.Components(base, env)
    conn = None
    try:
        # init (compose's airflow-init): config file with shared keys, DB, admin user, pools
        comps.run("config", "list")
        cfg = (home / "config" / "airflow.cfg").read_text()
        assert "\njwt_secret = " in cfg and "\njwt_secret = \n" not in cfg
        comps.run("db", "migrate", timeout=600)
        password = secrets.token_urlsafe(12)
        # "--password=VALUE": a token may start with "-", which argparse would take for an option
        comps.run("users", "create", "--username", "admin", f"--password={password}", "--role", "Admin",
                  "--firstname", "Ada", "--lastname", "Admin", "--email", "admin@example.org")
        comps.run("pools", "set", "bigearthnet_s1_download", "2", "parallel product downloads")
        comps.run("pools", "set", "bigearthnet_s1_cpu", "2", "CPU-heavy steps")

        comps.start("api-server", "api-server")
        comps.start("scheduler", "scheduler")
        comps.start("dag-processor", "dag-processor")
        comps.start("triggerer", "triggerer")
        for name in WORKERS:
            wenv = dict(env, BIGEARTHNET_S1_TEST_WORKER=name,
                        PYTHONPATH=os.pathsep.join(filter(None, [str(ident), env.get("PYTHONPATH")])),
                        AIRFLOW__CORE__HOSTNAME_CALLABLE="bigearthnet_s1_test_hostname.worker_hostname",
                        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(live.free_port()))
            comps.start(name, "celery", "worker", "--celery-hostname", f"{name}@%h", env=wenv)
        api = live.Api(f"http://127.0.0.1:{api_port}")
        api.wait_ready(comps, "api-server")
        api.login("admin", password)
        api.wait_dag(DAG, comps)
        conn = psycopg2.connect(db.replace("postgresql+psycopg2://", "postgresql://"))
        conn.autocommit = True
        yield {"comps": comps, "api": api, "conn": conn, "sample": sample, "base": base, "home": home}
    finally:
        if conn is not None:
            conn.close()
        comps.stop()


@pytest.fixture(scope="module")
def killed_run(live, deployment) -> dict:
    comps, api, conn, sample, base = (deployment[k] for k in ("comps", "api", "conn", "sample", "base"))
    work = base / "work"
    conf = {"s2_source": str(sample["s2"]), "tiles": None, "catalog": "local",
            "catalog_root": str(sample["catalog"]), "catalog_conn_id": None, "dem": "flat", "engine": "native",
            "work_dir": str(work), "archive_dir": None}
    run = api.json("POST", f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    run_id = run["dag_run_id"]
    api.json("PATCH", f"/api/v2/dags/{DAG}", json={"is_paused": False})  # the UI's "unpause on trigger"

    # Wait for a preprocess try running on a worker that has finished other tasks of this run;
    # freeze that worker's tree, check the try is still running, then kill the tree.
    victim = None
    t0 = time.monotonic()
    while victim is None:
        tis = _tis(conn, run_id)
        done_on = {t["hostname"] for t in tis if t["state"] == "success"}
        for ti in tis:
            if ti["task_id"] == "preprocess" and ti["state"] == "running" and ti["hostname"] in done_on:
                frozen = _freeze(live.process_tree(comps.procs[ti["hostname"]].pid))
                now = {(t["task_id"], t["map_index"]): t for t in _tis(conn, run_id)}[("preprocess", ti["map_index"])]
                if now["state"] == "running" and now["try_number"] == ti["try_number"]:
                    done = {str(p) for p in (work / "processed").rglob("*.tif") if not p.name.startswith(".")}
                    pids = comps.kill_tree(ti["hostname"])
                    victim = dict(ti, pids=pids, killed_at=datetime.now(UTC), processed_before=done)
                else:  # finished while we looked: let it go, wait for another one
                    for p in frozen:
                        try:
                            p.resume()
                        except psutil.NoSuchProcess:
                            pass
                break
        if victim is None:
            pre = [t for t in tis if t["task_id"] == "preprocess"]
            assert not pre or any(t["state"] not in ("success", "failed") for t in pre), (
                f"every preprocess task finished before one could be caught running: {tis}")
            assert time.monotonic() - t0 < 600, f"no preprocess task ran: {tis}\n{comps.logs()}"
            comps.check_alive()
            time.sleep(0.2)
    assert len(victim["pids"]) >= 3  # Celery parent, pool process(es), task supervisor and task

    final = api.wait_run(DAG, run_id, comps, timeout=900)
    # the other worker alone is left; the scheduler must have noticed the dead try by the heartbeat
    survivor = next(w for w in WORKERS if w != victim["hostname"])
    retry = api.json("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/preprocess/xcomEntries/return_value",
                     params={"map_index": victim["map_index"]})["value"]
    out = {"run": final, "run_id": run_id, "victim": victim, "survivor": survivor, "work": work,
           "tis": _tis(conn, run_id), "history": _tis(conn, run_id, "task_instance_history"),
           "retry_result": json.loads(retry) if isinstance(retry, str) else retry}
    dead = next(h for h in out["history"] if h["task_id"] == "preprocess" and h["map_index"] == victim["map_index"])
    again = next(t for t in out["tis"] if t["task_id"] == "preprocess" and t["map_index"] == victim["map_index"])
    print(f"\n[celery] killed {victim['hostname']} ({len(victim['pids'])} processes) during preprocess"
          f"[{victim['map_index']}] try {victim['try_number']}; the scheduler failed that try "
          f"{(dead['end_date'] - victim['killed_at']).total_seconds():.1f} s later (heartbeat timeout "
          f"{HEARTBEAT_TIMEOUT_S} s), the retry started on {again['hostname']} "
          f"{(again['start_date'] - victim['killed_at']).total_seconds():.1f} s after the kill; run "
          f"{(final_end(final) - run_start(final)).total_seconds():.0f} s from start to success")
    return out


def run_start(run: dict) -> datetime:
    return datetime.fromisoformat(run["start_date"].replace("Z", "+00:00"))


def final_end(run: dict) -> datetime:
    return datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))


@pytest.mark.slow
@pytest.mark.postgres
def test_killed_worker_task_is_retried_on_the_other_worker(killed_run: dict, deployment) -> None:
    victim, survivor = killed_run["victim"], killed_run["survivor"]
    states = sorted((t["task_id"], t["map_index"], t["state"], t["hostname"]) for t in killed_run["tis"])
    assert killed_run["run"]["state"] == "success", f"{states}\n{deployment['comps'].logs()}"
    assert all(t["state"] == "success" for t in killed_run["tis"]), states

    ti = next(t for t in killed_run["tis"] if t["task_id"] == "preprocess" and t["map_index"] == victim["map_index"])
    assert ti["try_number"] > victim["try_number"] and ti["hostname"] == survivor
    (dead,) = [h for h in killed_run["history"]
               if (h["task_id"], h["map_index"], h["try_number"]) == ("preprocess", victim["map_index"],
                                                                      victim["try_number"])]
    assert dead["hostname"] == victim["hostname"] and dead["state"] in ("failed", "up_for_retry")
    # the scheduler noticed the dead try through the missing heartbeats, not earlier
    assert (dead["end_date"] - victim["killed_at"]).total_seconds() >= HEARTBEAT_TIMEOUT_S - 6
    # recomputed on the survivor unless the killed try had already written its GeoTIFF
    result = killed_run["retry_result"]
    assert result["cached"] is (result["path"] in victim["processed_before"]), result
    # only the killed try failed: nothing else needed a retry
    assert [(h["task_id"], h["map_index"]) for h in killed_run["history"]] == [("preprocess", victim["map_index"])]


@pytest.mark.slow
@pytest.mark.postgres
def test_both_workers_ran_tasks(killed_run: dict) -> None:
    done = {t["hostname"] for t in killed_run["tis"] if t["state"] == "success"}
    assert done == set(WORKERS), done
    assert {h["hostname"] for h in killed_run["history"]} == {killed_run["victim"]["hostname"]}


@pytest.mark.slow
@pytest.mark.postgres
def test_archive_validates_after_the_kill(killed_run: dict, deployment) -> None:
    from bigearthnet_s1.archive import validate_archive

    report = validate_archive(killed_run["work"] / "archive")
    assert report.bad == [] and report.ok == 6  # the demo sample's six patches
    summary = json.loads(next((killed_run["work"] / "summaries").glob("*.json")).read_text())
    assert summary["ok"] == summary["tiles"] == len(deployment["sample"]["tiles"]) and summary["failed"] == {}


@pytest.mark.slow
@pytest.mark.postgres
def test_the_unpause_scheduled_run_is_skipped(killed_run: dict, deployment) -> None:
    api, comps = deployment["api"], deployment["comps"]
    runs = api.json("GET", f"/api/v2/dags/{DAG}/dagRuns", params={"run_type": "scheduled"})["dag_runs"]
    assert len(runs) == 1, runs
    sched = api.wait_run(DAG, runs[0]["dag_run_id"], comps, timeout=300)
    tis = {(t["task_id"], t["map_index"]): t["state"] for t in api.task_instances(DAG, sched["dag_run_id"])}
    assert sched["state"] == "success" and tis[("discover_tiles", -1)] == "skipped", tis
    assert "failed" not in tis.values()
