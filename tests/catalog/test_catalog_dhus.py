"""The dhus backend: sentinelsat's SentinelAPI against the recorded real DHuS responses,
served by a real HTTP server on loopback."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
import shapely
import shapely.wkt
from pytest_httpserver import HTTPServer

from bigearthnet_s1.catalog import ProductRecord, open_catalog
from bigearthnet_s1.catalog.dhus import DhusCatalog
from bigearthnet_s1.errors import CatalogError

AMAZON = shapely.Polygon([(-66.2695, -8.0592), (-66.2695, 0.7031), (-57.3047, 0.7031), (-57.3047, -8.0592)])


def _serve_search(httpserver: HTTPServer, recorded, body_file: str) -> None:
    httpserver.expect_request("/apihub/search").respond_with_data(
        recorded("dhus", body_file), content_type="application/json"
    )


def _query(httpserver: HTTPServer) -> str:
    req = httpserver.log[-1][0]
    return parse_qs(req.query_string.decode())["q"][0]


def test_search_2017_all_iw_grd_fields(httpserver: HTTPServer, recorded, raw_dhus, sleeps) -> None:
    _serve_search(httpserver, recorded, "02_search_s1_grd_amazon_2017.json")
    cat = DhusCatalog(httpserver.url_for("/apihub/"), user="alice", password="s3cret", sleep=sleeps)
    start, end = datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 1, 5, tzinfo=UTC)
    records = cat.search(AMAZON, start, end)

    raw = {e["title"]: e for e in raw_dhus("02_search_s1_grd_amazon_2017.json")}
    expected = sorted(n for n in raw if "_IW_GRD" in n)
    assert len(raw) == 18 and len(expected) == 17  # the S1B EW GRDM product is not IW
    assert sorted(r.name for r in records) == expected
    for r in records:
        e = raw[r.name]
        assert r.source == "dhus" and r.uuid == e["uuid"] == e["id"]
        assert r.mission == r.name[:3] == "S1A"
        assert r.absolute_orbit == int(e["orbitnumber"])
        assert r.relative_orbit == int(e["relativeorbitnumber"])
        assert r.orbit_direction == e["orbitdirection"] == "DESCENDING"
        assert r.datatake_id == f"{int(e['missiondatatakeid']):06X}" == r.name.split("_")[-2]
        assert r.start_time == datetime.fromisoformat(e["beginposition"].replace("Z", "+00:00"))
        assert r.stop_time == datetime.fromisoformat(e["endposition"].replace("Z", "+00:00"))
        assert r.footprint.equals(shapely.wkt.loads(e["footprint"]))
        assert r.url == e["link"]
        assert r.size is None and r.checksum is None and r.online is None  # search gives "1.61 GB" only
    one = next(r for r in records if r.name.endswith("_017E1E_3422"))
    assert (one.absolute_orbit, one.relative_orbit, one.datatake_id) == (14680, 83, "017E1E")
    assert shapely.get_coordinates(one.footprint)[0].tolist() == [-60.37653, -2.777689]
    # what went over the wire
    q = _query(httpserver)
    assert 'beginPosition:["2017-01-01T00:00:00Z" TO "2017-01-05T00:00:00Z"]' in q
    assert 'producttype:"GRD"' in q and 'sensoroperationalmode:"IW"' in q
    assert 'footprint:"Intersects(POLYGON((' in q
    auth = httpserver.log[-1][0].headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert sleeps.waits == []


def test_search_2014_keeps_only_iw_grd(httpserver: HTTPServer, recorded, raw_dhus) -> None:
    _serve_search(httpserver, recorded, "01_search_s1_grd_amazon_2014.json")
    cat = DhusCatalog(httpserver.url_for("/apihub"))
    records = cat.search(AMAZON, datetime(2014, 10, 10, tzinfo=UTC), datetime(2014, 12, 31, tzinfo=UTC))
    raw = raw_dhus("01_search_s1_grd_amazon_2014.json")
    assert len(raw) == 19
    assert sorted(r.name for r in records) == [
        "S1A_IW_GRDH_1SDH_20141129T224535_20141129T224605_003502_0041D0_6A3D",
        "S1A_IW_GRDH_1SDV_20141105T224535_20141105T224606_003152_0039FE_30D7",
        "S1A_IW_GRDH_1SDV_20141223T224534_20141223T224604_003852_0049CA_F221",
    ]
    assert {(r.relative_orbit, r.orbit_direction) for r in records} == {(105, "ASCENDING")}


def test_search_mixed_s2_slc_grd(httpserver: HTTPServer, recorded) -> None:
    _serve_search(httpserver, recorded, "05_search_contains_relation_s1_s2.json")
    cat = DhusCatalog(httpserver.url_for("/apihub/"))
    area = shapely.Polygon([(10.83, 53.04), (11.64, 53.04), (11.64, 52.65), (10.83, 52.65)])
    records = cat.search(area, datetime(2015, 12, 19, tzinfo=UTC), datetime(2015, 12, 26, tzinfo=UTC))
    assert [r.name for r in records] == ["S1A_IW_GRDH_1SDV_20151223T052459_20151223T052528_009165_00D311_1751"]
    r = records[0]
    assert (r.absolute_orbit, r.relative_orbit, r.orbit_direction, r.datatake_id) == (9165, 168, "DESCENDING", "00D311")
    assert r.footprint.contains(area)


def test_multipolygon_footprint_newer_field_set(recorded) -> None:
    """File 03 (DHuS 2023 field set, MULTIPOLYGON footprint) parsed by sentinelsat's own
    OpenSearch parser; it is not served because its totalResults (10000) would make
    sentinelsat page through thousands of pages."""
    import json

    from sentinelsat.sentinel import _parse_opensearch_response

    doc = json.loads(recorded("dhus", "03_search_iw_grdh_recent_rows3.json"))
    products = _parse_opensearch_response(doc["feed"]["entry"])
    cat = DhusCatalog("http://127.0.0.1:9/apihub/")
    recs = {r.name: r for r in (cat.parse_product(u, p) for u, p in products.items()) if r}
    r = recs["S1A_IW_GRDH_1SDV_20230310T075746_20230310T075811_047579_05B6B2_8312"]
    assert r.footprint.geom_type == "MultiPolygon"
    assert (r.absolute_orbit, r.relative_orbit, r.datatake_id) == (47579, 82, "05B6B2")
    assert r.uuid == "753c29d7-42c4-4ff9-a962-bfb4219816c6"


def test_details_from_odata(httpserver: HTTPServer, recorded) -> None:
    uid = "753c29d7-42c4-4ff9-a962-bfb4219816c6"
    httpserver.expect_request(f"/apihub/odata/v1/Products('{uid}')", query_string="$format=json").respond_with_data(
        recorded("dhus", "04_odata_product_753c29d7_s1a_iw_grdh.json"), content_type="application/json"
    )
    cat = DhusCatalog(httpserver.url_for("/apihub/"))
    rec = ProductRecord(
        name="S1A_IW_GRDH_1SDV_20230310T075746_20230310T075811_047579_05B6B2_8312", uuid=uid, mission="S1A",
        start_time=datetime(2023, 3, 10, 7, 57, 46, tzinfo=UTC), stop_time=datetime(2023, 3, 10, 7, 58, 11, tzinfo=UTC),
        absolute_orbit=47579, relative_orbit=None, orbit_direction="DESCENDING", datatake_id="05B6B2",
        footprint=shapely.box(-30, 37, -26, 39), source="dhus",
    )
    full = cat.complete([rec])[0]
    assert full.size == 841709916
    assert (full.checksum, full.checksum_algorithm) == ("69bdce1998ccc02f56193290d38322e9", "MD5")
    assert full.online is True
    assert full.url == f"https://apihub.copernicus.eu/apihub/odata/v1/Products('{uid}')/$value"
    assert full.relative_orbit == 82


def test_details_without_online_key_and_offline_product(httpserver: HTTPServer, recorded) -> None:
    ew = "8df46c9e-a20c-43db-a19a-4240c2ed3b8b"
    s3 = "0cbef871-b908-4410-a197-af0888ad048c"
    httpserver.expect_request(f"/apihub/odata/v1/Products('{ew}')").respond_with_data(
        recorded("dhus", "06_odata_product_8df46c9e_s1a_ew_grdm_no_online_key.json"), content_type="application/json")
    httpserver.expect_request(f"/apihub/odata/v1/Products('{s3}')").respond_with_data(
        recorded("dhus", "07_odata_product_0cbef871_s3_offline.json"), content_type="application/json")
    httpserver.expect_request(f"/apihub/odata/v1/Products('{s3}')/Online/$value").respond_with_data(
        recorded("dhus", "08_odata_online_value_0cbef871_false.txt"), content_type="text/plain;charset=utf-8")
    cat = DhusCatalog(httpserver.url_for("/apihub/"))
    base = dict(mission="S1A", absolute_orbit=8701, relative_orbit=None, orbit_direction="DESCENDING",
                datatake_id=None, footprint=shapely.box(-67, -6, -63, -3), source="dhus",
                start_time=datetime(2015, 11, 21, 10, 3, 56, tzinfo=UTC), stop_time=datetime(2015, 11, 21, 10, 4, 29, tzinfo=UTC))
    ew_rec = ProductRecord(name="S1A_EW_GRDM_1SDV_20151121T100356_20151121T100429_008701_00C622_A0EC", uuid=ew, **base)
    d = cat.details(ew_rec)
    assert d.online is True  # no Online key: a DHuS without long-term archive
    assert (d.size, d.checksum) == (143549851, "d5e4df5c38c6e97bf7e7bd540ab21c05")
    wrong = ProductRecord(name="S1A_IW_GRDH_1SDV_20151121T100356_20151121T100429_008701_00C622_AAAA", uuid=s3, **base)
    with pytest.raises(CatalogError, match="uuid 0cbef871-.* belongs to 'S3A_OL_2_LFR____20161127T173119"):
        cat.details(wrong)
    assert cat.is_online(wrong) is False


def test_open_catalog_takes_credentials_from_environment(httpserver: HTTPServer, recorded, monkeypatch, caplog) -> None:
    _serve_search(httpserver, recorded, "05_search_contains_relation_s1_s2.json")
    monkeypatch.setenv("BIGEARTHNET_S1_DHUS_URL", httpserver.url_for("/apihub/"))
    monkeypatch.setenv("BIGEARTHNET_S1_DHUS_USER", "bob")
    monkeypatch.setenv("BIGEARTHNET_S1_DHUS_PASSWORD", "hunter2-very-secret")
    caplog.set_level(logging.DEBUG)
    cat = open_catalog("dhus")
    recs = cat.search(shapely.box(10.8, 52.6, 11.7, 53.1), datetime(2015, 12, 19, tzinfo=UTC), datetime(2015, 12, 26, tzinfo=UTC))
    assert len(recs) == 1
    assert httpserver.log[-1][0].headers["Authorization"] == "Basic " + base64.b64encode(b"bob:hunter2-very-secret").decode()
    assert "hunter2" not in caplog.text and "hunter2" not in repr(cat)
    assert "Found 3 products" in caplog.text  # sentinelsat's own log went through


def test_paging_over_the_recorded_entries(httpserver: HTTPServer, recorded_json) -> None:
    """A loopback DHuS that pages the 18 recorded entries of file 02 by ``start``/``rows``."""
    import json

    from werkzeug import Response

    doc = recorded_json("dhus", "02_search_s1_grd_amazon_2017.json")
    entries = doc["feed"]["entry"]

    def page(request):
        start, rows = int(request.args["start"]), int(request.args["rows"])
        feed = dict(doc["feed"], entry=entries[start:start + rows])
        feed["opensearch:startIndex"] = str(start)
        return Response(json.dumps({"feed": feed}), content_type="application/json")

    httpserver.expect_request("/apihub/search").respond_with_handler(page)
    cat = DhusCatalog(httpserver.url_for("/apihub/"), page_size=5)
    records = cat.search(AMAZON, datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 1, 5, tzinfo=UTC))
    assert [(r[0].args["start"], r[0].args["rows"]) for r in httpserver.log] == [("0", "5"), ("5", "5"), ("10", "5"), ("15", "5")]
    assert len(records) == 17 and len({r.name for r in records}) == 17
