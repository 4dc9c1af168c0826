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
