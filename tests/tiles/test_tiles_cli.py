"""``bigearthnet-s1 tiles`` run as a real subprocess."""

from __future__ import annotations

import bz2
import json
import subprocess
import sys
from pathlib import Path

from shapely.geometry import Point, shape

from bigearthnet_s1 import samples


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bigearthnet_s1.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tiles_on_the_real_example_s2_archive(s2_example: Path) -> None:
    res = _cli("tiles", str(s2_example))
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    got = {r["key"]: r for r in records}
    expected = {
        # key: (epsg, sensing time, ulx, uly, patch count, country)
        "29SND_20171221T112501": (32629, "2017-12-21T11:25:01Z", 499980.0, 4400040.0, 1, "Portugal"),
        "29UPU_20170617T113321": (32629, "2017-06-17T11:33:21Z", 600000.0, 5900040.0, 2, "Ireland"),
        "33UUP_20170613T101031": (32633, "2017-06-13T10:10:31Z", 300000.0, 5400000.0, 1, "Austria"),
        "35VPK_20170924T093019": (32635, "2017-09-24T09:30:19Z", 600000.0, 7000020.0, 1, "Finland"),
        "35VPK_20180204T094200": (32635, "2018-02-04T09:42:00Z", 600000.0, 7000020.0, 1, "Finland"),
    }
    assert set(got) == set(expected)
    for key, (epsg, t, ulx, uly, n, country) in expected.items():
        r = got[key]
        assert (r["epsg"], r["sensing_time"], r["ulx"], r["uly"], r["patch_count"]) == (epsg, t, ulx, uly, n)
        assert r["tile_id"] == key[:5] and r["countries"] == [country]
        assert r["bounds"] == [ulx, uly - 109800.0, ulx + 109800.0, uly]
        fp = shape(r["footprint_wgs84"])
        assert fp.is_valid and fp.contains(shape(r["patches_footprint_wgs84"]))
    # 33UUP covers Salzburg (13.04 E, 47.80 N)
    assert shape(got["33UUP_20170613T101031"]["footprint_wgs84"]).contains(Point(13.04, 47.80))


def test_tiles_on_the_table_for_one_tile() -> None:
    table = samples.patch_name_table()
    with bz2.open(table, "rt") as fh:
        expected = sum(1 for line in fh if "_33UUP_" in line)
    res = _cli("tiles", str(table), "--tile", "33UUP", "--patches")
    assert res.returncode == 0, res.stderr
    (record,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert record["key"] == "33UUP_20170613T101031"
    assert record["patch_count"] == expected == len(record["patches"])
    p = next(p for p in record["patches"] if p["s2_name"] == "S2A_MSIL2A_20170613T101031_87_48")
    assert (p["ulx"], p["uly"], p["lrx"], p["lry"], p["country"]) == (404400, 5342400, 405600, 5341200, "Austria")


def test_tiles_errors_exit_1_and_name_the_input(tmp_path: Path) -> None:
    res = _cli("tiles", str(tmp_path))
    assert res.returncode == 1
    assert str(tmp_path) in res.stderr and "empty" in res.stderr
    res = _cli("tiles", str(tmp_path / "missing"))
    assert res.returncode == 1 and "missing" in res.stderr
