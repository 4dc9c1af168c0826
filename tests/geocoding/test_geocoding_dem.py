"""DEM sources: flat, GeoTIFF in any CRS, EGM96 geoid, holes, coverage, and the GLO-30/SRTM
tile backends against a real HTTP server on loopback."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
from affine import Affine
from pytest_httpserver import HTTPServer

from bigearthnet_s1.dem import (
    FlatDem,
    RasterDem,
    TiledDem,
    egm96_undulation,
    glo30_tile_name,
    open_dem,
    srtm1_tile_name,
    tiles_for_bounds,
)
from bigearthnet_s1.errors import DemError

UTM = 32633
GRID_T = Affine(10.0, 0.0, 290000.0, 0.0, -10.0, 4656000.0)


def _plane(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A tilted plane in UTM 33N metres: bilinear interpolation reproduces it exactly."""
    return 100.0 + 0.02 * (x - 290000.0) - 0.01 * (y - 4650000.0)


def test_egm96_reference_values() -> None:
    """NGA's EGM96 test points (harmonic synthesis values); the 15' grid is within 0.1 m."""
    lon = np.array([269.779155, 305.021114, 102.448729, 133.874712, 359.9995, 0.0023]) - np.array(
        [360, 360, 0, 0, 360, 0])
    lat = np.array([38.628155, -14.621217, 46.874319, -23.617446, 38.625473, -0.466744])
    expected = np.array([-31.628, -2.969, -43.575, 15.871, 50.066, 17.329])
    np.testing.assert_allclose(egm96_undulation(lon, lat), expected, atol=0.1)
    # longitude wraps: 180 W == 180 E
    assert egm96_undulation(-180.0, 10.0) == pytest.approx(egm96_undulation(180.0, 10.0))


def test_flat_dem() -> None:
    d = open_dem("flat:12.5")
    assert isinstance(d, FlatDem)
    h = d.heights(UTM, GRID_T, (3, 4))
    assert h.shape == (3, 4) and h.dtype == np.float32 and np.all(h == 12.5)
    assert open_dem("flat").heights(UTM, GRID_T, (1, 1))[0, 0] == 0.0
    with pytest.raises(DemError):
        open_dem("flat:abc")
    with pytest.raises(DemError, match="no such file"):
        open_dem("/nonexistent/dem.tif")


def test_rome_dem_is_geoid_referenced(rome_dem: Path) -> None:
    """EPSG:9707 heights + EGM96 N (about 48.6 m at Rome) = ellipsoidal heights."""
    d = open_dem(rome_dem)
    assert d.vertical == "egm96"
    raw = RasterDem(rome_dem, vertical="ellipsoid").heights(UTM, GRID_T, (50, 50))
    ell = d.heights(UTM, GRID_T, (50, 50))
    x, y = GRID_T @ (25.5, 25.5)
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(x, y)
    n = egm96_undulation(lon, lat)
    assert 47.0 < n < 50.0
    np.testing.assert_allclose(ell - raw, n, atol=0.05)
    # and the heights are the DEM's own (5..115 m over Rome)
    assert 0 < raw.min() and raw.max() < 130


def test_dem_in_another_crs_is_reprojected(tmp_path: Path, gh) -> None:
    """The same plane stored in geographic and in UTM coordinates gives the same heights."""
    geo = gh.write_dem(tmp_path / "plane_geo.tif", _plane, "EPSG:4979",
                       Affine(1 / 3600, 0, 12.40, 0, -1 / 3600, 42.08), (500, 500), to_utm=True)
    utm = gh.write_dem(tmp_path / "plane_utm.tif", _plane, UTM, Affine(30.0, 0, 286000.0, 0, -30.0, 4660000.0),
                       (400, 400))
    a = RasterDem(geo).heights(UTM, GRID_T, (200, 200))  # EPSG:4979: ellipsoidal, no geoid
    b = RasterDem(utm, vertical="ellipsoid").heights(UTM, GRID_T, (200, 200))
    cols, rows = np.meshgrid(np.arange(200) + 0.5, np.arange(200) + 0.5)
    truth = _plane(*(GRID_T @ (cols, rows)))
    np.testing.assert_allclose(a, truth, atol=0.05)
    np.testing.assert_allclose(b, truth, atol=0.05)
    # a target grid in yet another CRS (geographic) works too
    c = RasterDem(utm, vertical="ellipsoid").heights(4326, Affine(1e-4, 0, 12.48, 0, -1e-4, 42.02), (20, 20))
    lon, lat = np.meshgrid(12.48 + (np.arange(20) + 0.5) * 1e-4, 42.02 - (np.arange(20) + 0.5) * 1e-4)
    xu, yu = pyproj.Transformer.from_crs(4326, UTM, always_xy=True).transform(lon, lat)
    np.testing.assert_allclose(c, _plane(xu, yu), atol=0.05)


@pytest.mark.parametrize("kind", ["int16-nodata", "float-nan"])
def test_holes_are_filled_from_their_edges(tmp_path: Path, gh, kind: str) -> None:
    holes = np.zeros((400, 400), dtype=bool)
    holes[150:190, 100:160] = True  # a 1.2 x 1.8 km void
    holes[300, 300] = True
    if kind == "int16-nodata":
        path = gh.write_dem(tmp_path / "holes.tif", _plane, UTM, Affine(30.0, 0, 286000.0, 0, -30.0, 4660000.0),
                            (400, 400), dtype="int16", nodata=-32768, holes=holes)
        tol = 1.0  # int16 rounding
    else:
        path = gh.write_dem(tmp_path / "holes.tif", _plane, UTM, Affine(30.0, 0, 286000.0, 0, -30.0, 4660000.0),
                            (400, 400), holes=holes)
        tol = 0.5
    h = RasterDem(path, vertical="ellipsoid").heights(UTM, Affine(30.0, 0, 286000.0, 0, -30.0, 4660000.0), (400, 400))
    assert np.isfinite(h).all()
    cols, rows = np.meshgrid(np.arange(400) + 0.5, np.arange(400) + 0.5)
    truth = _plane(*(Affine(30.0, 0, 286000.0, 0, -30.0, 4660000.0) @ (cols, rows)))
    # inverse-distance fill of a plane: close to the plane inside the void (not 0, not -32768)
    assert np.abs(h[holes] - truth[holes]).max() < 15.0
    assert np.abs(h[~holes] - truth[~holes]).max() < tol


def test_dem_not_covering_the_grid(rome_dem: Path) -> None:
    far = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 4600000.0)
    with pytest.raises(DemError, match="Rome-30m-DEM.tif does not cover the requested grid at all"):
        open_dem(rome_dem).heights(UTM, far, (100, 100))
    partial = Affine(10.0, 0.0, 292000.0, 0.0, -10.0, 4662000.0)  # reaches north of the DEM
    with pytest.raises(DemError, match=r"Rome-30m-DEM.tif does not cover the requested grid: \d+\.\d+ %"):
        open_dem(rome_dem).heights(UTM, partial, (1000, 200))


def test_raster_without_crs(tmp_path: Path) -> None:
    p = tmp_path / "nocrs.tif"
    with rasterio.open(p, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as ds:
        ds.write(np.zeros((1, 4, 4), dtype=np.float32))
    with pytest.raises(DemError, match="no CRS"):
        open_dem(p)


# --------------------------------------------------------------------------------------
# tiles over HTTP
# --------------------------------------------------------------------------------------
def test_tile_names() -> None:
    assert glo30_tile_name(41, 12) == "Copernicus_DSM_COG_10_N41_00_E012_00_DEM"
    assert glo30_tile_name(-1, -60) == "Copernicus_DSM_COG_10_S01_00_W060_00_DEM"
    assert srtm1_tile_name(41, 12) == "N41E012"
    assert srtm1_tile_name(-9, -179) == "S09W179"
    assert tiles_for_bounds(12.3, 41.9, 12.6, 42.1) == [(41, 12), (42, 12)]
    assert tiles_for_bounds(-0.5, -0.5, 0.5, 0.5) == [(-1, -1), (-1, 0), (0, -1), (0, 0)]
    d = TiledDem("srtm1", "/tmp/unused")
    assert d.source_for(59, 10) == "srtm1"
    assert d.source_for(60, 10) == "glo30"  # no SRTM beyond 60 N
    assert d.source_for(-57, 10) == "glo30"
    assert d.tile_url(41, 12)[2].endswith("/N41E012.SRTMGL1.hgt.zip")
    g = TiledDem("glo30", "/tmp/unused")
    assert g.tile_url(41, 12)[2] == (
        "https://copernicus-dem-30m.s3.amazonaws.com/Copernicus_DSM_COG_10_N41_00_E012_00_DEM/"
        "Copernicus_DSM_COG_10_N41_00_E012_00_DEM.tif")


def _geotiff_tile(lat: int, lon: int, value_fn, n: int = 360) -> bytes:
    """A 1x1 deg tile like GLO-30's (EPSG:4326 + EGM2008, pixel-centre on the integer degree)."""
    step = 1.0 / n
    t = Affine(step, 0, lon - step / 2, 0, -step, lat + 1 + step / 2)
    cols, rows = np.meshgrid(np.arange(n + 1) + 0.5, np.arange(n + 1) + 0.5)
    lo, la = t @ (cols, rows)
    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=n + 1, height=n + 1, count=1, dtype="float32", crs="EPSG:4326",
                      transform=t) as ds:
            ds.write(value_fn(lo, la).astype(np.float32), 1)
        buf.write(mem.read())
    return buf.getvalue()


def _hgt_zip(lat: int, lon: int, value: int, n: int = 3601) -> bytes:
    name = srtm1_tile_name(lat, lon)
    raw = np.full((n, n), value, dtype=">i2").tobytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.hgt", raw)
    return buf.getvalue()


def _grid_near(lon: float, lat: float, size: int = 40) -> tuple[int, Affine, tuple[int, int]]:
    zone = int((lon + 180) // 6) + 1
    epsg = 32600 + zone
    x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    half = 15.0 * size  # the grid is centred on (lon, lat)
    return epsg, Affine(30.0, 0, round(x - half), 0, -30.0, round(y + half)), (size, size)


def test_glo30_download_cache_and_ocean(tmp_path: Path, httpserver: HTTPServer) -> None:
    hill = lambda lo, la: 200.0 + 100.0 * (lo - 12.0)  # noqa: E731
    name = glo30_tile_name(41, 12)
    httpserver.expect_request(f"/{name}/{name}.tif").respond_with_data(_geotiff_tile(41, 12, hill))
    ocean = glo30_tile_name(41, 11)
    httpserver.expect_request(f"/{ocean}/{ocean}.tif").respond_with_data("no such key", status=404)
    base = httpserver.url_for("/").rstrip("/")
    cache = tmp_path / "cache"
    # a grid straddling 12 E: the west half is "ocean" (tile absent), the east half land
    crs, t, shape = _grid_near(12.0, 41.5)
    d = open_dem("glo30", cache_dir=cache, glo30_url=base)
    h = d.heights(crs, t, shape)
    assert (cache / "glo30" / f"{name}.tif").exists()
    assert (cache / "glo30" / f"{ocean}.missing").exists()
    cols, rows = np.meshgrid(np.arange(shape[1]) + 0.5, np.arange(shape[0]) + 0.5)
    lon, lat = pyproj.Transformer.from_crs(crs, 4326, always_xy=True).transform(*(t @ (cols, rows)))
    n = egm96_undulation(lon, lat)
    land = lon > 12.0 + 1 / 360
    sea = lon < 12.0 - 1 / 360
    assert land.any() and sea.any()
    np.testing.assert_allclose(h[land], hill(lon[land], lat[land]) + n[land], atol=0.3)
    np.testing.assert_allclose(h[sea], n[sea], atol=0.3)  # 0 m above the geoid
    requests_made = len(httpserver.log)
    assert requests_made == 2
    # a second DEM on the same cache does not ask again (tile and the ocean marker are reused)
    h2 = TiledDem("glo30", cache, glo30_url=base).heights(crs, t, shape)
    np.testing.assert_array_equal(h, h2)
    assert len(httpserver.log) == requests_made


def test_srtm1_below_60n_and_glo30_above(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/srtm/N41E012.SRTMGL1.hgt.zip").respond_with_data(_hgt_zip(41, 12, 321))
    far_north = glo30_tile_name(61, 25)
    httpserver.expect_request(f"/glo/{far_north}/{far_north}.tif").respond_with_data(
        _geotiff_tile(61, 25, lambda lo, la: np.full(np.shape(lo), 77.0)))
    kw = dict(cache_dir=tmp_path, srtm1_url=httpserver.url_for("/srtm"), glo30_url=httpserver.url_for("/glo"))
    d = open_dem("srtm1", **kw)
    crs, t, shape = _grid_near(12.5, 41.5, 10)
    h = d.heights(crs, t, shape)
    lon, lat = pyproj.Transformer.from_crs(crs, 4326, always_xy=True).transform(*(t @ (5.0, 5.0)))
    assert h[5, 5] == pytest.approx(321 + egm96_undulation(lon, lat), abs=0.05)
    assert (tmp_path / "srtm1" / "N41E012.SRTMGL1.hgt.zip").exists()
    # at 61 N there is no SRTM: the tile comes from GLO-30 without being asked for
    crs, t, shape = _grid_near(25.5, 61.5, 10)
    h = d.heights(crs, t, shape)
    lon, lat = pyproj.Transformer.from_crs(crs, 4326, always_xy=True).transform(*(t @ (5.0, 5.0)))
    assert h[5, 5] == pytest.approx(77 + egm96_undulation(lon, lat), abs=0.05)
    paths = [entry[0].path for entry in httpserver.log]
    assert paths == ["/srtm/N41E012.SRTMGL1.hgt.zip", f"/glo/{far_north}/{far_north}.tif"]


def test_tile_download_errors(tmp_path: Path, httpserver: HTTPServer) -> None:
    name = glo30_tile_name(41, 12)
    httpserver.expect_request(f"/{name}/{name}.tif").respond_with_data("not a tiff")
    d = TiledDem("glo30", tmp_path, glo30_url=httpserver.url_for("/"), backoff=0.0)
    with pytest.raises(DemError, match="not a readable raster"):
        d.fetch_tile(41, 12)
    assert list((tmp_path / "glo30").iterdir()) == []  # nothing half-written left behind
    httpserver.clear()
    httpserver.expect_request(f"/{name}/{name}.tif").respond_with_data("denied", status=403)
    with pytest.raises(DemError, match="HTTP 403"):
        d.fetch_tile(41, 12)
    httpserver.clear()
    httpserver.expect_request(f"/{name}/{name}.tif").respond_with_data("busy", status=503)
    with pytest.raises(DemError, match="failed after 3 tries"):
        d.fetch_tile(41, 12)
    assert len(httpserver.log) == 3
