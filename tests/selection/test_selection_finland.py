"""The northernmost Finnish tiles of the patch-name table (34WFV at ~67 N, 35WPR at ~68 N):
high latitude, converging orbits, many overlapping relative orbits in both directions.

Candidates: every track of a realistic pattern (IW swaths 250 km wide, adjacent tracks about
86 km apart at this latitude), S1A and S1B passes six days apart, descending in the early
morning and ascending in the late afternoon (UTC), as over Finland."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bigearthnet_s1.selection import select_products
from bigearthnet_s1.tiles import read_patch_table

H = timedelta(hours=1)
D = timedelta(days=1)
#: day of each track's S1A pass relative to the S2 sensing day, by across-track index k
DAYS = {-3: 2, -2: -2, -1: 1, 0: -3, 1: -1, 2: 3, 3: 0}


@pytest.fixture(scope="module")
def finnish_tiles():
    tiles = {t.key: t for t in read_patch_table(tiles=["34WFV", "35WPR"])}
    assert set(tiles) == {"34WFV_20180417T102019", "35WPR_20170725T100029", "35WPR_20180511T100029"}
    return tiles


def _candidates(tile, swath, record, spacing_km=86.0):
    c = tile.patches_footprint_wgs84.centroid
    out = []
    sensing = tile.sensing_time.replace(minute=0, second=0, microsecond=0)
    for direction, hour, rel0 in (("DESCENDING", 4, 80), ("ASCENDING", 16, 10)):
        for k in range(-3, 4):
            rel = (rel0 + 15 * k - 1) % 175 + 1
            day = DAYS[k]  # adjacent tracks are seen on different days
            for mission, extra in (("S1A", 0), ("S1B", 6)):
                start = sensing.replace(hour=hour) + (day + extra) * D + timedelta(minutes=3 * k, seconds=7)
                if abs((start - tile.sensing_time).total_seconds()) > 6 * 86400:
                    start -= 12 * D if extra else -12 * D
                out.append(record(
                    swath(c.x, c.y, direction, cross_offset_km=k * spacing_km),
                    start, rel=rel, direction=direction, mission=mission, cycle=100 + k + 3,
                ))
    return out


@pytest.mark.parametrize("key", ["34WFV_20180417T102019", "35WPR_20170725T100029"])
def test_northern_finland(key, finnish_tiles, swath, record, sampler, brute) -> None:
    tile = finnish_tiles[key]
    assert tile.footprint_wgs84.bounds[1] > 66.5  # north of the Arctic circle
    cands = _candidates(tile, swath, record)
    # converging orbits: most tracks of both directions reach the tile
    smp = sampler(tile)
    reaching = [r for r in cands if smp.mask(r.footprint).any()]
    assert len({(r.relative_orbit, r.orbit_direction) for r in reaching}) >= 6
    # the swath spans several degrees of longitude up here
    assert max(r.footprint.bounds[2] - r.footprint.bounds[0] for r in cands) > 5.0

    sel = select_products(tile, cands)
    assert sel.covered
    assert smp.coverage([p.footprint for p in sel.products]) >= 0.999
    assert abs(smp.coverage([p.footprint for p in sel.products]) - sel.coverage) < 0.002
    tracks = sel.tracks
    assert len(tracks) == len(set(tracks))  # one product per relative orbit
    # minimal: no product can go, and nothing smaller or closer in time covers
    assert brute(tile, cands, 0.999, max_size=2) == (len(sel.products), max(sel.time_gaps))
    for p in sel.products:
        others = [q.footprint for q in sel.products if q is not p]
        assert smp.coverage(others) < 0.999
        # within its track, the kept pass is the closest in time
        same = [r for r in cands if (r.relative_orbit, r.orbit_direction) == (p.relative_orbit, p.orbit_direction)]
        gap = abs((p.start_time - tile.sensing_time).total_seconds())
        assert gap == min(abs((r.start_time - tile.sensing_time).total_seconds()) for r in same)
    assert len(sel.decisions) == len(cands)


def test_northern_finland_narrow_window_needs_several_tracks(finnish_tiles, swath, record, sampler) -> None:
    """Only the tracks seen within +-1.5 days: no single one covers 34WFV's patches, the
    selection combines tracks and still covers."""
    tile = finnish_tiles["34WFV_20180417T102019"]
    cands = [r for r in _candidates(tile, swath, record)
             if abs((r.start_time - tile.sensing_time).total_seconds()) <= 1.5 * 86400]
    smp = sampler(tile)
    assert all(smp.coverage([r.footprint]) < 0.999 for r in cands)
    sel = select_products(tile, cands)
    assert sel.covered and len(sel.products) >= 2
    assert len(set(sel.tracks)) == len(sel.products)
    assert smp.coverage([p.footprint for p in sel.products]) >= 0.999
    for p in sel.products:
        assert smp.coverage([q.footprint for q in sel.products if q is not p]) < 0.999
