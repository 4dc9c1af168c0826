"""The native executor runs the SNAP graphs through the library and gives exactly what the
direct library calls give; preprocess() writes the contract GeoTIFF; refusals are clear."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio

from bigearthnet_s1 import engine as E
from bigearthnet_s1 import graph as G
from bigearthnet_s1 import preprocess as P
from bigearthnet_s1.dem import open_dem
from bigearthnet_s1.errors import GeometryError, GraphError, InputError
from bigearthnet_s1.geocoding import radar_window_for_grid, terrain_correct
from bigearthnet_s1.grid import MapGrid
from bigearthnet_s1.radiometry import BorderParameters, radar_chain, to_db
from bigearthnet_s1.safe import open_safe


def _setup(case, template: str, tmp_path: Path, dem_choice: G.DemChoice | None = None):
    """Render ``template`` for ``case`` the way a user would: tile-grid window, radar window."""
    safe = open_safe(case.safe)
    win = P.target_window(case.tile, safe.footprint)
    grid = MapGrid(case.tile.grid.crs, case.tile.grid.window_transform(win), (int(win.height), int(win.width)))
    if dem_choice is None:
        if case.dem == "flat":
            dem_choice = G.DemChoice.external(P.write_flat_dem(tmp_path / "flat.tif", safe.footprint.bounds),
                                              apply_egm=False, nodata=-32768.0)
        else:
            dem_choice = G.DemChoice.external(case.dem, apply_egm=True, nodata=-32768.0)
    rw = radar_window_for_grid(safe.annotation(case.pols[0]), case.dem, crs=grid.crs, transform=grid.transform,
                               shape=grid.shape, margin=32)
    g = G.render(template, G.RenderParams(
        input=case.safe / "manifest.safe", output=tmp_path / "graph-out.tif", epsg=case.tile.grid.epsg,
        grid_origin=(case.tile.grid.ulx, case.tile.grid.uly), dem=dem_choice, polarisations=case.pols,
        pixel_region=(int(rw.col_off), int(rw.row_off), int(rw.width), int(rw.height))))
    return safe, grid, rw, g


def _direct(safe, case, grid, rw, *, calibration: str | None) -> np.ndarray:
    """The chain as direct library calls (radiometry, speckle, geocoding, dem)."""
    lin = np.stack([
        radar_chain(safe, p, rw, border=True, thermal=True, calibration=calibration, speckle="Refined Lee",
                    border_params=BorderParameters(border_limit=500, trim_threshold=0.5))
        for p in case.pols
    ])
    dem = open_dem("flat") if case.dem == "flat" else open_dem(case.dem, vertical="egm96")
    tc = terrain_correct(lin, rw, safe.annotation(case.pols[0]), dem, crs=grid.crs, transform=grid.transform,
                         shape=grid.shape, resampling="bilinear")
    return to_db(tc)


@pytest.mark.parametrize("which", ["rome_case", "sim_case"])
@pytest.mark.parametrize(("template", "calibration"), [("full", "sigma0"), ("nocal", None)])
def test_native_graph_equals_direct_calls(which, template, calibration, request, tmp_path) -> None:
    case = request.getfixturevalue(which)
    safe, grid, rw, g = _setup(case, template, tmp_path)
    res = E.execute(g, target_grid=grid, write=False)
    names = G.band_names(g, case.pols)
    assert list(res.bands) == names
    got = np.stack([res.bands[n] for n in names])
    want = _direct(safe, case, grid, rw, calibration=calibration)
    assert got.shape == (len(case.pols), *grid.shape) and got.dtype == np.float32
    assert np.isfinite(got).mean() > 0.95  # not a vacuous comparison of NaNs
    assert np.array_equal(got, want, equal_nan=True)
    # the fallback is uncalibrated DN^2 intensity: far above sigma0 (A_sigma^2 ~ 10^5)
    med = float(np.nanmedian(got[0]))
    assert (med > 20.0) if calibration is None else (-30.0 < med < 5.0)


def test_simulated_product_matches_its_truth(sim_case, tmp_path) -> None:
    """End to end on the simulator's ground truth (sigma0 on the tile grid): a wrong grid
    alignment, calibration or geocoding would show as bias or decorrelation."""
    out = P.preprocess(sim_case.safe, sim_case.tile, tmp_path / "sim.tif", engine="native", dem="flat")
    truth = next(sim_case.safe.parent.glob("*.truth.tif"))
    with rasterio.open(out) as o, rasterio.open(truth) as t:
        got = o.read()
        w = rasterio.windows.from_bounds(*o.bounds, transform=t.transform)
        ref = 10 * np.log10(t.read(window=w))
    for b in range(2):
        d = got[b] - ref[b]
        assert abs(np.nanmean(d)) < 0.5, b  # dB
        assert np.corrcoef(got[b].ravel(), ref[b].ravel())[0, 1] > 0.9


def test_preprocess_writes_the_contract_geotiff(rome_case, tmp_path) -> None:
    out = P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "p" / "rome.tif", engine="native",
                       dem=rome_case.dem, polarisations=("VV",))
    safe, grid, rw, g = _setup(rome_case, "full", tmp_path, G.DemChoice.external(rome_case.dem, nodata=-32768.0))
    with rasterio.open(out) as ds:
        assert ds.count == 2 and ds.dtypes == ("float32", "float32") and ds.descriptions == ("VV", "LAYOVER_SHADOW")
        assert ds.crs.to_epsg() == 32633 and np.isnan(ds.nodata)
        assert ds.transform == grid.transform and (ds.height, ds.width) == grid.shape == (240, 240)
        t = ds.transform  # on the tile grid and on its 1200 m patch lattice
        assert (t.c - rome_case.tile.grid.ulx) % 1200 == 0 and (rome_case.tile.grid.uly - t.f) % 1200 == 0
        tags = ds.tags()
        data = ds.read(1)
        flags = ds.read(2)
    assert tags["SCENE_ID"] == safe.name and tags["START_TIME"] == "2021-12-23T05:11:22.594441Z"
    assert tags["GRAPH"] == "BigEarthNet-S1-GRD-full" and tags["ENGINE"] == "native"
    assert tags["GEOMETRY"] == "esa"
    assert np.array_equal(data, _direct(safe, rome_case, grid, rw, calibration="sigma0")[0], equal_nan=True)
    # the flags band: the geometry's own mask from the same DEM, NaN where the data is
    from bigearthnet_s1.dem import open_dem
    from bigearthnet_s1.layover import layover_shadow_mask

    want = layover_shadow_mask(safe.annotation("VV"), open_dem(rome_case.dem), crs=grid.crs, transform=grid.transform,
                               shape=grid.shape)
    assert np.array_equal(np.isnan(flags), np.isnan(data))
    assert np.array_equal(flags[np.isfinite(data)], want[np.isfinite(data)].astype(np.float32))
    assert [p.name for p in out.parent.iterdir()] == ["rome.tif"]  # no temporary leftovers


def test_fallback_graph_on_flag_and_on_request(rome_case, tmp_path) -> None:
    safe = open_safe(rome_case.safe)
    kw = dict(engine="native", dem=rome_case.dem, polarisations=("VV",))
    flagged = P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "a.tif", flagged=[safe.name], **kw)
    asked = P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "b.tif", graph="nocal", **kw)
    full = P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "c.tif", **kw)
    with rasterio.open(flagged) as a, rasterio.open(asked) as b, rasterio.open(full) as c:
        assert a.tags()["GRAPH"] == b.tags()["GRAPH"] == "BigEarthNet-S1-GRD-nocal"
        assert c.tags()["GRAPH"] == "BigEarthNet-S1-GRD-full"
        assert np.array_equal(a.read(), b.read(), equal_nan=True)
        # uncalibrated minus calibrated = 10 log10(A_sigma^2), ~ 50 dB for S-1 IW
        diff = np.nanmedian(a.read(1) - c.read(1))
    assert 40.0 < diff < 60.0
    assert P.calibration_flag(safe, ("VV",)) is None
    assert "flagged" in P.calibration_flag(safe, ("VV",), flagged=[safe.name])


def test_calibration_flag_from_a_broken_lut(rome_case, tmp_path) -> None:
    """A product whose sigma0 LUT holds zeros is flagged and gets the fallback graph."""
    import shutil

    dst = tmp_path / rome_case.safe.name
    shutil.copytree(rome_case.safe, dst)
    cal = next((dst / "annotation" / "calibration").glob("calibration-*vv*.xml"))
    root = ET.parse(cal).getroot()
    for el in root.iter("sigmaNought"):
        el.text = " ".join("0" for _ in el.text.split())
        break
    ET.ElementTree(root).write(cal)
    safe = open_safe(dst)
    assert "sigma0 calibration LUT value" in P.calibration_flag(safe, ("VV",))
    out = P.preprocess(dst, rome_case.tile, tmp_path / "x.tif", dem=rome_case.dem, polarisations=("VV",))
    with rasterio.open(out) as ds:
        assert ds.tags()["GRAPH"] == "BigEarthNet-S1-GRD-nocal"


def test_write_node_and_snap_like_grid(sim_case, tmp_path) -> None:
    """Without a target grid the executor builds SNAP's grid (pixel centres on the standard
    grid origin); the Write node writes a GeoTIFF named by SNAP's band names."""
    safe, grid, rw, g = _setup(sim_case, "full", tmp_path)
    res = E.execute(g)
    t = res.grid.transform
    tc = g.find("Terrain-Correction")
    ox, oy = tc.value("standardGridOriginX"), tc.value("standardGridOriginY")
    assert ((t.c + 5.0) - ox) % 10.0 == 0 and ((t.f - 5.0) - oy) % 10.0 == 0  # pixel centres on the origin lattice
    assert (t.c - sim_case.tile.grid.ulx) % 10.0 == 0  # so pixel corners sit on the tile grid
    # the radar window's footprint lies inside the SNAP-like grid, which contains the tile window
    assert res.grid.shape[0] >= grid.shape[0] and res.grid.shape[1] >= grid.shape[1]
    assert res.written == tmp_path / "graph-out.tif"
    with rasterio.open(res.written) as ds:
        assert ds.descriptions == ("Sigma0_VV_db", "Sigma0_VH_db") and ds.transform == t
        assert ds.tags()["CHAIN"].startswith("Read -> Remove-GRD-Border-Noise -> ThermalNoiseRemoval -> Calibration")
        # the tile window inside the SNAP-like grid holds the same values as a run on the tile grid
        w = rasterio.windows.from_bounds(*rasterio.transform.array_bounds(*grid.shape, grid.transform), transform=t)
        big = ds.read(window=w.round_offsets().round_lengths())
    small = np.stack(list(E.execute(g, target_grid=grid, write=False).bands.values()))
    # geocoding's coordinate model is interpolated on a lattice tied to each grid (<= 0.05 px
    # error by design), so the two runs agree closely, not bit for bit
    d = np.abs(big - small)
    print(
        f"SNAP-like grid vs tile grid: median {np.nanmedian(d):.4f} dB, "
        f"p99 {np.nanpercentile(d, 99):.4f} dB, max {np.nanmax(d):.4f} dB"
    )
    assert np.array_equal(np.isnan(big), np.isnan(small))
    assert np.nanmedian(d) < 0.01 and np.nanpercentile(d, 99) < 0.1


def _edit(g: G.Graph, op: str, name: str, text: str | None) -> G.Graph:
    g = g.copy()
    node = g.find(op)
    params = node.element.find("parameters")
    el = params.find(name)
    if el is None:
        el = ET.SubElement(params, name)
    el.text = text
    return g


@pytest.mark.parametrize(
    ("op", "name", "text", "match"),
    [
        ("Speckle-Filter", "filter", "Frost", r"node 'Speckle-Filter'.*filter='Frost'.*not implemented"),
        ("Terrain-Correction", "saveDEM", "true", r"node 'Terrain-Correction'.*saveDEM='true' is not implemented"),
        ("Terrain-Correction", "demName", "SRTM 3Sec", r"node 'Terrain-Correction'.*demName='SRTM 3Sec' is not implemented"),
        (
            "Terrain-Correction",
            "imgResamplingMethod",
            "BISINC_5_POINT_INTERPOLATION",
            r"imgResamplingMethod='BISINC_5_POINT_INTERPOLATION'",
        ),
        ("Terrain-Correction", "mapProjection", "AUTO:42001", r"mapProjection 'AUTO:42001'"),
        ("Terrain-Correction", "nodataValueAtSea", "true", r"nodataValueAtSea='true'"),
        ("Calibration", "outputBetaBand", "true", r"node 'Calibration'.*exactly one of sigma0/gamma0/beta0"),
        ("Calibration", "outputImageScaleInDb", "true", r"outputImageScaleInDb='true'"),
        ("ThermalNoiseRemoval", "reIntroduceThermalNoise", "true", r"node 'ThermalNoiseRemoval'.*reIntroduceThermalNoise"),
        ("Read", "geometryRegion", "POLYGON((0 0, 1 0, 1 1, 0 0))", r"node 'Read'.*geometryRegion"),
        ("Write", "formatName", "BEAM-DIMAP", r"node 'Write'.*formatName='BEAM-DIMAP'"),
        ("LinearToFromdB", "sourceBands", "Sigma0_HH", r"node 'LinearToFromdB'.*band 'Sigma0_HH'"),
    ],
)
def test_native_refuses_what_it_does_not_implement(sim_case, tmp_path, op, name, text, match) -> None:
    _, grid, _, g = _setup(sim_case, "full", tmp_path)
    with pytest.raises(GraphError, match=match):
        E.execute(_edit(g, op, name, text), target_grid=grid, write=False)


def test_native_refuses_other_operators_and_orders(sim_case, tmp_path) -> None:
    _, grid, _, g = _setup(sim_case, "full", tmp_path)
    g2 = g.copy()
    node = g2.node("Speckle-Filter")
    node.element.find("operator").text = "BandMaths"
    node.element.find("parameters").clear()
    with pytest.raises(GraphError, match=r"node 'Speckle-Filter': operator BandMaths is not implemented by the native engine"):
        E.execute(g2, target_grid=grid, write=False)
    # calibration before border noise removal: SNAP's order is border noise on DN first
    g3 = g.copy()
    ids = {n.operator: n.id for n in g3.nodes}
    g3.find("Remove-GRD-Border-Noise").element.find("sources/sourceProduct").set("refid", ids["Calibration"])
    g3.find("ThermalNoiseRemoval").element.find("sources/sourceProduct").set("refid", ids["Read"])
    g3.find("Speckle-Filter").element.find("sources/sourceProduct").set("refid", ids["Remove-GRD-Border-Noise"])
    with pytest.raises(GraphError, match=r"node 'Remove-GRD-Border-Noise'.*band Sigma0_VV has already had"):
        E.execute(g3, target_grid=grid, write=False)
    # a target grid that SNAP's parameters could not produce (off the standard grid by 5 m)
    bad = MapGrid(grid.crs, grid.transform @ rasterio.Affine.translation(0.5, 0), grid.shape)
    with pytest.raises(GraphError, match="not on the standard grid"):
        E.execute(g, target_grid=bad, write=False)


def test_external_dem_nodata_must_match(rome_case, tmp_path) -> None:
    _, grid, _, g = _setup(rome_case, "full", tmp_path, G.DemChoice.external(rome_case.dem, nodata=0.0))
    with pytest.raises(GraphError, match=r"externalDEMNoDataValue=0 differs from .*no-data tag \(-32768"):
        E.execute(g, target_grid=grid, write=False)


def test_preprocess_input_errors(rome_case, tmp_path) -> None:
    with pytest.raises(InputError, match=r"polarisation\(s\) VH requested but not available"):
        P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "x.tif", dem=rome_case.dem)
    from bigearthnet_s1.tiles import MapGrid, TileAcquisition, mgrs_tile_origin

    far = TileAcquisition("29SND", rome_case.tile.sensing_time, None, MapGrid.tile(*mgrs_tile_origin("29SND")), ())
    with pytest.raises(GeometryError, match=r"does not cover tile 29SND"):
        P.preprocess(rome_case.safe, far, tmp_path / "x.tif", dem=rome_case.dem, polarisations=("VV",))
    with pytest.raises(InputError, match="engine 'gpu'"):
        P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "x.tif", engine="gpu")
    assert list(tmp_path.iterdir()) == []


def test_target_window_whole_tile_and_patches(rome_case) -> None:
    from bigearthnet_s1.tiles import TileAcquisition

    safe = open_safe(rome_case.safe)
    w = P.target_window(rome_case.tile, safe.footprint)
    assert (w.col_off, w.row_off, w.width, w.height) == (76 * 120, 38 * 120, 240, 240)
    whole = TileAcquisition("33TTG", rome_case.tile.sensing_time, None, rome_case.tile.grid, ())
    ww = P.target_window(whole, safe.footprint)
    # the scene covers the tile's eastern part only: whole patch cells, clipped to 10980 px
    assert ww.col_off % 120 == 0 and ww.row_off % 120 == 0 and ww.col_off > 0
    assert ww.col_off + ww.width == 10980 and ww.row_off + ww.height <= 10980


def test_radar_window_for_a_named_dem_holds_mountains(rome_case) -> None:
    """With SRTM/GLO-30 (not read before the engine runs), the radar window must still hold
    every grid pixel of high terrain: at 4000 m it sits ~450 px nearer in range than at 0 m
    here (42 deg incidence), more than a fixed margin around the flat-terrain window."""
    from bigearthnet_s1.geocoding import radar_coordinates

    ann = open_safe(rome_case.safe).annotation("VV")
    win = P.target_window(rome_case.tile, open_safe(rome_case.safe).footprint)
    grid = MapGrid(rome_case.tile.grid.crs, rome_case.tile.grid.window_transform(win), (int(win.height), int(win.width)))
    margin = 32
    rwin = P._radar_window(ann, G.DemChoice(G.SRTM_1SEC), grid, margin)
    for h in (0.0, 2000.0, 4000.0, 8000.0):
        line, pixel = radar_coordinates(ann, f"flat:{h:g}", crs=grid.crs, transform=grid.transform, shape=grid.shape)
        # every pixel with its resampling neighbours and the margin inside the window
        assert np.nanmin(pixel) - margin >= rwin.col_off - 1, h
        assert np.nanmax(pixel) + margin <= rwin.col_off + rwin.width, h
        assert np.nanmin(line) - margin >= rwin.row_off - 1, h
        assert np.nanmax(line) + margin <= rwin.row_off + rwin.height, h
