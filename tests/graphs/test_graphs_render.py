"""Rendering the templates from typed parameters gives the expected graphs (compared as
parsed structures, not strings)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bigearthnet_s1 import graph as G
from bigearthnet_s1.errors import GraphError

SAFE = Path("/data/S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC.SAFE/manifest.safe")
OUT = Path("/work/processed/33UUP_20170613T101031/S1A_x.tif")


def _expected(template: str, *, pols, prefix, dem: dict, region, epsg, origin, filt="Refined Lee") -> dict:
    """The template's dict with exactly the parameters render() must change."""
    d = copy.deepcopy(G.load_graph(template).to_dict())
    nodes = d["nodes"]
    p = ",".join(pols)
    bands = ",".join(f"{prefix}_{x}" for x in pols)
    nodes["Read"]["parameters"]["file"] = str(SAFE)
    nodes["Read"]["parameters"]["useAdvancedOptions"] = "false"
    if region is not None:
        # SNAP's ReadOp subsets only with useAdvancedOptions=true
        nodes["Read"]["parameters"].update(pixelRegion=",".join(map(str, region)), useAdvancedOptions="true")
    nodes["Remove-GRD-Border-Noise"]["parameters"]["selectedPolarisations"] = p
    nodes["ThermalNoiseRemoval"]["parameters"]["selectedPolarisations"] = p
    if "Calibration" in nodes:
        nodes["Calibration"]["parameters"]["selectedPolarisations"] = p
        nodes["Calibration"]["parameters"]["sourceBands"] = ",".join(f"Intensity_{x}" for x in pols)
    nodes["Speckle-Filter"]["parameters"].update(sourceBands=bands, filter=filt)
    tc = nodes["Terrain-Correction"]["parameters"]
    tc.update(
        sourceBands=bands,
        mapProjection=f"EPSG:{epsg}",
        pixelSpacingInMeter="10.0",
        pixelSpacingInDegree=repr(10.0 / (6378137.0 * 3.141592653589793 / 180.0)),
        alignToStandardGrid="true",
        standardGridOriginX=repr(origin[0] + 5.0),
        standardGridOriginY=repr(origin[1] - 5.0),
        **dem,
    )
    nodes["LinearToFromdB"]["parameters"]["sourceBands"] = bands
    nodes["Write"]["parameters"].update(file=str(OUT), formatName="GeoTIFF-BigTIFF")
    return d


SRTM = {"demName": "SRTM 1Sec HGT", "externalDEMFile": None, "externalDEMNoDataValue": "0.0",
        "externalDEMApplyEGM": "true"}
GLO30 = {**SRTM, "demName": "Copernicus 30m Global DEM"}


@pytest.mark.parametrize(
    ("template", "pols", "dem", "dem_expect", "region", "epsg", "origin"),
    [
        ("full", ("VV", "VH"), G.dem_for_latitudes(41.0, 42.8), SRTM, None, 32633, (300000.0, 5400000.0)),
        ("full", ("VV",), G.dem_for_latitudes(66.0, 67.1), GLO30, (100, 2000, 5000, 4000), 32635, (399960.0, 7400040.0)),
        ("nocal", ("VV", "VH"), G.dem_for_latitudes(69.0, 70.0), GLO30, (0, 0, 25000, 16000), 32634, (600000.0, 7800000.0)),
        (
            "nocal",
            ("VH", "VV"),
            G.DemChoice.external("/dem/rome.tif", apply_egm=False, nodata=-32768.0),
            {"demName": "External DEM", "externalDEMFile": "/dem/rome.tif", "externalDEMNoDataValue": "-32768.0",
             "externalDEMApplyEGM": "false"},
            (7, 9, 11, 13),
            32633,
            (199980.0, 4700040.0),
        ),
    ],
)
def test_render_parameter_sets(template, pols, dem, dem_expect, region, epsg, origin) -> None:
    g = G.render(template, G.RenderParams(input=SAFE, output=OUT, epsg=epsg, grid_origin=origin, dem=dem,
                                          polarisations=pols, pixel_region=region))
    prefix = "Sigma0" if template == "full" else "Intensity"
    assert g.to_dict() == _expected(template, pols=pols, prefix=prefix, dem=dem_expect, region=region,
                                    epsg=epsg, origin=origin)
    # a rendered graph is complete (no ${...} left), keeps its layout block, and survives a round trip
    G.validate(g, placeholders=False, snap_version="13.0")
    assert set(g.presentation()) == {n.id for n in g.nodes}
    assert G.parse_graph(g.to_string()).to_dict() == g.to_dict()
    assert G.band_names(g, pols) == [f"{prefix}_{p}_db" for p in pols]


def test_render_does_not_touch_the_template() -> None:
    before = G.load_graph("full").to_dict()
    t = G.load_graph("full")
    G.render(t, G.RenderParams(input=SAFE, output=OUT, epsg=32633, grid_origin=(3e5, 5.4e6), dem=G.DemChoice("SRTM 1Sec HGT")))
    assert t.to_dict() == before


def test_grid_origin_is_the_pixel_centre_snap_expects() -> None:
    """SNAP's CrsGeoCoding puts (standardGridOriginX, Y) at the CENTRE of a pixel: with the
    tile corner (300000, 5400000) the origin must be (300005, 5399995)."""
    g = G.render("full", G.RenderParams(input=SAFE, output=OUT, epsg=32633, grid_origin=(300000.0, 5400000.0),
                                        dem=G.DemChoice("SRTM 1Sec HGT")))
    tc = g.find("Terrain-Correction")
    assert (tc.value("standardGridOriginX"), tc.value("standardGridOriginY")) == (300005.0, 5399995.0)


def test_dem_by_latitude() -> None:
    assert G.dem_for_latitudes(41.0, 42.8).name == "SRTM 1Sec HGT"
    assert G.dem_for_latitudes(59.0, 59.99).name == "SRTM 1Sec HGT"
    assert G.dem_for_latitudes(59.5, 60.5).name == "Copernicus 30m Global DEM"
    assert G.dem_for_latitudes(-57.0, -55.0).name == "Copernicus 30m Global DEM"
    assert G.dem_for_latitudes(-19.2, -17.1).name == "SRTM 1Sec HGT"


def test_render_rejects_bad_parameters() -> None:
    with pytest.raises(GraphError, match="polarisations"):
        G.RenderParams(input=SAFE, output=OUT, epsg=32633, grid_origin=(0, 0), dem=G.DemChoice("SRTM 1Sec HGT"),
                       polarisations=("VV", "VV"))
    with pytest.raises(GraphError, match="speckle filter"):
        G.RenderParams(input=SAFE, output=OUT, epsg=32633, grid_origin=(0, 0), dem=G.DemChoice("SRTM 1Sec HGT"),
                       speckle_filter="Refined-Lee")
    with pytest.raises(GraphError, match="external DEM needs a file"):
        G.DemChoice("External DEM")
    with pytest.raises(GraphError, match="pixel region"):
        G.render("full", G.RenderParams(input=SAFE, output=OUT, epsg=32633, grid_origin=(0, 0),
                                        dem=G.DemChoice("SRTM 1Sec HGT"), pixel_region=(0, 0, 0, 10)))


def test_render_finds_nodes_by_operator_not_id(tmp_path) -> None:
    """A user's copy with renamed nodes renders the same parameters."""
    t = G.load_graph("full")
    for n in t.nodes:
        old = n.id
        n.element.set("id", "my-" + old)
        for other in t.nodes:
            s = other.element.find("sources/sourceProduct")
            if s is not None and s.get("refid") == old:
                s.set("refid", "my-" + old)
        for app in t.root.findall("applicationData"):  # the project's own parameters follow the node
            for ref in app.findall("node"):
                if ref.get("id") == old:
                    ref.set("id", "my-" + old)
    t.write(tmp_path / "mine.xml")
    g = G.render(tmp_path / "mine.xml", G.RenderParams(input=SAFE, output=OUT, epsg=32633,
                                                         grid_origin=(3e5, 5.4e6), dem=G.DemChoice("SRTM 1Sec HGT")))
    assert g.node("my-Write").value("file") == str(OUT)
    assert g.node("my-Terrain-Correction").value("mapProjection") == "EPSG:32633"
    assert g.extension("my-Terrain-Correction", "geometryConvention") == "esa"
