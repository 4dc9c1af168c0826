"""Product names, relative orbits, footprints and the ProductRecord JSON form."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import Polygon

from bigearthnet_s1.catalog import (
    FootprintRepairWarning,
    OrbitMismatchWarning,
    ProductRecord,
    clean_footprint,
    is_iw_grd,
    make_record,
    open_catalog,
    parse_product_name,
    product_name,
    relative_orbit,
)
from bigearthnet_s1.errors import CatalogError, InputError

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"


def test_parse_name_fields() -> None:
    n = parse_product_name(NAME + ".SAFE")
    assert n.name == NAME
    assert (n.mission, n.mode, n.product_type, n.resolution, n.level, n.product_class, n.polarisation) == (
        "S1A", "IW", "GRD", "H", 1, "S", "DV",
    )
    assert n.start_time == datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC)
    assert n.stop_time == datetime(2017, 6, 13, 16, 51, 8, tzinfo=UTC)
    assert n.absolute_orbit == 17018 and n.datatake_id == "01C579" and n.crc == "7EEC"
    assert n.is_iw_grd
    slc = parse_product_name("S1A_IW_SLC__1SDV_20151223T052459_20151223T052529_009165_00D311_F8A3")
    assert slc.product_type == "SLC" and not slc.is_iw_grd
    assert not is_iw_grd("S1A_EW_GRDM_1SDH_20141031T223708_20141031T223811_003079_003869_3D79")
    assert not is_iw_grd("S2A_MSIL1C_20151224T102432_N0201_R065_T32UPD_20151224T102435")


@pytest.mark.parametrize(
    "given", [NAME, NAME + ".SAFE", NAME + ".zip", NAME + ".SAFE.zip", f"/data/{NAME}.SAFE/", f"C:\\x\\{NAME}.zip"]
)
def test_product_name_strips_suffixes(given: str) -> None:
    assert product_name(given) == NAME


def test_parse_name_rejects_garbage() -> None:
    with pytest.raises(InputError, match="not a Sentinel-1 product name: 'S1A_IW_GRDH_1SDV_2017'"):
        parse_product_name("S1A_IW_GRDH_1SDV_2017")


def test_relative_orbit_formula_matches_the_real_manifests(s1b_rome_safe, s1a_slc_manifest) -> None:
    """ESA's formulas, checked against the orbit numbers of both missions' real manifests
    (pinned sarsen release): S1B 30148 -> 22, S1A 41314 -> 117."""
    import re

    checked = 0
    for manifest in (s1b_rome_safe / "manifest.safe", s1a_slc_manifest):
        text = manifest.read_text()
        mission = "S1" + re.search(r"<safe:number>([AB])</safe:number>", text).group(1)
        absolute = int(re.search(r'<safe:orbitNumber type="start">(\d+)<', text).group(1))
        rel = int(re.search(r'<safe:relativeOrbitNumber type="start">(\d+)<', text).group(1))
        assert relative_orbit(mission, absolute) == rel, manifest
        checked += 1
    assert checked == 2
    assert relative_orbit("S1B", 30148) == 22 and relative_orbit("S1A", 41314) == 117
    # the simulator's S1A anchor (the real product S1A_..._036201_043ED0_8255: relative orbit 79)
    assert relative_orbit("S1A", 36201) == 79


def test_relative_orbit_of_every_hub_record(raw_dhus, reply_json) -> None:
    """Every S1 record of the hub replies carries both numbers, consistent with the formula
    (the CREODIAS page is the exception, see below)."""
    checked = 0
    for body in ("search_grd_modes_2014.json", "search_iw_grd_2017.json",
                 "search_iw_grdh_2023_fields.json", "search_s1_s2_mixed_2015.json"):
        for e in raw_dhus(body):
            if not e["title"].startswith("S1"):
                continue
            assert relative_orbit(e["title"][:3], int(e["orbitnumber"])) == int(e["relativeorbitnumber"]), e["title"]
            checked += 1
    assert checked == 9 + 9 + 3 + 2


def test_creodias_record_disagrees_with_formula(reply_json) -> None:
    """CREODIAS records of S1A orbit 2673 (Oct 2014) say relative orbit 153; the formula, which
    matches the real manifests of both missions, gives 151. We keep the hub's value and warn."""
    item = reply_json("cdse", "creodias_iw_grdh_page.json")["value"][0]
    attrs = {a["Name"]: a["Value"] for a in item["Attributes"]}
    assert (attrs["orbitNumber"], attrs["relativeOrbitNumber"]) == (2673, 153)
    assert relative_orbit("S1A", 2673) == 151
    with pytest.warns(OrbitMismatchWarning, match="catalogue relative orbit 153 differs from 151"):
        rec = make_record(item["Name"], source="cdse", footprint=shapely.geometry.shape(item["GeoFootprint"]),
                          relative_orbit=153, orbit_direction="ASCENDING")
    assert rec.relative_orbit == 153


def test_relative_orbit_unknown_mission_names_product() -> None:
    with pytest.raises(InputError, match="of S1D_X: no known .* offset for S1D"):
        relative_orbit("S1D", 1000, product="S1D_X")


def _record(**kw) -> ProductRecord:
    base = dict(
        name=NAME, uuid="u", mission="S1A", start_time=datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC),
        stop_time=datetime(2017, 6, 13, 16, 51, 8, tzinfo=UTC), absolute_orbit=17018, relative_orbit=146,
        orbit_direction="ascending", datatake_id="01c579", footprint=Polygon([(10, 47), (14, 47), (14, 49), (10, 49)]),
    )
    base.update(kw)
    return ProductRecord(**base)


def test_record_normalises_and_computes_relative_orbit() -> None:
    r = _record(relative_orbit=None, name=NAME + ".SAFE")
    assert r.name == NAME
    assert r.relative_orbit == (17018 - 73) % 175 + 1 == 146
    assert r.orbit_direction == "ASCENDING" and r.datatake_id == "01C579"


def test_record_missing_absolute_orbit_names_product() -> None:
    with pytest.raises(InputError, match=f"product {NAME}: no absolute orbit"):
        _record(absolute_orbit=None, relative_orbit=None)
    with pytest.raises(InputError, match="product my_renamed_product: the catalogue gives no absolute orbit"):
        make_record("my_renamed_product", source="local", footprint=Polygon([(0, 0), (1, 0), (1, 1)]),
                    mission="S1A", start_time=datetime(2017, 1, 1, tzinfo=UTC),
                    stop_time=datetime(2017, 1, 1, tzinfo=UTC), orbit_direction="ASCENDING")


def test_make_record_fills_from_name_and_computes_orbit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = make_record(NAME, source="x", footprint=Polygon([(10, 47), (14, 47), (14, 49)]), orbit_direction="ASCENDING")
    assert (r.mission, r.absolute_orbit, r.relative_orbit, r.datatake_id) == ("S1A", 17018, 146, "01C579")
    assert r.start_time == datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC)


def test_record_rejects_naive_times_and_bad_direction() -> None:
    with pytest.raises(InputError, match="naive datetime"):
        _record(start_time=datetime(2017, 6, 13))
    with pytest.raises(InputError, match="orbit direction 'LEFT'"):
        _record(orbit_direction="LEFT")


def test_record_json_round_trip() -> None:
    r = _record(size=123, checksum="abc", checksum_algorithm="MD5", online=False, url="http://x", source="dhus")
    d = json.loads(json.dumps(r.to_json()))
    assert d["start_time"] == "2017-06-13T16:50:43Z"
    assert d["footprint"]["type"] == "Polygon"
    back = ProductRecord.from_json(d)
    assert back == r and back.footprint.equals(r.footprint)
    # WKT footprints are accepted too
    d["footprint"] = r.footprint.wkt
    assert ProductRecord.from_json(d).footprint.equals(r.footprint)
    with pytest.raises(InputError, match="missing field 'mission'"):
        ProductRecord.from_json({"name": NAME})


def test_self_intersecting_footprint_is_repaired_with_warning() -> None:
    bowtie = Polygon([(10, 47), (14, 49), (14, 47), (10, 49)])  # corners in the wrong order
    assert not bowtie.is_valid
    with pytest.warns(FootprintRepairWarning, match=f"product {NAME}: invalid footprint repaired .*Self-intersection"):
        fixed = clean_footprint(bowtie, NAME)
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon"
    assert fixed.area == pytest.approx(4.0)  # two triangles of the bow tie: 2 * (4 * 1 / 2)
    with pytest.warns(FootprintRepairWarning):
        r = make_record(NAME, source="x", footprint=bowtie, orbit_direction="ASCENDING")
    assert r.footprint.is_valid


def test_empty_or_non_polygon_footprint_is_an_error() -> None:
    with pytest.raises(InputError, match=f"product {NAME} has an empty footprint"):
        clean_footprint(Polygon(), NAME)
    with pytest.raises(InputError, match="LineString footprint"):
        clean_footprint(shapely.LineString([(0, 0), (1, 1)]), NAME)


def test_open_catalog_errors(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("BIGEARTHNET_S1_DHUS_URL", raising=False)
    with pytest.raises(CatalogError, match="unknown catalogue kind 'scihub'"):
        open_catalog("scihub")
    with pytest.raises(CatalogError, match="dhus catalogue: no URL"):
        open_catalog("dhus")
    with pytest.raises(CatalogError, match="local catalogue: no root"):
        open_catalog("local")
    with pytest.raises(CatalogError, match="is not a folder"):
        open_catalog("local", root=tmp_path / "missing")


def test_open_catalog_unknown_option(tmp_path) -> None:
    with pytest.raises(CatalogError, match="local catalogue: unknown option\\(s\\) colour; accepted: recursive, root, strict"):
        open_catalog("local", root=tmp_path, colour="red")
    with pytest.raises(CatalogError, match="cdse catalogue: unknown option\\(s\\) rows"):
        open_catalog("cdse", rows=5)
    cat = open_catalog("cdse", url="http://127.0.0.1:9/odata/v1", page_size=10, retries=1)
    assert cat.page_size == 10 and cat.retries == 1
