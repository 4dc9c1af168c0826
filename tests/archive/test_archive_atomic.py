"""A patch appears whole or not at all; a re-run completes and skips what exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from bigearthnet_s1 import archive, patch_folder, tiles
from bigearthnet_s1.errors import ArchiveError


def _visible(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.name != "index")


def test_failure_on_the_second_file_leaves_nothing(example_pairs, tmp_path: Path, monkeypatch) -> None:
    pair = example_pairs[0]
    calls = {"n": 0}
    real_write = patch_folder._write_file

    def flaky(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(patch_folder, "_write_file", flaky)
    with pytest.raises(ArchiveError, match=f"cannot write patch .*{pair.s1_dir.name}.*No space"):
        archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
    assert list(tmp_path.iterdir()) == []  # no patch, no temporary folder
    monkeypatch.setattr(patch_folder, "_write_file", real_write)
    out = archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
    assert archive.check_patch(out) == []


def test_failing_rename_leaves_nothing(example_pairs, tmp_path: Path, monkeypatch) -> None:
    pair = example_pairs[1]

    def broken_replace(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(archive.os, "replace", broken_replace)
    with pytest.raises(ArchiveError, match="Input/output error"):
        archive.write_patch(tmp_path, pair.tile, pair.patch, pair.scene, pair.vv, pair.vh)
    assert list(tmp_path.iterdir()) == []


_WRITER = textwrap.dedent(
    """
    import sys, time, json
    import numpy as np
    from bigearthnet_s1 import archive, patch_folder, tiles

    root, tile_json = sys.argv[1], sys.argv[2]
    tile = tiles.TileAcquisition.from_json(json.load(open(tile_json)))
    scene = archive.SceneRef.from_scene_id(
        "S1A_IW_GRDH_1SDV_20170617T064724_20170617T064749_017070_01C718_CED2")
    real_write = patch_folder._write_file

    def slow_write(path, data):  # linger inside each patch so the kill lands mid-patch
        real_write(path, data)
        time.sleep(0.01)

    patch_folder._write_file = slow_write
    for i, p in enumerate(tile.patches):
        rng = np.random.default_rng(p.col * 100 + p.row)
        vv = rng.normal(-10, 3, (120, 120)).astype("float32")
        vh = vv - 7
        archive.write_patch(root, tile, p, scene, vv, vh)
        print(i + 1, flush=True)
    """
)


def _grid_tile(n: int) -> tiles.TileAcquisition:
    """Tile 29UPU with an n x n block of patches at the grid origin."""
    epsg, ulx, uly = tiles.mgrs_tile_origin("29UPU")
    grid = tiles.MapGrid.tile(epsg, ulx, uly)
    patches = []
    for row in range(n):
        for col in range(n):
            x0, y0, x1, y1 = grid.patch_bounds(col, row)
            patches.append(tiles.Patch(f"S2A_MSIL2A_20170617T113321_{col}_{row}", col, row, ("Pastures",), x0, y0, x1, y1))
    from datetime import UTC, datetime

    return tiles.TileAcquisition("29UPU", datetime(2017, 6, 17, 11, 33, 21, tzinfo=UTC), None, grid, tuple(patches))


def test_killed_writer_leaves_only_whole_patches_and_rerun_completes(tmp_path: Path, monkeypatch) -> None:
    import json

    n = 12
    tile = _grid_tile(n)
    root = tmp_path / "archive"
    tile_json = tmp_path / "tile.json"
    tile_json.write_text(json.dumps(tile.to_json()))
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), str(tile_json)], stdout=subprocess.PIPE, text=True
    )
    try:
        done = 0
        while done < 20:
            line = proc.stdout.readline()
            assert line, "writer ended early"
            done = int(line)
        # The child prints between patches; give it a moment to get into the next one (it
        # spends almost all its time inside a patch: 10 ms after each file) before killing.
        time.sleep(0.015)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    visible = _visible(root)
    assert 20 <= len(visible) < n * n
    for d in visible:  # every visible patch is whole and valid
        assert archive.check_patch(d) == [], d
    leftovers = [p for p in root.iterdir() if p.name.startswith(".")]
    assert leftovers and all(patch_folder._TMP_MARK in p.name for p in leftovers)  # the interrupted patch

    # re-run over the whole tile: the finished patches are skipped, the rest written
    written: list[str] = []
    real_write = patch_folder._write_file
    monkeypatch.setattr(patch_folder, "_write_file", lambda p, d: (written.append(os.path.basename(p)), real_write(p, d)))
    scene = archive.SceneRef.from_scene_id("S1A_IW_GRDH_1SDV_20170617T064724_20170617T064749_017070_01C718_CED2")
    vv = np.empty((n * 120, n * 120), np.float32)
    for p in tile.patches:
        rng = np.random.default_rng(p.col * 100 + p.row)
        vv[p.row * 120 : (p.row + 1) * 120, p.col * 120 : (p.col + 1) * 120] = rng.normal(-10, 3, (120, 120))
    rows = archive.write_tile_patches(
        root, tile, vv, vv - 7, window=Window(0, 0, n * 120, n * 120), patch_scenes={p.s2_name: scene for p in tile.patches}
    )
    assert len(rows) == n * n
    assert len(written) == 3 * (n * n - len(visible))
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # dead writer's temporary removed
    report = archive.validate_archive(root)
    assert (report.ok, report.bad) == (n * n, [])
    # values written by the killed run and by the re-run agree with the same recipe
    for d in visible[:3] + _visible(root)[-3:]:
        col, row = (int(x) for x in d.name.split("_")[-2:])
        expected = np.random.default_rng(col * 100 + row).normal(-10, 3, (120, 120)).astype(np.float32)
        np.testing.assert_array_equal(archive.read_patch_arrays(d)["VV"], expected)


def test_clean_temporaries_keeps_live_writers(tmp_path: Path) -> None:

    live = tmp_path / f".X{patch_folder._TMP_MARK}{patch_folder._hostname()}-{os.getpid()}-abcd1234"
    dead = tmp_path / f".Y{patch_folder._TMP_MARK}{patch_folder._hostname()}-999999999-abcd1234"
    foreign = tmp_path / f".Z{patch_folder._TMP_MARK}otherhost-1-abcd1234"
    for d in (live, dead, foreign):
        d.mkdir()
    assert archive.clean_temporaries(tmp_path) == 1
    assert live.exists() and foreign.exists() and not dead.exists()
    os.utime(foreign, (0, 0))  # a day-old leftover from another host
    assert archive.clean_temporaries(tmp_path) == 1 and not foreign.exists()
