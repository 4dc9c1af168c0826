"""The terrain correction's geometry convention as a documented parameter of the graphs'
Terrain-Correction node: kept where SNAP ignores it (applicationData), validated as strictly
as SNAP's own parameters, rendered from RenderParams, honoured by the native engine."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio

from bigearthnet_s1 import graph as G
from bigearthnet_s1 import preprocess as P
from bigearthnet_s1.errors import GraphError, InputError

SAFE = Path("/data/S1B.SAFE/manifest.safe")
OUT = Path("/work/out.tif")


@pytest.mark.parametrize("name", ["full", "nocal"])
def test_templates_keep_the_convention_outside_snaps_parameters(name: str) -> None:
    g = G.validate(G.load_graph(name), snap_version="13.0")
    tc = g.find("Terrain-Correction")
    assert tc is not None
    # not among the operator's <parameters> (gpt would stop at an unknown element) ...
    assert tc.element.find("parameters/geometryConvention") is None
    # ... but in the project's applicationData block, which SNAP reads as opaque XML
    apps = [a for a in g.root.findall("applicationData") if a.get("id") == G.EXTENSION_APP_ID]
    assert len(apps) == 1 and apps[0].find("node").get("id") == tc.id
    assert g.extension(tc.id, "geometryConvention") == "esa"
    assert g.to_dict()["extensions"] == {tc.id: {"geometryConvention": "esa"}}


def test_render_sets_it_and_validation_checks_it() -> None:
    params = dict(input=SAFE, output=OUT, epsg=32633, grid_origin=(3e5, 5.4e6), dem=G.DemChoice(G.SRTM_1SEC))
    g = G.render("full", G.RenderParams(**params, geometry_convention="snap"))
    assert g.extension("Terrain-Correction", "geometryConvention") == "snap"
    again = G.parse_graph(g.to_string())
    assert again.to_dict() == g.to_dict()
    with pytest.raises(GraphError, match="geometry convention 'isce'"):
        G.RenderParams(**params, geometry_convention="isce")
    with pytest.raises(GraphError, match="not one of esa, snap, sarsen"):
        g.set_extension("Terrain-Correction", "geometryConvention", "isce")
    with pytest.raises(GraphError, match="no parameter 'speed'"):
        g.set_extension("Terrain-Correction", "speed", "fast")
    with pytest.raises(GraphError, match="no parameter 'geometryConvention'"):
        g.set_extension("Speckle-Filter", "geometryConvention", "esa")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda app: app.find("node/geometryConvention").__setattr__("text", "sar"), "not one of esa, snap, sarsen"),
        (lambda app: ET.SubElement(app.find("node"), "tolerance").__setattr__("text", "0.1"), "unknown parameter <tolerance>"),
        (lambda app: app.find("node").set("id", "TC"), "names no node of the graph"),
        (lambda app: ET.SubElement(app, "option"), "unknown element <option>"),
        (lambda app: app.append(ET.fromstring('<node id="Terrain-Correction"/>')), "listed twice"),
        (lambda app: ET.SubElement(ET.SubElement(app, "node", id="Write"), "geometryConvention").__setattr__("text", "esa"),
         r"node 'Write' \(Write\): unknown parameter <geometryConvention>"),
    ],
)
def test_bad_application_data_is_rejected(edit, match: str) -> None:
    g = G.load_graph("full")
    app = next(a for a in g.root.findall("applicationData") if a.get("id") == G.EXTENSION_APP_ID)
    edit(app)
    with pytest.raises(GraphError, match=match):
        G.validate(g)


def test_native_engine_applies_the_convention(rome_case, tmp_path) -> None:
    """The same product and tile through the three conventions: the graph's parameter reaches
    the terrain correction (GEOMETRY tag; the images differ by the sub-pixel shifts of the
    conventions, ~0.2 px; with speckle that is a clear difference, far below a wrong grid's)."""
    kw = dict(engine="native", dem=rome_case.dem, polarisations=("VV",))
    outs = {c: P.preprocess(rome_case.safe, rome_case.tile, tmp_path / f"{c}.tif", geometry=c, **kw)
            for c in ("esa", "snap", "sarsen")}
    data = {}
    for c, path in outs.items():
        with rasterio.open(path) as ds:
            assert ds.tags()["GEOMETRY"] == c
            data[c] = ds.read(1)
    default = P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "default.tif", **kw)
    with rasterio.open(default) as ds:
        assert ds.tags()["GEOMETRY"] == "esa"
        assert np.array_equal(ds.read(1), data["esa"], equal_nan=True)
    ok = np.isfinite(data["esa"]) & np.isfinite(data["snap"])
    assert ok.mean() > 0.95
    for c in ("snap", "sarsen"):
        d = np.abs(data["esa"][ok] - data[c][ok])
        assert 0.05 < np.median(d) < 3.0, c  # dB: resampled at other sub-pixel positions
    with pytest.raises(InputError, match="geometry convention 'isce'"):
        P.preprocess(rome_case.safe, rome_case.tile, tmp_path / "x.tif", geometry="isce", **kw)
