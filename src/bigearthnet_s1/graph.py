"""SNAP graph XML: parse, validate, render.

The graphs in ``include/graphs/`` are the single statement of the preprocessing chain. This
module reads them (with ``defusedxml``), checks them against a table of SNAP's real operator
parameters, and fills the templates from typed Python values by editing the element tree
(never by string substitution).

Graph XML as SNAP's ``gpt`` and GraphBuilder read it::

    <graph id="...">
      <version>1.0</version>
      <node id="Read"><operator>Read</operator><sources/><parameters>...</parameters></node>
      <node id="X"><operator>Op</operator>
        <sources><sourceProduct refid="Read"/></sources>
        <parameters class="com.bc.ceres.binding.dom.XppDomElement"><name>value</name>...</parameters>
      </node>
      <applicationData id="Presentation"> (GraphBuilder layout) </applicationData>
    </graph>

Parameter values are element text; arrays are comma separated; ``${name}`` is a ``gpt -P``
placeholder. SNAP accepts a parameter under its Java field name or its ``alias``; an element
it does not know makes ``gpt`` fail ("Unknown element"), so :func:`validate` rejects it too.

Parameters of this project that SNAP's operators do not have (:data:`EXTENSION_PARAMS`: the
Terrain-Correction node's ``geometryConvention``) therefore never go into ``<parameters>``:
they live in ``<applicationData id="bigearthnet_s1">``, one ``<node id="...">`` per graph
node with one child element per parameter. SNAP reads every ``applicationData`` block as
opaque XML and ignores ids it does not know (snap-engine ``GraphIO``: ``ApplicationData`` with
its ``AppConverter``; GraphBuilder itself keeps its layout in ``id="Presentation"``), so the
graph stays loadable by ``gpt`` and GraphBuilder, while :func:`validate` checks these blocks
as strictly as SNAP's own parameters.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET

from bigearthnet_s1.atomic import atomic_write_text
from bigearthnet_s1.errors import GraphError
from bigearthnet_s1.snap_operators import (  # the table graphs are checked against, part of this API
    COPERNICUS_30M,
    EXTENSION_APP_ID,
    EXTENSION_PARAMS,
    EXTERNAL_DEM,
    SNAP_OPERATORS,
    SPECKLE_FILTERS,
    SRTM_1SEC,
    OperatorSpec,
    ParamSpec,
)

__all__ = [
    "SNAP_OPERATORS",
    "EXTENSION_APP_ID",
    "EXTENSION_PARAMS",
    "ParamSpec",
    "OperatorSpec",
    "Graph",
    "Node",
    "DemChoice",
    "RenderParams",
    "graphs_dir",
    "template_path",
    "load_graph",
    "parse_graph",
    "validate",
    "render",
    "dem_for_latitudes",
    "TEMPLATES",
    "band_names",
]

#: Template name -> file name in the graphs folder.
TEMPLATES: dict[str, str] = {"full": "s1_grd_full.xml", "nocal": "s1_grd_nocal.xml"}

_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")
_PARAMS_CLASS = "com.bc.ceres.binding.dom.XppDomElement"


# --------------------------------------------------------------------------------------
# Graph model
# --------------------------------------------------------------------------------------


@dataclass
class Node:
    """A view on one ``<node>`` element (edits go straight into the tree)."""

    element: ET.Element
    graph_name: str = "graph"

    @property
    def id(self) -> str:
        return self.element.get("id", "")

    @property
    def operator(self) -> str:
        op = self.element.find("operator")
        return (op.text or "").strip() if op is not None else ""

    @property
    def sources(self) -> dict[str, str]:
        """Source name (``sourceProduct``, ``sourceProduct.1``, ...) -> referenced node id or
        ``${...}`` placeholder text."""
        out: dict[str, str] = {}
        src = self.element.find("sources")
        if src is None:
            return out
        for child in src:
            if not isinstance(child.tag, str):
                continue
            ref = child.get("refid")
            if ref is None:
                ref = (child.text or "").strip()
            out[child.tag] = ref
        return out

    def _params_element(self, create: bool = False) -> ET.Element | None:
        p = self.element.find("parameters")
        if p is None and create:
            p = ET.SubElement(self.element, "parameters", {"class": _PARAMS_CLASS})
        return p

    def parameter_elements(self) -> list[ET.Element]:
        p = self._params_element()
        return [] if p is None else [c for c in p if isinstance(c.tag, str)]

    def raw(self, name: str) -> str | None:
        """Text of parameter ``name`` (field name or alias); ``None`` if absent or empty."""
        spec = SNAP_OPERATORS.get(self.operator)
        names = {name}
        if spec is not None and (ps := spec.lookup(name)) is not None:
            names = {ps.name} | ({ps.alias} if ps.alias else set())
        for el in self.parameter_elements():
            if el.tag in names:
                text = (el.text or "").strip()
                return text or None
        return None

    def value(self, name: str) -> Any:
        """Parameter ``name`` as a Python value (SNAP's default when absent):
        bool, int, float, str, list[str] (``String[]``), tuple (``Rectangle``) or None."""
        spec = _spec(self.operator, self.id)
        ps = spec.lookup(name)
        if ps is None:
            raise GraphError(f"node {self.id!r}: operator {self.operator} has no parameter {name!r}")
        text = self.raw(name)
        if text is None:
            text = ps.default
        if text is None:
            return [] if ps.type.endswith("[]") else None
        return _convert(ps, text, f"node {self.id!r} parameter {ps.name!r}")

    def set(self, name: str, value: Any) -> None:
        """Set parameter ``name`` (must be a known parameter of the operator) from a typed
        value: bool -> true/false, numbers -> decimal text, sequences -> comma separated,
        Path -> str, None -> empty element. An existing element (field name or alias) is
        replaced in place, keeping the element name the graph uses."""
        spec = _spec(self.operator, self.id)
        ps = spec.lookup(name)
        if ps is None:
            raise GraphError(f"node {self.id!r}: operator {self.operator} has no parameter {name!r}")
        params = self._params_element(create=True)
        assert params is not None
        target = None
        for el in params:
            if isinstance(el.tag, str) and el.tag in (ps.name, ps.alias):
                target = el
                break
        if target is None:
            target = ET.SubElement(params, ps.alias or ps.name)
        target.text = _format(value)

    def remove(self, name: str) -> None:
        """Remove parameter ``name`` (SNAP then uses its default)."""
        spec = _spec(self.operator, self.id)
        ps = spec.lookup(name)
        params = self._params_element()
        if ps is None or params is None:
            return
        for el in list(params):
            if isinstance(el.tag, str) and el.tag in (ps.name, ps.alias):
                params.remove(el)


def _extension_spec(node: Node, name: str) -> ParamSpec:
    for ps in EXTENSION_PARAMS.get(node.operator, ()):
        if ps.name == name:
            return ps
    known = ", ".join(p.name for p in EXTENSION_PARAMS.get(node.operator, ())) or "none"
    raise GraphError(f"node {node.id!r} ({node.operator}): no parameter {name!r} of this project (known: {known})")


def _spec(operator: str, node_id: str) -> OperatorSpec:
    spec = SNAP_OPERATORS.get(operator)
    if spec is None:
        raise GraphError(f"node {node_id!r}: unknown operator {operator!r}")
    return spec


def _format(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GraphError(f"parameter value {value!r} is not finite")
        return repr(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ",".join(_format(v) or "" for v in value)
    raise GraphError(f"cannot write parameter value {value!r} ({type(value).__name__})")


def _convert(ps: ParamSpec, text: str, where: str) -> Any:
    """Parse SNAP parameter text into a Python value; GraphError naming ``where``."""
    t = ps.type
    try:
        if t == "boolean":
            low = text.strip().lower()
            if low not in ("true", "false"):
                raise ValueError("expected true or false")
            return low == "true"
        if t == "int":
            return int(text.strip())
        if t == "double":
            v = float(text.strip())
            if not math.isfinite(v):
                raise ValueError("not finite")
            return v
        if t == "String[]":
            return [s.strip() for s in text.split(",") if s.strip()]
        if t == "Rectangle":
            parts = [int(s) for s in text.split(",")]
            if len(parts) != 4 or parts[2] <= 0 or parts[3] <= 0:
                raise ValueError("expected x,y,width,height with width, height > 0")
            return tuple(parts)
        if ps.value_set is not None and text not in ps.value_set:
            raise ValueError(f"not one of {', '.join(ps.value_set)}")
        return text
    except ValueError as exc:
        raise GraphError(f"{where}: bad {t} value {text!r} ({exc})") from None


class Graph:
    """A SNAP graph held as an ElementTree; ``name`` is used in error messages."""

    def __init__(self, root: ET.Element, name: str = "graph") -> None:
        if root.tag != "graph":
            raise GraphError(f"{name}: root element is <{root.tag}>, expected <graph>")
        self.root = root
        self.name = name

    # -- reading
    @property
    def id(self) -> str:
        return self.root.get("id", "")

    @property
    def version(self) -> str | None:
        v = self.root.find("version")
        return (v.text or "").strip() if v is not None else None

    @property
    def nodes(self) -> list[Node]:
        return [Node(el, self.name) for el in self.root.findall("node")]

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise GraphError(f"{self.name}: no node {node_id!r}")

    def nodes_by_operator(self, operator: str) -> list[Node]:
        return [n for n in self.nodes if n.operator == operator]

    def find(self, operator: str) -> Node | None:
        """The single node running ``operator`` (None if absent; GraphError if several)."""
        found = self.nodes_by_operator(operator)
        if len(found) > 1:
            raise GraphError(f"{self.name}: {len(found)} {operator} nodes, expected at most one")
        return found[0] if found else None

    def topological_order(self) -> list[Node]:
        """Nodes sorted so that each comes after its sources (GraphError on a cycle)."""
        nodes = {n.id: n for n in self.nodes}
        deps = {nid: {s for s in n.sources.values() if s in nodes} for nid, n in nodes.items()}
        order: list[Node] = []
        done: set[str] = set()
        ready = [nid for nid in nodes if not deps[nid]]
        while ready:
            nid = ready.pop(0)
            order.append(nodes[nid])
            done.add(nid)
            for other, d in deps.items():
                if other not in done and other not in ready and d <= done:
                    ready.append(other)
        if len(order) != len(nodes):
            cyc = sorted(set(nodes) - done)
            raise GraphError(f"{self.name}: cycle among nodes {', '.join(cyc)}")
        return order

    def presentation(self) -> dict[str, tuple[float, float]]:
        """GraphBuilder display positions: node id -> (x, y)."""
        out: dict[str, tuple[float, float]] = {}
        for app in self.root.findall("applicationData"):
            if app.get("id") != "Presentation":
                continue
            for n in app.findall("node"):
                pos = n.find("displayPosition")
                if pos is not None:
                    out[n.get("id", "")] = (float(pos.get("x", "0")), float(pos.get("y", "0")))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain structure for comparisons: id, version, per node operator, sources and raw
        parameter text (element name -> text or None), and the project's own parameters
        (``extensions``: node id -> element name -> text or None)."""
        return {
            "id": self.id,
            "version": self.version,
            "nodes": {
                n.id: {
                    "operator": n.operator,
                    "sources": n.sources,
                    "parameters": {
                        el.tag: ((el.text or "").strip() or None) for el in n.parameter_elements()
                    },
                }
                for n in self.nodes
            },
            "extensions": {
                nid: {el.tag: ((el.text or "").strip() or None) for el in els}
                for nid, els in self._extension_elements().items()
            },
        }

    # -- the project's own node parameters (applicationData id=EXTENSION_APP_ID)
    def _extension_block(self, create: bool = False) -> ET.Element | None:
        for app in self.root.findall("applicationData"):
            if app.get("id") == EXTENSION_APP_ID:
                return app
        if not create:
            return None
        app = ET.Element("applicationData", {"id": EXTENSION_APP_ID})
        # before GraphBuilder's Presentation block, after the nodes
        idx = len(self.root)
        for i, child in enumerate(list(self.root)):
            if child.tag == "applicationData":
                idx = i
                break
        self.root.insert(idx, app)
        return app

    def _extension_elements(self) -> dict[str, list[ET.Element]]:
        app = self._extension_block()
        if app is None:
            return {}
        return {n.get("id", ""): [c for c in n if isinstance(c.tag, str)] for n in app.findall("node")}

    def extension(self, node_id: str, name: str) -> Any:
        """The project's own parameter ``name`` of node ``node_id`` (its default when absent)."""
        node = self.node(node_id)
        ps = _extension_spec(node, name)
        for el in self._extension_elements().get(node_id, []):
            if el.tag == name:
                text = (el.text or "").strip()
                if text:
                    return _convert(ps, text, f"node {node_id!r} applicationData parameter {name!r}")
        return None if ps.default is None else _convert(ps, ps.default, f"node {node_id!r} parameter {name!r}")

    def set_extension(self, node_id: str, name: str, value: Any) -> None:
        """Set the project's own parameter ``name`` of node ``node_id`` (validated)."""
        node = self.node(node_id)
        ps = _extension_spec(node, name)
        text = _format(value)
        if text is not None:
            _convert(ps, text, f"node {node_id!r} applicationData parameter {name!r}")
        app = self._extension_block(create=True)
        assert app is not None
        target_node = next((n for n in app.findall("node") if n.get("id") == node_id), None)
        if target_node is None:
            target_node = ET.SubElement(app, "node", {"id": node_id})
        el = target_node.find(name)
        if el is None:
            el = ET.SubElement(target_node, name)
        el.text = text

    # -- writing
    def copy(self) -> Graph:
        return Graph(SafeET.fromstring(self.to_string()), self.name)

    def to_string(self) -> str:
        ET.indent(self.root, space="  ")
        return ET.tostring(self.root, encoding="unicode")

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the graph XML atomically (temporary file in the same folder, then rename)."""
        path = Path(path)
        data = '<?xml version="1.0" encoding="UTF-8"?>\n' + self.to_string() + "\n"
        return atomic_write_text(path, data, suffix=".tmp")


def parse_graph(text: str | bytes, name: str = "graph") -> Graph:
    """Parse graph XML text (defusedxml: no entities, no external references)."""
    try:
        root = SafeET.fromstring(text)
    except ET.ParseError as exc:
        raise GraphError(f"{name}: not well-formed XML ({exc})") from None
    except Exception as exc:  # defusedxml's EntitiesForbidden, DTDForbidden, ...
        raise GraphError(f"{name}: refused XML ({type(exc).__name__}: {exc})") from None
    return Graph(root, name)


def graphs_dir() -> Path:
    """Folder of the graph templates: ``$BIGEARTHNET_S1_GRAPHS`` if set, else the package's
    ``graphs`` resources.

    ``include/graphs/`` is the one copy in the repository (what a user opens in SNAP's Graph
    Builder); ``src/bigearthnet_s1/graphs`` is a symbolic link to it, so an editable install
    reads it in place and a built wheel carries the same bytes as package data."""
    env = os.environ.get("BIGEARTHNET_S1_GRAPHS")
    if env:
        folder = Path(env)
        if not folder.is_dir():
            raise GraphError(f"BIGEARTHNET_S1_GRAPHS={env}: not a folder")
        return folder
    resource = resources.files("bigearthnet_s1").joinpath("graphs")
    folder = Path(str(resource))
    if not all((folder / f).is_file() for f in TEMPLATES.values()):
        raise GraphError(
            f"graph templates not found in the installed package ({folder}: "
            f"expected {', '.join(TEMPLATES.values())}); reinstall bigearthnet-s1, or set "
            "BIGEARTHNET_S1_GRAPHS to a folder holding them (the repository's include/graphs)"
        )
    return folder


def template_path(name: str) -> Path:
    """Path of template ``name`` ("full", "nocal") or of a graph file given by path."""
    if name in TEMPLATES:
        return graphs_dir() / TEMPLATES[name]
    p = Path(name)
    if p.is_file():
        return p
    raise GraphError(f"no graph template {name!r} (known: {', '.join(TEMPLATES)}; or a path to a graph XML)")


def load_graph(name_or_path: str | os.PathLike[str]) -> Graph:
    """Read a template by name ("full", "nocal") or a graph file by path."""
    path = template_path(os.fspath(name_or_path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GraphError(f"{path}: cannot read graph ({exc})") from None
    return parse_graph(data, str(path))


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def validate(
    graph: Graph,
    operators: Mapping[str, OperatorSpec] = SNAP_OPERATORS,
    *,
    placeholders: bool = True,
    snap_version: str | None = None,
) -> Graph:
    """Check a graph the way ``gpt`` would before running it; GraphError naming the node.

    - root ``<graph id=...>`` with ``<version>``; unique non-empty node ids;
    - every operator known; every parameter element known for that operator (field name or
      alias), and, with ``snap_version`` (e.g. "13.0"), not newer than that version;
    - values parse for their type (boolean, int, double, Rectangle) and lie in the value
      set where SNAP declares one; ``${name}`` placeholders are allowed only if
      ``placeholders`` (a rendered graph must have none);
    - every source refers to an existing node (or is a ``${...}`` placeholder), the number
      of sources fits the operator, and there is no cycle.
    Returns the graph for chaining.
    """
    name = graph.name
    if not graph.id:
        raise GraphError(f"{name}: <graph> has no id attribute")
    if graph.version is None:
        raise GraphError(f"{name}: <graph> has no <version>")
    nodes = graph.nodes
    if not nodes:
        raise GraphError(f"{name}: graph has no nodes")
    ids: set[str] = set()
    for n in nodes:
        if not n.id:
            raise GraphError(f"{name}: a <node> has no id")
        if n.id in ids:
            raise GraphError(f"{name}: duplicate node id {n.id!r}")
        ids.add(n.id)
    for n in nodes:
        where = f"{name}: node {n.id!r}"
        if not n.operator:
            raise GraphError(f"{where}: no <operator>")
        spec = operators.get(n.operator)
        if spec is None:
            raise GraphError(f"{where}: unknown operator {n.operator!r} (known: {', '.join(sorted(operators))})")
        for el in n.parameter_elements():
            ps = spec.lookup(el.tag)
            if ps is None:
                raise GraphError(
                    f"{where} ({n.operator}): unknown parameter element <{el.tag}> "
                    f"(SNAP's {n.operator} has: {', '.join(sorted(spec.element_names()))})"
                )
            if snap_version is not None and ps.since is not None and _vkey(snap_version) < _vkey(ps.since):
                raise GraphError(
                    f"{where} ({n.operator}): parameter <{el.tag}> exists only since SNAP {ps.since}, "
                    f"not in {snap_version}"
                )
            _check_value(ps, el, f"{where} ({n.operator}) parameter <{el.tag}>", placeholders)
        srcs = n.sources
        for sname, ref in srcs.items():
            if _PLACEHOLDER.fullmatch(ref or ""):
                if not placeholders:
                    raise GraphError(f"{where}: source {sname} is an unfilled placeholder {ref}")
                continue
            if ref not in ids:
                raise GraphError(f"{where}: source {sname} refers to missing node {ref!r}")
            if ref == n.id:
                raise GraphError(f"{where}: node is its own source")
        if len(srcs) < spec.min_sources:
            raise GraphError(f"{where} ({n.operator}): needs a source product")
        if spec.max_sources is not None and len(srcs) > spec.max_sources:
            raise GraphError(f"{where} ({n.operator}): takes at most {spec.max_sources} source(s), has {len(srcs)}")
    _validate_extensions(graph, ids, placeholders)
    graph.topological_order()  # raises on cycles
    return graph


def _validate_extensions(graph: Graph, ids: set[str], placeholders: bool) -> None:
    """The project's own parameters: known nodes, known parameters, valid values."""
    name = graph.name
    blocks = [a for a in graph.root.findall("applicationData") if a.get("id") == EXTENSION_APP_ID]
    if len(blocks) > 1:
        raise GraphError(f"{name}: {len(blocks)} applicationData blocks with id {EXTENSION_APP_ID!r}, expected one")
    if not blocks:
        return
    seen: set[str] = set()
    for child in blocks[0]:
        if not isinstance(child.tag, str):
            continue
        where = f"{name}: applicationData {EXTENSION_APP_ID!r}"
        if child.tag != "node":
            raise GraphError(f"{where}: unknown element <{child.tag}> (expected <node id=...>)")
        nid = child.get("id", "")
        if nid not in ids:
            raise GraphError(f"{where}: <node id={nid!r}> names no node of the graph")
        if nid in seen:
            raise GraphError(f"{where}: node {nid!r} listed twice")
        seen.add(nid)
        node = graph.node(nid)
        specs = {ps.name: ps for ps in EXTENSION_PARAMS.get(node.operator, ())}
        for el in child:
            if not isinstance(el.tag, str):
                continue
            ps = specs.get(el.tag)
            if ps is None:
                raise GraphError(
                    f"{where}: node {nid!r} ({node.operator}): unknown parameter <{el.tag}> "
                    f"(this project's {node.operator} parameters: {', '.join(sorted(specs)) or 'none'})"
                )
            _check_value(ps, el, f"{where}: node {nid!r} parameter <{el.tag}>", placeholders)


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def _check_value(ps: ParamSpec, el: ET.Element, where: str, placeholders: bool) -> None:
    children = [c for c in el if isinstance(c.tag, str)]
    if ps.children is not None:
        for c in children:
            if c.tag not in ps.children:
                raise GraphError(f"{where}: unknown child element <{c.tag}> (expected {', '.join(ps.children)})")
        return
    if children:
        raise GraphError(f"{where}: expected a text value, found child element <{children[0].tag}>")
    text = (el.text or "").strip()
    if not text:
        return  # empty element: SNAP keeps the default / null
    if _PLACEHOLDER.search(text):
        if not placeholders:
            raise GraphError(f"{where}: unfilled placeholder {text!r}")
        return
    _convert(ps, text, where)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemChoice:
    """The DEM for Terrain-Correction.

    ``name`` is SNAP's demName (``SRTM 1Sec HGT``, ``Copernicus 30m Global DEM``, or
    ``External DEM`` with ``file``). ``apply_egm``: heights in the file are above the EGM96
    geoid (True, as SRTM/Copernicus) or above the WGS84 ellipsoid (False). ``nodata``:
    the file's no-data height.
    """

    name: str
    file: Path | None = None
    apply_egm: bool = True
    nodata: float = 0.0

    @classmethod
    def external(cls, file: str | os.PathLike[str], *, apply_egm: bool = True, nodata: float = 0.0) -> DemChoice:
        return cls(EXTERNAL_DEM, Path(file), apply_egm, nodata)

    def __post_init__(self) -> None:
        if (self.name == EXTERNAL_DEM) != (self.file is not None):
            raise GraphError(f"DEM {self.name!r}: an external DEM needs a file, a named DEM none")


def dem_for_latitudes(lat_min: float, lat_max: float) -> DemChoice:
    """SNAP DEM for an area spanning ``lat_min..lat_max`` (degrees): SRTM 1Sec HGT where
    SRTM exists (56 S .. 60 N), else the Copernicus 30 m global DEM (the recipe's "another
    DEM at high latitude"; it used ASTER, which SNAP's current DEM list replaces by GLO-30)."""
    if lat_max > 60.0 or lat_min < -56.0:
        return DemChoice(COPERNICUS_30M)
    return DemChoice(SRTM_1SEC)


@dataclass(frozen=True)
class RenderParams:
    """Everything a template needs, typed.

    input: the product (``manifest.safe``, the ``.SAFE`` folder or the ``.zip``).
    output: the file the Write node writes (GeoTIFF).
    epsg: the S2 tile's UTM CRS; grid_origin: (ulx, uly), outer corner of the tile grid's
    pixel (0, 0), metres in that CRS; pixel_spacing: metres.
    pixel_region: (col_off, row_off, width, height) of the product's radar raster to read
    (pixel indices, whole pixels), or None for the whole product.
    geometry_convention: the Terrain-Correction node's ``geometryConvention`` (esa, snap,
    sarsen; this project's parameter, kept in applicationData: see the module doc).
    """

    input: Path
    output: Path
    epsg: int
    grid_origin: tuple[float, float]
    dem: DemChoice
    polarisations: tuple[str, ...] = ("VV", "VH")
    pixel_spacing: float = 10.0
    pixel_region: tuple[int, int, int, int] | None = None
    speckle_filter: str = "Refined Lee"
    output_format: str = "GeoTIFF-BigTIFF"
    geometry_convention: str = "esa"

    def __post_init__(self) -> None:
        pols = tuple(p.upper() for p in self.polarisations)
        if not pols or any(p not in ("VV", "VH", "HH", "HV") for p in pols) or len(set(pols)) != len(pols):
            raise GraphError(f"polarisations {self.polarisations!r}: expected distinct VV/VH/HH/HV")
        object.__setattr__(self, "polarisations", pols)
        if not (self.pixel_spacing > 0):
            raise GraphError(f"pixel spacing {self.pixel_spacing!r} m must be > 0")
        if self.speckle_filter not in SPECKLE_FILTERS:
            raise GraphError(f"speckle filter {self.speckle_filter!r}: not one of {', '.join(SPECKLE_FILTERS)}")
        conventions = EXTENSION_PARAMS["Terrain-Correction"][0].value_set or ()
        if self.geometry_convention not in conventions:
            raise GraphError(f"geometry convention {self.geometry_convention!r}: not one of {', '.join(conventions)}")


#: metres per degree on the WGS84 equator, as SNAP's GraphBuilder converts 10 m (1 deg = 111319.49 m)
_M_PER_DEG = 6378137.0 * math.pi / 180.0


def render(template: Graph | str | os.PathLike[str], params: RenderParams) -> Graph:
    """Fill a template with ``params`` and validate the result (no placeholders left).

    Nodes are found by operator, so a user's edited copy with other node ids renders too.
    Band names follow SNAP's: ``Intensity_<pol>`` after ThermalNoiseRemoval,
    ``Sigma0_<pol>`` after Calibration; the band list is set on every node that takes one,
    so the output bands come in the order of ``params.polarisations``.
    """
    g = (template if isinstance(template, Graph) else load_graph(template)).copy()
    pols = list(params.polarisations)

    read = _one(g, "Read")
    read.set("file", params.input)
    if params.pixel_region is not None:
        x, y, w, h = (int(v) for v in params.pixel_region)
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise GraphError(f"{g.name}: pixel region {params.pixel_region!r} is empty or negative")
        read.set("pixelRegion", [x, y, w, h])
        # ReadOp applies pixelRegion only with useAdvancedOptions=true (snap-engine ReadOp).
        read.set("useAdvancedOptions", True)
    else:
        read.remove("pixelRegion")
        read.set("useAdvancedOptions", False)

    for op in ("Remove-GRD-Border-Noise", "ThermalNoiseRemoval"):
        n = g.find(op)
        if n is not None:
            n.set("selectedPolarisations", pols)
    cal = g.find("Calibration")
    if cal is not None:
        cal.set("selectedPolarisations", pols)
        cal.set("sourceBands", [f"Intensity_{p}" for p in pols])
    prefix = "Sigma0" if cal is not None else "Intensity"
    bands = [f"{prefix}_{p}" for p in pols]

    spk = g.find("Speckle-Filter")
    if spk is not None:
        spk.set("sourceBands", bands)
        spk.set("filter", params.speckle_filter)

    tc = _one(g, "Terrain-Correction")
    tc.set("sourceBands", bands)
    tc.set("demName", params.dem.name)
    tc.set("externalDEMFile", params.dem.file)
    tc.set("externalDEMNoDataValue", float(params.dem.nodata))
    tc.set("externalDEMApplyEGM", bool(params.dem.apply_egm))
    tc.set("pixelSpacingInMeter", float(params.pixel_spacing))
    tc.set("pixelSpacingInDegree", float(params.pixel_spacing) / _M_PER_DEG)
    tc.set("mapProjection", f"EPSG:{int(params.epsg)}")
    # SNAP's standard grid origin is a pixel CENTRE (CrsGeoCoding reference pixel 0.5, 0.5):
    # put it at the centre of the tile grid's pixel (0, 0) so pixel corners match the tile.
    half = float(params.pixel_spacing) / 2.0
    tc.set("alignToStandardGrid", True)
    tc.set("standardGridOriginX", float(params.grid_origin[0]) + half)
    tc.set("standardGridOriginY", float(params.grid_origin[1]) - half)
    g.set_extension(tc.id, "geometryConvention", params.geometry_convention)

    db = g.find("LinearToFromdB")
    if db is not None:
        db.set("sourceBands", bands)

    write = _one(g, "Write")
    write.set("file", params.output)
    write.set("formatName", params.output_format)

    g.root.insert(0, ET.Comment(f" rendered by bigearthnet_s1.graph.render from {Path(g.name).name} "))
    return validate(g, placeholders=False)


def _one(g: Graph, operator: str) -> Node:
    n = g.find(operator)
    if n is None:
        raise GraphError(f"{g.name}: graph has no {operator} node")
    return n


def band_names(graph: Graph, polarisations: Iterable[str]) -> list[str]:
    """Names SNAP gives the output bands of a rendered template (``Sigma0_VV_db`` ...)."""
    prefix = "Sigma0" if graph.find("Calibration") is not None else "Intensity"
    suffix = "_db" if graph.find("LinearToFromdB") is not None else ""
    return [f"{prefix}_{p}{suffix}" for p in polarisations]

