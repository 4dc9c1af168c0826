"""``bigearthnet-s1 download`` end to end against the loopback hub."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import shapely.geometry

from bigearthnet_s1 import cli
from bigearthnet_s1.catalog import ProductRecord

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
NAME2 = "S1B_IW_GRDH_1SDV_20170614T053211_20170614T053236_006053_00AA21_1F3D"


def _record(hub, p, **kw) -> ProductRecord:
    return ProductRecord(
        name=p.name, uuid=p.uuid, mission=p.name[:3],
        start_time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC),
        stop_time=datetime(2017, 6, 13, 16, 51, 8, tzinfo=UTC),
        absolute_orbit=17018, relative_orbit=None, orbit_direction="ASCENDING", datatake_id="01C579",
        footprint=shapely.geometry.box(12.0, 41.0, 13.0, 42.0), size=len(p.data), checksum=p.md5,
        checksum_algorithm="MD5", online=True, url=hub.dhus_url(p), source="dhus", **kw,
    )


def _lines(out: str) -> dict[str, str]:
    return {d["name"]: d["path"] for d in (json.loads(line) for line in out.splitlines() if line.startswith("{"))}


def test_download_selection_json_with_progress_bar(hub, tmp_path, capsys):
    p1 = hub.add(name=NAME)
    p2 = hub.add(name=NAME2, drops=[1_000_000])
    sel = {"tile_key": "33UUP_20170613T101031", "products": [_record(hub, p1).to_json(), _record(hub, p2).to_json()]}
    sel_file = tmp_path / "selection.json"
    sel_file.write_text(json.dumps(sel))
    store = tmp_path / "store"
    rc = cli.main(["download", str(sel_file), "--store", str(store), "--parallel", "2", "--extract"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    paths = _lines(out)
    assert paths == {NAME: str(store / f"{NAME}.SAFE"), NAME2: str(store / f"{NAME2}.SAFE")}
    assert hashlib.md5((store / f"{NAME2}.zip").read_bytes()).hexdigest() == p2.md5
    assert "100%" in err and NAME[:20] in err  # tqdm bars on stderr


def test_download_product_url_named_by_the_server(hub, tmp_path, capsys):
    p = hub.add(name=NAME)
    rc = cli.main(["download", hub.dhus_url(p), "--store", str(tmp_path), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert _lines(out) == {NAME: str(tmp_path / f"{NAME}.zip")}
    assert hashlib.md5((tmp_path / f"{NAME}.zip").read_bytes()).hexdigest() == p.md5


def test_download_local_zip_is_used_in_place(tmp_path, capsys, make_zip):
    src = tmp_path / f"{NAME}.zip"
    src.write_bytes(make_zip(NAME, size=10_000))
    rc = cli.main(["download", str(src), "--store", str(tmp_path / "store"), "--no-progress"])
    out, _ = capsys.readouterr()
    assert rc == 0 and _lines(out) == {NAME: str(src)}


def test_download_failure_exit_code_and_message(hub, tmp_path, capsys):
    p = hub.add(name=NAME)
    good = hub.dhus_url(p)
    rc = cli.main(["download", good.replace(p.uuid, "gone"), "--name", NAME2, "--store", str(tmp_path), "--no-progress"])
    _, err = capsys.readouterr()
    assert rc == 1
    assert "1 of 1 products failed" in err and NAME2 in err and "HTTP 404" in err
    assert list(tmp_path.iterdir()) == []
