"""The dhus backend: sentinelsat's SentinelAPI against DHuS replies (``fixtures/dhus``, written
in DHuS' documented OpenSearch and OData JSON schemas), served by a real HTTP server on loopback."""

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

POMERANIA = shapely.Polygon([(14.0, 52.5), (19.0, 52.5), (19.0, 55.0), (14.0, 55.0)])
AMAZON = shapely.Polygon([(-66.0, -8.0), (-57.0, -8.0), (-57.0, 0.7), (-66.0, 0.7)])


def _serve_search(httpserver: HTTPServer, reply, body_file: str) -> None:
    httpserver.expect_request("/apihub/search").respond_with_data(
        reply("dhus", body_file), content_type="application/json"
    )


def _query(httpserver: HTTPServer) -> str:
    req = httpserver.log[-1][0]
    return parse_qs(req.query_string.decode())["q"][0]


def test_search_2017_all_iw_grd_fields(httpserver: HTTPServer, reply, raw_dhus, sleeps) -> None:
    _serve_search(httpserver, reply, "search_iw_grd_2017.json")
    cat = DhusCatalog(httpserver.url_for("/apihub/"), user="alice", password="s3cret", sleep=sleeps)
    start, end = datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 1, 5, tzinfo=UTC)
    records = cat.search(POMERANIA, start, end)

    raw = {e["title"]: e for e in raw_dhus("search_iw_grd_2017.json")}
    expected = sorted(n for n in raw if "_IW_GRD" in n)
    assert len(raw) == 9 and len(expected) == 8  # the S1B EW GRDM product is not IW
    assert sorted(r.name for r in records) == expected
    for r in records:
        e = raw[r.name]
        assert r.source == "dhus" and r.uuid == e["uuid"] == e["id"]
        assert r.mission == r.name[:3] == e["identifier"][:3]
        assert r.absolute_orbit == int(e["orbitnumber"])
        assert r.relative_orbit == int(e["relativeorbitnumber"])
        assert r.orbit_direction == e["orbitdirection"]
        assert r.datatake_id == f"{int(e['missiondatatakeid']):06X}" == r.name.split("_")[-2]
        assert r.start_time == datetime.fromisoformat(e["beginposition"].replace("Z", "+00:00"))
        assert r.stop_time == datetime.fromisoformat(e["endposition"].replace("Z", "+00:00"))
        assert r.footprint.equals(shapely.wkt.loads(e["footprint"]))
        assert r.url == e["link"]
        assert r.size is None and r.checksum is None and r.online is None  # search gives "1.64 GB" only
    assert {(r.mission, r.orbit_direction, r.relative_orbit) for r in records} == {
        ("S1A", "DESCENDING", 54), ("S1B", "ASCENDING", 166), ("S1A", "ASCENDING", 84)}
    one = next(r for r in records if r.name.endswith("_00652F_9E74"))
    assert (one.absolute_orbit, one.relative_orbit, one.datatake_id) == (3692, 166, "00652F")
    assert one.start_time == datetime(2017, 1, 3, 16, 27, 48, 90000, tzinfo=UTC)
    assert shapely.get_coordinates(one.footprint)[0].tolist() == [13.674123, 51.404792]
    # what went over the wire
    q = _query(httpserver)
    assert 'beginPosition:["2017-01-01T00:00:00Z" TO "2017-01-05T00:00:00Z"]' in q
    assert 'producttype:"GRD"' in q and 'sensoroperationalmode:"IW"' in q
    assert 'footprint:"Intersects(POLYGON((' in q
    auth = httpserver.log[-1][0].headers["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert sleeps.waits == []


def test_search_2014_keeps_only_iw_grd(httpserver: HTTPServer, reply, raw_dhus) -> None:
    _serve_search(httpserver, reply, "search_grd_modes_2014.json")
    cat = DhusCatalog(httpserver.url_for("/apihub"))
    records = cat.search(AMAZON, datetime(2014, 10, 10, tzinfo=UTC), datetime(2014, 12, 31, tzinfo=UTC))
    raw = raw_dhus("search_grd_modes_2014.json")
    assert len(raw) == 9 and {e["sensoroperationalmode"] for e in raw} == {"EW", "IW", "S2", "S5"}
    assert sorted(r.name for r in records) == [  # not the EW, stripmap or SLC products
        "S1A_IW_GRDH_1SDH_20141129T224535_20141129T224605_003502_0041D0_4AA1",
        "S1A_IW_GRDH_1SDV_20141105T224535_20141105T224606_003152_0039FE_0DB3",
        "S1A_IW_GRDH_1SDV_20141223T224534_20141223T224604_003852_0049CA_797A",
    ]
    assert {(r.relative_orbit, r.orbit_direction) for r in records} == {(105, "ASCENDING")}


def test_search_mixed_s2_slc_grd(httpserver: HTTPServer, reply) -> None:
    _serve_search(httpserver, reply, "search_s1_s2_mixed_2015.json")
    cat = DhusCatalog(httpserver.url_for("/apihub/"))
    area = shapely.Polygon([(10.83, 53.04), (11.64, 53.04), (11.64, 52.65), (10.83, 52.65)])
    records = cat.search(area, datetime(2015, 12, 19, tzinfo=UTC), datetime(2015, 12, 26, tzinfo=UTC))
    assert [r.name for r in records] == ["S1A_IW_GRDH_1SDV_20151223T052459_20151223T052528_009165_00D311_EF7F"]
    r = records[0]
    assert (r.absolute_orbit, r.relative_orbit, r.orbit_direction, r.datatake_id) == (9165, 168, "DESCENDING", "00D311")
    assert r.footprint.contains(area)


def test_multipolygon_footprint_newer_field_set(httpserver: HTTPServer, reply) -> None:
    """DHuS' later field set (timeliness, other order, one-part MULTIPOLYGON footprints),
    through sentinelsat's own OpenSearch parser and served as a search."""
    import json

    from sentinelsat.sentinel import _parse_opensearch_response

    doc = json.loads(reply("dhus", "search_iw_grdh_2023_fields.json"))
    products = _parse_opensearch_response(doc["feed"]["entry"])
    cat = DhusCatalog("http://127.0.0.1:9/apihub/")
    recs = {r.name: r for r in (cat.parse_product(u, p) for u, p in products.items()) if r}
    assert len(recs) == 3
    r = recs["S1A_IW_GRDH_1SDV_20230310T075746_20230310T075811_047579_05B6B2_DCF3"]
    assert r.footprint.geom_type == "MultiPolygon" and len(r.footprint.geoms) == 1
    assert r.footprint.contains(shapely.Point(-27.0, 38.3))
    assert (r.absolute_orbit, r.relative_orbit, r.datatake_id) == (47579, 82, "05B6B2")
    assert r.uuid == "a52e1d98-e7ca-a859-47bf-090df9924ab3"
    _serve_search(httpserver, reply, "search_iw_grdh_2023_fields.json")
    served = DhusCatalog(httpserver.url_for("/apihub/")).search(
        shapely.box(-28.6, 37.7, -28.4, 37.9), datetime(2023, 3, 7, 12, tzinfo=UTC), datetime(2023, 3, 13, 12, tzinfo=UTC))
    assert sorted(x.name for x in served) == sorted(recs) and all(x == recs[x.name] for x in served)


def test_details_from_odata(httpserver: HTTPServer, reply) -> None:
    uid = "a52e1d98-e7ca-a859-47bf-090df9924ab3"
    httpserver.expect_request(f"/apihub/odata/v1/Products('{uid}')", query_string="$format=json").respond_with_data(
        reply("dhus", "odata_product_iw_grdh_online.json"), content_type="application/json"
    )
    cat = DhusCatalog(httpserver.url_for("/apihub/"))
    rec = ProductRecord(
        name="S1A_IW_GRDH_1SDV_20230310T075746_20230310T075811_047579_05B6B2_DCF3", uuid=uid, mission="S1A",
        start_time=datetime(2023, 3, 10, 7, 57, 46, tzinfo=UTC), stop_time=datetime(2023, 3, 10, 7, 58, 11, tzinfo=UTC),
        absolute_orbit=47579, relative_orbit=None, orbit_direction="DESCENDING", datatake_id="05B6B2",
        footprint=shapely.box(-30, 37, -26, 39), source="dhus",
    )
    full = cat.complete([rec])[0]
    assert full.size == 836142097
    assert (full.checksum, full.checksum_algorithm) == ("6a9d9d67ad828fa87319648968447f53", "MD5")
    assert full.online is True
    assert full.url == f"https://apihub.copernicus.eu/apihub/odata/v1/Products('{uid}')/$value"
    assert full.relative_orbit == 82


def test_details_without_online_key_and_offline_product(httpserver: HTTPServer, reply) -> None:
    ew = "676a60a6-c4d3-b19b-d28e-a7930a82fff9"
    off = "d9b476bf-65e0-ed1c-9b3a-3086e28b7d55"
    httpserver.expect_request(f"/apihub/odata/v1/Products('{ew}')").respond_with_data(
        reply("dhus", "odata_product_ew_grdm_no_online_key.json"), content_type="application/json")
    httpserver.expect_request(f"/apihub/odata/v1/Products('{off}')").respond_with_data(
        reply("dhus", "odata_product_offline.json"), content_type="application/json")
    httpserver.expect_request(f"/apihub/odata/v1/Products('{off}')/Online/$value").respond_with_data(
        reply("dhus", "odata_online_value_offline.txt"), content_type="text/plain;charset=utf-8")
    cat = DhusCatalog(httpserver.url_for("/apihub/"))
    base = dict(mission="S1A", absolute_orbit=8701, relative_orbit=None, orbit_direction="DESCENDING",
                datatake_id=None, footprint=shapely.box(-67, -6, -63, -3), source="dhus",
                start_time=datetime(2015, 11, 21, 10, 3, 56, tzinfo=UTC), stop_time=datetime(2015, 11, 21, 10, 4, 29, tzinfo=UTC))
    ew_rec = ProductRecord(name="S1A_EW_GRDM_1SDV_20151121T100356_20151121T100429_008701_00C622_DE8D", uuid=ew, **base)
    d = cat.details(ew_rec)
    assert d.online is True  # no Online key: a DHuS without long-term archive
    assert (d.size, d.checksum) == (143627913, "802959e67f081fe966928b2adbe953fa")
    wrong = ProductRecord(name="S1A_IW_GRDH_1SDV_20151121T100356_20151121T100429_008701_00C622_AAAA", uuid=off, **base)
    with pytest.raises(CatalogError, match="uuid d9b476bf-.* belongs to 'S1B_IW_GRDH_1SDV_20190211T170623"):
        cat.details(wrong)
    assert cat.is_online(wrong) is False


def test_open_catalog_takes_credentials_from_environment(httpserver: HTTPServer, reply, monkeypatch, caplog) -> None:
    _serve_search(httpserver, reply, "search_s1_s2_mixed_2015.json")
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


def test_single_result_sent_as_an_object(httpserver: HTTPServer, reply_json) -> None:
    """DHuS sends a lone entry (and a lone int/str item) as an object, not a list."""
    doc = reply_json("dhus", "search_s1_s2_mixed_2015.json")
    grd = doc["feed"]["entry"][2]
    one = dict(grd, int=next(i for i in grd["int"] if i["name"] == "orbitnumber"))
    feed = dict(doc["feed"], entry=one, **{"opensearch:totalResults": "1"})
    httpserver.expect_request("/apihub/search").respond_with_json({"feed": feed})
    recs = DhusCatalog(httpserver.url_for("/apihub/")).search(
        shapely.box(10.8, 52.6, 11.7, 53.1), datetime(2015, 12, 19, tzinfo=UTC), datetime(2015, 12, 26, tzinfo=UTC))
    assert [r.name for r in recs] == [grd["title"]]
    # only the orbit number came: the relative orbit is computed, the data-take taken from the name
    assert (recs[0].absolute_orbit, recs[0].relative_orbit, recs[0].datatake_id) == (9165, 168, "00D311")


def test_paging_over_the_entries(httpserver: HTTPServer, reply_json) -> None:
    """A loopback DHuS that pages the 9 entries of the 2017 search by ``start``/``rows``."""
    import json

    from werkzeug import Response

    doc = reply_json("dhus", "search_iw_grd_2017.json")
    entries = doc["feed"]["entry"]

    def page(request):
        start, rows = int(request.args["start"]), int(request.args["rows"])
        feed = dict(doc["feed"], entry=entries[start:start + rows])
        feed["opensearch:startIndex"] = str(start)
        return Response(json.dumps({"feed": feed}), content_type="application/json")

    httpserver.expect_request("/apihub/search").respond_with_handler(page)
    cat = DhusCatalog(httpserver.url_for("/apihub/"), page_size=2)
    records = cat.search(POMERANIA, datetime(2017, 1, 1, tzinfo=UTC), datetime(2017, 1, 5, tzinfo=UTC))
    assert [(r[0].args["start"], r[0].args["rows"]) for r in httpserver.log] == [
        ("0", "2"), ("2", "2"), ("4", "2"), ("6", "2"), ("8", "2")]
    assert len(records) == 8 and len({r.name for r in records}) == 8
