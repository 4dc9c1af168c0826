"""A hub's saved footprint search: reused by a retry or once its window has settled, searched
again while the hub may still publish products of the window, never reused when empty.

DHuS replies in the hub's OpenSearch JSON schema (``fixtures/dhus``, and an empty result),
served by a real HTTP server on loopback; the search requests are counted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pytest_httpserver import HTTPServer

from bigearthnet_s1 import pipeline

EMPTY = {"feed": {"opensearch:totalResults": "0", "opensearch:startIndex": "0", "opensearch:itemsPerPage": "100",
                  "title": "Sentinels Scientific Data Hub search results for: ...", "entry": []}}


def _searches(httpserver: HTTPServer) -> int:
    return sum(1 for r, _ in httpserver.log if r.path.endswith("/search"))


def test_hub_search_reuse_follows_age_and_settling(httpserver: HTTPServer, reply, tmp_path, one_patch_tile) -> None:
    httpserver.expect_request("/apihub/search").respond_with_data(
        reply("dhus", "search_iw_grdh_2023_fields.json"), content_type="application/json")
    work = pipeline.WorkDir(tmp_path / "work")
    # one patch at 27.0 W 38.3 N, inside the replies' footprints (UTM 26N)
    tile = one_patch_tile("26SPH", 32626, 499980.0, 4300020.0, -27.0, 38.3,
                          datetime(2023, 3, 10, 12, 0, tzinfo=UTC), "Sea and ocean")
    pipeline.write_json(work.tile_file(tile.key), tile.to_json())
    kw = {"catalog": "dhus", "catalog_options": {"url": httpserver.url_for("/apihub/")},
          "max_window": timedelta(days=9)}
    first = datetime(2023, 3, 11, tzinfo=UTC)  # the window (sensing +- 9 d) is still open

    assert pipeline.lookup_footprint(work, tile.key, now=first, **kw) == {"key": tile.key, "candidates": 3,
                                                                          "cached": False}
    n = _searches(httpserver)
    assert n >= 1
    # a retry an hour later: reused, no request
    assert pipeline.lookup_footprint(work, tile.key, now=first + timedelta(hours=1), **kw)["cached"] is True
    assert _searches(httpserver) == n
    # a re-run three days later, window still open: asks the hub again
    assert pipeline.lookup_footprint(work, tile.key, now=first + timedelta(days=3), **kw)["cached"] is False
    assert _searches(httpserver) == 2 * n
    # searched once the window had settled (end + 2 d): final, reused a year later
    settled = datetime(2023, 3, 22, tzinfo=UTC)
    assert pipeline.lookup_footprint(work, tile.key, now=settled, **kw)["cached"] is False
    assert pipeline.lookup_footprint(work, tile.key, now=settled + timedelta(days=365), **kw)["cached"] is True
    assert _searches(httpserver) == 3 * n


def test_an_empty_hub_search_is_never_reused(httpserver: HTTPServer, tmp_path, one_patch_tile) -> None:
    httpserver.expect_request("/apihub/search").respond_with_data(json.dumps(EMPTY), content_type="application/json")
    work = pipeline.WorkDir(tmp_path / "work")
    tile = one_patch_tile("26SPG", 32626, 300000.0, 4200000.0, -28.5, 37.8,
                          datetime(2023, 3, 10, 12, 0, tzinfo=UTC), "Sea and ocean")
    pipeline.write_json(work.tile_file(tile.key), tile.to_json())
    kw = {"catalog": "dhus", "catalog_options": {"url": httpserver.url_for("/apihub/")}}
    settled = datetime(2024, 1, 1, tzinfo=UTC)  # long settled, and a minute apart: still asked again
    assert pipeline.lookup_footprint(work, tile.key, now=settled, **kw)["candidates"] == 0
    n = _searches(httpserver)
    assert pipeline.lookup_footprint(work, tile.key, now=settled + timedelta(minutes=1), **kw) == {
        "key": tile.key, "candidates": 0, "cached": False}
    assert _searches(httpserver) == 2 * n
