"""Selection rules on synthetic candidate sets over tile 33UUP (Austria/Bavaria, 48 N).

Coverage is checked against an independent estimate (sampled points tested in lon/lat), and
optimality against a brute force over all small product sets."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import shapely

from bigearthnet_s1.catalog import FootprintRepairWarning, ProductRecord
from bigearthnet_s1.errors import InputError, SelectionError
from bigearthnet_s1.selection import Selection, select_many, select_products

H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def tile(tile_factory, utc):
    return tile_factory("33UUP", utc(2017, 6, 13, 10, 10, 31))


@pytest.fixture
def centre(tile):
    c = tile.footprint_wgs84.centroid
    return c.x, c.y


@pytest.fixture
def track(tile, centre, swath, record):
    """track(rel, direction, cross_km, offsets) -> one record per pass, at sensing + offset."""

    def make(rel, direction, cross_km, offsets, *, mission="S1A", width_km=250.0, along_km=0.0, first_cycle=100):
        return [
            record(
                swath(*centre, direction, width_km=width_km, cross_offset_km=cross_km, along_offset_km=along_km),
                tile.sensing_time + off, rel=rel, direction=direction, mission=mission, cycle=first_cycle + i,
            )
            for i, off in enumerate(offsets)
        ]

    return make


def _gap(tile, r: ProductRecord) -> float:
    return abs((r.start_time - tile.sensing_time).total_seconds())


def test_two_tracks_needed_one_product_each_closest_in_time(tile, track, sampler, brute) -> None:
    east = track(22, "DESCENDING", 100, [-5 * D - 5 * H, D - 5 * H, 7 * D - 5 * H])
    west = track(95, "DESCENDING", -110, [-60 * H, 84 * H])
    s = sampler(tile)
    assert s.coverage([east[0].footprint]) < 0.9 and s.coverage([west[0].footprint]) < 0.9
    cands = east + west
    sel = select_products(tile, cands)

    assert sel.names == [east[1].name, west[0].name]  # greedy order: the larger part first
    assert sorted(p.relative_orbit for p in sel.products) == [22, 95]  # one per relative orbit
    assert sel.time_gaps == [19 * 3600.0, 60 * 3600.0]
    assert sel.covered and sel.coverage >= 0.999 and sel.uncovered_fraction == pytest.approx(1 - sel.coverage)
    assert s.coverage([p.footprint for p in sel.products]) >= 0.999
    assert sel.added_fraction[0] == pytest.approx(s.coverage([east[1].footprint]), abs=0.003)
    assert sum(sel.added_fraction) == pytest.approx(sel.coverage)
    # nothing with fewer products or a smaller largest gap covers the target
    assert brute(tile, cands, 0.999) == (2, max(sel.time_gaps))
    # every candidate has one decision with a reason
    assert [d.name for d in sel.decisions] == [c.name for c in cands]
    why = {d.name: d for d in sel.decisions}
    assert why[east[0].name].kept is False and "closer in time (0.79 d vs 5.21 d)" in why[east[0].name].reason
    assert why[east[2].name].kept is False and "relative orbit 22 descending" in why[east[2].name].reason
    assert why[west[0].name].kept and "adds" in why[west[0].name].reason


def test_a_track_covering_alone_wins_over_two_closer_ones(tile, track, brute) -> None:
    east = track(22, "DESCENDING", 100, [D - 5 * H])
    west = track(95, "DESCENDING", -110, [-60 * H])
    full = track(117, "ASCENDING", 0, [4 * D + 6 * H, -8 * D + 6 * H])
    cands = east + west + full
    sel = select_products(tile, cands)
    assert sel.names == [full[0].name] and sel.covered
    assert brute(tile, cands, 0.999) == (1, 4 * 86400.0 + 6 * 3600.0)
    why = {d.name: d.reason for d in sel.decisions}
    assert "not needed, the target is covered to 100.00%" in why[east[0].name]


def test_consecutive_slices_of_one_datatake_form_one_unit(tile, centre, swath, record, sampler) -> None:
    t = tile.sensing_time + D - 5 * H
    dt = "01E116"
    # two 25 s slices of one data-take; the boundary between them crosses the tile's middle
    s1 = record(swath(*centre, "DESCENDING", along_offset_km=-85), t, rel=22, direction="DESCENDING", datatake=dt)
    s2 = record(swath(*centre, "DESCENDING", along_offset_km=85), t + timedelta(seconds=25), rel=22,
                direction="DESCENDING", datatake=dt)
    # the same track 6 days later, one slice over the whole tile
    later = record(swath(*centre, "DESCENDING"), t + 6 * D, rel=22, direction="DESCENDING", cycle=101)
    smp = sampler(tile)
    assert 0.3 < smp.coverage([s1.footprint]) < 0.7 and smp.coverage([later.footprint]) >= 0.999
    sel = select_products(tile, [later, s2, s1])
    assert sel.names == [s1.name, s2.name]  # one unit, in time order, closer in time than `later`
    assert sel.covered and smp.coverage([s1.footprint, s2.footprint]) >= 0.999
    why = {d.name: d.reason for d in sel.decisions}
    assert "2 consecutive slices of data-take 01E116" in why[s1.name]
    assert "2 consecutive slices of data-take 01E116" in why[s2.name]
    assert "closer in time" in why[later.name]


def test_one_slice_covering_alone_drops_its_neighbours(tile, centre, swath, record) -> None:
    t = tile.sensing_time + D - 5 * H
    slices = [
        record(swath(*centre, "DESCENDING", along_offset_km=a), t + timedelta(seconds=25 * k), rel=22,
               direction="DESCENDING", datatake="01E116")
        for k, a in enumerate([-140, 0, 140])  # neighbours reach the tile's corners only
    ]
    sel = select_products(tile, slices)
    assert sel.names == [slices[1].name] and sel.covered
    why = {d.name: d.reason for d in sel.decisions}
    for s in (slices[0], slices[2]):
        assert f"slice {slices[1].name} of the same data-take 01E116 covers this pass's part of the target alone" in why[s.name]


def test_slices_with_a_gap_are_not_one_unit(tile, centre, swath, record) -> None:
    t = tile.sensing_time + D - 5 * H
    a = record(swath(*centre, "DESCENDING", along_offset_km=-85), t, rel=22, direction="DESCENDING", datatake="01E116")
    # next slice starts 60 s after the previous stop: a missing slice between them
    b = record(swath(*centre, "DESCENDING", along_offset_km=85), t + timedelta(seconds=85), rel=22,
               direction="DESCENDING", datatake="01E116")
    sel = select_products(tile, [a, b])
    assert sorted(sel.names) == sorted([a.name, b.name]) and sel.covered
    why = {d.name: d.reason for d in sel.decisions}
    assert "one per relative orbit" in why[sel.names[0]]
    assert "another pass of a relative orbit to fill a gap" in why[sel.names[1]]


def test_ascending_and_descending_are_different_tracks(tile, track, sampler) -> None:
    # the same relative orbit number on both passes (the number counts from the ascending node)
    asc = track(44, "ASCENDING", 100, [2 * D + 6 * H])
    desc = track(44, "DESCENDING", 100, [D - 5 * H])
    smp = sampler(tile)
    assert smp.coverage([asc[0].footprint]) < 0.95 and smp.coverage([desc[0].footprint]) < 0.95
    sel = select_products(tile, asc + desc)
    assert sorted(sel.tracks) == [(44, "ASCENDING"), (44, "DESCENDING")] and sel.covered


@pytest.mark.parametrize("asc_hours,desc_hours,expected", [(6, -29, "ASCENDING"), (30, -5, "DESCENDING")])
def test_full_cover_ascending_vs_descending_closest_wins(tile, track, asc_hours, desc_hours, expected) -> None:
    asc = track(117, "ASCENDING", 0, [asc_hours * H])
    desc = track(22, "DESCENDING", 0, [desc_hours * H])
    sel = select_products(tile, asc + desc)
    assert len(sel.products) == 1 and sel.products[0].orbit_direction == expected
    assert sel.time_gaps == [min(abs(asc_hours), abs(desc_hours)) * 3600.0]


def test_bow_tie_footprint_is_repaired_with_warning(tile, centre, swath, record) -> None:
    good = swath(*centre, "DESCENDING")
    x = shapely.get_coordinates(good)[:4]
    bowtie = shapely.Polygon([x[0], x[2], x[1], x[3]])  # two corners swapped
    assert not bowtie.is_valid
    rec = record(bowtie, tile.sensing_time + D, rel=22, direction="DESCENDING")
    with pytest.warns(FootprintRepairWarning, match=f"product {rec.name}: invalid footprint repaired"):
        sel = select_products(tile, [rec])
    assert sel.names == [rec.name] and 0.3 < sel.coverage < 0.7


def test_missing_relative_orbit_is_computed_and_groups_s1a_with_s1b(tile, track, centre, swath, record) -> None:
    a = record(swath(*centre, "DESCENDING"), tile.sensing_time + 2 * D, rel=22, direction="DESCENDING",
               mission="S1A", relative=None)
    b = record(swath(*centre, "DESCENDING"), tile.sensing_time - D, rel=22, direction="DESCENDING",
               mission="S1B", relative=None)
    assert a.relative_orbit == b.relative_orbit == 22
    assert a.absolute_orbit != b.absolute_orbit
    sel = select_products(tile, [a, b])
    assert sel.names == [b.name]
    assert "closer in time (1.00 d vs 2.00 d)" in sel.decision(a.name).reason


def test_filters_products_the_archive_cannot_use(tile, track, centre, swath, record) -> None:
    good = track(22, "DESCENDING", 0, [D])[0]
    fp = swath(*centre, "DESCENDING")
    t = tile.sensing_time - 3 * H
    dh = record(fp, t, rel=22, direction="DESCENDING", name="S1A_IW_GRDH_1SDH_20170613T071031_20170613T071056_017594_01E116_AAAA")
    slc = record(fp, t, rel=22, direction="DESCENDING", name="S1A_IW_SLC__1SDV_20170613T071031_20170613T071056_017594_01E116_BBBB")
    reprocessed = good.replace(name=good.name[:-4] + "FFFF", uuid="other")
    far = record(shapely.box(100, 10, 101, 11), t, rel=5, direction="ASCENDING")
    sel = select_products(tile, [dh, slc, good, reprocessed, good, far])
    assert sel.names == [good.name]
    why = {d.name: d.reason for d in sel.decisions}
    assert len(sel.decisions) == 5  # the duplicated record gets one decision
    assert why[dh.name] == "polarisation HH+HV, not VV+VH"
    assert why[slc.name] == "not an IW GRD product (IW SLC)"
    assert why[reprocessed.name] == f"same acquisition as {good.name} (another processing of it)"
    assert why[far.name] == "footprint does not reach tile 33UUP"
    assert select_products(tile, [dh], polarisation=None).names == [dh.name]


def test_target_patches_or_whole_tile(tile_factory, utc, track) -> None:
    # patches only in the eastern third of the tile
    t = tile_factory("33UUP", utc(2017, 6, 13, 10, 10, 31), cols=range(60, 91), rows=range(91))
    east = track(22, "DESCENDING", 0, [D])  # built around the full tile's centre
    east_only = [r.replace(footprint=shapely.box(13.2, 47.5, 15.0, 49.0)) for r in east]
    sel = select_products(t, east_only)
    assert sel.covered and sel.target == "patches"
    whole = select_products(t, east_only, target="tile")
    assert not whole.covered and 0.2 < whole.coverage < 0.5 and whole.target == "tile"
    assert whole.target_area == pytest.approx(109800.0**2)
    assert sel.target_area == pytest.approx(31 * 91 * 1200.0**2)
    misses = [r.replace(footprint=shapely.box(12.0, 47.5, 12.6, 49.0)) for r in east]
    sel2 = select_products(t, misses)
    assert sel2.products == [] and sel2.coverage == 0.0 and sel2.uncovered_fraction == 1.0
    assert sel2.decisions[0].reason == "footprint misses the target (patches) of tile 33UUP"


def test_errors(tile_factory, utc, tile) -> None:
    empty = tile_factory("33UUP", utc(2017, 6, 13, 10, 10, 31), cells=[])
    with pytest.raises(SelectionError, match="tile 33UUP_20170613T101031: no patches"):
        select_products(empty, [])
    with pytest.raises(InputError, match="tolerance must be in"):
        select_products(tile, [], tolerance=1.5)
    with pytest.raises(InputError, match="target must be 'patches' or 'tile'"):
        select_products(tile, [], target="square")


def test_json_round_trip_and_select_many_agree(tile, tile_factory, utc, track) -> None:
    cands = track(22, "DESCENDING", 100, [D - 5 * H, 7 * D]) + track(95, "DESCENDING", -110, [-60 * H])
    sel = select_products(tile, cands)
    d = json.loads(json.dumps(sel.to_json()))
    assert d["covered"] is True and d["decisions"][0]["kept"] is True
    back = Selection.from_json(d)
    assert back.names == sel.names and back.decisions == sel.decisions and back.coverage == sel.coverage
    assert back.time_gaps == sel.time_gaps and back.added_fraction == sel.added_fraction
    other = tile_factory("33UUP", utc(2017, 7, 13, 10, 10, 31))  # a month later: no candidates in time
    many = select_many([tile, other], cands, window=timedelta(days=3))
    assert many[0].names == select_products(tile, [c for c in cands if abs(_gap(tile, c)) <= 3 * 86400]).names
    assert many[0].window_days == 3.0
    assert many[1].products == [] and many[1].uncovered_fraction == 1.0
