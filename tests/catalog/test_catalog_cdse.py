"""The cdse backend against CDSE / CREODIAS OData replies (``fixtures/cdse``, written in the
documented OData schema) on loopback."""

from __future__ import annotations

import json
import logging
import warnings
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import shapely
from pytest_httpserver import HTTPServer

from bigearthnet_s1.catalog import OrbitMismatchWarning, open_catalog
from bigearthnet_s1.catalog.cdse import DEFAULT_DOWNLOAD_URL, DEFAULT_URL, CdseCatalog, cdse_access_token
from bigearthnet_s1.errors import AuthenticationError, CatalogError

MEXICO = shapely.box(-106, 27, -102, 30)
T0, T1 = datetime(2014, 10, 1, tzinfo=UTC), datetime(2014, 10, 10, tzinfo=UTC)


def _local_link(link: str, httpserver: HTTPServer) -> str:
    """A hub's @odata.nextLink pointed at the loopback server (same path and query)."""
    parts = urlsplit(link)
    return httpserver.url_for(parts.path) + "?" + parts.query


def _search(cat: CdseCatalog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrbitMismatchWarning)  # 153 vs 151, see test_catalog_records
        return cat.search(MEXICO, T0, T1)


def test_creodias_page_fields(httpserver: HTTPServer, reply_json) -> None:
    doc = reply_json("cdse", "creodias_iw_grdh_page.json")
    del doc["@odata.nextLink"]  # serve it as a single last page
    httpserver.expect_request("/odata/v1/Products").respond_with_json(doc)
    cat = CdseCatalog(httpserver.url_for("/odata/v1"))
    records = _search(cat)
    assert len(records) == 10
    for r, item in zip(records, doc["value"], strict=True):
        attrs = {a["Name"]: a["Value"] for a in item["Attributes"]}
        assert r.name == item["Name"].removesuffix(".SAFE")
        assert r.uuid == item["Id"] and r.source == "cdse"
        assert r.mission == "S1" + attrs["platformSerialIdentifier"] == "S1A"
        assert r.absolute_orbit == attrs["orbitNumber"] == 2673
        assert r.relative_orbit == attrs["relativeOrbitNumber"] == 153  # the hub's value is kept
        assert r.orbit_direction == attrs["orbitDirection"] == "ASCENDING"
        assert r.datatake_id == "002FAB"
        assert r.start_time == datetime.fromisoformat(item["ContentDate"]["Start"].replace("Z", "+00:00"))
        assert r.stop_time == datetime.fromisoformat(item["ContentDate"]["End"].replace("Z", "+00:00"))
        assert shapely.get_coordinates(r.footprint).tolist() == item["GeoFootprint"]["coordinates"][0]
        assert r.online is True
        assert r.size is None  # ContentLength 0 means unknown on CREODIAS
        assert r.checksum is None and r.checksum_algorithm is None  # Checksum: []
        assert r.url == httpserver.url_for(f"/odata/v1/Products({item['Id']})/$value")
    assert records[0].name == "S1A_IW_GRDH_1SSV_20141004T005844_20141004T005909_002673_002FAB_CB3B"
    assert records[0].start_time == datetime(2014, 10, 4, 0, 58, 44, 620000, tzinfo=UTC)
    # the query sent
    args = parse_qs(httpserver.log[0][0].query_string.decode())
    flt = args["$filter"][0]
    assert flt.startswith("Collection/Name eq 'SENTINEL-1' and (Attributes/OData.CSC.StringAttribute/any(")
    assert "att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S'" in flt
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((-102 27, -102 30, -106 30, -106 27, -102 27))')" in flt
    assert "ContentDate/Start ge 2014-10-01T00:00:00.000Z and ContentDate/Start le 2014-10-10T00:00:00.000Z" in flt
    assert args["$expand"] == ["Attributes"] and args["$orderby"] == ["ContentDate/Start asc"]
    assert "Authorization" not in httpserver.log[0][0].headers


def test_footprint_from_wkt_when_no_geojson(httpserver: HTTPServer, reply_json) -> None:
    doc = reply_json("cdse", "creodias_iw_grdh_page.json")
    item = doc["value"][3]
    geo = item.pop("GeoFootprint")
    assert item["Footprint"].startswith("geography'SRID=4326;POLYGON ((")
    with pytest.warns(OrbitMismatchWarning):
        rec = CdseCatalog(httpserver.url_for("/odata/v1")).parse_product(item)
    assert shapely.get_coordinates(rec.footprint).tolist() == geo["coordinates"][0]


def test_paging_follows_next_link_across_grd_pages(httpserver: HTTPServer, reply_json) -> None:
    """The CREODIAS page split in two pages (6 + 4 records) joined by a nextLink."""
    doc = reply_json("cdse", "creodias_iw_grdh_page.json")
    link = _local_link(doc["@odata.nextLink"], httpserver)
    page1 = dict(doc, value=doc["value"][:6], **{"@odata.nextLink": link})
    page2 = {"@odata.context": doc["@odata.context"], "value": doc["value"][6:]}
    httpserver.expect_request("/odata/v1/Products", query_string={"$filter": parse_qs(urlsplit(link).query)["$filter"][0],
                              "$orderby": "ContentDate/Start asc", "$top": "10", "$skip": "10",
                              "$expand": "Attributes", "$count": "True"}).respond_with_json(page2)
    httpserver.expect_request("/odata/v1/Products").respond_with_json(page1)
    records = _search(CdseCatalog(httpserver.url_for("/odata/v1")))
    assert [r.name for r in records] == [v["Name"].removesuffix(".SAFE") for v in doc["value"]]
    assert len(httpserver.log) == 2
    assert "%24skip=10" in httpserver.log[1][0].query_string.decode()


def test_paging_cdse_collection_pages(httpserver: HTTPServer, reply_json) -> None:
    """CDSE page 1 (nextLink, 10 AUX items) then the last page (7 items, no link): AUX
    products are skipped, the paging stops at the page without a nextLink."""
    p1 = reply_json("cdse", "cdse_aux_page1.json")
    p5 = reply_json("cdse", "cdse_aux_page2_last.json")
    assert p1["@odata.count"] == 17 and len(p1["value"]) + len(p5["value"]) == 17 and "@odata.nextLink" not in p5
    p1["@odata.nextLink"] = _local_link(p1["@odata.nextLink"], httpserver)
    httpserver.expect_oneshot_request("/odata/v1/Products").respond_with_json(p1)
    httpserver.expect_oneshot_request("/odata/v1/Products").respond_with_json(p5)
    cat = CdseCatalog(httpserver.url_for("/odata/v1"))
    assert cat.search(MEXICO, T0, T1) == []
    assert len(httpserver.log) == 2
    second = parse_qs(httpserver.log[1][0].query_string.decode())
    assert second["$skip"] == ["10"] and second["$top"] == ["10"]


def test_checksum_prefers_md5(reply_json) -> None:
    """A GRD item given the Checksum list of a CDSE item (MD5 + BLAKE3)."""
    grd = reply_json("cdse", "creodias_iw_grdh_page.json")["value"][0]
    cdse_item = reply_json("cdse", "cdse_aux_page1.json")["value"][0]
    grd = dict(grd, Checksum=cdse_item["Checksum"], ContentLength=cdse_item["ContentLength"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrbitMismatchWarning)
        rec = CdseCatalog().parse_product(grd)
    assert (rec.checksum, rec.checksum_algorithm) == ("9670f20cd169fb7f63cdae710abe0dd8", "MD5")
    assert rec.size == 41000
    only_blake3 = dict(grd, Checksum=[c for c in cdse_item["Checksum"] if c["Algorithm"] == "BLAKE3"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrbitMismatchWarning)
        rec = CdseCatalog().parse_product(only_blake3)
    assert (rec.checksum, rec.checksum_algorithm) == (only_blake3["Checksum"][0]["Value"], "BLAKE3")
    assert rec.url == f"{DEFAULT_DOWNLOAD_URL}/Products({grd['Id']})/$value"


def test_null_footprint_grd_is_skipped_with_warning(reply_json) -> None:
    grd = dict(reply_json("cdse", "creodias_iw_grdh_page.json")["value"][0], GeoFootprint=None, Footprint=None)
    with pytest.warns(UserWarning, match="S1A_IW_GRDH_1SSV_20141004T005844.* has no footprint; skipped"):
        assert CdseCatalog().parse_product(grd) is None


def test_next_link_to_another_host_is_refused(httpserver: HTTPServer, reply_json) -> None:
    doc = reply_json("cdse", "creodias_iw_grdh_page.json")  # nextLink -> datahub.creodias.eu
    httpserver.expect_request("/odata/v1/Products").respond_with_json(doc)
    with pytest.raises(CatalogError, match="nextLink points to another host \\(datahub.creodias.eu"):
        _search(CdseCatalog(httpserver.url_for("/odata/v1"), token="tok"))


def test_repeating_next_link_stops(httpserver: HTTPServer, reply_json) -> None:
    doc = reply_json("cdse", "creodias_iw_grdh_page.json")
    doc["@odata.nextLink"] = httpserver.url_for("/odata/v1/Products") + "?%24skip=10"
    httpserver.expect_request("/odata/v1/Products").respond_with_json(doc)
    with pytest.raises(CatalogError, match="nextLink repeats"):
        _search(CdseCatalog(httpserver.url_for("/odata/v1")))


def test_token_and_credentials(httpserver: HTTPServer, reply_json, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(
        "/token", method="POST",
        data="client_id=cdse-public&grant_type=password&username=carol&password=pa%24%24-secret-9",
    ).respond_with_json({"access_token": "eyJ-token", "expires_in": 600})
    assert cdse_access_token("carol", "pa$$-secret-9", token_url=httpserver.url_for("/token")) == "eyJ-token"
    httpserver.expect_request("/bad-token", method="POST").respond_with_json({"error": "invalid_grant"}, status=401)
    with pytest.raises(AuthenticationError, match="HTTP 401 .* refused the credentials") as err:
        cdse_access_token("carol", "pa$$-secret-9", token_url=httpserver.url_for("/bad-token"))
    assert "secret" not in str(err.value)

    doc = reply_json("cdse", "creodias_iw_grdh_page.json")
    del doc["@odata.nextLink"]
    httpserver.expect_request("/odata/v1/Products", headers={"Authorization": "Bearer eyJ-token"}).respond_with_json(doc)
    monkeypatch.setenv("CDSE_USER", "carol")
    monkeypatch.setenv("CDSE_PASSWORD", "pa$$-secret-9")
    cat = open_catalog("cdse", url=httpserver.url_for("/odata/v1"), token_url=httpserver.url_for("/token"))
    assert cat.access_token() == "eyJ-token"
    assert len(_search(cat)) == 10
    assert "secret" not in caplog.text and "secret" not in repr(cat) and "eyJ" not in repr(cat)


def test_default_urls() -> None:
    cat = CdseCatalog()
    assert cat.url == DEFAULT_URL == "https://catalogue.dataspace.copernicus.eu/odata/v1"
    assert cat.download_url == "https://download.dataspace.copernicus.eu/odata/v1"
    assert json.dumps(repr(cat))


def test_search_polygon_stays_short_and_covers_the_area(httpserver: HTTPServer) -> None:
    from bigearthnet_s1.catalog.cdse import _search_polygon_wkt
    from bigearthnet_s1.tiles import MapGrid, TileAcquisition, mgrs_tile_origin

    epsg, ulx, uly = mgrs_tile_origin("35WPR")
    tile = TileAcquisition("35WPR", T0, None, MapGrid.tile(epsg, ulx, uly), ())
    outline = shapely.segmentize(tile.footprint_wgs84, 0.01)  # a densified outline
    assert len(outline.exterior.coords) > 300
    wkt = _search_polygon_wkt(outline)
    area = shapely.from_wkt(wkt)
    assert len(area.exterior.coords) <= 40 and area.contains(outline)
    assert area.area < outline.area * 1.02
