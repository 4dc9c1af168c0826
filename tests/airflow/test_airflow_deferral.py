"""The download operator defers while a product sits in the hub's long-term archive.

A DHuS-like hub on loopback answers ``Online/$value`` "false" for the first polls (a GET of
``$value`` then starts the retrieval: HTTP 202), then "true" and serves the zip. The operator
(run in a subprocess with the hub's Connection in the environment) orders the retrieval and
raises TaskDeferred; the trigger polls the store's retrieval status until online; the resumed
operator downloads the verified zip. A product that never comes back ends with a clear error.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug import Request, Response

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
UUID = "5f0c7a1e-0000-4000-8000-000000000001"

DRIVER = r"""
import asyncio, json, sys
from airflow.sdk.exceptions import TaskDeferred
from bigearthnet_s1_airflow.operators import ProductDownloadOperator
work, timeout = sys.argv[1], float(sys.argv[2])
op = ProductDownloadOperator(task_id="download", product=__NAME__, work_dir=work, catalog_conn_id="hub",
                             poll_interval=0.2, wait_timeout=timeout)
out = {}
try:
    out["result"] = op.execute({})
    out["deferred"] = False
except TaskDeferred as d:
    out["deferred"] = True
    out["trigger"] = d.trigger.serialize()[0]
    async def first():
        async for event in d.trigger.run():
            return event.payload
    event = asyncio.run(first())
    out["event"] = event
    try:
        out["result"] = getattr(op, d.method_name)({}, event=event)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out, default=str))
""".replace("__NAME__", repr(NAME))


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo(f"{NAME}.SAFE/manifest.safe", date_time=(2017, 6, 13, 17, 0, 0)), "<xfdu/>")
    return buf.getvalue()


@pytest.fixture
def hub(httpserver):
    state = {"online_polls": 0, "retrievals": 0, "downloads": 0, "online_after": 3}
    payload = _zip_bytes()

    def online(request: Request) -> Response:
        state["online_polls"] += 1
        return Response("true" if state["online_polls"] > state["online_after"] else "false")

    def value(request: Request) -> Response:
        assert request.authorization and request.authorization.username == "alice"
        if state["online_polls"] <= state["online_after"]:
            state["retrievals"] += 1
            return Response("", status=202)
        state["downloads"] += 1
        return Response(payload, content_type="application/zip")

    httpserver.expect_request(f"/odata/v1/Products('{UUID}')/Online/$value").respond_with_handler(online)
    httpserver.expect_request(f"/odata/v1/Products('{UUID}')/$value").respond_with_handler(value)
    return state


def _prepare(af, tmp_path: Path, httpserver) -> tuple[Path, dict]:
    from shapely.geometry import box

    from bigearthnet_s1 import pipeline
    from bigearthnet_s1.catalog import ProductRecord

    work = pipeline.WorkDir(tmp_path / "work")
    rec = ProductRecord(name=NAME, uuid=UUID, mission="S1A",
                        start_time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC),
                        stop_time=datetime(2017, 6, 13, 16, 51, 8, tzinfo=UTC),
                        absolute_orbit=17018, relative_orbit=168, orbit_direction="ASCENDING",
                        datatake_id="01C579", footprint=box(12, 47, 15, 49), online=False, source="dhus")
    pipeline.write_json(work.record_file(NAME), rec.to_json())
    home = tmp_path / "airflow-home"
    home.mkdir()
    conn = {"conn_type": "generic", "host": httpserver.url_for("/").rstrip("/"), "login": "alice",
            "password": "s3cret", "extra": {"kind": "dhus"}}
    env = af.env(home, "sqlite:///" + str(home / "airflow.db"), AIRFLOW_CONN_HUB=json.dumps(conn))
    return work.root, env


def test_archived_product_defers_then_downloads(af, tmp_path: Path, httpserver, hub) -> None:
    work, env = _prepare(af, tmp_path, httpserver)
    import subprocess

    proc = subprocess.run([af.python, "-c", DRIVER, str(work), "30"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=af.repo)
    out = af.last_json(proc)
    assert out["deferred"] is True, out
    assert out["trigger"].endswith("ProductRetrievalTrigger")
    assert out["event"]["status"] == "online" and out["event"]["polls"] >= 2
    assert hub["retrievals"] >= 1 and hub["downloads"] == 1
    path = Path(out["result"]["path"])
    assert path == work / "products" / f"{NAME}.zip" and path.read_bytes() == _zip_bytes()
    assert not [p for p in (work / "products").iterdir() if p.name.endswith((".part", ".tmp"))]
    assert "s3cret" not in proc.stdout + proc.stderr  # credentials never logged


def test_product_that_stays_archived_fails_clearly(af, tmp_path: Path, httpserver, hub) -> None:
    import subprocess

    hub["online_after"] = 10**6
    work, env = _prepare(af, tmp_path, httpserver)
    proc = subprocess.run([af.python, "-c", DRIVER, str(work), "0.5"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=af.repo)
    out = af.last_json(proc)
    assert out["deferred"] is True and out["event"]["status"] == "timeout"
    assert out["error"].startswith("ProductOfflineError") and NAME in out["error"]
    assert "after the wait limit" in out["error"]
    assert hub["downloads"] == 0 and not (work / "products" / f"{NAME}.zip").exists()
