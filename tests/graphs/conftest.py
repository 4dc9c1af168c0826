"""Fixtures for the graphs/gpt/engine tests."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

# A stand-in for SNAP's gpt: a small Python program that checks the arguments it receives
# (graph file, -P, -q, -c, -J-Xmx), then behaves as FAKE_GPT_MODE says. It tests OUR
# process handling (command line, streaming, timeouts, exit codes, partial outputs), not SNAP.
FAKE_GPT = r'''
import json, os, subprocess, sys, time
import xml.etree.ElementTree as ET

args = sys.argv[1:]
log = os.environ.get("FAKE_GPT_LOG")
if log:
    with open(log, "w") as f:
        json.dump(args, f)

def fail(msg, code=2):
    sys.stderr.write(msg + "\n"); sys.stderr.flush(); sys.exit(code)

if not args or not args[0].endswith(".xml") or not os.path.isfile(args[0]):
    fail("Error: Either operator name or graph XML file must be given")
root = ET.parse(args[0]).getroot()
if root.tag != "graph":
    fail("Error: not a graph")
out = None
for node in root.findall("node"):
    if node.findtext("operator") == "Write":
        out = node.find("parameters").findtext("file")
if not out:
    fail("Error: graph has no Write node with a file")
i = 1
params = {}
while i < len(args):
    a = args[i]
    if a.startswith("-P"):
        k, _, v = a[2:].partition("=")
        if not k or not _:
            fail("Error: bad -P " + a)
        params[k] = v
    elif a in ("-q", "-c"):
        i += 1
        if i >= len(args):
            fail("Error: option " + a + " needs a value")
        if a == "-q" and not args[i].isdigit():
            fail("Error: -q needs an integer")
    elif a.startswith("-J-Xmx") or a in ("-e", "-x"):
        pass
    else:
        fail("Error: Unknown option '" + a + "'")
    i += 1
expect = os.environ.get("FAKE_GPT_EXPECT")
if expect:
    want = json.loads(expect)
    if args[1:] != want:
        fail("Error: arguments " + json.dumps(args[1:]) + " != expected " + json.dumps(want))
mode = os.environ.get("FAKE_GPT_MODE", "ok")
if mode == "ok":
    for p in ("Executing processing graph\n", "....10%", "....20%....30%", "....", "100% done.\n"):
        sys.stdout.write(p); sys.stdout.flush(); time.sleep(0.01)
    with open(out, "wb") as f:
        f.write(b"II*\x00fake tiff written by the stand-in gpt")
    sys.exit(0)
if mode == "fail":
    sys.stdout.write("Executing processing graph\n....10%"); sys.stdout.flush()
    sys.stderr.write("SEVERE: org.esa.snap.core.gpf.graph.GraphProcessor: boom\n")
    sys.stderr.write("Error: [NodeId: Calibration] Mission SENTINEL-1X is not supported\n")
    sys.exit(1)
if mode == "partial":
    with open(out, "wb") as f:
        f.write(b"II*\x00half")
    sys.stderr.write("Error: [NodeId: Write] java.io.IOException: No space left on device\n")
    sys.exit(1)
if mode == "hang":
    with open(out, "wb") as f:
        f.write(b"II*\x00started")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ["FAKE_GPT_CHILD"], "w") as f:
        f.write(str(child.pid))
    sys.stdout.write("....10%"); sys.stdout.flush()
    time.sleep(120)
    sys.exit(0)
if mode == "geotiff":
    # Write what SNAP's Terrain-Correction + Write would: a GeoTIFF on SNAP's grid, which puts
    # standardGridOrigin at a pixel CENTRE (CrsGeoCoding reference pixel 0.5, 0.5), covering
    # FAKE_GPT_BOUNDS (map CRS). Pixel values encode their centre: bands named *VV* hold
    # x - 400000, *VH* hold -(y - 5300000); SNAP's no-data 0 in columns 3..5, -1e-30 in row 2.
    import math
    import numpy as np
    import rasterio
    from affine import Affine
    tc = [n for n in root.findall("node") if n.findtext("operator") == "Terrain-Correction"][0].find("parameters")
    s = float(tc.findtext("pixelSpacingInMeter"))
    ox, oy = float(tc.findtext("standardGridOriginX")), float(tc.findtext("standardGridOriginY"))
    left, bottom, right, top = (float(v) for v in os.environ["FAKE_GPT_BOUNDS"].split(","))
    e = math.floor((left - ox) / s) * s + ox
    n = math.ceil((top - oy) / s) * s + oy
    w, h = math.ceil((right - e) / s), math.ceil((n - bottom) / s)
    xc = e + s * np.arange(w)[None, :] + 0 * np.arange(h)[:, None]
    yc = n - s * np.arange(h)[:, None] + 0 * np.arange(w)[None, :]
    names = tc.findtext("sourceBands").split(",")
    bands = []
    for name in names:
        b = (xc - 400000.0) if "VV" in name else -(yc - 5300000.0)
        b = b.astype("float32")
        b[:, 3:6] = 0.0
        b[2, :] = -1e-30
        bands.append(b)
    with rasterio.open(out, "w", driver="GTiff", width=w, height=h, count=len(bands), dtype="float32",
                       crs=tc.findtext("mapProjection"), transform=Affine(s, 0, e - s / 2, 0, -s, n + s / 2)) as ds:
        ds.write(np.stack(bands))
    print("....10%....100% done.")
    sys.exit(0)
if mode == "noout":
    sys.stdout.write("100% done.\n")
    sys.exit(0)
fail("Error: unknown FAKE_GPT_MODE " + mode)
'''


@pytest.fixture
def fake_gpt(tmp_path: Path) -> Path:
    """Path of an executable stand-in ``gpt`` (see FAKE_GPT above)."""
    d = tmp_path / "fake-snap" / "bin"
    d.mkdir(parents=True)
    exe = d / "gpt"
    exe.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_GPT))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def no_gpt_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Environment without any gpt: PATH holds only the venv's bin and /usr/bin:/bin."""
    monkeypatch.delenv("BIGEARTHNET_S1_GPT", raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), str(empty), "/usr/bin", "/bin"])
    monkeypatch.setenv("PATH", path)
    return dict(os.environ)


# --------------------------------------------------------------------------------------
# products for the native executor
# --------------------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Case:
    """A product, the S2 tile acquisition it is processed for, and the DEM to use."""

    safe: Path
    tile: object  # TileAcquisition
    dem: str
    pols: tuple[str, ...]


def _tile(tile_id: str, cols: tuple[int, ...], rows: tuple[int, ...], when: datetime):
    from bigearthnet_s1.tiles import MapGrid, Patch, TileAcquisition, mgrs_tile_origin

    epsg, ulx, uly = mgrs_tile_origin(tile_id)
    stamp = when.strftime("%Y%m%dT%H%M%S")
    patches = tuple(
        Patch(f"S2A_MSIL2A_{stamp}_{c}_{r}", c, r, ("Pastures",), ulx + 1200 * c, uly - 1200 * r,
              ulx + 1200 * (c + 1), uly - 1200 * (r + 1))
        for r in rows for c in cols
    )
    return TileAcquisition(tile_id, when, None, MapGrid.tile(epsg, ulx, uly), patches)


@pytest.fixture(scope="session")
def rome_case(tmp_path_factory: pytest.TempPathFactory, s1b_rome_safe: Path, rome_dem: Path) -> Case:
    """The real S1B Rome product (real annotation, calibration, noise) copied, with DN that
    this fixture writes (Gamma speckle, ENL 4.4, around DN 300, seed 0) into the window that
    2 x 2 patches of tile 33TTG over Rome need (+64 px); zeros elsewhere (sparse TIFF)."""
    import shutil

    import rasterio
    from rasterio.windows import Window

    from bigearthnet_s1.geocoding import radar_window_for_grid
    from bigearthnet_s1.preprocess import target_window
    from bigearthnet_s1.safe import open_safe

    root = tmp_path_factory.mktemp("rome")
    dst = root / s1b_rome_safe.name
    shutil.copytree(s1b_rome_safe, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    tile = _tile("33TTG", (76, 77), (38, 39), datetime(2021, 12, 23, 10, 0, 0, tzinfo=UTC))
    with open_safe(dst) as safe:
        ann = safe.annotation("VV")
        win = target_window(tile, safe.footprint)
        rw = radar_window_for_grid(ann, str(rome_dem), crs=tile.grid.crs, transform=tile.grid.window_transform(win),
                                   shape=(int(win.height), int(win.width)), margin=32)
    big = Window(int(rw.col_off) - 64, int(rw.row_off) - 64, int(rw.width) + 128, int(rw.height) + 128)
    rng = np.random.default_rng(0)
    dn = np.sqrt(rng.gamma(4.4, 1 / 4.4, (int(big.height), int(big.width))) * 300.0**2).astype(np.uint16)
    meas = next((dst / "measurement").iterdir())
    meas.unlink()
    with rasterio.open(meas, "w", driver="GTiff", width=ann.samples, height=ann.lines, count=1, dtype="uint16",
                       tiled=True, blockxsize=512, blockysize=512, compress="zstd", SPARSE_OK=True) as ds:
        ds.write(dn, 1, window=big)
    return Case(dst, tile, str(rome_dem), ("VV",))


@pytest.fixture(scope="session")
def sim_case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """A simulated S1A VV+VH product (simulate.py, seed 1) for 2 x 2 patches of 33UUP
    (the BigEarthNet example's tile and date), flat terrain."""
    from bigearthnet_s1.simulate import simulate_product

    tile = _tile("33UUP", (87, 88), (48, 49), datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC))
    safe = simulate_product(tmp_path_factory.mktemp("sim"), tile=tile,
                            time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC), seed=1)
    return Case(safe, tile, "flat", ("VV", "VH"))
