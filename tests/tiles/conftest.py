"""Fixtures for the tiles tests: small editable copies of the real BigEarthNet-S2 metadata."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bigearthnet_s1 import tiles


@pytest.fixture
def s2_json_copy(s2_example: Path, tmp_path: Path) -> Path:
    """The six real S2 example patch folders with only their JSON (tiles reads nothing else)."""
    root = tmp_path / "s2"
    for d in sorted(p for p in s2_example.iterdir() if p.is_dir()):
        (root / d.name).mkdir(parents=True)
        shutil.copy2(d / f"{d.name}_labels_metadata.json", root / d.name)
    return root


@pytest.fixture
def edit_json() -> Callable[[Path, str, Callable[[dict], dict]], Path]:
    """Rewrite one patch's JSON in place: edit(root, patch_name, fn(meta) -> meta)."""

    def edit(root: Path, name: str, fn: Callable[[dict], dict]) -> Path:
        path = root / name / f"{name}_labels_metadata.json"
        meta = json.loads(path.read_text())
        path.write_text(json.dumps(fn(meta)))
        return path

    return edit


@pytest.fixture(scope="session")
def table_acquisitions() -> list[tiles.TileAcquisition]:
    """All tile acquisitions of the full patch-name table (read once per session, ~4 s)."""
    return tiles.read_patch_table()


@pytest.fixture(scope="session")
def s2_example_meta(s2_example: Path) -> dict[str, dict]:
    """S2 patch name -> its real JSON metadata."""
    return {
        d.name: json.loads((d / f"{d.name}_labels_metadata.json").read_text())
        for d in sorted(s2_example.iterdir())
        if d.is_dir()
    }


@pytest.fixture(scope="session")
def s1_example_meta(s1_example: Path) -> dict[str, dict]:
    """S1 patch name -> its real JSON metadata."""
    return {
        d.name: json.loads((d / f"{d.name}_labels_metadata.json").read_text())
        for d in sorted(s1_example.iterdir())
        if d.is_dir()
    }
