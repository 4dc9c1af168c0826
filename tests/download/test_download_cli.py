"""``bigearthnet-s1 download`` end to end against the loopback hub."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
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


@pytest.mark.parametrize("damage", ["empty", "crc", "html", "zip-slip", "other-product"])
def test_download_refuses_a_bad_local_product(tmp_path, capsys, make_zip, damage):
    """A local input is verified like a download (the issue: a 0-byte .zip was "downloaded")."""
    names = {"crc": "fails its CRC", "empty": "not a valid zip", "html": "HTML page",
             "zip-slip": "'..' path component", "other-product": "another product"}
    src = tmp_path / f"{NAME}.zip"
    if damage == "empty":
        src.write_bytes(b"")
    elif damage == "crc":
        data = bytearray(make_zip(NAME, size=20_000))
        data[len(data) // 2] ^= 0xFF  # inside the stored measurement
        src.write_bytes(bytes(data))
    elif damage == "html":
        src.write_bytes(b"<html><head><title>Please log in</title></head></html>")
    elif damage == "zip-slip":
        src.write_bytes(make_zip(NAME, size=1_000, evil="dotdot"))
    else:
        src.write_bytes(make_zip(NAME, size=1_000, top=f"{NAME2}.SAFE"))
    store = tmp_path / "store"
    rc = cli.main(["download", str(src), "--store", str(store), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1 and _lines(out) == {}
    assert "1 of 1 products failed" in err and NAME in err and names[damage] in err
    assert not (store / "verified").exists() or list((store / "verified").iterdir()) == []


def test_download_checks_its_options_before_anything(tmp_path, capsys, make_zip):
    src = tmp_path / f"{NAME}.zip"
    src.write_bytes(make_zip(NAME, size=1_000))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = {("--parallel", "0"): "--parallel must be >= 1", ("--wait-offline", "-5"): "--wait-offline (s) must be >= 0",
             ("--poll", "nan"): "--poll (s) must be a finite number", ("--store", str(blocker / "s")): "cannot be created"}
    for (opt, value), message in cases.items():
        args = ["download", str(src), "--store", str(tmp_path / "store"), "--no-progress", opt, value]
        assert cli.main(args) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_download_failure_exit_code_and_message(hub, tmp_path, capsys):
    p = hub.add(name=NAME)
    good = hub.dhus_url(p)
    rc = cli.main(["download", good.replace(p.uuid, "gone"), "--name", NAME2, "--store", str(tmp_path), "--no-progress"])
    _, err = capsys.readouterr()
    assert rc == 1
    assert "1 of 1 products failed" in err and NAME2 in err and "HTTP 404" in err
    summary = next(line for line in err.splitlines() if "products failed" in line)
    assert summary.count(NAME2) == 1, summary  # the product is named once, not "NAME: NAME: ..."
    assert list(tmp_path.iterdir()) == []
