"""Killing a worker mid-tile (SIGKILL while patches are written) and re-running leaves no
partial patch and writes only the missing ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUN = r"""
import json, sys
from bigearthnet_s1 import pipeline
work = pipeline.WorkDir(sys.argv[1], sys.argv[2])
print(json.dumps(pipeline.assemble_tile(work, sys.argv[3])), flush=True)
"""


def _complete(archive: Path) -> dict[str, tuple[int, int]]:
    """Complete patch folders -> (inode, mtime_ns) of their VV file."""
    from bigearthnet_s1.archive import is_complete

    out = {}
    if archive.is_dir():
        for d in archive.iterdir():
            if d.is_dir() and d.name.startswith("S1") and is_complete(d):
                st = (d / f"{d.name}_VV.tif").stat()
                out[d.name] = (st.st_ino, st.st_mtime_ns)
    return out


def test_kill_mid_tile_then_rerun_writes_only_the_missing_patches(big_tile_work, tmp_path: Path) -> None:
    from bigearthnet_s1 import pipeline
    from bigearthnet_s1.archive import read_patch_arrays, validate_archive

    n = 24  # 576 patches
    work, key, tile = big_tile_work(n)
    archive = work.archive
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(work.root), str(archive), key],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        # wait until the writer has published a few patches, then kill it without warning
        while len(_complete(archive)) < 5:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() - t0 < 120, "the writer did not start"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _complete(archive)
    assert 5 <= len(before) < n * n, f"{len(before)} patches written before the kill: not mid-tile"
    assert not work.result_file(key).exists()  # the tile is not marked done

    # a killed writer may leave its temporary folder; nothing half-written has the final name
    names = {p.name for p in archive.iterdir() if p.is_dir() and p.name.startswith("S1")}
    assert names == set(before), "a patch folder without all its files has a final name"

    result = pipeline.assemble_tile(work, key)
    after = _complete(archive)
    assert len(after) == n * n and result["patches"] == n * n
    assert result["written"] == n * n - len(before)
    for name, ident in before.items():  # the patches written before the kill were kept, not redone
        assert after[name] == ident, name
    leftovers = [p.name for p in archive.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    report = validate_archive(archive)
    assert report.ok == n * n and report.bad == []
    # content: the patch at (col, row) holds its window of the scene
    p = tile.patches[n + 3]
    d = next(archive.glob(f"*_33UUP_{p.col}_{p.row}"))
    arrays = read_patch_arrays(d)
    r0 = (p.row - 10) * 120
    c0 = (p.col - 10) * 120
    assert abs(float(arrays["VV"][0, 0]) - (-12.0 + 0.001 * r0 - 0.0005 * c0)) < 1e-5
    assert abs(float(arrays["VH"][5, 7]) - (-19.0 + 0.001 * (r0 + 5) - 0.0005 * (c0 + 7))) < 1e-5

    again = pipeline.assemble_tile(work, key)  # finished tile: skipped
    assert again["cached"] is True and again["written"] == 0
    assert _complete(archive) == after
