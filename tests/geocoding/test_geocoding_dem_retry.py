"""DEM tile downloads follow the library's one retry policy (``bigearthnet_s1.retry``): a
server's Retry-After is waited for (delta-seconds and HTTP-date), 429/5xx back off
exponentially, a Retry-After beyond the limit ends the tries; against a real HTTP server on
loopback, the waits recorded instead of slept."""

from __future__ import annotations

import dataclasses
import io
import time
from email.utils import formatdate
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pytest_httpserver import HTTPServer

from bigearthnet_s1.dem import TiledDem, glo30_tile_name
from bigearthnet_s1.errors import DemError


def _tile(lat: int, lon: int, height: float, n: int = 60) -> bytes:
    """A small 1x1 deg GeoTIFF tile (EPSG:4326) of constant ``height``."""
    step = 1.0 / n
    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=n + 1, height=n + 1, count=1, dtype="float32", crs="EPSG:4326",
                      transform=Affine(step, 0, lon - step / 2, 0, -step, lat + 1 + step / 2)) as ds:
            ds.write(np.full((n + 1, n + 1), height, dtype=np.float32), 1)
        buf.write(mem.read())
    return buf.getvalue()


def _dem(tmp_path: Path, httpserver: HTTPServer, waits: list[float], retries: int, backoff: float) -> TiledDem:
    d = TiledDem("glo30", tmp_path, glo30_url=httpserver.url_for("/"), retries=retries, backoff=backoff)
    d.retry = dataclasses.replace(d.retry, sleep=waits.append)
    return d


def test_retry_after_is_waited_for_then_the_tile_is_cached(tmp_path: Path, httpserver: HTTPServer) -> None:
    name = glo30_tile_name(41, 12)
    path = f"/{name}/{name}.tif"
    when = formatdate(time.time() + 30, usegmt=True)  # an HTTP-date 30 s from now
    httpserver.expect_oneshot_request(path).respond_with_data("slow down", status=429, headers={"Retry-After": "7"})
    httpserver.expect_oneshot_request(path).respond_with_data("busy", status=503, headers={"Retry-After": when})
    httpserver.expect_request(path).respond_with_data(_tile(41, 12, 321.0))
    waits: list[float] = []
    d = _dem(tmp_path, httpserver, waits, retries=3, backoff=0.5)
    tile = d.fetch_tile(41, 12)
    assert tile == tmp_path / "glo30" / f"{name}.tif" and len(httpserver.log) == 3
    assert waits[0] == 7.0  # the server's delta-seconds, not the 0.5 s backoff
    assert 27.0 <= waits[1] <= 30.0  # the HTTP-date, as seconds from now
    with rasterio.open(tile) as ds:
        assert float(ds.read(1)[10, 10]) == 321.0
    assert sorted(p.name for p in (tmp_path / "glo30").iterdir()) == [f"{name}.tif"]  # no partial file left


def test_5xx_without_retry_after_backs_off_exponentially(tmp_path: Path, httpserver: HTTPServer) -> None:
    name = glo30_tile_name(41, 12)
    path = f"/{name}/{name}.tif"
    httpserver.expect_request(path).respond_with_data("busy", status=502)
    waits: list[float] = []
    d = _dem(tmp_path, httpserver, waits, retries=4, backoff=0.5)
    with pytest.raises(DemError, match="failed after 4 tries.*HTTP 502"):
        d.fetch_tile(41, 12)
    assert waits == [0.5, 1.0, 2.0] and len(httpserver.log) == 4
    assert list((tmp_path / "glo30").iterdir()) == []


def test_retry_after_beyond_the_limit_ends_the_tries(tmp_path: Path, httpserver: HTTPServer) -> None:
    name = glo30_tile_name(41, 12)
    httpserver.expect_request(f"/{name}/{name}.tif").respond_with_data(
        "maintenance", status=503, headers={"Retry-After": "86400"})
    waits: list[float] = []
    d = _dem(tmp_path, httpserver, waits, retries=3, backoff=0.5)
    with pytest.raises(DemError, match="HTTP 503"):
        d.fetch_tile(41, 12)
    assert waits == [] and len(httpserver.log) == 1  # a day is not waited for, nor asked again at once
