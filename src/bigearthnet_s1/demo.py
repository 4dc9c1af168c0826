"""``python -m bigearthnet_s1.demo`` (``make demo``): the whole pipeline offline, through Airflow.

1. Prepares the sample in ``./demo-work``: the real BigEarthNet-S2 example patches (from
   bigearthnet-common), simulated Sentinel-1 IW GRDH products around their tiles and sensing
   times (several relative orbits, so the selection has a real choice) in a ``local`` catalogue
   folder, and a flat DEM (ellipsoid height 0, the same the products were simulated on).
2. Initialises an embedded metadata DB (SQLite in ``demo-work/airflow``) and the pools.
3. Runs the DAG ``bigearthnet_s1`` end to end with ``airflow dags test``.
4. Validates the archive and prints where the archive, its index and the quicklooks are, and
   how to open the Airflow UI on this run.

Re-running reuses the sample and the finished work (every step is idempotent); ``--fresh``
starts over.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bigearthnet_s1.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "bigearthnet_s1"
DAG_FILE = REPO / "dags" / "bigearthnet_s1_dag.py"
UI_USER, UI_PASSWORD = "admin", "admin"
UI_PORT = 8080


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


# ------------------------------------------------------------------------------ sample


def _utc_at_local_solar(day: datetime, local_hours: float, lon: float) -> datetime:
    """UTC time at which local mean solar time is ``local_hours`` on ``day``'s date (lon in deg E)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return midnight + timedelta(hours=local_hours - lon / 15.0)


def product_plan(tile: Any) -> list[dict[str, Any]]:
    """Simulated acquisitions for one tile: ``time`` (UTC), ``pass``, ``patches`` (None = all).

    Sentinel-1 passes near 06:00 (descending) and 18:00 (ascending) local solar time; on
    different days it flies different relative orbits. Per tile: a descending pass the day
    before the S2 sensing, an ascending one the same evening, a descending one two days later
    (the selection keeps one of these three orbits). A tile whose patches lie far apart gets,
    instead, one product per patch group within +-3 days and one covering all five days later
    (outside the first search window): its selection needs two orbits and the mosaic combines them.
    """
    lon = tile.footprint_wgs84.centroid.x
    day = tile.sensing_time
    plans = [
        {"time": _utc_at_local_solar(day - timedelta(days=1), 5.9, lon), "pass": "descending", "patches": None},
        {"time": _utc_at_local_solar(day, 17.9, lon), "pass": "ascending", "patches": None},
        {"time": _utc_at_local_solar(day + timedelta(days=2), 6.1, lon), "pass": "descending", "patches": None},
    ]
    if len(tile.patches) >= 2:
        first, rest = [tile.patches[0].s2_name], [p.s2_name for p in tile.patches[1:]]
        plans = [
            {"time": _utc_at_local_solar(day - timedelta(days=1), 5.9, lon), "pass": "descending", "patches": first},
            {"time": _utc_at_local_solar(day, 17.9, lon), "pass": "ascending", "patches": rest},
            {"time": _utc_at_local_solar(day + timedelta(days=5), 6.1, lon), "pass": "descending", "patches": None},
        ]
    return plans


def _simulate(catalog: Path, plan: dict[str, Any], *, seed: int, **kwargs: Any) -> Path:
    """One small simulated product for ``plan`` (the simulator picks a feasible orbit itself)."""
    from bigearthnet_s1 import simulate

    return simulate.simulate_product(catalog, time=plan["time"], size="small", pass_direction=plan["pass"],
                                     seed=seed, **kwargs)


def prepare_sample(root: Path) -> dict[str, Any]:
    """Extract the S2 example, simulate the S1 products into ``root/catalog`` (idempotent)."""
    import shapely

    from bigearthnet_s1 import mgrs, samples, tiles

    s2 = samples.s2_example(root)
    catalog = root / "catalog"
    catalog.mkdir(parents=True, exist_ok=True)
    acquisitions = tiles.read_s2_archive(s2)
    products: list[str] = []
    for i, tile in enumerate(acquisitions):
        for j, plan in enumerate(product_plan(tile)):
            kwargs: dict[str, Any] = {"tile": tile}
            if plan["patches"] is not None:
                boxes = [tile.patch(n).box for n in plan["patches"]]
                bounds = mgrs.to_wgs84(shapely.union_all(boxes), tile.epsg).bounds
                kwargs = {"bounds_wgs84": bounds}
            safe = _simulate(catalog, plan, seed=100 * i + j, **kwargs)
            products.append(safe.name)
            _say(f"  {tile.key}: {safe.name} ({plan['pass']}, "
                 f"{(plan['time'] - tile.sensing_time).total_seconds() / 86400:+.1f} d)")
    # Products left by an earlier demo run that this plan no longer makes would compete in the
    # selection: the catalogue folder is the demo's own, so keep exactly this plan's products.
    keep = {Path(p).stem for p in products}
    for entry in catalog.iterdir():
        name = entry.name.split(".")[0]
        if name.startswith("S1") and name not in keep:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return {"s2": s2, "catalog": catalog, "tiles": [t.key for t in acquisitions], "products": products}


# ------------------------------------------------------------------------------ airflow


def airflow_env(home: Path, port: int = UI_PORT) -> dict[str, str]:
    """Environment of the demo's Airflow commands (also written to ``home/airflow.cfg``).

    ``port``: where ``airflow api-server`` will listen; the scheduler's tasks reach the
    Execution API there.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",  # a laptop demo: one server process (Airflow's default is 4)
        "BIGEARTHNET_S1_RETRY_DELAY": "5",
        "PYTHONUNBUFFERED": "1",
    })
    return env


#: Keys every separately started component (api-server, scheduler, dag-processor, triggerer,
#: task processes) must share: Airflow generates a random one per process when the config file
#: does not hold it, and then the api-server rejects the scheduler's task tokens ("Invalid auth
#: token"), sessions break between api-server workers, and Connection passwords written by one
#: process cannot be read by another.
SHARED_SECRETS = (("api_auth", "jwt_secret"), ("api", "secret_key"), ("core", "fernet_key"))


def _new_secret(section: str, key: str) -> str:
    import base64
    import secrets

    if (section, key) == ("core", "fernet_key"):  # a Fernet key: 32 url-safe base64-encoded bytes
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(32)


def _shared_secrets(cfg: Path) -> dict[tuple[str, str], str]:
    """The shared keys of ``cfg`` (kept, so that components already running stay valid), new ones where missing."""
    import configparser

    old = configparser.RawConfigParser()
    if cfg.is_file():
        old.read(cfg, encoding="utf-8")
    return {(sec, key): (old.get(sec, key, fallback="") or _new_secret(sec, key)) for sec, key in SHARED_SECRETS}


def _write_airflow_cfg(home: Path, env: dict[str, str]) -> None:
    """Settings for later commands (``airflow api-server``, ``scheduler``, ...) run with only
    AIRFLOW_HOME set: every ``AIRFLOW__SECTION__KEY`` of ``env`` plus the shared secrets."""
    from bigearthnet_s1.atomic import atomic_path

    cfg = home / "airflow.cfg"
    sections: dict[str, list[str]] = {}
    for key, value in env.items():
        m = re.fullmatch(r"AIRFLOW__([A-Z_]+?)__([A-Z_]+)", key)
        if m:
            sections.setdefault(m.group(1).lower(), []).append(f"{m.group(2).lower()} = {value}")
    for (sec, key), value in _shared_secrets(cfg).items():
        sections.setdefault(sec, []).append(f"{key} = {value}")
    text = "".join(f"[{name}]\n" + "\n".join(lines) + "\n\n" for name, lines in sections.items())
    with atomic_path(cfg) as tmp:
        os.chmod(tmp, 0o600)  # it holds the keys: readable by its owner only, as Airflow writes it
        tmp.write_text(text, encoding="utf-8")
    atomic_write_text(home / "passwords.json", json.dumps({UI_USER: UI_PASSWORD}) + "\n")


def _airflow(*args: str, env: dict[str, str], log: Path | None = None, echo: bool = False) -> int:
    """Run the ``airflow`` CLI of this interpreter; output to ``log`` (and task ends echoed)."""
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    if log is None:
        return subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              check=False).returncode
    with open(log, "w", encoding="utf-8") as out, subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if echo:
                m = re.search(r"\[DAG TEST\] end task task_id=(\S+) map_index=(-?\d+)", line)
                if m:
                    idx = "" if m.group(2) == "-1" else f"[{m.group(2)}]"
                    _say(f"  task {m.group(1)}{idx} finished")
                elif "Marking run" in line and ("successful" in line or "failed" in line):
                    _say("  " + ("run succeeded" if "successful" in line else "run FAILED"))
        return proc.wait()


def init_airflow(home: Path, port: int = UI_PORT) -> dict[str, str]:
    """Write ``home/airflow.cfg``, migrate the metadata DB (SQLite), create the pools; return the env."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, port)
    _write_airflow_cfg(home, env)
    if _airflow("db", "migrate", env=env, log=home / "db-migrate.log") != 0:
        raise SystemExit(f"airflow db migrate failed: see {home / 'db-migrate.log'}")
    for pool, slots, what in (("bigearthnet_s1_download", "2", "parallel product downloads"),
                              ("bigearthnet_s1_cpu", str(os.cpu_count() or 2), "CPU-heavy steps")):
        if _airflow("pools", "set", pool, slots, what, env=env) != 0:
            raise SystemExit(f"airflow pools set {pool} failed")
    return env


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bigearthnet_s1.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("demo-work"), help="demo folder (default ./demo-work)")
    parser.add_argument("--fresh", action="store_true", help="delete the demo folder's outputs first")
    parser.add_argument("--engine", choices=("native", "snap"), default="native")
    parser.add_argument("--port", type=int, default=UI_PORT,
                        help=f"port of the api-server you start afterwards (default {UI_PORT})")
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    root = args.work.absolute()
    if not DAG_FILE.is_file():
        raise SystemExit(f"the DAG file {DAG_FILE} is missing: run the demo "
                         "from a clone of the repository (pip install -e .)")
    if args.fresh:
        for sub in ("work", "archive", "airflow"):
            shutil.rmtree(root / sub, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)

    _say(f"1/4 preparing the sample in {root}")
    sample = prepare_sample(root)
    t_sample = time.monotonic() - t0

    _say("2/4 initialising the metadata DB (SQLite) and the pools")
    home = root / "airflow"
    env = init_airflow(home, args.port)

    archive = root / "archive"
    conf = {"s2_source": str(sample["s2"]), "tiles": None, "catalog": "local",
            "catalog_root": str(sample["catalog"]), "catalog_conn_id": None, "dem": "flat",
            "engine": args.engine, "work_dir": str(root / "work"), "archive_dir": str(archive)}
    atomic_write_text(home / "demo-conf.json", json.dumps(conf, indent=1) + "\n")
    _say(f"3/4 running the DAG {DAG_ID} (airflow dags test) for {len(sample['tiles'])} tile acquisitions")
    t_dag = time.monotonic()
    log = home / "dags-test.log"
    rc = _airflow("dags", "test", DAG_ID, "--conf", json.dumps(conf), env=env, log=log, echo=True)
    t_dag = time.monotonic() - t_dag
    if rc != 0:
        _say(f"the DAG run failed (exit {rc}): see {log}")
        return 1

    _say("4/4 validating the archive")
    from bigearthnet_s1.archive import validate_archive

    report = validate_archive(archive)
    summaries = sorted((root / "work" / "summaries").glob("*.json"), key=lambda p: p.stat().st_mtime)
    summary = json.loads(summaries[-1].read_text()) if summaries else {}
    wall = time.monotonic() - t0
    quicklooks = root / "work" / "quicklooks"
    print()
    print(f"BigEarthNet-S1 demo: {report.ok} patches valid, {len(report.bad)} invalid; "
          f"{summary.get('ok', '?')}/{summary.get('tiles', '?')} tiles, {summary.get('products', '?')} "
          f"products; wall time {wall:.0f} s (sample {t_sample:.0f} s, DAG run {t_dag:.0f} s)")
    print(f"  archive     {archive}")
    print(f"  index       {archive / 'index.parquet'} (+ patches.geojson)")
    print(f"  quicklooks  {quicklooks}" + (f" ({len(list(quicklooks.glob('*.png')))} PNG)" if quicklooks.is_dir() else ""))
    print(f"  run log     {log}")
    airflow = Path(sys.executable).with_name("airflow")
    print(f"  Airflow UI  AIRFLOW_HOME={home} {airflow} api-server")
    print(f"              then open http://localhost:{args.port} (user {UI_USER}, password {UI_PASSWORD}) "
          f"> Dags > {DAG_ID} > Grid")
    print(f"  run it      also start, each with AIRFLOW_HOME={home}: {airflow} scheduler, {airflow} dag-processor")
    print(f"              (and {airflow} triggerer); then Trigger {DAG_ID} with the JSON of {home / 'demo-conf.json'}")
    for patch_dir, reasons in report.bad[:10]:
        print(f"  INVALID {patch_dir}: {'; '.join(reasons)}")
    return 0 if report.ok > 0 and not report.bad and not summary.get("failed") else 1


if __name__ == "__main__":
    sys.exit(main())
