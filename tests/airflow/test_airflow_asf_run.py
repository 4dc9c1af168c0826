"""The DAG on ``catalog=asf``: search, selection and download through a loopback ASF.

The three simulated products over tile 33UUP are zipped and published on ``asf_hub`` (Search
API replay, datapool redirecting to signed storage, which refuses credentials). The DAG runs
with an Airflow Connection of kind ``asf`` whose password is the Earthdata token, on a real
PostgreSQL metadata DB; the archive is written and valid, the token went to ASF only and no
log shows it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

KEY = "33UUP_20170613T101031"
TOKEN = "edl-token-0001"


def _zip_safe(safe: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                zf.write(f, f"{safe.name}/{f.relative_to(safe)}")
    return buf.getvalue()


@pytest.fixture(scope="module")
def asf_run(af, postgres, one_tile_sample: dict, asf_hub_class, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from bigearthnet_s1.catalog.local import LocalCatalog

    hub = asf_hub_class()
    try:
        tile = one_tile_sample["tile"]
        for rec in LocalCatalog(one_tile_sample["catalog"]).search(tile.footprint_wgs84, tile.sensing_time.replace(
                year=2000), tile.sensing_time.replace(year=2100)):
            hub.publish(rec.name, _zip_safe(Path(rec.url)), rec.footprint, path=rec.relative_orbit,
                        direction=rec.orbit_direction, start=rec.start_time, stop=rec.stop_time)
        base = tmp_path_factory.mktemp("asf-run")
        home = base / "airflow-home"
        home.mkdir()
        conn = {"conn_type": "http", "host": hub.search_url, "password": TOKEN, "extra": {"kind": "asf"}}
        env = af.env(home, postgres.create_database("asf"), AIRFLOW_CONN_ASF_HUB=json.dumps(conn))
        af.migrate(env)
        work, archive = base / "work", base / "archive"
        conf = {"s2_source": str(one_tile_sample["s2"]), "tiles": ["33UUP"], "catalog": "asf",
                "catalog_conn_id": "asf_hub", "dem": "flat", "engine": "native",
                "work_dir": str(work), "archive_dir": str(archive)}
        (run,) = af.dag_test(env, [{"conf": conf, "logical_date": "2017-06-13T00:00:00Z"}])
        yield {"run": run, "hub": hub, "work": work, "archive": archive}
    finally:
        hub.close()


@pytest.mark.postgres
def test_dag_runs_on_asf(asf_run: dict, one_tile_sample: dict) -> None:
    run = asf_run["run"]
    states = {(t["task_id"], t["map_index"]): t["state"] for t in run["tis"]}
    assert run["state"] == "success", states
    assert all(s == "success" for s in states.values()), states
    hub = asf_run["hub"]
    # the footprint lookup asked the ASF Search API, the selection kept ASF records
    assert len(hub.requests("search")) == 1
    downloads = [t for t in run["tis"] if t["task_id"] == "download"]
    assert len(downloads) == 1 and downloads[0]["rendered_map_index"] in one_tile_sample["products"]
    name = downloads[0]["rendered_map_index"]
    record = json.loads((asf_run["work"] / "records" / f"{name}.json").read_text())
    assert record["source"] == "asf" and record["url"].startswith(hub.base) and record["checksum_algorithm"] == "MD5"
    # the token went to ASF's datapool, not to the signed storage; the zip in the store is ASF's
    assert [e["auth"] for e in hub.requests("datapool")] == [f"Bearer {TOKEN}"]
    assert [e["auth"] for e in hub.requests("storage")] == [None]
    assert (asf_run["work"] / "products" / f"{name}.zip").read_bytes() == hub.products[name]["data"]


@pytest.mark.postgres
def test_archive_is_written_and_the_token_is_not_logged(asf_run: dict) -> None:
    from bigearthnet_s1.archive import validate_archive

    report = validate_archive(asf_run["archive"])
    assert report.ok == 1 and report.bad == []
    run = asf_run["run"]
    text = run["output"] + "".join(run["logs"].values())
    name = next(t["rendered_map_index"] for t in run["tis"] if t["task_id"] == "download")
    assert f"{name}: downloading from {asf_run['hub'].base}" in text and "MD5 checksum verified" in text
    assert TOKEN not in text
