"""The pipeline's selection step completes DHuS records from the hub's OData API.

DHuS searches give a rounded size ("1.61 GB") and no checksum; without completion the download
could not be verified. DHuS replies in the hub's documented schemas (``fixtures/dhus``), served by a
real HTTP server on loopback.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_httpserver import HTTPServer

from bigearthnet_s1 import pipeline
from bigearthnet_s1.catalog import ProductRecord

UUID = "a52e1d98-e7ca-a859-47bf-090df9924ab3"
NAME = "S1A_IW_GRDH_1SDV_20230310T075746_20230310T075811_047579_05B6B2_DCF3"


def test_select_step_completes_dhus_records(httpserver: HTTPServer, reply, tmp_path, one_patch_tile) -> None:
    httpserver.expect_request("/apihub/search").respond_with_data(
        reply("dhus", "search_iw_grdh_2023_fields.json"), content_type="application/json")
    httpserver.expect_request(f"/apihub/odata/v1/Products('{UUID}')", query_string="$format=json").respond_with_data(
        reply("dhus", "odata_product_iw_grdh_online.json"), content_type="application/json")
    work = pipeline.WorkDir(tmp_path / "work")
    # One patch at 27.0 W 38.3 N (inside the third slice's footprint only), UTM 26N.
    tile = one_patch_tile("26SPH", 32626, 499980.0, 4300020.0, -27.0, 38.3,
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
    assert (chosen.size, chosen.checksum, chosen.checksum_algorithm) == (836142097, "6a9d9d67ad828fa87319648968447f53", "MD5")
    assert chosen.online is True
    odata = [r for r, _ in httpserver.log if "odata" in r.path]
    assert len(odata) == 1  # only the chosen product was asked for, not every candidate
