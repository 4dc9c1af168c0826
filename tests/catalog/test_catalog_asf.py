"""ASF backend: the Search API's GeoJSON mapped onto ProductRecord, searched on a loopback replay.

The replies are written here in ASF's documented Search API schema (``output=geojson``: a
FeatureCollection whose feature properties are asf-search's ``ASFProduct`` properties), either
literally or with ``hub_replies.asf_feature``; the replay checks the query keywords the way
the Search API reads them.
"""

from __future__ import annotations

import json
import logging
import warnings
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
import shapely
import shapely.wkt
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bigearthnet_s1.catalog import OrbitMismatchWarning, ProductRecord, open_catalog
from bigearthnet_s1.catalog.asf import AsfCatalog, search_polygon
from bigearthnet_s1.errors import AuthenticationError, CatalogError

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
RING = [[13.9, 47.4], [10.6, 47.8], [10.2, 46.3], [13.4, 45.9], [13.9, 47.4]]
PATH = "/services/search/param"
AREA = shapely.box(11.5, 46.5, 12.5, 47.2)
T0, T1 = datetime(2017, 6, 10, 16, 0, tzinfo=UTC), datetime(2017, 6, 16, 16, 0, tzinfo=UTC)


def _feature(**changes) -> dict:
    """A literal Search API feature of one IW GRDH product (ASCENDING, path 146, frame 154)."""
    props = {
        "beamModeType": "IW",
        "browse": None,
        "bytes": 1689123456,
        "centerLat": 46.85,
        "centerLon": 12.03,
        "faradayRotation": None,
        "fileID": f"{NAME}-GRD_HD",
        "flightDirection": "ASCENDING",
        "groupID": "S1A_IWDV_0154_0159_017018_146",
        "granuleType": "SENTINEL_1A_FRAME",
        "insarStackId": None,
        "md5sum": "9E107D9D372BB6826BD81D3542A419D6",
        "offNadirAngle": None,
        "orbit": 17018,
        "pathNumber": 146,
        "platform": "Sentinel-1A",
        "pointingAngle": None,
        "polarization": "VV+VH",
        "processingDate": "2017-06-13T18:02:11.000Z",
        "processingLevel": "GRD_HD",
        "sceneName": NAME,
        "sensor": "C-SAR",
        "startTime": "2017-06-13T16:50:43.264Z",
        "stopTime": "2017-06-13T16:51:08.263Z",
        "url": f"https://datapool.asf.alaska.edu/GRD_HD/SA/{NAME}.zip",
        "fileName": f"{NAME}.zip",
        "frameNumber": 154,
    }
    geometry = changes.pop("geometry", {"type": "Polygon", "coordinates": [RING]})
    props.update(changes)
    return {"type": "Feature", "geometry": geometry, "properties": props}


def _reply(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def test_feature_maps_onto_a_product_record() -> None:
    rec = AsfCatalog().parse_feature(_feature())
    assert isinstance(rec, ProductRecord)
    assert rec.name == NAME and rec.uuid == f"{NAME}-GRD_HD" and rec.source == "asf"
    assert rec.mission == "S1A" and rec.absolute_orbit == 17018
    assert rec.relative_orbit == 146 and rec.orbit_direction == "ASCENDING" and rec.frame == 154
    assert rec.datatake_id == "01C579"
    assert rec.start_time == datetime(2017, 6, 13, 16, 50, 43, 264000, tzinfo=UTC)
    assert rec.stop_time == datetime(2017, 6, 13, 16, 51, 8, 263000, tzinfo=UTC)
    assert rec.start_time.utcoffset().total_seconds() == 0
    assert rec.size == 1689123456
    assert rec.checksum == "9e107d9d372bb6826bd81d3542a419d6" and rec.checksum_algorithm == "MD5"
    assert rec.online is True
    assert rec.url == f"https://datapool.asf.alaska.edu/GRD_HD/SA/{NAME}.zip"
    assert rec.footprint.equals(shapely.Polygon(RING))
    # the record survives the JSON the pipeline stores between steps, frame included
    back = ProductRecord.from_json(json.loads(json.dumps(rec.to_json())))
    assert back == rec and back.frame == 154


@pytest.mark.parametrize("start, expected", [
    ("2017-06-13T16:50:43.264", datetime(2017, 6, 13, 16, 50, 43, 264000, tzinfo=UTC)),  # no offset: UTC
    ("2017-06-13T18:50:43.264+02:00", datetime(2017, 6, 13, 16, 50, 43, 264000, tzinfo=UTC)),
    ("2017-06-13T16:50:43Z", datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC)),
])
def test_times_are_utc(start: str, expected: datetime) -> None:
    rec = AsfCatalog().parse_feature(_feature(startTime=start))
    assert rec is not None and rec.start_time == expected and rec.start_time.tzinfo == UTC


@pytest.mark.parametrize("ring", [
    # corners either side of the antimeridian, as most writers give them
    [[179.2, -16.1], [-178.6, -16.5], [-178.9, -18.0], [178.8, -17.6], [179.2, -16.1]],
    # the same corners unwrapped past 180 deg
    [[179.2, -16.1], [181.4, -16.5], [181.1, -18.0], [178.8, -17.6], [179.2, -16.1]],
])
def test_antimeridian_footprints_are_split_at_180(ring: list) -> None:
    name = "S1B_IW_GRDH_1SDV_20190105T062345_20190105T062410_014341_01AB12_3F4C"
    feature = _feature(sceneName=name, fileID=f"{name}-GRD_HD", platform="Sentinel-1B", orbit=14341,
                       pathNumber=(14341 - 27) % 175 + 1, flightDirection="DESCENDING", startTime=None,
                       stopTime=None, geometry={"type": "Polygon", "coordinates": [ring]})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        rec = AsfCatalog().parse_feature(feature)
    assert rec is not None
    fp = rec.footprint
    assert fp.geom_type == "MultiPolygon" and len(fp.geoms) == 2
    minx, _, maxx, _ = fp.bounds
    assert minx == pytest.approx(-180.0) and maxx == pytest.approx(180.0)
    west, east = sorted(fp.geoms, key=lambda g: g.bounds[0])
    assert west.bounds[2] == pytest.approx(-178.6) and east.bounds[0] == pytest.approx(178.8)
    # the area is the unwrapped polygon's (about 2.6 x 1.5 deg), not a band round the Earth
    unwrapped = shapely.Polygon([(x + 360 if x < 0 else x, y) for x, y in ring])
    assert fp.area == pytest.approx(unwrapped.area, rel=1e-9)
    # start/stop missing: taken from the name
    assert rec.start_time == datetime(2019, 1, 5, 6, 23, 45, tzinfo=UTC)


def test_path_number_is_the_relative_orbit_and_a_disagreement_is_warned() -> None:
    with pytest.warns(OrbitMismatchWarning, match="relative orbit 12 differs from 146"):
        rec = AsfCatalog().parse_feature(_feature(pathNumber=12))
    assert rec is not None and rec.relative_orbit == 12


def test_missing_flight_direction_names_the_product() -> None:
    with pytest.raises(CatalogError, match=f"ASF product {NAME}: .*flightDirection"):
        AsfCatalog().parse_feature(_feature(flightDirection=None))


@pytest.mark.parametrize("bad, match", [
    ({"md5sum": "not-a-digest"}, "md5sum"),
    ({"bytes": "1.6 GB"}, "bytes"),
    ({"orbit": 17018.5}, "orbit"),
    ({"geometry": None}, "no geometry"),
    ({"startTime": "yesterday"}, "yesterday"),
])
def test_unusable_values_name_the_product_and_field(bad: dict, match: str) -> None:
    with pytest.raises(CatalogError, match=f"ASF product {NAME}: unusable record .*{match}"):
        AsfCatalog().parse_feature(_feature(**bad))


def test_checksum_and_size_when_asf_gives_none() -> None:
    rec = AsfCatalog().parse_feature(_feature(md5sum=None, bytes=None))
    assert rec is not None and rec.checksum is None and rec.checksum_algorithm is None and rec.size is None
    rec = AsfCatalog().parse_feature(_feature(md5sum="", bytes="1689123456"))
    assert rec is not None and rec.checksum is None and rec.size == 1689123456


def test_other_products_are_skipped_and_polarisation_checked() -> None:
    cat = AsfCatalog()
    slc = NAME.replace("GRDH_1SDV", "SLC__1SDV")
    assert cat.parse_feature(_feature(sceneName=slc, processingLevel="SLC")) is None
    assert cat.parse_feature(_feature(processingLevel="METADATA_GRD_HD")) is None
    ew = NAME.replace("_IW_", "_EW_").replace("GRDH", "GRDM")
    assert cat.parse_feature(_feature(sceneName=ew, processingLevel="GRD_MD")) is None
    with pytest.warns(UserWarning, match="polarization 'HH\\+HV' disagrees with the name's DV"):
        cat.parse_feature(_feature(polarization="HH+HV"))


def _replay(httpserver: HTTPServer, reply_for, seen: list) -> None:
    def handler(request: Request) -> Response:
        seen.append(request)
        return reply_for(request)

    httpserver.expect_request(PATH, method="GET").respond_with_handler(handler)


def test_search_on_a_replay_sends_asf_keywords_and_filters_by_start(httpserver: HTTPServer, hub_replies) -> None:
    early = "S1A_IW_GRDH_1SDV_20170610T052801_20170610T052826_016967_01C3F4_1A2B"  # starts before T0
    later = "S1B_IW_GRDH_1SDV_20170615T164950_20170615T165015_006141_00AC8E_9C1D"
    fp = shapely.Polygon(RING)
    reply = _reply(
        _feature(),
        hub_replies.asf_feature(early, fp, path=(16967 - 73) % 175 + 1, direction="DESCENDING"),
        hub_replies.asf_feature(later, fp, path=(6141 - 27) % 175 + 1, direction="ASCENDING"),
        _feature(),  # ASF lists a product twice when it sits in two collections: kept once
    )
    seen: list[Request] = []
    _replay(httpserver, lambda r: Response(json.dumps(reply), content_type="application/geo+json"), seen)
    cat = open_catalog("asf", url=httpserver.url_for(PATH), token="edl-token-do-not-send")
    records = cat.search(AREA, T0, T1)
    assert [r.name for r in records] == [NAME, later]
    assert [r.source for r in records] == ["asf", "asf"]
    (req,) = seen
    q = {k: v[0] for k, v in parse_qs(req.query_string.decode()).items()}
    assert q["platform"] == "SENTINEL-1" and q["processingLevel"] == "GRD_HD" and q["beamMode"] == "IW"
    assert q["output"] == "geojson" and int(q["maxResults"]) >= 1000
    assert q["start"] == "2017-06-10T16:00:00Z" and q["end"] == "2017-06-16T16:00:00Z"
    aoi = shapely.wkt.loads(q["intersectsWith"])
    assert aoi.geom_type == "Polygon" and aoi.covers(AREA) and aoi.area < AREA.area * 1.05
    assert shapely.is_ccw(aoi.exterior)
    # the search is anonymous: the Earthdata token is for downloads only
    assert "Authorization" not in req.headers and "edl-token" not in req.url
    assert "edl-token" not in repr(cat)


def test_search_polygon_over_the_antimeridian_is_wrapped_as_asf_expects() -> None:
    split = shapely.MultiPolygon([shapely.box(179.5, -17.5, 180.0, -16.5), shapely.box(-180.0, -17.5, -179.4, -16.5)])
    wkt = search_polygon(split)
    aoi = shapely.wkt.loads(wkt)
    xs = shapely.get_coordinates(aoi)[:, 0]
    assert xs.min() >= -180 and xs.max() <= 180
    assert set(xs.round(6)) == {179.5, -179.4}  # one ring across 180 deg, not a band round the Earth


@pytest.fixture
def faulty(httpserver: HTTPServer, sleeps):
    """(state, catalog): the replay answers the statuses in ``state["script"]`` first, then the reply."""
    state: dict = {"script": [], "calls": 0}
    good = json.dumps(_reply(_feature()))

    def handler(request: Request) -> Response:
        state["calls"] += 1
        if state["script"]:
            status, headers, body = state["script"].pop(0)
            return Response(body, status=status, headers=headers)
        return Response(good, content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(handler)
    cat = AsfCatalog(httpserver.url_for(PATH), retries=3, backoff=0.5, sleep=sleeps, token="tok-do-not-log")
    return state, cat


def test_429_honours_retry_after(faulty, sleeps) -> None:
    state, cat = faulty
    state["script"] = [(429, {"Retry-After": "7"}, "slow down")]
    assert [r.name for r in cat.search(AREA, T0, T1)] == [NAME]
    assert state["calls"] == 2 and sleeps.waits == [7.0]


def test_5xx_backs_off_exponentially(faulty, sleeps) -> None:
    state, cat = faulty
    state["script"] = [(503, {}, "busy"), (502, {}, "bad gateway")]
    assert len(cat.search(AREA, T0, T1)) == 1
    assert sleeps.waits == [0.5, 1.0]


def test_5xx_that_persists_is_a_catalog_error(faulty, sleeps) -> None:
    state, cat = faulty
    state["script"] = [(500, {}, "boom")] * 4
    with pytest.raises(CatalogError, match="ASF search: HTTP 500.*after the retries"):
        cat.search(AREA, T0, T1)
    assert sleeps.waits == [0.5, 1.0, 2.0]


def test_401_is_an_authentication_error_without_credentials_in_it(faulty, caplog) -> None:
    state, cat = faulty
    state["script"] = [(401, {}, "Unauthorized")]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as exc:
        cat.search(AREA, T0, T1)
    assert "HTTP 401" in str(exc.value) and "tok-do-not-log" not in str(exc.value)
    assert "tok-do-not-log" not in caplog.text


def test_asf_error_reply_and_html_are_clear(faulty) -> None:
    state, cat = faulty
    err = json.dumps({"error": {"type": "VALUE", "report": "Validation Error: intersectsWith: bad WKT"}})
    state["script"] = [(400, {"Content-Type": "application/json"}, err)]
    with pytest.raises(CatalogError, match="ASF search: HTTP 400.*Validation Error: intersectsWith"):
        cat.search(AREA, T0, T1)
    state["script"] = [(200, {"Content-Type": "text/html"}, "<html><title>Scheduled maintenance</title></html>")]
    with pytest.raises(CatalogError, match="answered HTML instead of JSON.*Scheduled maintenance"):
        cat.search(AREA, T0, T1)
    state["script"] = [(200, {"Content-Type": "application/json"}, json.dumps({"results": []}))]
    with pytest.raises(CatalogError, match="not a GeoJSON FeatureCollection"):
        cat.search(AREA, T0, T1)


def test_a_search_that_reaches_max_results_fails_rather_than_losing_products(httpserver: HTTPServer) -> None:
    reply = _reply(*[_feature() for _ in range(3)])
    httpserver.expect_request(PATH).respond_with_json(reply)
    with pytest.raises(CatalogError, match="3 products, the limit of one search .*narrow"):
        AsfCatalog(httpserver.url_for(PATH), max_results=3).search(AREA, T0, T1)
    assert len(AsfCatalog(httpserver.url_for(PATH), max_results=4).search(AREA, T0, T1)) == 1


def test_open_catalog_reads_url_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("BIGEARTHNET_S1_ASF_TOKEN", "EARTHDATA_TOKEN", "BIGEARTHNET_S1_ASF_USER", "BIGEARTHNET_S1_ASF_PASSWORD",
              "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("BIGEARTHNET_S1_ASF_URL", "http://127.0.0.1:9/services/search/param")
    cat = open_catalog("asf")
    assert isinstance(cat, AsfCatalog) and cat.url == "http://127.0.0.1:9/services/search/param"
    assert cat.download_auth() is None
    # a Connection's password without a login is the Earthdata token
    auth = open_catalog("asf", password="tok-123").download_auth()
    assert auth is not None and auth.token() == "tok-123" and "tok-123" not in repr(auth)
    monkeypatch.setenv("EARTHDATA_USERNAME", "alice")
    monkeypatch.setenv("EARTHDATA_PASSWORD", "pw-456")
    auth = open_catalog("asf").download_auth()
    assert auth is not None and auth.user == "alice" and "pw-456" not in repr(auth)
    with pytest.raises(CatalogError, match="unknown option.*page_size"):
        open_catalog("asf", page_size=10)


def test_edl_host_and_keywords_match_asf_search() -> None:
    from asf_search import ASFSearchOptions
    from asf_search.constants import INTERNAL

    from bigearthnet_s1.catalog.asf import search_params
    from bigearthnet_s1.earthdata import EDL_URL, TOKEN_PATH

    assert EDL_URL == f"https://{INTERNAL.EDL_HOST}"
    params = search_params(AREA, T0, T1, max_results=500)
    opts = ASFSearchOptions(**{k: v for k, v in params.items() if k not in ("output", "maxResults")})
    assert opts.platform == ["SENTINEL-1"] and opts.processingLevel == ["GRD_HD"] and opts.beamMode == ["IW"]
    import inspect

    from asf_search import ASFSession
    assert TOKEN_PATH in inspect.getsource(ASFSession)
