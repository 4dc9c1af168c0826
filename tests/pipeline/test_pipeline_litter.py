"""No hidden litter: a series of `bigearthnet-s1 build` runs, each killed with SIGKILL at the
moment one of its hidden temporaries is complete (just before its rename), then completed
runs, leaves not one dot-file in the work folder (issue 14, case 5).

The kill moments are exact, not timed: the child replaces ``os.replace`` with a function that
SIGKILLs the process when the name being published matches a pattern, so each run dies with
its temporary (the engine's scratch folder and partial GeoTIFF, an archive patch folder, the
index part, the quicklook, the merged index, the verification stamp) on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

KILL_AT = r"""
import fnmatch, os, signal, sys
pattern = sys.argv[1]
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if pattern and fnmatch.fnmatch(os.path.basename(os.fspath(src)), pattern):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from bigearthnet_s1 import cli
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def catalog_one_product(s2_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bigearthnet_s1 import demo, tiles

    tile = next(t for t in tiles.read_s2_archive(s2_example) if t.tile_id == "33UUP")
    catalog = tmp_path_factory.mktemp("catalog")
    demo._simulate(catalog, demo.product_plan(tile)[0], seed=0, tile=tile)
    return catalog


def _hidden(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


def test_killed_and_completed_runs_leave_no_dot_files(s2_example: Path, catalog_one_product: Path,
                                                      tmp_path: Path) -> None:
    work = tmp_path / "work"
    build = ["build", str(s2_example), "--tiles", "33UUP", "--catalog", "local", "--catalog-root",
             str(catalog_one_product), "--work", str(work), "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runs = [
        ".S1*.json.*.part",  # the local product's verification stamp (products/verified/)
        ".*.partial.tif",  # the preprocessed scene: the engine's scratch folder is there too
        ".S1*.tmp-*",  # an archive patch folder
        ".33UUP*.parquet.*",  # the tile's index part
        ".*.png.*.part.png",  # the quicklook
        "",  # a completed run
        ".index.parquet.*",  # the merged index (summary of a run with nothing left to do)
        "",  # a completed run
    ]
    for pattern in runs:
        proc = subprocess.run([sys.executable, "-c", KILL_AT, pattern, *build], capture_output=True, text=True,
                              timeout=300, env=env)
        if pattern:
            assert proc.returncode == -signal.SIGKILL, (pattern, proc.returncode, proc.stderr[-3000:])
            assert _hidden(work), f"killed at {pattern!r} but no temporary was left: the kill point is wrong"
        else:
            assert proc.returncode == 0, proc.stderr[-3000:]
            report = json.loads(proc.stdout)
            assert report["ok"] == 1 and report["failed"] == {}
            assert _hidden(work) == [], f"dot-files after a completed run: {_hidden(work)}"
    from bigearthnet_s1.archive import validate_archive

    assert validate_archive(work / "archive").ok == 1
    assert (work / "quicklooks" / "33UUP_20170613T101031.png").stat().st_size > 1000
