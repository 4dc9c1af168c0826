"""preprocess(engine="snap") and the CLI, with a stand-in ``gpt`` (tests/graphs/conftest.py).

The stand-in writes a GeoTIFF on the grid SNAP's Terrain-Correction makes (origin at a pixel
centre, as SNAP's CrsGeoCoding has it), with values that encode each pixel's map position.
This tests OUR side — rendering, process handling, band order, cutting SNAP's grid down to
the tile window, SNAP's no-data -> NaN, atomic output — not SNAP itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from bigearthnet_s1 import preprocess as P
from bigearthnet_s1.errors import EngineUnavailableError, InputError
from bigearthnet_s1.safe import open_safe


def test_snap_engine_cuts_snap_grid_to_the_tile_window(sim_case, fake_gpt, tmp_path, monkeypatch) -> None:
    safe = open_safe(sim_case.safe)
    win = P.target_window(sim_case.tile, safe.footprint)
    t = sim_case.tile.grid.window_transform(win)
    left, top = t.c, t.f
    right, bottom = left + 10 * win.width, top - 10 * win.height
    # SNAP's scene grid is larger than the window and starts 3 px west, 4 px north of it
    monkeypatch.setenv("FAKE_GPT_BOUNDS", f"{left - 17},{bottom - 100},{right + 300},{top + 33}")
    monkeypatch.setenv("FAKE_GPT_MODE", "geotiff")
    monkeypatch.setenv("BIGEARTHNET_S1_GPT", str(fake_gpt))
    out = P.preprocess(sim_case.safe, sim_case.tile, tmp_path / "snap.tif", engine="snap", dem="flat",
                       polarisations=("VH", "VV"))
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("VH", "VV", "LAYOVER_SHADOW")
        assert ds.transform == t and (ds.width, ds.height) == (win.width, win.height)
        assert ds.tags()["ENGINE"] == "snap" and ds.tags()["GEOMETRY"] == "snap"
        vh, vv, flags = ds.read()
    # flat ellipsoid: no layover or shadow; NaN where there is no data at all
    assert np.array_equal(np.isnan(flags), np.isnan(vh) & np.isnan(vv)) and (flags[np.isfinite(flags)] == 0).all()
    with pytest.raises(InputError, match="SNAP's gpt applies its own"):
        P.preprocess(sim_case.safe, sim_case.tile, tmp_path / "esa.tif", engine="snap", dem="flat", geometry="esa")
    xc = left + 5 + 10 * np.arange(int(win.width))
    yc = top - 5 - 10 * np.arange(int(win.height))
    want_vv = np.broadcast_to((xc - 400000.0).astype(np.float32), vv.shape).copy()
    want_vh = np.broadcast_to(-(yc[:, None] - 5300000.0).astype(np.float32), vh.shape).copy()
    # SNAP columns 3..5 (no-data 0) are window columns 0..2; SNAP row 2 (-1e-30) lies north of the window
    for w in (want_vv, want_vh):
        w[:, 0:3] = np.nan
    assert np.array_equal(vv, want_vv, equal_nan=True)
    assert np.array_equal(vh, want_vh, equal_nan=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-snap", "snap.tif"]


def test_snap_engine_failure_leaves_nothing(sim_case, fake_gpt, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_GPT_MODE", "fail")
    monkeypatch.setenv("BIGEARTHNET_S1_GPT", str(fake_gpt))
    from bigearthnet_s1.gpt import GptError

    with pytest.raises(GptError, match="node Calibration"):
        P.preprocess(sim_case.safe, sim_case.tile, tmp_path / "out" / "snap.tif", engine="snap", dem="flat")
    assert list((tmp_path / "out").iterdir()) == []


def test_snap_engine_without_snap(sim_case, no_gpt_env, tmp_path) -> None:
    with pytest.raises(EngineUnavailableError, match=r"gpt was not found.*esa-snap.*--engine native"):
        P.preprocess(sim_case.safe, sim_case.tile, tmp_path / "x.tif", engine="snap")


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bigearthnet_s1.cli", "preprocess", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_cli_snap_without_gpt_stops_with_the_message(sim_case, no_gpt_env, tmp_path) -> None:
    assert shutil.which("gpt", path=no_gpt_env["PATH"]) is None
    r = _cli([str(sim_case.safe), "--tile", "33UUP", "--engine", "snap", "--out", str(tmp_path / "x.tif")], no_gpt_env)
    assert r.returncode == 1, r.stderr
    assert "bigearthnet-s1 preprocess: error: SNAP's gpt was not found" in r.stderr
    assert "esa-snap" in r.stderr and "-q -varfile" in r.stderr and "--engine native" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.tif").exists()


def test_cli_native_end_to_end(sim_case, rome_case, tmp_path) -> None:
    """`preprocess --engine native` on the simulated product and on the real product's metadata."""
    env = dict(os.environ)
    tj = tmp_path / "tile.json"
    tj.write_text(json.dumps(sim_case.tile.to_json()))
    r = _cli([str(sim_case.safe), "--tile", "33UUP", "--tile-json", str(tj), "--engine", "native",
              "--out", str(tmp_path / "sim.tif")], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "sim.tif")
    direct = P.preprocess(sim_case.safe, sim_case.tile, tmp_path / "direct.tif", dem="flat")
    with rasterio.open(tmp_path / "sim.tif") as a, rasterio.open(direct) as b:
        assert a.descriptions == ("VV", "VH", "LAYOVER_SHADOW") and np.array_equal(a.read(), b.read(), equal_nan=True)
    rj = tmp_path / "rome.json"
    rj.write_text(json.dumps(rome_case.tile.to_json()))
    r = _cli([str(rome_case.safe), "--tile", "33TTG", "--tile-json", str(rj), "--dem", rome_case.dem,
              "--polarisations", "VV", "--graph", "nocal", "--out", str(tmp_path / "rome.tif")], env)
    assert r.returncode == 0, r.stderr
    with rasterio.open(tmp_path / "rome.tif") as ds:
        assert ds.tags()["GRAPH"] == "BigEarthNet-S1-GRD-nocal" and np.isfinite(ds.read(1)).mean() > 0.95
    # a product that lacks the requested polarisation: a clear error, exit 1
    r = _cli([str(rome_case.safe), "--tile", "33TTG", "--tile-json", str(rj), "--dem", rome_case.dem,
              "--out", str(tmp_path / "vh.tif")], env)
    assert r.returncode == 1 and "polarisation(s) VH requested but not available" in r.stderr


def test_cli_tile_resolution(s2_example, tmp_path) -> None:
    """--s2-root / --time / --tile-json / whole tile: which S2 acquisition the command processes."""
    from datetime import UTC, datetime

    from bigearthnet_s1.commands.preprocess import resolve_tile
    from bigearthnet_s1.errors import TileError

    start = datetime(2017, 9, 24, 16, 0, tzinfo=UTC)
    a = resolve_tile("35VPK", s2_root=s2_example, tile_json=None, time="2018-02-04T09:42:01Z", product_start=start)
    assert a.key == "35VPK_20180204T094200" and len(a.patches) == 1
    with pytest.raises(TileError, match=r"2 acquisitions match \(35VPK_20170924T093019, 35VPK_20180204T094200\); give --time"):
        resolve_tile("35VPK", s2_root=s2_example, tile_json=None, time=None, product_start=start)
    b = resolve_tile("T33UUP", s2_root=None, tile_json=None, time="2017-06-13T10:10:31", product_start=start)
    assert b.key == "33UUP_20170613T101031" and len(b.patches) > 100  # from the bundled patch-name table
    whole = resolve_tile("33uup", s2_root=None, tile_json=None, time=None, product_start=start)
    assert whole.patches == () and whole.grid.ulx == 300000.0 and whole.sensing_time == start
    j = tmp_path / "t.json"
    j.write_text(json.dumps(a.to_json()))
    assert resolve_tile("35VPK", s2_root=None, tile_json=j, time=None, product_start=start) == a
    with pytest.raises(TileError, match="holds tile 35VPK, not 33UUP"):
        resolve_tile("33UUP", s2_root=None, tile_json=j, time=None, product_start=start)
