"""ASF and CDSE listing the same products give the same selection; ``select --catalog asf`` and
``download`` work end to end against the loopback ASF (search replay, datapool redirect to
signed storage, Earthdata Login).

For each real BigEarthNet-S2 example tile acquisition, one set of IW GRDH products (realistic
swaths: a full-cover pass, a partial pass of the other direction, a later pass of the same
track, a two-slice data-take, a VV-only product) is written as an ASF Search API reply and as a
CDSE OData reply (each in its own schema), both served on loopback by replays that apply the
query's area and time window. The two selections must agree product for product and decision
for decision.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import shapely
import shapely.wkt
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bigearthnet_s1.catalog import open_catalog
from bigearthnet_s1.cli import main
from bigearthnet_s1.selection import search_and_select
from bigearthnet_s1.tiles import read_tiles

DIRECTION = {"29SND": "DESCENDING", "29UPU": "DESCENDING", "33UUP": "ASCENDING", "35VPK": "DESCENDING"}
OTHER = {"ASCENDING": "DESCENDING", "DESCENDING": "ASCENDING"}


def _products(tiles, swath, record) -> list:
    """Candidate records around every tile acquisition (see the module doc)."""
    out = []
    for i, tile in enumerate(sorted(tiles, key=lambda t: t.key)):
        c = tile.patches_footprint_wgs84.centroid
        d = DIRECTION[tile.tile_id]
        t = tile.sensing_time.replace(microsecond=0)
        ms = timedelta(milliseconds=264)
        rel = 10 + 20 * i
        out += [
            record(swath(c.x, c.y, d, cross_offset_km=15), t + timedelta(hours=7) + ms, rel=rel, direction=d),
            record(swath(c.x, c.y, OTHER[d], cross_offset_km=115), t - timedelta(days=1, hours=5) + ms,
                   rel=rel + 3, direction=OTHER[d], mission="S1B"),
            record(swath(c.x, c.y, d, cross_offset_km=15), t + timedelta(days=12, hours=7) + ms, rel=rel,
                   direction=d, cycle=101),
        ]
        dt = f"{0x0A0000 + i:06X}"
        first = record(swath(c.x, c.y, d, cross_offset_km=-40, along_offset_km=-85),
                       t - timedelta(hours=20) + ms, rel=rel + 6, direction=d, datatake=dt)
        second = record(swath(c.x, c.y, d, cross_offset_km=-40, along_offset_km=85),
                        first.stop_time, rel=rel + 6, direction=d, datatake=dt)
        vv = record(swath(c.x, c.y, d), t + timedelta(hours=2) + ms, rel=rel + 9, direction=d)
        vv = vv.replace(name=vv.name.replace("_1SDV_", "_1SSV_"))
        out += [first, second, vv]
    return out


def _zip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}.SAFE/manifest.safe", f"<xfdu:XFDU><!-- {name} --></xfdu:XFDU>\n" * 40)
    return buf.getvalue()


def _cdse_replay(httpserver: HTTPServer, items: list[tuple[dict, object]]) -> str:
    """A CDSE OData replay applying ``$filter``'s area and ContentDate/Start bounds."""
    def handler(request: Request) -> Response:
        f = request.args["$filter"]
        area = shapely.wkt.loads(re.search(r"geography'SRID=4326;([^']+)'", f).group(1))
        lo, hi = re.search(r"ContentDate/Start ge (\S+) and ContentDate/Start le (\S+)", f).groups()
        hits = [item for item, fp in items
                if fp.intersects(area) and lo <= item["ContentDate"]["Start"][:23] + "Z" <= hi]
        assert request.args["$orderby"] == "ContentDate/Start asc"
        hits.sort(key=lambda item: item["ContentDate"]["Start"])
        return Response(json.dumps({"value": hits}), content_type="application/json")

    httpserver.expect_request("/odata/v1/Products").respond_with_handler(handler)
    return httpserver.url_for("/odata/v1")


@pytest.fixture
def both_hubs(s2_example: Path, swath, record, asf_hub, httpserver: HTTPServer, hub_replies):
    tiles = read_tiles(s2_example)
    products = _products(tiles, swath, record)
    items = []
    for k, r in enumerate(products):
        data = _zip(r.name)
        md5 = hashlib.md5(data).hexdigest()
        kw = dict(path=r.relative_orbit, direction=r.orbit_direction, start=r.start_time, stop=r.stop_time)
        asf_hub.publish(r.name, data, r.footprint, **kw)
        item = hub_replies.cdse_item(r.name, r.footprint, uuid=f"{k:08d}-0000-4000-8000-000000000000", size=len(data),
                                     md5=md5, **kw)
        items.append((item, r.footprint))
    cdse_url = _cdse_replay(httpserver, items)
    return tiles, products, asf_hub, cdse_url


def _selection_facts(sel) -> dict:
    """What a selection decided, without the hub-specific record fields (uuid, url, source)."""
    return {
        "names": sel.names, "tracks": sel.tracks, "coverage": sel.coverage, "time_gaps": sel.time_gaps,
        "added": sel.added_fraction, "window": sel.window_days, "tried": sel.windows_tried,
        "decisions": [tuple(d) for d in sel.decisions],
        "records": [(p.name, p.start_time, p.stop_time, p.absolute_orbit, p.relative_orbit, p.orbit_direction,
                     p.datatake_id, p.footprint.wkt, p.size, p.checksum, p.online) for p in sel.products],
    }


def test_asf_and_cdse_replies_listing_the_same_products_give_identical_selections(both_hubs) -> None:
    tiles, products, asf, cdse_url = both_hubs
    asf_cat = open_catalog("asf", url=asf.search_url)
    cdse_cat = open_catalog("cdse", url=cdse_url)
    chosen = 0
    for tile in tiles:
        a = search_and_select(asf_cat, tile, target="tile")
        c = search_and_select(cdse_cat, tile, target="tile")
        assert _selection_facts(a) == _selection_facts(c), tile.key
        assert {p.source for p in a.products} <= {"asf"} and {p.source for p in c.products} <= {"cdse"}
        # a real choice was made: candidates were dropped for their polarisation and as not needed
        reasons = " | ".join(d.reason for d in a.decisions if not d.kept)
        assert "polarisation" in reasons and "not needed" in reasons, reasons
        assert a.covered and len(a.products) >= 1
        chosen += len(a.products)
    assert chosen >= len(tiles)


def test_whole_second_asf_times_do_not_change_the_choice(both_hubs) -> None:
    tiles, products, asf, cdse_url = both_hubs
    for p in asf.products.values():  # ASF rounding its times to the second
        p["feature"]["properties"]["startTime"] = p["feature"]["properties"]["startTime"][:19] + ".000Z"
    asf_cat, cdse_cat = open_catalog("asf", url=asf.search_url), open_catalog("cdse", url=cdse_url)
    for tile in tiles:
        a, c = search_and_select(asf_cat, tile, target="tile"), search_and_select(cdse_cat, tile, target="tile")
        assert a.names == c.names and [tuple(d) for d in a.decisions] == [tuple(d) for d in c.decisions]
        assert a.time_gaps == pytest.approx(c.time_gaps, abs=1.0) and a.coverage == c.coverage


def test_select_and_download_cli_against_the_asf_replay(both_hubs, s2_example: Path, tmp_path: Path, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tiles, products, asf, _ = both_hubs
    sel_file = tmp_path / "sel.jsonl"
    assert main(["select", str(s2_example), "--catalog", "asf", "--url", asf.search_url, "--tiles", "33UUP,35VPK",
                 "--target", "tile", "--output", str(sel_file)]) == 0
    lines = [json.loads(x) for x in sel_file.read_text().splitlines()]
    assert [x["tile_key"] for x in lines] == [t.key for t in tiles if t.tile_id in ("33UUP", "35VPK")]
    names = sorted({p["name"] for x in lines for p in x["products"]})
    assert names and all(p["source"] == "asf" and p["checksum_algorithm"] == "MD5" for x in lines for p in x["products"])
    # download with an Earthdata account from the environment: token from EDL, bearer to ASF only
    for k in ("BIGEARTHNET_S1_ASF_TOKEN", "EARTHDATA_TOKEN", "BIGEARTHNET_S1_ASF_USER"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("EARTHDATA_USERNAME", "alice")
    monkeypatch.setenv("EARTHDATA_PASSWORD", "secret")
    store = tmp_path / "store"
    capsys.readouterr()
    assert main(["download", str(sel_file), "--store", str(store), "--edl-url", asf.edl_url, "--no-progress"]) == 0
    out = {json.loads(x)["name"]: x for x in capsys.readouterr().out.splitlines() if x.startswith("{")}
    assert sorted(out) == names
    for name in names:
        assert (store / f"{name}.zip").read_bytes() == asf.products[name]["data"]
    assert len(asf.requests("edl")) == 1  # one token for the whole run
    assert {e["auth"] for e in asf.requests("datapool")} == {"Bearer edl-token-alice"}
    storage = asf.requests("storage")
    assert len(storage) == len(names) and all(e["auth"] is None and e["host"].startswith("localhost") for e in storage)
