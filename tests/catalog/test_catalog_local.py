"""The local catalogue: .SAFE folders and .zip files: the real S1B manifest (pinned sarsen
release) and a simulated S1A product's zip carrying a real product's identity."""

from __future__ import annotations

import os
import re
import shutil
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import shapely

from bigearthnet_s1.catalog import open_catalog
from bigearthnet_s1.catalog.local import LocalCatalog, LocalProductWarning, read_manifest_record
from bigearthnet_s1.errors import CatalogError

S1B = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
# footprint as written in the manifest (lat,lon pairs)
S1B_FOOT = "40.876698,14.925448 41.281048,11.865704 42.780445,12.189661 42.376778,15.321935"


def _lonlat(text: str) -> list[list[float]]:
    pts = [[float(v) for v in p.split(",")][::-1] for p in text.split()]
    return pts + [pts[0]]


@pytest.fixture
def folder(tmp_path: Path, s1b_rome_safe: Path, s1a_beira_sim: Path) -> Path:
    """S1B as a .SAFE folder (manifest + one annotation file), S1A as a zip (not unpacked)."""
    root = tmp_path / "products"
    safe = root / f"{S1B}.SAFE"
    (safe / "annotation").mkdir(parents=True)
    shutil.copy(s1b_rome_safe / "manifest.safe", safe / "manifest.safe")
    ann = next((s1b_rome_safe / "annotation").glob("*.xml"))
    shutil.copy(ann, safe / "annotation" / ann.name)
    shutil.copy(s1a_beira_sim.with_suffix(".zip"), root)
    return root


@pytest.fixture
def s1a(s1a_beira_sim: Path) -> tuple[str, str]:
    """(name, manifest footprint text) of the simulated S1A product."""
    text = (s1a_beira_sim / "manifest.safe").read_text()
    foot = re.search(r"<gml:coordinates>([^<]+)</gml:coordinates>", text).group(1)
    return s1a_beira_sim.name.removesuffix(".SAFE"), foot


def test_records_from_manifests(folder: Path, s1a: tuple[str, str]) -> None:
    S1A, S1A_FOOT = s1a
    cat = open_catalog("local", root=folder)
    recs = {r.name: r for r in cat.products()}
    assert sorted(recs) == [S1A, S1B]
    b, a = recs[S1B], recs[S1A]
    assert (b.mission, b.absolute_orbit, b.relative_orbit, b.orbit_direction, b.datatake_id) == (
        "S1B", 30148, 22, "DESCENDING", "039993")
    assert b.start_time == datetime(2021, 12, 23, 5, 11, 22, 594441, tzinfo=UTC)
    assert b.stop_time == datetime(2021, 12, 23, 5, 11, 47, 593146, tzinfo=UTC)
    assert shapely.get_coordinates(b.footprint).tolist() == _lonlat(S1B_FOOT)
    assert b.url == str(folder / f"{S1B}.SAFE") and b.size is None and b.online is True
    assert b.source == "local" and b.uuid is None and b.checksum is None
    # the real S1A Beira product's identity, which the simulator reproduces at its time and place
    assert (a.mission, a.absolute_orbit, a.relative_orbit, a.orbit_direction, a.datatake_id) == (
        "S1A", 36201, 79, "DESCENDING", "043ED0")
    assert a.start_time == datetime(2021, 1, 19, 3, 16, 53, 799379, tzinfo=UTC)
    assert shapely.get_coordinates(a.footprint).tolist() == _lonlat(S1A_FOOT)
    assert a.url == str(folder / f"{S1A}.zip") and a.size == (folder / f"{S1A}.zip").stat().st_size
    # 0x039993 == 235923, the manifest's missionDataTakeID
    assert int(b.datatake_id, 16) == 235923
    # the zip was read in place
    assert sorted(p.name for p in folder.iterdir()) == [f"{S1A}.zip", f"{S1B}.SAFE"]


def test_search_by_area_and_time(folder: Path, s1a: tuple[str, str]) -> None:
    S1A = s1a[0]
    cat = LocalCatalog(folder)
    rome = shapely.box(12.4, 41.8, 12.6, 42.0)
    assert [r.name for r in cat.search(rome, datetime(2021, 12, 20, tzinfo=UTC), datetime(2021, 12, 26, tzinfo=UTC))] == [S1B]
    assert cat.search(rome, datetime(2021, 12, 24, tzinfo=UTC), datetime(2021, 12, 26, tzinfo=UTC)) == []
    beira = shapely.box(33.0, -18.5, 33.5, -18.0)
    assert [r.name for r in cat.search(beira, datetime(2021, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC))] == [S1A]
    with pytest.raises(Exception, match="tz-aware"):
        cat.search(rome, datetime(2021, 12, 20), datetime(2021, 12, 26))


def test_bad_products_are_skipped_with_reasons(folder: Path, s1b_rome_safe: Path, s1a: tuple[str, str],
                                              s1a_slc_manifest: Path) -> None:
    S1A = s1a[0]
    # a real SLC product's manifest (pinned sarsen release)
    slc = folder / s1a_slc_manifest.parent.name
    slc.mkdir()
    shutil.copy(s1a_slc_manifest, slc / "manifest.safe")
    # another mode: an EW product made from the real manifest
    ew_name = S1B.replace("_IW_", "_EW_").replace("GRDH", "GRDM")
    ew = folder / f"{ew_name}.SAFE"
    ew.mkdir()
    text = (s1b_rome_safe / "manifest.safe").read_text()
    assert text.count("<s1sarl1:mode>IW</s1sarl1:mode>") == 1
    (ew / "manifest.safe").write_text(text.replace("<s1sarl1:mode>IW</s1sarl1:mode>", "<s1sarl1:mode>EW</s1sarl1:mode>"))
    (folder / "S1A_broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    (folder / "S1B_empty.SAFE").mkdir()
    (folder / ".partial.zip").write_bytes(b"")  # hidden temporary file of a download: ignored
    cat = LocalCatalog(folder)
    with pytest.warns(LocalProductWarning) as w:
        names = sorted(r.name for r in cat.products())
    assert names == [S1A, S1B]
    reasons = {p.name: why for p, why in cat.skipped}
    assert reasons[f"{ew_name}.SAFE"] == "EW GRD product, not IW GRD"
    assert reasons[slc.name] == "IW SLC product, not IW GRD"
    assert "not a readable zip" in reasons["S1A_broken.zip"]
    assert "no manifest.safe" in reasons["S1B_empty.SAFE"]
    assert ".partial.zip" not in reasons
    assert len(w) == 2 and all(str(folder) in str(x.message) for x in w)
    with pytest.raises(CatalogError, match="S1A_broken.zip: not a readable zip"):
        LocalCatalog(folder, strict=True).products()


def test_entities_in_manifest_are_refused(tmp_path: Path, s1b_rome_safe: Path) -> None:
    safe = tmp_path / f"{S1B}.SAFE"
    safe.mkdir()
    text = (s1b_rome_safe / "manifest.safe").read_text()
    head, rest = text.split("\n", 1)
    doctype = '\n<!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n'
    evil = head + doctype + rest.replace("IW</s1sarl1:mode>", "&b;</s1sarl1:mode>", 1)
    (safe / "manifest.safe").write_text(evil)
    with pytest.raises(Exception, match=r"manifest.safe refused, it declares XML entities"):
        read_manifest_record(safe)


def test_cache_rereads_only_changed_products(folder: Path, s1a: tuple[str, str]) -> None:
    S1A = s1a[0]
    cat = LocalCatalog(folder)
    first = {r.name: r for r in cat.products()}
    again = {r.name: r for r in cat.products()}
    assert all(again[n] is first[n] for n in first)  # served from the cache
    manifest = folder / f"{S1B}.SAFE" / "manifest.safe"
    before = manifest.stat().st_mtime_ns
    orbit = '<safe:relativeOrbitNumber type="start">'
    manifest.write_text(manifest.read_text().replace(orbit + "22<", orbit + "23<"))
    os.utime(manifest, ns=(before + 10**9, before + 10**9))  # same size: only the time tells
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        changed = {r.name: r for r in cat.products()}
    assert changed[S1A] is first[S1A]
    assert changed[S1B].relative_orbit == 23  # re-read (and kept though it disagrees with the formula)


def test_same_product_as_folder_and_zip(folder: Path, s1b_rome_safe: Path, s1a: tuple[str, str]) -> None:
    S1A = s1a[0]
    with zipfile.ZipFile(folder / f"{S1B}.zip", "w") as zf:
        zf.write(s1b_rome_safe / "manifest.safe", f"{S1B}.SAFE/manifest.safe")
    cat = LocalCatalog(folder)
    recs = cat.products()
    assert sorted(r.name for r in recs) == [S1A, S1B]
    assert next(r for r in recs if r.name == S1B).url.endswith(".SAFE")
    assert [why for p, why in cat.skipped if p.name == f"{S1B}.zip"] == [f"duplicate of {folder / (S1B + '.SAFE')}"]
