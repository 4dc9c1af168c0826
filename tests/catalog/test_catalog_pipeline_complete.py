"""The pipeline's selection step completes DHuS records from the hub's OData API.

DHuS searches give a rounded size ("1.61 GB") and no checksum; without completion the download
could not be verified. Real recorded responses, served by a real HTTP server on loopback.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_httpserver import HTTPServer

from bigearthnet_s1 import pipeline
from bigearthnet_s1.catalog import ProductRecord

UUID = "753c29d7-42c4-4ff9-a962-bfb4219816c6"
NAME = "S1A_IW_GRDH_1SDV_20230310T075746_20230310T075811_047579_05B6B2_8312"


def test_select_step_completes_dhus_records(httpserver: HTTPServer, recorded, tmp_path, one_patch_tile) -> None:
    httpserver.expect_request("/apihub/search").respond_with_data(
        recorded("dhus", "03_search_iw_grdh_recent_rows3.json"), content_type="application/json")
    httpserver.expect_request(f"/apihub/odata/v1/Products('{UUID}')", query_string="$format=json").respond_with_data(
        recorded("dhus", "04_odata_product_753c29d7_s1a_iw_grdh.json"), content_type="application/json")
    work = pipeline.WorkDir(tmp_path / "work")
    # One patch at 28.5 W 37.8 N (inside the recorded product's footprint only), UTM 26N.
    tile = one_patch_tile("26SPG", 32626, 300000.0, 4200000.0, -28.5, 37.8,
                          datetime(2023, 3, 10, 12, 0, tzinfo=UTC), "Sea and ocean")
    pipeline.write_json(work.tile_file(tile.key), tile.to_json())
    options = {"url": httpserver.url_for("/apihub/")}

    found = pipeline.lookup_footprint(work, tile.key, catalog="dhus", catalog_options=options)
    assert found["candidates"] == 3
    searched = {d["name"]: ProductRecord.from_json(d)
                for d in pipeline.read_json(work.candidates_file(tile.key), "candidates")["products"]}
    assert searched[NAME].checksum is None  # the search alone cannot verify a download

    sel = pipeline.select_for_tile(work, tile.key, catalog_options=options)
    assert sel["products"] == [NAME] and sel["coverage"] >= 0.999
    chosen = ProductRecord.from_json(pipeline.read_json(work.record_file(NAME), "record"))
    assert (chosen.size, chosen.checksum, chosen.checksum_algorithm) == (841709916, "69bdce1998ccc02f56193290d38322e9", "MD5")
    assert chosen.online is True
    odata = [r for r, _ in httpserver.log if "odata" in r.path]
    assert len(odata) == 1  # only the chosen product was asked for, not every candidate
