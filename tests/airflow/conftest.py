"""Fixtures for the Airflow tests: an isolated AIRFLOW_HOME, a throwaway PostgreSQL cluster.

Airflow reads its configuration when first imported, so every test that touches Airflow runs
it in a subprocess with an environment built here (``airflow_env``): AIRFLOW_HOME in a tmp
folder, the repository's dags/ and plugins/, no examples, and the metadata DB given.

The PostgreSQL cluster is real (Debian's ``postgresql`` package, installed with apt-get when
missing and running as root): initdb in a tmp folder as the ``postgres`` user (initdb refuses
root), ``pg_ctl start`` on a free loopback port, one database; stopped and removed at the end.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def _pg_bin() -> Path | None:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists() and Path(cand, "pg_ctl").exists():
            return Path(cand)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _install_postgres() -> Path:
    """Install Debian's postgresql package when missing (needs root), return its bin folder."""
    found = _pg_bin()
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL is not installed and we are not root: apt-get install postgresql")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    found = _pg_bin()
    if not found:
        raise RuntimeError("apt-get installed postgresql but initdb/pg_ctl were not found")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, user ``airflow``)."""

    def __init__(self, base: Path):
        self.bin = _install_postgres()
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.user = "airflow"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            os.chown(base, self._uid, self._gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        def demote() -> None:  # initdb and postgres refuse to run as root
            os.setgid(self._gid)
            os.setuid(self._uid)

        proc = subprocess.run(list(args), capture_output=True, text=True,
                              preexec_fn=demote if self._as_postgres else None, cwd=self.base)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts,
                  "-l", str(self.base / "server.log"), "-w", "-t", "60", "start")

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    # Not under pytest's tmp folder: its parents are private to root, and the server runs as postgres.
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="bigearthnet-s1-pg-")))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def airflow_env(home: Path, sql_alchemy_conn: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for an Airflow subprocess isolated in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BIGEARTHNET_S1_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "BIGEARTHNET_S1_RETRY_DELAY": "1",
        "PYTHONUNBUFFERED": "1",
    })
    if sql_alchemy_conn:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sql_alchemy_conn
    env.update(extra)
    return env


def run_py(code: str, env: dict[str, str], *, timeout: float = 300, cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    """Run Python code in a subprocess with ``env``; the result's stdout last line may be JSON."""
    return subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO)


def last_json(proc: subprocess.CompletedProcess[str]) -> dict:
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in the output:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


def migrate(env: dict[str, str]) -> None:
    proc = subprocess.run([str(Path(PYTHON).parent / "airflow"), "db", "migrate"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


def wait_for(pred, timeout: float, what: str) -> None:  # used by the kill test
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def airflow_home(tmp_path: Path) -> Path:
    home = tmp_path / "airflow-home"
    home.mkdir()
    return home


@pytest.fixture(scope="session")
def af():
    """The helpers above, as a fixture (test modules cannot import conftest under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(env=airflow_env, run_py=run_py, last_json=last_json, migrate=migrate,
                           wait_for=wait_for, free_port=free_port, repo=REPO, python=PYTHON,
                           dag_test=dag_test)


#: The test-only fault hook (``BIGEARTHNET_S1_FAIL_ONCE``), installed by the driver below.
FAULTS = REPO / "tests" / "faults.py"

#: Runs the DAG with dag.test() once per (conf, logical date) given as JSON in argv[1] and prints,
#: per run, the task instances (state, try number, rendered map index) and the task logs' text.
#: dag.test() runs the tasks in this process: the fault hook (argv[2]) wraps the pipeline's steps
#: here when the environment asks for it.
DAG_TEST_DRIVER = r'''
import glob, json, os, runpy, sys
runs = json.loads(sys.argv[1])
runpy.run_path(sys.argv[2])["install_from_env"]()
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskinstance import TaskInstance
from airflow.models.taskinstancehistory import TaskInstanceHistory
from airflow.sdk import timezone
from airflow.utils.session import create_session
home = os.environ["AIRFLOW_HOME"]
for run in runs:
    # a fresh parse per run: dag.test() runs tasks in process, and a task's params keep the
    # previous run's conf on the shared task objects
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["bigearthnet_s1"]
    logical = timezone.parse(run["logical_date"]) if run.get("logical_date") else None
    dr = dag.test(logical_date=logical, run_conf=run.get("conf"))
    with create_session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dr.run_id).all()
        hist = s.query(TaskInstanceHistory).filter(TaskInstanceHistory.dag_id == dag.dag_id,
                                                   TaskInstanceHistory.run_id == dr.run_id).all()
        out = {"run_id": dr.run_id, "state": str(dr.state),
               "tis": [{"task_id": t.task_id, "map_index": t.map_index, "state": str(t.state),
                        "try_number": t.try_number, "rendered_map_index": t.rendered_map_index}
                       for t in tis],
               "history": [{"task_id": h.task_id, "map_index": h.map_index, "state": str(h.state),
                            "try_number": h.try_number} for h in hist]}
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.models.xcom import XComModel
        events = s.query(AssetEvent, AssetModel).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetEvent.source_run_id == dr.run_id).all()
        out["asset_events"] = [{"asset": a.name, "task_id": e.source_task_id, "map_index": e.source_map_index,
                                "extra": e.extra} for e, a in events]
        xcoms = s.query(XComModel).filter(XComModel.run_id == dr.run_id).all()
        out["xcom"] = [{"task_id": x.task_id, "map_index": x.map_index, "key": x.key,
                        "bytes": len(json.dumps(x.value, default=str))} for x in xcoms]
    logs = {}
    for path in glob.glob(os.path.join(home, "logs", "dag_id=" + dag.dag_id, "run_id=" + dr.run_id, "**", "*.log"),
                          recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            logs[os.path.relpath(path, home)] = f.read()[-20000:]
    out["logs"] = logs
    print("RESULT " + json.dumps(out), flush=True)
'''


def dag_test(env: dict[str, str], runs: list[dict], timeout: float = 600) -> list[dict]:
    """Run ``DAG_TEST_DRIVER`` in a subprocess; return one dict per run."""
    proc = subprocess.run([PYTHON, "-c", DAG_TEST_DRIVER, json.dumps(runs), str(FAULTS)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    results, chunk = [], []
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            results.append(dict(json.loads(line[len("RESULT "):]), output="\n".join(chunk)))
            chunk = []
        else:
            chunk.append(line)
    assert proc.returncode == 0 and len(results) == len(runs), (
        f"dag.test driver failed (rc {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return results


@pytest.fixture(scope="session")
def one_tile_sample(s2_example: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Tile 33UUP (one real S2 example patch) and three simulated S1 products on three relative
    orbits around its sensing time, in a local catalogue folder (as the demo makes them)."""
    from bigearthnet_s1 import demo, tiles

    base = tmp_path_factory.mktemp("one-tile")
    tile = next(t for t in tiles.read_s2_archive(s2_example) if t.tile_id == "33UUP")
    catalog = base / "catalog"
    names = []
    for j, plan in enumerate(demo.product_plan(tile)):
        names.append(demo._simulate(catalog, plan, seed=7 + j, tile=tile).name.removesuffix(".SAFE"))
    return {"s2": s2_example, "catalog": catalog, "tile": tile, "products": names, "base": base}


# ------------------------------------------------------------------------------ live deployments
#
# The tests that run Airflow as users run it start each component (api-server, scheduler,
# dag-processor, triggerer, Celery workers) as its own process with the same configuration,
# drive the DAG through the REST API as the UI does, and watch task state in the metadata DB.


def _install_redis() -> str:
    """Debian's redis-server (installed with apt-get when missing; needs root); its path."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("redis-server is not installed and we are not root: apt-get install redis-server")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("apt-get installed redis-server but it is not on PATH")
    return found


class RedisServer:
    """A throwaway Redis on 127.0.0.1 (no persistence), the Celery broker of the live tests."""

    def __init__(self, base: Path):
        self.exe = _install_redis()
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.base), "--protected-mode", "no"],
            stdout=open(self.base / "redis.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        t0 = time.monotonic()
        while True:
            try:
                if client.ping():
                    return
            except redis.exceptions.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() - t0 > 30:
                raise RuntimeError(f"redis-server did not start: {(self.base / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bigearthnet-s1-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def process_tree(pid: int) -> list:
    """``psutil.Process`` of ``pid`` and all its descendants (empty if it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class Components:
    """Airflow components started as separate processes (each in its own session), logs in ``base``.

    ``stop()`` ends every process started here and all their descendants (task processes
    included), politely then firmly; nothing else is touched.
    """

    def __init__(self, base: Path, env: dict[str, str]):
        self.base = base
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()
        self.airflow = str(Path(PYTHON).with_name("airflow"))

    def run(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        """Run an ``airflow`` CLI command to completion; its output (asserts success)."""
        proc = subprocess.run([self.airflow, *args], env=env or self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        return proc.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.base / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([self.airflow, *args], env=env or self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True, cwd=self.base)
        return self.procs[name]

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"----- {n} (exit {p.poll()})\n{self.log(n, 2500)}" for n, p in self.procs.items())

    def check_alive(self, *names: str) -> None:
        for n in names or tuple(self.procs):
            if n not in self.killed and self.procs[n].poll() is not None:
                raise AssertionError(f"{n} exited with code {self.procs[n].returncode}:\n{self.log(n)}")

    def kill_tree(self, name: str) -> list[int]:
        """``kill -9`` the component and every process below it; the pids killed."""
        import psutil

        procs = process_tree(self.procs[name].pid)
        self.killed.add(name)
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.procs[name].wait(timeout=30)
        psutil.wait_procs(procs, timeout=30)
        return [p.pid for p in procs]

    def stop(self) -> None:
        import psutil

        trees = {n: process_tree(p.pid) for n, p in self.procs.items() if p.poll() is None}
        for procs in trees.values():
            for p in procs:
                try:
                    p.terminate()
                except psutil.NoSuchProcess:
                    pass
        alive = [p for procs in trees.values() for p in procs]
        _, alive = psutil.wait_procs(alive, timeout=30)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass


class Api:
    """The REST API as the UI uses it: a token from ``/auth/token``, then JSON calls."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.token: str | None = None

    def wait_ready(self, components: Components, name: str, timeout: float = 240) -> None:
        import requests

        t0 = time.monotonic()
        while True:
            components.check_alive(name)
            try:
                if requests.get(f"{self.base}/api/v2/version", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{name} did not answer within {timeout:.0f} s:\n{components.log(name)}")
            time.sleep(0.5)

    def login(self, user: str, password: str) -> None:
        import requests

        r = requests.post(f"{self.base}/auth/token", json={"username": user, "password": password}, timeout=30)
        assert r.status_code in (200, 201), f"login failed: {r.status_code} {r.text[:500]}"
        self.token = r.json()["access_token"]

    def call(self, method: str, path: str, **kw):
        import requests

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=60, **kw)

    def json(self, method: str, path: str, **kw):
        r = self.call(method, path, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:1500]}"
        return r.json()

    def wait_dag(self, dag_id: str, components: Components, timeout: float = 240) -> dict:
        t0 = time.monotonic()
        while True:
            r = self.call("GET", f"/api/v2/dags/{dag_id}")
            if r.status_code == 200:
                return r.json()
            components.check_alive()
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"DAG {dag_id} not parsed within {timeout:.0f} s:\n{components.logs()}")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        out = self.json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return out["task_instances"]

    def wait_run(self, dag_id: str, run_id: str, components: Components, timeout: float) -> dict:
        t0 = time.monotonic()
        while True:
            run = self.json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            components.check_alive()
            if time.monotonic() - t0 > timeout:
                states = sorted((t["task_id"], t["map_index"], t["state"]) for t in self.task_instances(dag_id, run_id))
                raise AssertionError(f"run {run_id} not finished within {timeout:.0f} s: {states}\n{components.logs()}")
            time.sleep(1)


@pytest.fixture(scope="session")
def live():
    """Helpers of the live-deployment tests (classes above), as a fixture."""
    from types import SimpleNamespace

    return SimpleNamespace(Components=Components, Api=Api, free_port=free_port, process_tree=process_tree)
