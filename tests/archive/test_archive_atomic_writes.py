"""The shared atomic-write helpers (bigearthnet_s1.atomic) used by every writer of the library."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from bigearthnet_s1.atomic import atomic_path, atomic_write_bytes, atomic_write_text, fsync_dir


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_write_replaces_whole_file_with_plain_mode(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old content that is longer than the new one\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # the mode open() gives here (0o666 less the umask)
    assert atomic_write_text(target, "név\n") == target
    assert target.read_bytes() == "név\n".encode()
    assert _mode(target) == _mode(plain)  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "summary.json"]


def test_failed_writer_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "tile.tif"
    atomic_write_bytes(target, b"first")
    seen: list[Path] = []
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(target, suffix=".part.tif") as tmp:
            seen.append(tmp)
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"first"
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".tile.tif.") and seen[0].name.endswith(".part.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tile.tif"]


def test_atomic_path_serves_a_rasterio_writer(tmp_path: Path) -> None:
    target = tmp_path / "out.tif"
    data = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    with atomic_path(target, suffix=".part.tif") as tmp:
        assert not target.exists()
        with rasterio.open(tmp, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32",
                           crs="EPSG:32633", transform=Affine(10, 0, 300000, 0, -10, 5000000)) as ds:
            ds.write(data)
    with rasterio.open(target) as ds:
        np.testing.assert_array_equal(ds.read(), data)
        assert ds.transform.c == 300000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_missing_folder_raises_and_fsync_dir_is_best_effort(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nope" / "a.bin", b"x")
    fsync_dir(tmp_path)
    fsync_dir(tmp_path / "nope")  # absent folder: ignored, no error


KILLED_WRITER = r"""
import os, signal, sys
from pathlib import Path
from bigearthnet_s1.atomic import atomic_path, temporary_dir
folder = Path(sys.argv[1])
with temporary_dir(folder / "scene") as scratch:
    (scratch / "flat-dem.tif").write_bytes(b"dem")
    with atomic_path(folder / "scene.tif", suffix=".partial.tif") as tmp:
        tmp.write_bytes(b"half a scene")
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup runs: both temporaries stay
"""


def test_sweep_removes_a_killed_writers_temporaries_but_not_a_live_ones(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bigearthnet_s1.atomic import is_temporary_name, sweep, temporary_dir

    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(n.startswith(".scene") and is_temporary_name(n, is_dir=(tmp_path / n).is_dir())
                                  for n in left)
    (tmp_path / "scene.tif").write_bytes(b"published")  # not a temporary: kept
    (tmp_path / ".keep-me").write_text("a user's hidden file")  # not ours: kept
    with atomic_path(tmp_path / "live.json") as live, temporary_dir(tmp_path / "live") as live_dir:
        live.write_text("{}")
        assert sweep(tmp_path) == 2  # the killed writer's two; the live writer's are locked
        assert live.exists() and live_dir.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep-me", "live.json", "scene.tif"]
    # earlier versions took no lock: their names are swept as stale
    (tmp_path / ".index.parquet.0badcafe.part").write_bytes(b"")
    (tmp_path / f".S1A_X.SAFE.tmp-{'q1w2e3r4'}").mkdir()
    (tmp_path / ".33UUP_S1A.k3j4h5g6").mkdir()
    assert sweep(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keep-me", "live.json", "scene.tif"]
