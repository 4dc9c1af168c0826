"""The shipped graph templates parse and validate against SNAP's real operator parameters,
and the validator rejects what gpt would reject."""

from __future__ import annotations

import itertools

import pytest

from bigearthnet_s1 import graph as G
from bigearthnet_s1.errors import GraphError

FULL_CHAIN = [
    "Read",
    "Remove-GRD-Border-Noise",
    "ThermalNoiseRemoval",
    "Calibration",
    "Speckle-Filter",
    "Terrain-Correction",
    "LinearToFromdB",
    "Write",
]


def _chain(g: G.Graph) -> list[str]:
    """Operators from Read to Write following the single-source links."""
    order = g.topological_order()
    ops = [n.operator for n in order]
    for prev, n in itertools.pairwise(order):
        assert n.sources == {"sourceProduct": prev.id}, n.id
    return ops


def test_full_template_is_the_recipe_chain() -> None:
    g = G.validate(G.load_graph("full"))
    assert g.id == "BigEarthNet-S1-GRD-full" and g.version == "1.0"
    assert _chain(g) == FULL_CHAIN
    assert set(g.presentation()) == {n.id for n in g.nodes}  # GraphBuilder can lay every node out
    tc = g.find("Terrain-Correction")
    assert tc.value("pixelSpacingInMeter") == 10.0
    assert tc.value("demName") == "SRTM 1Sec HGT"
    assert tc.value("alignToStandardGrid") is True
    assert g.find("Speckle-Filter").value("filter") == "Refined Lee"
    assert g.find("Calibration").value("outputSigmaBand") is True


def test_fallback_template_has_no_calibration() -> None:
    g = G.validate(G.load_graph("nocal"))
    assert _chain(g) == [op for op in FULL_CHAIN if op != "Calibration"]
    assert g.find("Calibration") is None
    assert set(g.presentation()) == {n.id for n in g.nodes}
    assert g.find("Terrain-Correction").value("sourceBands") == ["Intensity_VV", "Intensity_VH"]


@pytest.mark.parametrize("name", ["full", "nocal"])
def test_templates_run_on_snap_13_too(name: str) -> None:
    """No parameter that only SNAP 14 knows (gpt 13 would fail with 'Unknown element')."""
    G.validate(G.load_graph(name), snap_version="13.0")


def _with_param(op: str, element: str, text: str) -> G.Graph:
    g = G.load_graph("full")
    params = g.find(op).element.find("parameters")
    import xml.etree.ElementTree as ET

    ET.SubElement(params, element).text = text
    return g


def test_calibration_outputDNBand_is_rejected() -> None:
    g = _with_param("Calibration", "outputDNBand", "false")
    with pytest.raises(GraphError, match=r"node 'Calibration'.*unknown parameter element <outputDNBand>"):
        G.validate(g)


def test_unknown_parameter_of_any_operator_is_rejected() -> None:
    with pytest.raises(GraphError, match="Terrain-Correction.*<pixelSpacing>"):
        G.validate(_with_param("Terrain-Correction", "pixelSpacing", "10"))


def test_field_name_and_alias_both_accepted() -> None:
    g = G.load_graph("full")
    el = g.find("Speckle-Filter").element.find("parameters/sourceBands")
    el.tag = "sourceBandNames"  # SNAP's PropertyContainer maps both names to one property
    G.validate(g)
    assert g.find("Speckle-Filter").value("sourceBands") == ["Sigma0_VV", "Sigma0_VH"]


def test_snap14_only_parameter_checked_against_version() -> None:
    g = _with_param("ThermalNoiseRemoval", "clipNegativeValues", "true")
    G.validate(g)  # current SNAP knows it
    with pytest.raises(GraphError, match="since SNAP 14.0"):
        G.validate(g, snap_version="13.0")


@pytest.mark.parametrize(
    ("op", "element", "text", "match"),
    [
        ("Speckle-Filter", "filter", "Refined-Lee", "not one of"),
        ("Terrain-Correction", "alignToStandardGrid", "yes", "expected true or false"),
        ("Terrain-Correction", "pixelSpacingInMeter", "ten", "bad double"),
        ("Remove-GRD-Border-Noise", "borderLimit", "5.5", "bad int"),
        ("Terrain-Correction", "imgResamplingMethod", "BILINEAR", "not one of"),
    ],
)
def test_bad_values_rejected(op: str, element: str, text: str, match: str) -> None:
    g = G.load_graph("full")
    g.find(op).element.find(f"parameters/{element}").text = text
    with pytest.raises(GraphError, match=match):
        G.validate(g)


def test_unknown_operator_rejected() -> None:
    g = G.load_graph("full")
    g.find("Speckle-Filter").element.find("operator").text = "Speckle-Filter-Typo"
    with pytest.raises(GraphError, match="unknown operator 'Speckle-Filter-Typo'"):
        G.validate(g)


def test_missing_source_rejected() -> None:
    g = G.load_graph("full")
    g.find("Write").element.find("sources/sourceProduct").set("refid", "dB")
    with pytest.raises(GraphError, match="node 'Write'.*missing node 'dB'"):
        G.validate(g)


def test_cycle_rejected() -> None:
    g = G.load_graph("full")
    g.find("Remove-GRD-Border-Noise").element.find("sources/sourceProduct").set("refid", "Speckle-Filter")
    with pytest.raises(GraphError, match="cycle"):
        G.validate(g)


def test_duplicate_node_and_missing_id_rejected() -> None:
    g = G.load_graph("full")
    g.find("Speckle-Filter").element.set("id", "Calibration")
    with pytest.raises(GraphError, match="duplicate node id 'Calibration'"):
        G.validate(g)
    g = G.load_graph("full")
    del g.root.attrib["id"]
    with pytest.raises(GraphError, match="no id attribute"):
        G.validate(g)


def test_read_takes_no_source_and_write_needs_one() -> None:
    g = G.load_graph("full")
    import xml.etree.ElementTree as ET

    ET.SubElement(g.find("Read").element.find("sources"), "sourceProduct").set("refid", "Write")
    with pytest.raises(GraphError, match="at most 0 source"):
        G.validate(g)
    g = G.load_graph("full")
    g.find("Write").element.find("sources").clear()
    with pytest.raises(GraphError, match="node 'Write'.*needs a source"):
        G.validate(g)


def test_placeholders_allowed_in_templates_only() -> None:
    g = G.load_graph("full")
    G.validate(g)
    with pytest.raises(GraphError, match=r"unfilled placeholder '\$\{input\}'"):
        G.validate(g, placeholders=False)


def test_malformed_and_hostile_xml_refused(tmp_path) -> None:
    with pytest.raises(GraphError, match="not well-formed"):
        G.parse_graph("<graph id='x'><node></graph>", "broken.xml")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE g [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        '<graph id="x"><version>&b;</version></graph>'
    )
    with pytest.raises(GraphError, match="refused XML"):
        G.parse_graph(bomb, "bomb.xml")
    with pytest.raises(GraphError, match="root element is <graphs>"):
        G.parse_graph("<graphs/>", "wrong.xml")


def test_operator_table_facts() -> None:
    """Spot checks of the table against SNAP's sources (defaults and aliases as declared)."""
    T = G.SNAP_OPERATORS
    assert T["Terrain-Correction"].lookup("demName").default == "Copernicus 30m Global DEM"
    assert T["Terrain-Correction"].lookup("sourceBands").name == "sourceBandNames"
    assert T["Speckle-Filter"].lookup("filter").default == "Lee Sigma"
    assert T["Remove-GRD-Border-Noise"].lookup("borderLimit").default == "500"
    assert T["Read"].lookup("sourceBands").name == "bandNames"
    assert T["Write"].lookup("formatName").default == "BEAM-DIMAP"
    assert T["Calibration"].lookup("outputDNBand") is None
    assert T["Calibration"].lookup("outputSigmaBand").default == "true"
    assert T["ThermalNoiseRemoval"].lookup("clipNegativeValues").since == "14.0"
    assert T["BandMaths"].max_sources is None


def test_node_set_typed_values_and_unknown_names() -> None:
    g = G.load_graph("full")
    tc = g.find("Terrain-Correction")
    tc.set("pixelSpacingInMeter", 20.0)
    tc.set("saveDEM", True)
    tc.set("sourceBands", ["Sigma0_VH"])
    assert tc.raw("pixelSpacingInMeter") == "20.0"
    assert tc.value("saveDEM") is True
    assert tc.value("sourceBandNames") == ["Sigma0_VH"]
    with pytest.raises(GraphError, match="has no parameter 'outputDNBand'"):
        g.find("Calibration").set("outputDNBand", False)
    tc.remove("saveLatLon")
    assert tc.raw("saveLatLon") is None and tc.value("saveLatLon") is False  # SNAP default


def test_write_is_atomic_and_round_trips(tmp_path) -> None:
    g = G.load_graph("nocal")
    out = g.write(tmp_path / "g.xml")
    assert [p.name for p in tmp_path.iterdir()] == ["g.xml"]
    again = G.load_graph(out)
    assert again.to_dict() == g.to_dict()
    assert again.presentation() == g.presentation()
