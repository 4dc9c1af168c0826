"""MGRS tile -> S2 tile grid, held against the real example patches and the full table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.windows import Window
from shapely import Point

from bigearthnet_s1 import mgrs, names, tiles
from bigearthnet_s1.errors import TileError


def test_grid_from_mgrs_reproduces_all_six_example_pairs(
    s1_example_meta: dict[str, dict], s2_example_meta: dict[str, dict]
) -> None:
    assert len(s1_example_meta) == 6
    for s1_name, s1_meta in s1_example_meta.items():
        fields = names.parse_s1_patch_name(s1_name)
        s2_meta = s2_example_meta[s1_meta["corresponding_s2_patch"]]
        epsg, ulx, uly = tiles.mgrs_tile_origin(fields["tile_id"])
        grid = tiles.MapGrid.tile(epsg, ulx, uly)
        x0, y0, x1, y1 = grid.patch_bounds(fields["col"], fields["row"])
        for meta, lower in ((s1_meta, "lly"), (s2_meta, "lry")):
            c = meta["coordinates"]
            assert (x0, y0, x1, y1) == (c["ulx"], c["uly"], c["lrx"], c[lower]), s1_name
            assert ProjCRS.from_wkt(meta["projection"]).to_epsg() == epsg
        # the patch window on the grid maps to the same corner
        win = grid.patch_window(fields["col"], fields["row"])
        assert grid.window_transform(win) @ (0, 0) == (x0, y0)
        assert grid.window_transform(win) @ (120, 120) == (x1, y1)


@pytest.mark.parametrize(
    ("tile_id", "expected"),
    [
        ("33UUP", (32633, 300000.0, 5400000.0)),  # docs: corner (300000, 5400000)
        ("29SND", (32629, 499980.0, 4400040.0)),  # 60 m snapping west and north
        ("29UPU", (32629, 600000.0, 5900040.0)),
        ("35VPK", (32635, 600000.0, 7000020.0)),
        ("T35VPK", (32635, 600000.0, 7000020.0)),  # tile_source spelling accepted
        ("11SMS", (32611, 399960.0, 3700020.0)),  # real S2 tile metadata (ULX/ULY, 10 m)
        ("37LDL", (32737, 399960.0, 9100020.0)),  # southern hemisphere (false northing)
    ],
)
def test_mgrs_tile_origin_known_tiles(tile_id: str, expected: tuple[int, float, float]) -> None:
    assert tiles.mgrs_tile_origin(tile_id) == expected


def test_origins_lie_on_the_60m_lattice_within_60m_of_the_square() -> None:
    for tile_id in ["31UER", "32TMT", "34WFV", "36VVR", "29SNB", "35ULA", "33TWN"]:
        _, ulx, uly = tiles.mgrs_tile_origin(tile_id)
        assert ulx % 60 == 0 and uly % 60 == 0
        assert ulx % 100_000 in (0, 100_000 - 20, 100_000 - 40) or ulx % 100_000 < 60
        assert (uly % 100_000) in (0, 20, 40)


_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COLS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
_ROWS = "ABCDEFGHJKLMNPQRSTUV"


def _mgrs_of_square_centre(zone: int, north: bool, e: float, n: float) -> str:
    """Independent forward MGRS (point -> 100 km square id) through pyproj."""
    tr = Transformer.from_crs((32600 if north else 32700) + zone, 4326, always_xy=True)
    _, lat = tr.transform(e, n)
    band = _BANDS[int(math.floor((lat + 80) / 8))]
    col = _COLS[(zone - 1) % 3][int(e // 100_000) - 1]
    row = _ROWS[(int(n // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}"


# Country outlines as lon/lat boxes (generous: coasts, islands); margin added in the test.
_COUNTRY_BOX = {
    "Finland": (19.0, 59.7, 31.6, 70.1),
    "Portugal": (-9.6, 36.9, -6.1, 42.2),
    "Serbia": (18.8, 42.2, 23.1, 46.2),
    "Lithuania": (20.9, 53.9, 26.9, 56.5),
    "Ireland": (-10.7, 51.4, -5.9, 55.5),
    "Austria": (9.5, 46.3, 17.2, 49.1),
    "Belgium": (2.5, 49.4, 6.5, 51.6),
    "Switzerland": (5.9, 45.8, 10.6, 47.9),
    "Luxembourg": (5.7, 49.4, 6.6, 50.2),
    "Kosovo": (20.0, 41.8, 21.8, 43.3),
}


def test_every_table_tile_round_trips_and_lands_in_its_country(
    table_acquisitions: list[tiles.TileAcquisition],
) -> None:
    """All 56 MGRS tiles of the table: the computed corner, mapped back to MGRS through pyproj,
    names the same square; and every one of the 590 326 patch centres, placed with the grid
    computed from its tile id, falls inside the country the table gives (0.5 deg margin; a wrong
    100 km square would be off by one degree or more)."""
    tile_ids = sorted({a.tile_id for a in table_acquisitions})
    assert len(tile_ids) == 56
    for tile_id in tile_ids:
        epsg, ulx, uly = tiles.mgrs_tile_origin(tile_id)
        zone, north = epsg % 100, epsg < 32700
        assert _mgrs_of_square_centre(zone, north, ulx + 50_000, uly - 50_000) == tile_id
    checked = 0
    for acq in table_acquisitions:
        tr = Transformer.from_crs(acq.epsg, 4326, always_xy=True)
        x = np.array([p.ulx + 600 for p in acq.patches])
        y = np.array([p.uly - 600 for p in acq.patches])
        lon, lat = tr.transform(x, y)
        countries = np.array([p.country for p in acq.patches])
        for country in set(countries):
            m = countries == country
            lo0, la0, lo1, la1 = _COUNTRY_BOX[country]
            margin = 0.5
            assert (lon[m] > lo0 - margin).all() and (lon[m] < lo1 + margin).all(), (acq.key, country)
            assert (lat[m] > la0 - margin).all() and (lat[m] < la1 + margin).all(), (acq.key, country)
            checked += int(m.sum())
    assert checked == 590_326


def test_table_patches_match_the_real_s2_coordinates(
    table_acquisitions: list[tiles.TileAcquisition], s2_example_meta: dict[str, dict]
) -> None:
    """The table has no coordinates: its grid comes from the tile id alone, and must give the
    same patch squares as the real S2 JSON files."""
    by_name = {p.s2_name: (a, p) for a in table_acquisitions for p in a.patches}
    for name, meta in s2_example_meta.items():
        acq, patch = by_name[name]
        c = meta["coordinates"]
        assert (patch.ulx, patch.uly, patch.lrx, patch.lry) == (c["ulx"], c["uly"], c["lrx"], c["lry"])
        assert acq.tile_id in meta["tile_source"]


def test_tile_grid_windows_and_transform() -> None:
    grid = tiles.MapGrid.tile(32633, 300000.0, 5400000.0)
    assert tuple(grid.transform)[:6] == (10.0, 0.0, 300000.0, 0.0, -10.0, 5400000.0)
    assert grid.crs.to_epsg() == 32633
    assert grid.bounds == (300000.0, 5290200.0, 409800.0, 5400000.0)
    assert grid.patch_window(87, 48) == Window(10440, 5760, 120, 120)
    p = [
        tiles.Patch("S2A_MSIL2A_20170613T101031_87_48", 87, 48, (), 404400, 5342400, 405600, 5341200),
        tiles.Patch("S2A_MSIL2A_20170613T101031_85_50", 85, 50, (), 402000, 5340000, 403200, 5338800),
    ]
    w = grid.window_for_patches(p)
    assert w == Window(85 * 120, 48 * 120, 3 * 120, 3 * 120)
    assert grid.window_for_patches(q for q in p) == w  # a generator is read once
    assert grid.window_transform(w) @ (0, 0) == (402000.0, 5342400.0)
    assert tuple(p[0].transform)[:6] == (10.0, 0.0, 404400.0, 0.0, -10.0, 5342400.0)
    assert p[0].box.bounds == (404400.0, 5341200.0, 405600.0, 5342400.0)
    with pytest.raises(TileError):
        grid.window_for_patches([])


@pytest.mark.parametrize("bad", ["33UIP", "61UUP", "33UAP", "33U", "", "33AUP", "29SUD"])
def test_bad_tile_ids_are_rejected(bad: str) -> None:
    with pytest.raises(TileError, match="MGRS tile|not an MGRS"):
        tiles.mgrs_tile_origin(bad)


def test_example_s2_archive_reads_to_five_acquisitions(s2_example: Path) -> None:
    acqs = tiles.read_s2_archive(s2_example)
    assert [a.key for a in acqs] == [
        "29SND_20171221T112501",
        "29UPU_20170617T113321",
        "33UUP_20170613T101031",
        "35VPK_20170924T093019",
        "35VPK_20180204T094200",  # the table's time; this folder's one patch says 94161 (09:42:01)
    ]
    by_key = {a.key: a for a in acqs}
    a = by_key["33UUP_20170613T101031"]
    assert a.epsg == 32633 and (a.grid.ulx, a.grid.uly) == (300000.0, 5400000.0)
    assert a.s2_product == "S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP_20170613T101608"
    assert a.sensing_time.isoformat() == "2017-06-13T10:10:31+00:00"
    (p,) = a.patches
    assert (p.col, p.row, p.ulx, p.uly, p.lrx, p.lry) == (87, 48, 404400, 5342400, 405600, 5341200)
    assert p.labels == (
        "Non-irrigated arable land",
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
    )
    assert p.country == "Austria"
    b = by_key["29UPU_20170617T113321"]
    assert [(q.col, q.row) for q in b.patches] == [(4, 55), (36, 85)]  # sorted by row, col
    assert {q.country for q in b.patches} == {"Ireland"}
    assert by_key["29SND_20171221T112501"].patches[0].country == "Portugal"
    # The folder holds one patch of each 35VPK overpass (name times 09:30:20, 09:42:01); the
    # acquisition takes the patch-name table's time (its earliest patch), so both sources agree.
    assert by_key["35VPK_20170924T093019"].sensing_time.isoformat() == "2017-09-24T09:30:19+00:00"
    table = {t.key: t.sensing_time for t in tiles.read_patch_table(tiles=["35VPK"])}
    assert all(table[a.key] == a.sensing_time for a in acqs if a.tile_id == "35VPK")
    own = {a.key for a in tiles.read_s2_archive(s2_example, countries=False)}
    assert {"35VPK_20170924T093020", "35VPK_20180204T094201"} <= own  # without the table: own times
    assert by_key["35VPK_20170924T093019"].patches[0].country == "Finland"


def test_sensing_time_quirks() -> None:
    t, col, row = names.parse_s2_patch_name("S2B_MSIL2A_20170924T93020_69_24")
    assert (t.isoformat(), col, row) == ("2017-09-24T09:30:20+00:00", 69, 24)
    t, _, _ = names.parse_s2_patch_name("S2B_MSIL2A_20180204T94161_57_38")
    assert t.isoformat() == "2018-02-04T09:42:01+00:00"
    t, _, _ = names.parse_s2_patch_name("S2A_MSIL2A_20170613T101031_0_90")
    assert t.isoformat() == "2017-06-13T10:10:31+00:00"


def test_footprints(s2_example: Path) -> None:
    acq = next(a for a in tiles.read_s2_archive(s2_example) if a.tile_id == "29UPU")
    assert acq.footprint.area == pytest.approx(109_800.0**2)
    fp = acq.footprint_wgs84
    assert 40 <= len(fp.exterior.coords) <= 60  # densified edges, every 10 km
    tr = Transformer.from_crs(32629, 4326, always_xy=True)
    # the true image of the tile corners are vertices
    for x, y in [(600000, 5900040), (709800, 5790240)]:
        lon, lat = tr.transform(x, y)
        assert fp.exterior.distance(Point(lon, lat)) < 1e-9
    # mid-edge of the top edge (a parallel-like curve in lon/lat), the densified outline is
    # within a few metres of the true tile edge; the bare 4-corner polygon is ~300 m off
    from pyproj import Geod
    from shapely.ops import nearest_points

    geod = Geod(ellps="WGS84")
    mid = Point(*tr.transform(654900, 5900040))

    def off_by_m(ring) -> float:
        q = nearest_points(ring, mid)[0]
        return geod.inv(q.x, q.y, mid.x, mid.y)[2]

    assert off_by_m(fp.exterior) < 5.0
    corners_only = mgrs.to_wgs84(acq.footprint, acq.epsg, densify=0)
    assert len(corners_only.exterior.coords) == 5
    assert off_by_m(corners_only.exterior) > 200.0
    pf = acq.patches_footprint
    assert pf.area == pytest.approx(2 * 1200.0**2)
    centre = tr.transform(604800 + 600, 5834040 - 600)
    assert acq.patches_footprint_wgs84.contains(Point(*centre))
    assert not acq.patches_footprint_wgs84.contains(Point(*tr.transform(650000, 5850000)))


def test_json_round_trip(s2_example: Path) -> None:
    import json

    for acq in tiles.read_s2_archive(s2_example):
        back = tiles.TileAcquisition.from_json(json.loads(json.dumps(acq.to_json())))
        assert back == acq
        assert back.key == acq.key and back.sensing_time == acq.sensing_time


def test_patches_footprint_equals_the_union_of_patch_squares(
    table_acquisitions: list[tiles.TileAcquisition],
) -> None:
    import dataclasses

    import shapely

    for acq in table_acquisitions[::25]:
        bounds = np.array([p.bounds for p in acq.patches])
        union = shapely.union_all(shapely.box(*bounds.T))
        fp = acq.patches_footprint
        assert fp.area == pytest.approx(len(acq.patches) * 1200.0**2)
        assert fp.symmetric_difference(union).area == pytest.approx(0.0, abs=1e-3)
    # patches off the grid (placed by hand) take the geometric path
    acq = table_acquisitions[0]
    p = acq.patches[0]
    moved = dataclasses.replace(p, ulx=p.ulx + 5, lrx=p.lrx + 5)
    odd = dataclasses.replace(acq, patches=(moved,))
    assert odd.patches_footprint.bounds == (moved.ulx, moved.lry, moved.lrx, moved.uly)
