"""search_and_select: widening the time window step by step, and the uncovered report."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from bigearthnet_s1.catalog import ProductRecord
from bigearthnet_s1.errors import InputError
from bigearthnet_s1.selection import search_and_select

D = timedelta(days=1)
H = timedelta(hours=1)


class ListCatalog:
    """A catalogue over a list of records (our own Catalog interface, not a client library),
    recording each search."""

    def __init__(self, records: list[ProductRecord]) -> None:
        self.records = records
        self.searches: list[tuple[object, datetime, datetime]] = []

    def search(self, footprint_wgs84, start: datetime, end: datetime) -> list[ProductRecord]:
        self.searches.append((footprint_wgs84, start, end))
        return [r for r in self.records if start <= r.start_time <= end and r.footprint.intersects(footprint_wgs84)]


class CompletingCatalog(ListCatalog):
    def complete(self, records):
        return [r.replace(size=1234, checksum="abc", checksum_algorithm="MD5", online=False) for r in records]


@pytest.fixture
def tile(tile_factory, utc):
    return tile_factory("33UUP", utc(2017, 6, 13, 10, 10, 31))


@pytest.fixture
def parts(tile, swath, record):
    c = tile.footprint_wgs84.centroid
    east = record(swath(c.x, c.y, "DESCENDING", cross_offset_km=100), tile.sensing_time + D - 5 * H,
                  rel=22, direction="DESCENDING")
    west = record(swath(c.x, c.y, "DESCENDING", cross_offset_km=-110), tile.sensing_time + 8 * D - 5 * H,
                  rel=95, direction="DESCENDING")
    return east, west


def test_window_widens_until_covered(tile, parts, sampler) -> None:
    east, west = parts
    cat = ListCatalog([east, west])
    sel = search_and_select(cat, tile, window=3 * D, step=3 * D, max_window=12 * D)
    assert sel.covered and sel.names == [east.name, west.name]
    assert sel.windows_tried == [3.0, 6.0, 9.0] and sel.window_days == 9.0
    assert [(e - s) / 2 for _, s, e in cat.searches] == [3 * D, 6 * D, 9 * D]
    assert all(s + (e - s) / 2 == tile.sensing_time for _, s, e in cat.searches)
    # the search area is the hull of the patches in lon/lat and contains them
    area = cat.searches[0][0]
    assert area.geom_type == "Polygon" and area.buffer(1e-9).contains(tile.patches_footprint_wgs84)
    assert sel.time_gaps == [19 * 3600.0, (8 * 24 - 5) * 3600.0]
    assert sampler(tile).coverage([east.footprint, west.footprint]) >= 0.999


def test_no_cover_reports_uncovered_fraction(tile, parts, sampler, caplog) -> None:
    east, _ = parts
    cat = ListCatalog([east])
    with caplog.at_level(logging.WARNING, logger="bigearthnet_s1.selection"):
        sel = search_and_select(cat, tile, window=3 * D, step=3 * D, max_window=10 * D)
    assert not sel.covered
    assert sel.windows_tried == [3.0, 6.0, 9.0, 10.0]  # the last step stops at the limit
    expected = 1.0 - sampler(tile).coverage([east.footprint])
    assert 0.1 < expected < 0.5
    assert sel.uncovered_fraction == pytest.approx(expected, abs=0.003)
    assert "33UUP_20170613T101031: no cover within" in caplog.text and "stays uncovered" in caplog.text
    assert sel.names == [east.name]


def test_nothing_found_at_all(tile) -> None:
    sel = search_and_select(ListCatalog([]), tile, window=2 * D, step=5 * D, max_window=6 * D)
    assert sel.products == [] and sel.uncovered_fraction == 1.0 and sel.windows_tried == [2.0, 6.0]


def test_chosen_records_are_completed_when_the_catalogue_can(tile, parts) -> None:
    east, west = parts
    sel = search_and_select(CompletingCatalog([east, west]), tile, window=9 * D)
    assert [(p.size, p.checksum, p.online) for p in sel.products] == [(1234, "abc", False)] * 2
    assert sel.windows_tried == [9.0]


def test_bad_window(tile) -> None:
    with pytest.raises(InputError, match="window and step must be positive"):
        search_and_select(ListCatalog([]), tile, window=timedelta(0))
