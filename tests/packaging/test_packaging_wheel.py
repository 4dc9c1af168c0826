"""The wheel works without the repository: built with ``pip wheel --no-deps``, installed into a
fresh virtual environment, run from a folder outside the repository with no project
environment variables.

The fresh venv sees the test venv's packages through a ``.pth`` line naming its
site-packages (a plain path, so the test venv's own ``.pth`` files, among them the editable
install of this project, are not processed): fast and offline, while ``bigearthnet_s1`` itself
can only come from the wheel. The wheel is built from a copy of the repository's files (what
``git ls-files`` lists, untracked but not ignored files included) with the pinned setuptools
(``--no-build-isolation``), so no stale ``build/`` folder of a working tree leaks into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = ROOT / "include" / "graphs"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    python: Path
    cli: Path
    site: Path
    outside: Path  # a working folder outside the repository


def _source_files() -> list[str]:
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
        return sorted({f for f in out.decode().split("\0") if f and os.path.lexists(ROOT / f)})
    skip = {".git", ".venv", "build", "dist", "demo-work", ".pytest_cache", "__pycache__"}
    return sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                  if not p.is_dir() and not skip & set(p.relative_to(ROOT).parts) and ".egg-info" not in str(p))


def clean_env(**extra: str) -> dict[str, str]:
    """No project variables, no PYTHONPATH: what a user's shell has."""
    env = {k: os.environ[k] for k in ("HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src-copy"
    for rel in _source_files():
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / rel).is_symlink():
            os.symlink(os.readlink(ROOT / rel), dst)
        else:
            shutil.copy2(ROOT / rel, dst)
    assert (src / "src" / "bigearthnet_s1" / "graphs").is_symlink()
    dist = base / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", "-q", "-w", str(dist), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = dist.glob("bigearthnet_s1-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_test_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                        "--disable-pip-version-check", "-q", str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    outside = base / "elsewhere"
    outside.mkdir()
    assert ROOT not in outside.parents
    return Installed(wheel, venv, python, venv / "bin" / "bigearthnet-s1", site, outside)


def test_wheel_carries_the_graphs_byte_for_byte(installed: Installed) -> None:
    xmls = sorted(p.name for p in GRAPHS.glob("*.xml"))
    assert xmls == ["s1_grd_full.xml", "s1_grd_nocal.xml"]
    listing = subprocess.run(["unzip", "-l", str(installed.wheel)], capture_output=True, text=True, check=True).stdout \
        if shutil.which("unzip") else "\n".join(zipfile.ZipFile(installed.wheel).namelist())
    for name in xmls:
        assert f"bigearthnet_s1/graphs/{name}" in listing
    with zipfile.ZipFile(installed.wheel) as zf:
        names = zf.namelist()
        for name in xmls:
            assert zf.read(f"bigearthnet_s1/graphs/{name}") == (GRAPHS / name).read_bytes()
        assert "bigearthnet_s1/py.typed" in names and "bigearthnet_s1/data/egm96_15.i2.xz" in names
        assert not [n for n in names if n.startswith(("tests/", "include/", "bench/"))]
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert not [r for r in runtime if r.startswith(("xarray-sentinel", "sarsen", "pytest"))]
    assert any(r.startswith("affine") for r in runtime) and any(r.startswith("urllib3") for r in runtime)


def test_installed_package_is_the_wheel(installed: Installed) -> None:
    code = ("import json, bigearthnet_s1, bigearthnet_s1.graph as g, rasterio; "
            "print(json.dumps([bigearthnet_s1.__file__, str(g.graphs_dir()), [p.name for p in g.graphs_dir().iterdir()]]))")
    r = subprocess.run([str(installed.python), "-c", code], cwd=installed.outside, env=clean_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    module, graphs, names = json.loads(r.stdout)
    assert Path(module).is_relative_to(installed.site)
    assert Path(graphs) == installed.site / "bigearthnet_s1" / "graphs"
    assert sorted(names) == ["s1_grd_full.xml", "s1_grd_nocal.xml"]


def test_cli_simulate_and_preprocess_from_outside_the_repository(installed: Installed, s2_example: Path) -> None:
    """``--help``, ``simulate --size small`` over the 33UUP example patch, ``preprocess --engine
    native`` of that product onto the patch: a GeoTIFF on the S2 grid whose dB values match
    the simulator's ground truth."""
    run = dict(cwd=installed.outside, env=clean_env(), capture_output=True, text=True, timeout=900)
    r = subprocess.run([str(installed.cli), "--help"], **run)
    assert r.returncode == 0 and "simulate" in r.stdout and "preprocess" in r.stdout, r.stderr

    r = subprocess.run([str(installed.cli), "simulate", "--tile", "33UUP", "--s2-root", str(s2_example), "--time",
                        "2017-06-13T16:50:43", "--size", "small", "--seed", "1", "--out", "sim"], **run)
    assert r.returncode == 0, r.stderr[-3000:]
    made = json.loads(r.stdout.strip().splitlines()[-1])
    safe = installed.outside / made["safe"]
    assert safe.is_dir() and safe.name.startswith("S1A_IW_GRDH_1SDV_20170613T165043_")

    r = subprocess.run([str(installed.cli), "preprocess", str(safe), "--tile", "33UUP", "--s2-root", str(s2_example),
                        "--time", "2017-06-13T10:10:31Z", "--engine", "native", "--dem", "flat", "--out", "33UUP.tif"],
                       **run)
    assert r.returncode == 0, r.stderr[-3000:]
    out = installed.outside / "33UUP.tif"
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.descriptions == ("VV", "VH", "LAYOVER_SHADOW")
        assert ds.dtypes == ("float32",) * 3
        # the example patch 87_48 of 33UUP (grid corner 300000, 5400000), 120 x 120 px at 10 m
        assert (ds.transform.c, ds.transform.f, ds.transform.a, ds.transform.e) == (404400.0, 5342400.0, 10.0, -10.0)
        assert ds.shape == (120, 120)
        assert ds.tags()["ENGINE"] == "native" and ds.tags()["UNITS"] == "dB"
        db = ds.read((1, 2))
        assert (ds.read(3) == 0).all()  # the flat DEM: no layover, no shadow
        bounds = ds.bounds
    with rasterio.open(installed.outside / made["truth_tif"]) as t:
        truth = t.read(window=t.window(*bounds))
    assert np.isfinite(db).all()
    diff = db - 10 * np.log10(truth)
    assert np.abs(np.median(diff, axis=(1, 2))).max() < 0.5  # speckle-filtered vs truth: unbiased
    assert np.percentile(np.abs(diff), 90) < 3.0
    assert not list(ROOT.glob("33UUP.tif")) and not (ROOT / "sim").exists()  # nothing written into the repository
