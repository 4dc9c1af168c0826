"""Outputs around the SAFE: truth files, command line, determinism, re-runs, bad input."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio

from bigearthnet_s1.errors import DemError, GeometryError, InputError


def test_truth_files(sim_old, tile_33uup) -> None:
    """Truth GeoTIFF on the tile's CRS and 10 m grid covering the patches plus the margin;
    JSON tying product, orbit, classes, targets and borders together."""
    truth = json.loads(sim_old.truth_json.read_text())
    assert truth["safe"] == sim_old.safe.name and truth["truth_tif"] == sim_old.truth_tif.name
    assert truth["tile_id"] == "33UUP" and truth["crs"] == "EPSG:32633"
    with rasterio.open(sim_old.truth_tif) as t:
        assert t.crs.to_epsg() == 32633 and t.count == 2 and t.dtypes == ("float32", "float32")
        assert t.descriptions == ("VV", "VH")
        a = t.transform
        assert (a.a, a.e) == (10.0, -10.0)
        assert (a.c - tile_33uup.grid.ulx) % 10 == 0 and (tile_33uup.grid.uly - a.f) % 10 == 0
        left, bottom, right, top = t.bounds
        pl, pb, pr, pt = tile_33uup.patches_footprint.bounds
        assert left <= pl - 5000 and right >= pr + 5000 and bottom <= pb - 5000 and top >= pt + 5000
        vv, vh = t.read(1), t.read(2)
    assert np.all(vv > 0) and np.all(vh > 0) and np.all(vh < vv * 2)
    db = 10 * np.log10(np.median(vv))
    assert -16 < db < -4
    # parcels: constant over 600 m squares aligned on the tile (and patch) grid, except the river
    # and the point targets
    block = vv[:60, :60] if (a.c - tile_33uup.grid.ulx) % 600 == 0 else None
    if block is not None:
        assert np.unique(block).size <= 3
    classes = {c["name"] for c in truth["ground_map"]["classes"]}
    assert classes == {"water", "urban", "forest", "cropland", "grassland", "bare"}
    assert sum(truth["ground_map"]["class_pixels"].values()) == vv.size
    assert truth["ipf_version"] == "002.84" and truth["radiometry"]["border_noise"] is True
    assert len(truth["borders"]["zero_near"]) == truth["lines"]
    for t_ in truth["point_targets"]["targets"]:
        r = int((a.f - t_["y"]) // 10)
        c = int((t_["x"] - a.c) // 10)
        assert vv[r, c] > 1000.0


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bigearthnet-s1 simulate --tile ... --patch ... --zip`` prints where it wrote what."""
    from bigearthnet_s1 import cli
    from bigearthnet_s1.safe import open_safe

    rc = cli.main(["simulate", "--tile", "33UUP", "--time", "2017-06-13T16:50:43", "--out", str(tmp_path),
                   "--patch", "87_48", "--margin", "1500", "--zip", "--seed", "5"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["name"].startswith("S1A_IW_GRDH_1SDV_20170613T165043_20170613T16504")
    assert "_017018_01C579_" in out["name"]  # ascending at 16:50 UTC over Austria: the real orbit
    for key in ("safe", "zip", "truth_json", "truth_tif"):
        assert Path(out[key]).exists()
    with open_safe(out["zip"]) as p:
        assert p.pass_direction == "ASCENDING" and p.read_dn("VH").shape[0] > 500
    rc = cli.main(["simulate", "--tile", "33UUP", "--time", "yesterday", "--out", str(tmp_path)])
    assert rc == 1
    assert "--time 'yesterday'" in capsys.readouterr().err
    rc = cli.main(["simulate", "--tile", "33UUP", "--time", "2017-06-13T16:50:43", "--out", str(tmp_path),
                   "--patch", "99_1"])
    assert rc == 1


def test_deterministic_and_rerun(tmp_path: Path, tile_33uup) -> None:
    """Same inputs -> same bytes and name (CRC of the manifest); a re-run in the same folder
    keeps the product; another seed -> another product."""
    from bigearthnet_s1.simulate import simulate_product

    kw = dict(tile=tile_33uup, time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC), pass_direction="ascending",
              margin_m=800.0, seed=11)
    a = simulate_product(tmp_path / "a", **kw)
    b = simulate_product(tmp_path / "b", **kw)
    assert a.name == b.name
    for f in a.rglob("*"):
        if f.is_file():
            assert f.read_bytes() == (b / f.relative_to(a)).read_bytes(), f
    mtime = (a / "manifest.safe").stat().st_mtime_ns
    again = simulate_product(tmp_path / "a", **kw)
    assert again == a and (a / "manifest.safe").stat().st_mtime_ns == mtime
    zipped = simulate_product(tmp_path / "b", **kw, zip=True)  # zip added to the existing product
    assert zipped == b and b.with_suffix(".zip").is_file() and (b / "manifest.safe").stat().st_mtime_ns > 0
    other = simulate_product(tmp_path / "a", **{**kw, "seed": 12})
    assert other != a and other.name[:-9] == a.name[:-9]
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if not p.name.startswith(".")) == sorted(
        [a.name, other.name] + [n.name.removesuffix(".SAFE") + s for n in (a, other) for s in (".truth.json", ".truth.tif")])


def test_full_size_and_descending_options(tmp_path: Path, tile_33uup) -> None:
    """Descending pass, S1B, explicit IPF and swath position are honoured (planned only)."""
    from bigearthnet_s1.simulate import describe_product

    d = describe_product(tile=tile_33uup, time="2017-06-14T05:01:49", pass_direction="descending", mission="S1B",
                         ipf_version="2.91", swath_position=0.1, size="full")
    assert d["pass"] == "DESCENDING" and d["mission"] == "S1B" and d["ipf_version"] == "002.91"
    assert d["relative_orbit"] == (d["absolute_orbit"] - 27) % 175 + 1
    assert d["target_incidence_deg"] == pytest.approx(30.4 + 0.1 * 15.5)
    assert 16_500 < d["lines"] < 17_100 and d["samples"] > 25_000


@pytest.mark.parametrize("kwargs,error,message", [
    ({"size": "medium"}, InputError, "size"),
    ({"pass_direction": "sideways"}, InputError, "pass"),
    ({"swath_position": 1.5}, InputError, "swath_position"),
    ({"time": "13/06/2017"}, InputError, "13/06/2017"),
    ({"mission": "S1B", "time": "2023-01-01T10:00:00"}, InputError, "S1B was not operating"),
    ({"mission": "S1C"}, InputError, "S1C"),
    ({"ipf_version": "new"}, InputError, "IPF"),
    ({"tile": None}, InputError, "tile or bounds_wgs84"),
    ({"dem": "/nonexistent/dem.tif"}, DemError, "/nonexistent/dem.tif"),
])
def test_bad_input(tmp_path: Path, tile_33uup, kwargs: dict, error: type, message: str) -> None:
    from bigearthnet_s1.simulate import simulate_product

    args = {"tile": tile_33uup, "time": "2017-06-13T16:50:43", **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(")):
        simulate_product(tmp_path, **args)
    assert not any(p for p in tmp_path.iterdir() if not p.name.startswith("."))


def test_dem_must_cover_the_scene(tmp_path: Path, tile_33uup, rome_dem: Path) -> None:
    from bigearthnet_s1.simulate import simulate_product

    with pytest.raises(DemError, match="Rome-30m-DEM.tif does not cover"):
        simulate_product(tmp_path, tile=tile_33uup, time="2017-06-13T16:50:43", dem=rome_dem)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_target(tmp_path: Path) -> None:
    from bigearthnet_s1.simulate import simulate_product

    with pytest.raises(GeometryError, match="right-looking"):
        simulate_product(tmp_path, bounds_wgs84=(10.0, -84.0, 10.1, -83.9), time="2020-01-01T12:00:00")


def test_no_temporary_leftovers(sim_old) -> None:
    assert not [p for p in sim_old.safe.parent.iterdir() if p.name.startswith(".")]
    assert os.access(sim_old.safe / "manifest.safe", os.R_OK)


def test_truth_raster_is_the_ground_map(sim_old) -> None:
    """The truth GeoTIFF holds the ground-map definition (``_ground_class``) at its pixel
    centres, point-target pixels apart: checks the renderer's per-parcel caching."""
    from bigearthnet_s1 import simulate

    truth = json.loads(sim_old.truth_json.read_text())
    gp_anchor = truth["ground_map"]["parcel_anchor"]
    with rasterio.open(sim_old.truth_tif) as t:
        vv = t.read(1)
        a = t.transform
    ground = simulate._map_params(simulate._make_target(sim_old.tile, None, "small", 5000.0), 1)
    assert [ground.ulx, ground.uly] == gp_anchor
    _, vv_lin, _ = simulate._class_arrays()
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, vv.shape[0], 3000), rng.integers(0, vv.shape[1], 3000)
    targets = {(int((a.f - t["y"]) // 10), int((t["x"] - a.c) // 10)) for t in truth["point_targets"]["targets"]}
    n = 0
    for r, c in zip(rows, cols, strict=True):
        if (r, c) in targets:
            continue
        k, jitter = simulate._ground_class(a.c + 10 * c + 5, a.f - 10 * r - 5, ground)
        assert vv[r, c] == pytest.approx(vv_lin[k] * 10 ** (jitter / 10), rel=1e-6)
        n += 1
    assert n > 2900
