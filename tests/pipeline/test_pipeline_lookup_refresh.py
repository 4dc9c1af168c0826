"""The footprint lookup reuses a saved search only while it can still be complete.

A retried task (minutes later) reuses it; a re-run days later, while the hub may still publish
products of the window, searches again; once the window has settled the search is final.
Real manifests (S1B over Rome) in a real local catalogue folder.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bigearthnet_s1 import pipeline

REAL = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
LATER = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5372"  # a reprocessing, published later


def _add(catalog: Path, src: Path, name: str) -> None:
    (catalog / f"{name}.SAFE").mkdir(parents=True)
    shutil.copy(src / "manifest.safe", catalog / f"{name}.SAFE" / "manifest.safe")


def test_lookup_reuses_fresh_or_settled_searches_and_refreshes_others(tmp_path: Path, s1b_rome_safe: Path,
                                                                       one_patch_tile) -> None:
    work = pipeline.WorkDir(tmp_path / "work")
    tile = one_patch_tile("33TTG", 32633, 199980.0, 4700040.0, 12.5, 41.9,
                          datetime(2021, 12, 23, 10, 0, tzinfo=UTC), "Continuous urban fabric")
    pipeline.write_json(work.tile_file(tile.key), tile.to_json())
    catalog = tmp_path / "catalog"
    _add(catalog, s1b_rome_safe, REAL)
    first = datetime(2021, 12, 25, tzinfo=UTC)  # two days after sensing: the window is still open
    kw = {"catalog": "local", "catalog_root": str(catalog), "max_window": timedelta(days=9)}

    got = pipeline.lookup_footprint(work, tile.key, now=first, **kw)
    assert got == {"key": tile.key, "candidates": 1, "cached": False}
    _add(catalog, s1b_rome_safe, LATER)

    # A retry an hour later reuses the search (no new query)
    assert pipeline.lookup_footprint(work, tile.key, now=first + timedelta(hours=1), **kw)["cached"] is True
    # A re-run three days later asks again and sees the product published meanwhile
    again = pipeline.lookup_footprint(work, tile.key, now=first + timedelta(days=3), **kw)
    assert again == {"key": tile.key, "candidates": 2, "cached": False}
    names = {p["name"] for p in pipeline.read_json(work.candidates_file(tile.key), "c")["products"]}
    assert names == {REAL, LATER}

    # Searched after the window (sensing + 9 d) had settled (+2 d): final, reused even a year on
    settled = datetime(2022, 1, 4, tzinfo=UTC)
    assert pipeline.lookup_footprint(work, tile.key, now=settled, **kw)["cached"] is False
    shutil.rmtree(catalog / f"{LATER}.SAFE")
    assert pipeline.lookup_footprint(work, tile.key, now=settled + timedelta(days=365), **kw) == {
        "key": tile.key, "candidates": 2, "cached": True}
