"""A cleared or re-run footprint lookup sees the catalogue as it is now.

A saved search is reused only for the same catalogue, window and footprint, never when it
found nothing or could not read every product, and for a local catalogue only while the
folder is unchanged (names, sizes, modification times of the products). The case that
motivated it: a tile failed because its products were missing from the local catalogue; the
user put them back and cleared the task, and the empty saved search was reused.
Real manifests (S1B over Rome) in a real local catalogue folder.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bigearthnet_s1 import pipeline
from bigearthnet_s1.catalog.local import LocalCatalog

REAL = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
LATER = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5372"  # a reprocessing, published later


def _add(catalog: Path, src: Path, name: str) -> Path:
    (catalog / f"{name}.SAFE").mkdir(parents=True)
    return Path(shutil.copy(src / "manifest.safe", catalog / f"{name}.SAFE" / "manifest.safe"))


@pytest.fixture
def rome(tmp_path: Path, one_patch_tile) -> tuple[pipeline.WorkDir, str]:
    work = pipeline.WorkDir(tmp_path / "work")
    tile = one_patch_tile("33TTG", 32633, 199980.0, 4700040.0, 12.5, 41.9,
                          datetime(2021, 12, 23, 10, 0, tzinfo=UTC), "Continuous urban fabric")
    pipeline.write_json(work.tile_file(tile.key), tile.to_json())
    return work, tile.key


def _names(work: pipeline.WorkDir, key: str) -> set[str]:
    return {p["name"] for p in pipeline.read_json(work.candidates_file(key), "c")["products"]}


def test_a_cleared_lookup_sees_products_put_back_into_the_local_catalogue(
        rome, tmp_path: Path, s1b_rome_safe: Path) -> None:
    work, key = rome
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    kw = {"catalog": "local", "catalog_root": str(catalog), "max_window": timedelta(days=9)}
    now = datetime(2021, 12, 25, tzinfo=UTC)

    # products missing: the search finds nothing, and an empty search is never reused,
    # not even a minute later with the folder unchanged
    assert pipeline.lookup_footprint(work, key, now=now, **kw) == {"key": key, "candidates": 0, "cached": False}
    assert pipeline.lookup_footprint(work, key, now=now + timedelta(minutes=1), **kw)["cached"] is False

    # the user puts the product back and clears the task a minute later: found
    _add(catalog, s1b_rome_safe, REAL)
    got = pipeline.lookup_footprint(work, key, now=now + timedelta(minutes=2), **kw)
    assert got == {"key": key, "candidates": 1, "cached": False}
    assert _names(work, key) == {REAL}

    # an unchanged folder: the saved search stands, however old
    assert pipeline.lookup_footprint(work, key, now=now + timedelta(days=400), **kw) == {
        "key": key, "candidates": 1, "cached": True}

    # a product added (within the old 6 h "fresh" age): searched again
    _add(catalog, s1b_rome_safe, LATER)
    assert pipeline.lookup_footprint(work, key, now=now + timedelta(minutes=3), **kw) == {
        "key": key, "candidates": 2, "cached": False}
    # a product removed (long after the window settled): searched again
    shutil.rmtree(catalog / f"{LATER}.SAFE")
    assert pipeline.lookup_footprint(work, key, now=now + timedelta(days=400), **kw) == {
        "key": key, "candidates": 1, "cached": False}
    assert _names(work, key) == {REAL}


def test_a_rewritten_manifest_or_other_inputs_are_searched_again(rome, tmp_path: Path, s1b_rome_safe: Path) -> None:
    work, key = rome
    catalog = tmp_path / "catalog"
    manifest = _add(catalog, s1b_rome_safe, REAL)
    kw = {"catalog": "local", "catalog_root": str(catalog), "max_window": timedelta(days=9)}
    assert pipeline.lookup_footprint(work, key, **kw)["cached"] is False
    assert pipeline.lookup_footprint(work, key, **kw)["cached"] is True

    st = manifest.stat()  # the product rewritten in place (same name and size, new time)
    os.utime(manifest, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert pipeline.lookup_footprint(work, key, **kw)["cached"] is False
    assert pipeline.lookup_footprint(work, key, **kw)["cached"] is True

    # another window, another folder with the same products: other inputs, a new search
    assert pipeline.lookup_footprint(work, key, **{**kw, "max_window": timedelta(days=6)})["cached"] is False
    other = tmp_path / "copy"
    shutil.copytree(catalog, other)
    assert pipeline.lookup_footprint(work, key, **{**kw, "catalog_root": str(other)})["cached"] is False
    saved = pipeline.read_json(work.candidates_file(key), "c")
    assert saved["query"]["root"] == str(other) and saved["complete"] is True

    # the folder named in the Connection's extra instead of the param: the same search
    again = pipeline.lookup_footprint(work, key, catalog="local", catalog_options={"root": str(other)},
                                      max_window=timedelta(days=9))
    assert again["cached"] is True


def test_a_search_that_could_not_read_every_product_is_not_reused(rome, tmp_path: Path, s1b_rome_safe: Path) -> None:
    work, key = rome
    catalog = tmp_path / "catalog"
    _add(catalog, s1b_rome_safe, REAL)
    broken = catalog / f"{LATER}.SAFE"
    broken.mkdir()
    (broken / "manifest.safe").write_text("<xfdu:XFDU>copy in progress")  # truncated: unreadable
    kw = {"catalog": "local", "catalog_root": str(catalog), "max_window": timedelta(days=9)}

    with pytest.warns(UserWarning, match="skipping"):
        assert pipeline.lookup_footprint(work, key, **kw)["candidates"] == 1
    saved = pipeline.read_json(work.candidates_file(key), "c")
    assert saved["complete"] is False
    assert [Path(p).name for p, _ in saved["unreadable"]] == [broken.name]
    with pytest.warns(UserWarning, match="skipping"):
        assert pipeline.lookup_footprint(work, key, **kw)["cached"] is False  # folder unchanged, still not reused


def test_local_catalogue_state_tracks_the_listing(tmp_path: Path, s1b_rome_safe: Path) -> None:
    catalog = tmp_path / "catalog"
    _add(catalog, s1b_rome_safe, REAL)
    cat = LocalCatalog(catalog)
    first = cat.state()
    assert cat.state() == first  # stable
    (catalog / ".S1B_partial.zip.part").write_bytes(b"x")  # an atomic writer's temporary: not a product
    (catalog / "notes.txt").write_text("not a product")
    assert cat.state() == first
    (catalog / f"{REAL}.SAFE").rename(catalog / f"{LATER}.SAFE")
    assert cat.state() != first
