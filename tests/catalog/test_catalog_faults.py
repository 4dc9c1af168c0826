"""Bad hub answers (401, 429 + Retry-After, 500, HTML instead of JSON, truncated JSON) for
both HTTP backends, served by a real loopback HTTP server. Waits go through an injected
sleep that records them, so the tests check the waits without taking them."""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, datetime

import pytest
import shapely
from pytest_httpserver import HTTPServer

from bigearthnet_s1.catalog import OrbitMismatchWarning
from bigearthnet_s1.catalog.cdse import CdseCatalog
from bigearthnet_s1.catalog.dhus import DhusCatalog
from bigearthnet_s1.errors import AuthenticationError, CatalogError

AREA = shapely.box(10.8, 52.6, 11.7, 53.1)
T0, T1 = datetime(2015, 12, 19, tzinfo=UTC), datetime(2015, 12, 26, tzinfo=UTC)
DHUS_BODY = "search_s1_s2_mixed_2015.json"
CDSE_BODY = "creodias_iw_grdh_page.json"
HTML = b"<!DOCTYPE html><html><head><title>Service temporarily under maintenance</title></head><body><h1>Back soon</h1></body></html>"


def _cdse_doc(reply_json):
    doc = reply_json("cdse", CDSE_BODY)
    del doc["@odata.nextLink"]
    return doc


@pytest.fixture
def backend(request, httpserver: HTTPServer, reply, reply_json, sleeps):
    """(kind, catalog, path, good body bytes, search()) for each HTTP backend."""
    kind = request.param
    if kind == "dhus":
        cat = DhusCatalog(httpserver.url_for("/apihub/"), user="u", password="pw-do-not-log", retries=3,
                          backoff=0.5, sleep=sleeps)
        path, body = "/apihub/search", reply("dhus", DHUS_BODY)
    else:
        import json

        cat = CdseCatalog(httpserver.url_for("/odata/v1"), token="tok-do-not-log", retries=3, backoff=0.5, sleep=sleeps)
        path, body = "/odata/v1/Products", json.dumps(_cdse_doc(reply_json)).encode()

    def search():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OrbitMismatchWarning)
            return cat.search(AREA, T0, T1)

    return kind, cat, path, body, search


both = pytest.mark.parametrize("backend", ["dhus", "cdse"], indirect=True)
N_GOOD = {"dhus": 1, "cdse": 10}


@both
def test_401_is_an_authentication_error(backend, httpserver: HTTPServer, sleeps, caplog) -> None:
    kind, cat, path, body, search = backend
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(path).respond_with_data(
        "<html><body>Unauthorized</body></html>", status=401, content_type="text/html")
    with pytest.raises(AuthenticationError, match="401.*(refused the credentials)") as err:
        search()
    assert "do-not-log" not in str(err.value) and "do-not-log" not in caplog.text
    assert len(httpserver.log) == 1 and sleeps.waits == []  # not retried


@both
def test_429_waits_retry_after_then_succeeds(backend, httpserver: HTTPServer, sleeps, caplog) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_oneshot_request(path).respond_with_data("slow down", status=429, headers={"Retry-After": "7"})
    httpserver.expect_request(path).respond_with_data(body, content_type="application/json")
    records = search()
    assert len(records) == N_GOOD[kind]
    assert [r[1].status_code for r in httpserver.log] == [429, 200]
    assert sleeps.waits == [7.0]  # the server's Retry-After, not our backoff
    assert "HTTP 429" in caplog.text and "Retry-After '7'" in caplog.text


@both
def test_429_forever_is_a_clear_error(backend, httpserver: HTTPServer, sleeps) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_request(path).respond_with_data("", status=429, headers={"Retry-After": "2"})
    with pytest.raises(CatalogError, match="rate limit.*429.*Retry-After '2'"):
        search()
    assert len(httpserver.log) == 4 and sleeps.waits == [2.0, 2.0, 2.0]


@both
def test_500_then_success_backs_off(backend, httpserver: HTTPServer, sleeps) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_oneshot_request(path).respond_with_data("boom", status=500)
    httpserver.expect_oneshot_request(path).respond_with_data("boom", status=503)
    httpserver.expect_request(path).respond_with_data(body, content_type="application/json")
    assert len(search()) == N_GOOD[kind]
    assert [r[1].status_code for r in httpserver.log] == [500, 503, 200]
    assert sleeps.waits == [0.5, 1.0]  # exponential backoff from the first retry


@both
def test_500_forever_names_the_hub(backend, httpserver: HTTPServer, sleeps) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_request(path).respond_with_data(HTML, status=502, content_type="text/html")
    with pytest.raises(CatalogError, match=r"HTTP 502 .*localhost:\d+.*under maintenance") as err:
        search()
    assert "?" not in str(err.value).split("from")[-1]  # no query string in the message
    assert len(httpserver.log) == 4 and sleeps.waits == [0.5, 1.0, 2.0]


@both
def test_html_instead_of_json(backend, httpserver: HTTPServer, sleeps) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_request(path).respond_with_data(HTML, status=200, content_type="text/html; charset=utf-8")
    with pytest.raises(CatalogError, match="HTML instead of JSON.*text/html.*Service temporarily under maintenance"):
        search()
    assert len(httpserver.log) == 1  # an HTML page is not retried


@both
def test_truncated_json_page(backend, httpserver: HTTPServer, sleeps) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_request(path).respond_with_data(body[: len(body) // 2], content_type="application/json")
    with pytest.raises(CatalogError, match=r"truncated or malformed JSON \(\d+ bytes"):
        search()
    assert len(httpserver.log) == 4 and sleeps.waits == [0.5, 1.0, 2.0]


@both
def test_truncated_once_then_whole(backend, httpserver: HTTPServer, sleeps) -> None:
    kind, cat, path, body, search = backend
    httpserver.expect_oneshot_request(path).respond_with_data(body[:1000], content_type="application/json")
    httpserver.expect_request(path).respond_with_data(body, content_type="application/json")
    assert len(search()) == N_GOOD[kind]
    assert len(httpserver.log) == 2 and sleeps.waits == [0.5]


@both
def test_unreachable_hub(backend, sleeps) -> None:
    kind, cat, path, body, search = backend
    if kind == "dhus":
        cat = DhusCatalog("http://127.0.0.1:9/apihub/", retries=1, backoff=0.25, sleep=sleeps)
    else:
        cat = CdseCatalog("http://127.0.0.1:9/odata/v1", retries=1, backoff=0.25, sleep=sleeps)
    with pytest.raises(CatalogError, match=r"127\.0\.0\.1:9"):
        cat.search(AREA, T0, T1)
    assert sleeps.waits == [0.25]  # one retry of the refused connection
