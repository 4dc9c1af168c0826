"""Fixtures for the archive tests: the six real example pairs ready to feed the writer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

from bigearthnet_s1 import tiles
from bigearthnet_s1.archive import SceneRef


@dataclass(frozen=True)
class ExamplePair:
    s1_dir: Path  # the real BigEarthNet-S1 patch folder
    meta: dict  # its JSON
    tile: tiles.TileAcquisition  # read from the real S2 counterpart
    patch: tiles.Patch
    scene: SceneRef
    vv: np.ndarray
    vh: np.ndarray


@pytest.fixture(scope="session")
def example_acquisitions(s2_example: Path) -> list[tiles.TileAcquisition]:
    return tiles.read_s2_archive(s2_example)


@pytest.fixture(scope="session")
def example_pairs(s1_example: Path, example_acquisitions: list[tiles.TileAcquisition]) -> list[ExamplePair]:
    by_s2 = {p.s2_name: (a, p) for a in example_acquisitions for p in a.patches}
    pairs = []
    for d in sorted(p for p in s1_example.iterdir() if p.is_dir()):
        meta = json.loads((d / f"{d.name}_labels_metadata.json").read_text())
        tile, patch = by_s2[meta["corresponding_s2_patch"]]
        arrays = {}
        for pol in ("VV", "VH"):
            with rasterio.open(d / f"{d.name}_{pol}.tif") as ds:
                arrays[pol] = ds.read(1)
        pairs.append(
            ExamplePair(d, meta, tile, patch, SceneRef.from_scene_id(meta["scene_source"]), arrays["VV"], arrays["VH"])
        )
    assert len(pairs) == 6
    return pairs
