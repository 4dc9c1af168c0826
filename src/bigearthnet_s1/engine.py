"""The native engine: a SNAP-graph executor in pure Python.

:func:`execute` reads a SNAP graph (the same XML ``gpt`` runs), walks its
nodes in dependency order and runs each operator through this library:

=========================  ===============================================================
SNAP operator              native implementation
=========================  ===============================================================
Read                       ``safe.open_safe`` + ``SafeProduct.read_dn`` (pixelRegion window)
Remove-GRD-Border-Noise    ``radiometry.border_noise_mask`` (borderLimit, trimThreshold)
ThermalNoiseRemoval        ``radiometry.noise_power`` (subtracted by ``radiometry.calibrate``)
Calibration                ``radiometry.calibration_lut`` (sigma0 | gamma0 | beta0), ``calibrate``
Speckle-Filter             ``speckle.speckle_filter`` (SNAP names and defaults)
Terrain-Correction         ``geocoding.terrain_correct`` with ``dem.open_dem``
LinearToFromdB             ``radiometry.to_db``
Write                      float32 GeoTIFF (NaN no-data), written atomically
=========================  ===============================================================

Radar-geometry nodes (border noise, thermal noise, calibration, speckle filter) are
recorded as they are met, with their parameters, and run when pixels are first needed as
one ``radiometry.radar_chain`` call — the library's composition of exactly those functions,
strip by strip — so a graph and the direct library calls give identical arrays. An
operator, a parameter value or an order of nodes the executor does not implement raises
GraphError naming the node and the parameter: never a silent substitute.

The other engine is SNAP's own ``gpt`` (:mod:`bigearthnet_s1.gpt`); both run the same graphs,
and :mod:`bigearthnet_s1.preprocess` runs either for a product and a tile.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.windows import Window

from bigearthnet_s1 import graph as G
from bigearthnet_s1._time import format_iso
from bigearthnet_s1.atomic import atomic_path
from bigearthnet_s1.errors import (
    BigEarthNetS1Error,
    GraphError,
    InputError,
)
from bigearthnet_s1.grid import MapGrid

log = logging.getLogger(__name__)

__all__ = [
    "ENGINES",
    "NativeResult",
    "NATIVE_SUPPORT",
    "execute",
    "write_geotiff",
]

ENGINES = ("native", "snap")

#: SNAP band-name prefixes -> radiometric state
_AMPLITUDE, _INTENSITY = "Amplitude", "Intensity"
_CAL_PREFIX = {"sigma0": "Sigma0", "gamma0": "Gamma0", "beta0": "Beta0"}


# --------------------------------------------------------------------------------------
# value types
# --------------------------------------------------------------------------------------
@dataclass
class _Band:
    """One polarisation flowing through the graph.

    In radar geometry the radiometric steps are recorded (``border``, ``thermal``,
    ``calibration``, ``speckle``) and materialised once by :func:`_materialise`; after
    Terrain-Correction ``data`` holds the map-grid array.
    """

    pol: str
    border: tuple[int, float] | None = None  # (borderLimit, trimThreshold)
    thermal: bool = False
    calibration: str | None = None  # sigma0 | gamma0 | beta0
    speckle: tuple[str, dict[str, Any]] | None = None
    db: bool = False
    data: NDArray[np.float32] | None = None  # materialised linear (or dB) image

    def name(self) -> str:
        if self.calibration:
            base = f"{_CAL_PREFIX[self.calibration]}_{self.pol}"
        elif self.thermal:
            base = f"{_INTENSITY}_{self.pol}"
        else:
            base = f"{_AMPLITUDE}_{self.pol}"
        return base + ("_db" if self.db else "")


@dataclass
class _Product:
    safe: Any  # bigearthnet_s1.safe.SafeProduct
    window: Window  # radar window the radar-geometry bands cover
    bands: dict[str, _Band]  # SNAP band name -> band (ordered)
    grid: MapGrid | None = None  # set by Terrain-Correction
    history: list[str] = field(default_factory=list)  # operators applied

    def copy(self) -> _Product:
        return _Product(
            self.safe,
            self.window,
            {k: _Band(**vars(b)) for k, b in self.bands.items()},
            self.grid,
            list(self.history),
        )

    def rename(self) -> None:
        self.bands = {b.name(): b for b in self.bands.values()}


@dataclass
class NativeResult:
    """Output of :func:`execute`: dB/linear arrays on ``grid`` keyed by SNAP band name."""

    bands: dict[str, NDArray[np.float32]]
    grid: MapGrid
    product_name: str
    start_time: Any
    written: Path | None = None


@dataclass
class _Context:
    node: G.Node
    graph: G.Graph
    target_grid: MapGrid | None
    dem_cache: Path | None


# --------------------------------------------------------------------------------------
# parameter support: what the native engine implements, per operator
# --------------------------------------------------------------------------------------
# "used": consumed by the implementation; a tuple: only these values (SNAP text form)
# are implemented; "ignored: <why>": no effect on the output of this engine (documented);
# a parameter missing here is not implemented: setting it to anything but SNAP's default
# (or empty) is refused.
NATIVE_SUPPORT: dict[str, dict[str, Any]] = {
    "Read": {
        "file": "used",
        "formatName": ("SENTINEL-1", "SENTINEL-1-SAFE"),
        "bandNames": "used",
        "pixelRegion": "used",
        "useAdvancedOptions": "used",
        "copyMetadata": "ignored: metadata is read from the SAFE product directly",
    },
    "Write": {
        "file": "used",
        "formatName": ("GeoTIFF", "GeoTIFF-BigTIFF"),
        "deleteOutputOnFailure": "ignored: writes are atomic, nothing partial is ever left",
        "writeEntireTileRows": "ignored: SNAP tile-cache behaviour only",
        "clearCacheAfterRowWrite": "ignored: SNAP tile-cache behaviour only",
    },
    "Remove-GRD-Border-Noise": {
        "selectedPolarisations": "used",
        "borderLimit": "used",
        "trimThreshold": "used",
    },
    "ThermalNoiseRemoval": {
        "selectedPolarisations": "used",
        "removeThermalNoise": ("true",),
        "outputNoise": ("false",),
        "reIntroduceThermalNoise": ("false",),
        "clipNegativeValues": ("true",),
    },
    "Calibration": {
        "sourceBandNames": "used",
        "selectedPolarisations": "used",
        "auxFile": ("Latest Auxiliary File", "Product Auxiliary File"),
        "outputImageInComplex": ("false",),
        "outputImageScaleInDb": ("false",),
        "createGammaBand": ("false",),
        "createBetaBand": ("false",),
        "outputSigmaBand": "used",
        "outputGammaBand": "used",
        "outputBetaBand": "used",
    },
    "Speckle-Filter": {
        "sourceBandNames": "used",
        "filter": "used",
        "filterSizeX": "used",
        "filterSizeY": "used",
        "estimateENL": "used",
        "enl": "used",
        "numLooksStr": "used",
        "windowSize": "used",
        "targetWindowSizeStr": "used",
        "sigmaStr": "used",
        "dampingFactor": "ignored: used by Frost only, which the native engine refuses",
        "anSize": "ignored: used by IDAN only, which the native engine refuses",
    },
    "Terrain-Correction": {
        "sourceBandNames": "used",
        "demName": "used",
        "externalDEMFile": "used",
        "externalDEMNoDataValue": "used",
        "externalDEMApplyEGM": "used",
        "demResamplingMethod": ("BILINEAR_INTERPOLATION",),
        "imgResamplingMethod": ("NEAREST_NEIGHBOUR", "BILINEAR_INTERPOLATION", "CUBIC_CONVOLUTION"),
        "pixelSpacingInMeter": "used",
        "pixelSpacingInDegree": "ignored: derived from pixelSpacingInMeter for projected CRSs (SNAP does the same)",
        "mapProjection": "used",
        "alignToStandardGrid": "used",
        "standardGridOriginX": "used",
        "standardGridOriginY": "used",
        "nodataValueAtSea": ("false",),
        "saveDEM": ("false",),
        "saveLatLon": ("false",),
        "saveIncidenceAngleFromEllipsoid": ("false",),
        "saveLocalIncidenceAngle": ("false",),
        "saveProjectedLocalIncidenceAngle": ("false",),
        "saveSelectedSourceBand": ("true",),
        "saveLayoverShadowMask": ("false",),
        "outputComplex": ("false",),
        "applyRadiometricNormalization": ("false",),
        "saveSigmaNought": ("false",),
        "saveGammaNought": ("false",),
        "saveBetaNought": ("false",),
        "incidenceAngleForSigma0": "ignored: only used with applyRadiometricNormalization=true",
        "incidenceAngleForGamma0": "ignored: only used with applyRadiometricNormalization=true",
        "auxFile": ("Latest Auxiliary File", "Product Auxiliary File"),
        "applyAPDCorrection": ("false",),
        "externalAuxFile": "ignored: only used with auxFile=External Auxiliary File",
    },
    "LinearToFromdB": {"sourceBandNames": "used"},
}

#: SNAP image resampling name -> geocoding.terrain_correct resampling. CUBIC_CONVOLUTION is
#: the Keys kernel (a = -0.5), which is what geocoding's "bicubic" implements.
_RESAMPLING = {
    "NEAREST_NEIGHBOUR": "nearest",
    "BILINEAR_INTERPOLATION": "bilinear",
    "CUBIC_CONVOLUTION": "bicubic",
}


def _check_support(node: G.Node) -> None:
    """Refuse parameters/values this engine does not implement (GraphError naming them)."""
    support = NATIVE_SUPPORT.get(node.operator)
    if support is None:
        raise GraphError(
            f"node {node.id!r}: operator {node.operator} is not implemented by the native engine "
            f"(it runs {', '.join(NATIVE_SUPPORT)}; use --engine snap)"
        )
    spec = G.SNAP_OPERATORS[node.operator]
    for el in node.parameter_elements():
        ps = spec.lookup(el.tag)
        if ps is None:  # validate() catches this first; keep the message clear anyway
            raise GraphError(f"node {node.id!r}: unknown parameter <{el.tag}>")
        text = (el.text or "").strip()
        rule = support.get(ps.name)
        if rule is None:
            if text and text != (ps.default or ""):
                raise GraphError(
                    f"node {node.id!r} ({node.operator}): parameter {ps.name}={text!r} is not implemented "
                    "by the native engine (only its default/empty value is); use --engine snap"
                )
            continue
        if isinstance(rule, tuple):
            if not text and ps.default is None:
                continue  # empty, no SNAP default: SNAP decides (e.g. Read's format auto-detection)
            value = text or (ps.default or "")
            if ps.type == "boolean":
                value = value.lower()
            if value not in rule:
                raise GraphError(
                    f"node {node.id!r} ({node.operator}): parameter {ps.name}={value!r} is not implemented "
                    f"by the native engine (implemented: {', '.join(rule)}); use --engine snap"
                )


# --------------------------------------------------------------------------------------
# executor
# --------------------------------------------------------------------------------------
def execute(
    graph: G.Graph | str | os.PathLike[str],
    *,
    target_grid: MapGrid | None = None,
    write: bool = True,
    dem_cache: str | os.PathLike[str] | None = None,
) -> NativeResult:
    """Run a SNAP graph with the native engine.

    ``target_grid``: the map grid Terrain-Correction writes (must agree with the node's
    mapProjection, pixel spacing and standard-grid alignment); None: the grid SNAP would make,
    the bounding box of the radar window's footprint snapped to the standard grid.
    ``write``: run the Write node (False: only return the arrays). Arrays are float32 on the
    grid's pixel centres, NaN no-data, in the units the graph leaves (dB after LinearToFromdB).
    """
    g = graph if isinstance(graph, G.Graph) else G.load_graph(graph)
    G.validate(g, placeholders=False)
    order = g.topological_order()
    for n in order:
        _check_support(n)
        if n.operator != "Read" and len(n.sources) != 1:
            raise GraphError(f"node {n.id!r}: the native engine runs single-source chains only")
    results: dict[str, _Product] = {}
    written: Path | None = None
    for n in order:
        ctx = _Context(n, g, target_grid, Path(dem_cache) if dem_cache else None)
        src = results[next(iter(n.sources.values()))] if n.sources else None
        if n.operator == "Write":
            if write:
                assert src is not None
                written = _op_write(ctx, src)
            results[n.id] = src  # type: ignore[assignment]
            continue
        if n.operator == "Read":
            product = _op_read(ctx)
        else:
            assert src is not None
            product = _OPERATORS[n.operator](ctx, src.copy())  # each operator works on its own copy
        product.history.append(n.operator)
        results[n.id] = product
    sinks = [n for n in order if not any(n.id in m.sources.values() for m in order)]
    if len(sinks) != 1:
        raise GraphError(f"{g.name}: the native engine needs exactly one final node, found {len(sinks)}")
    final = results[sinks[0].id]
    if final.grid is None:
        raise GraphError(f"{g.name}: the graph has no Terrain-Correction, so there is no map output")
    bands = {name: b.data for name, b in final.bands.items() if b.data is not None}
    return NativeResult(bands, final.grid, final.safe.name, final.safe.start_time, written)


def _pols_param(node: G.Node, product: _Product) -> list[str]:
    sel = [p.upper() for p in node.value("selectedPolarisations")]
    have = [b.pol for b in product.bands.values()]
    if not sel:
        return have
    missing = [p for p in sel if p not in have]
    if missing:
        raise GraphError(
            f"node {node.id!r}: selectedPolarisations {','.join(missing)} "
            f"not in the source bands ({', '.join(product.bands)})"
        )
    return sel


def _select_bands(node: G.Node, product: _Product, param: str = "sourceBands") -> list[_Band]:
    names = node.value(param)
    if not names:
        return list(product.bands.values())
    out = []
    for name in names:
        if name not in product.bands:
            raise GraphError(
                f"node {node.id!r}: parameter {param} names band {name!r}, which the source does not have "
                f"(it has {', '.join(product.bands) or 'none'})"
            )
        out.append(product.bands[name])
    return out


def _op_read(ctx: _Context) -> _Product:
    from bigearthnet_s1.safe import open_safe

    n = ctx.node
    file = n.value("file")
    if not file:
        raise GraphError(f"node {n.id!r} (Read): parameter file is empty")
    p = Path(file)
    if p.name.lower() == "manifest.safe":
        p = p.parent
    safe = open_safe(p)
    region = n.value("pixelRegion") if n.value("useAdvancedOptions") else None
    pols = list(safe.available_polarisations)
    if not pols:
        raise GraphError(f"node {n.id!r} (Read): product {safe.name} has no polarisation with a measurement file")
    ann = safe.annotation(pols[0])
    if region is None:
        window = Window(0, 0, ann.samples, ann.lines)
    else:
        x, y, w, h = region
        # SNAP clips the region to the raster
        x1, y1 = min(x + w, ann.samples), min(y + h, ann.lines)
        if x >= x1 or y >= y1:
            raise GraphError(f"node {n.id!r} (Read): pixelRegion {region} lies outside product {safe.name} ({ann.samples} x {ann.lines})")
        window = Window(x, y, x1 - x, y1 - y)
    names = n.value("sourceBands")
    if names:
        chosen = []
        for name in names:
            pre, _, pol = name.partition("_")
            if pre not in (_AMPLITUDE, _INTENSITY) or pol.upper() not in pols:
                raise GraphError(
                    f"node {n.id!r} (Read): band {name!r} is not in product {safe.name} "
                    f"(Amplitude_/Intensity_ + {', '.join(pols)})"
                )
            if pol.upper() not in chosen:
                chosen.append(pol.upper())
        pols = chosen
    bands = {f"{_AMPLITUDE}_{p}": _Band(p) for p in pols}
    return _Product(safe, window, bands)


def _op_border(ctx: _Context, out: _Product) -> _Product:
    n = ctx.node
    pols = _pols_param(n, out)
    for b in out.bands.values():
        if b.pol not in pols:
            continue
        _require(n, b, radar=True, thermal=False, calibration=False, speckle=False)
        b.border = (int(n.value("borderLimit")), float(n.value("trimThreshold")))
    return out


def _op_thermal(ctx: _Context, out: _Product) -> _Product:
    n = ctx.node
    pols = _pols_param(n, out)
    for b in out.bands.values():
        if b.pol in pols:
            _require(n, b, radar=True, thermal=False, calibration=False, speckle=False)
            b.thermal = True
    out.rename()
    return out


def _op_calibration(ctx: _Context, out: _Product) -> _Product:
    n = ctx.node
    kinds = [k for k, p in (("sigma0", "outputSigmaBand"), ("gamma0", "outputGammaBand"), ("beta0", "outputBetaBand")) if n.value(p)]
    if len(kinds) != 1:
        raise GraphError(
            f"node {n.id!r} (Calibration): the native engine writes exactly one of sigma0/gamma0/beta0 "
            f"(outputSigmaBand/outputGammaBand/outputBetaBand), this node asks for {len(kinds)}"
        )
    chosen = _select_bands(n, out)
    pols = set(_pols_param(n, out))
    new: dict[str, _Band] = {}
    for b in out.bands.values():
        if b in chosen and b.pol in pols:
            _require(n, b, radar=True, calibration=False, speckle=False)
            b.calibration = kinds[0]
            new[b.name()] = b
    if not new:
        raise GraphError(f"node {n.id!r} (Calibration): no band selected")
    out.bands = new  # SNAP's Calibration outputs only the calibrated bands
    return out


def _op_speckle(ctx: _Context, out: _Product) -> _Product:
    from bigearthnet_s1 import speckle

    n = ctx.node
    name = n.value("filter")
    if name == "None":
        return out
    params = {
        k: n.value(k)
        for k in ("filterSizeX", "filterSizeY", "estimateENL", "enl", "numLooksStr", "windowSize",
                  "targetWindowSizeStr", "sigmaStr")
    }
    try:
        fname, fparams = speckle.normalise_parameters(name, **params)
    except BigEarthNetS1Error as exc:
        raise GraphError(f"node {n.id!r} (Speckle-Filter): parameter filter={name!r}: {exc}") from None
    chosen = _select_bands(n, out)
    for b in chosen:
        _require(n, b, radar=True, speckle=False)
        b.speckle = (fname, params)
    out.bands = {b.name(): b for b in chosen}  # SNAP keeps only the filtered bands
    return out


def _op_terrain(ctx: _Context, out: _Product) -> _Product:
    from bigearthnet_s1.geocoding import terrain_correct

    n = ctx.node
    chosen = _select_bands(n, out)
    for b in chosen:
        _require(n, b, radar=True)
    crs = _map_crs(n)
    spacing = float(n.value("pixelSpacingInMeter"))
    if not spacing > 0:
        raise GraphError(f"node {n.id!r} (Terrain-Correction): pixelSpacingInMeter must be > 0 for the native engine (got {spacing})")
    grid = ctx.target_grid
    if grid is None:
        grid = _snap_like_grid(n, out, crs, spacing)
    else:
        _check_grid(n, grid, crs, spacing)
    dem = _native_dem(n, ctx)
    resampling = _RESAMPLING[n.value("imgResamplingMethod")]
    convention = ctx.graph.extension(n.id, "geometryConvention")
    ann = out.safe.annotation(chosen[0].pol)
    linear = np.stack([_materialise(out, b) for b in chosen])
    data = terrain_correct(
        linear, out.window, ann, dem, crs=grid.crs, transform=grid.transform, shape=grid.shape, resampling=resampling,
        convention=convention,
    )
    for i, b in enumerate(chosen):
        b.data = np.asarray(data[i], dtype=np.float32)
    out.bands = {b.name(): b for b in chosen}
    out.grid = grid
    return out


def _op_db(ctx: _Context, out: _Product) -> _Product:
    from bigearthnet_s1.radiometry import to_db

    n = ctx.node
    chosen = _select_bands(n, out)
    for b in chosen:
        if b.db:
            raise GraphError(f"node {n.id!r} (LinearToFromdB): band {b.name()} is already dB; the native engine converts linear to dB only")
        lin = b.data if out.grid is not None else _materialise(out, b)
        assert lin is not None, f"band {b.name()} has no pixels after terrain correction"
        b.data = to_db(lin)
        b.db = True
    out.bands = {b.name(): b for b in chosen}
    return out


def _op_write(ctx: _Context, src: _Product) -> Path:
    n = ctx.node
    file = n.value("file")
    if not file:
        raise GraphError(f"node {n.id!r} (Write): parameter file is empty")
    if src.grid is None:
        raise GraphError(f"node {n.id!r} (Write): the native engine writes map-projected products only (no Terrain-Correction before it)")
    path = Path(file)
    if path.suffix.lower() not in (".tif", ".tiff"):
        path = path.with_name(path.name + ".tif")  # as SNAP's GeoTIFF writer does
    names = list(src.bands)
    arrays = [a for k in names if (a := src.bands[k].data) is not None]
    assert len(arrays) == len(names), "every band of a map-projected product has pixels"
    return write_geotiff(
        path, np.stack(arrays), src.grid, descriptions=names,
        tags={"SCENE_ID": src.safe.name, "START_TIME": format_iso(src.safe.start_time, timespec="microseconds"), "GRAPH": ctx.graph.id,
              "ENGINE": "native", "CHAIN": " -> ".join(src.history)},
    )


#: Operators after Read: each gets a copy of its source product and returns the result
#: (``execute`` records the operator in the result's history).
_OPERATORS: dict[str, Callable[[_Context, _Product], _Product]] = {
    "Remove-GRD-Border-Noise": _op_border,
    "ThermalNoiseRemoval": _op_thermal,
    "Calibration": _op_calibration,
    "Speckle-Filter": _op_speckle,
    "Terrain-Correction": _op_terrain,
    "LinearToFromdB": _op_db,
}


def _require(node: G.Node, b: _Band, *, radar: bool | None = None, thermal: bool | None = None,
             calibration: bool | None = None, speckle: bool | None = None) -> None:
    """The order of radiometric steps the native engine implements: border noise on DN,
    then thermal noise and/or calibration, then the speckle filter, then terrain correction."""
    state = {
        "thermal": (thermal, b.thermal, "thermal noise removal"),
        "calibration": (calibration, b.calibration is not None, "calibration"),
        "speckle": (speckle, b.speckle is not None, "speckle filtering"),
    }
    if radar and b.data is not None:
        raise GraphError(
            f"node {node.id!r} ({node.operator}): band {b.name()} is already map-projected or converted; "
            "the native engine runs radiometric steps and filters in radar geometry only"
        )
    for want, have, what in state.values():
        if want is False and have:
            raise GraphError(
                f"node {node.id!r} ({node.operator}): band {b.name()} has already had {what}; the native engine "
                "implements the order border noise -> thermal noise -> calibration -> speckle filter -> terrain correction"
            )


def _materialise(product: _Product, b: _Band) -> NDArray[np.float32]:
    """Linear image (float32, NaN no-data) of band ``b`` over ``product.window`` from the
    recorded steps: one ``radiometry.radar_chain`` call with the graph's parameters (border
    mask -> thermal noise -> calibration via ``calibrate``, then ``speckle.speckle_filter``).
    Like ``radar_chain`` everywhere, the speckle filter reads its few pixels of context
    beyond the window from the image; SNAP's Read subset has none there. Only the outermost
    ``filter_halo`` pixels of the radar window differ, and ``preprocess`` keeps a margin of
    radar pixels around what the tile grid needs, so the map output does not."""
    from bigearthnet_s1 import radiometry

    kwargs: dict[str, Any] = dict(
        border=b.border is not None,
        thermal=b.thermal,
        calibration=b.calibration,
        speckle=b.speckle[0] if b.speckle else None,
        speckle_params=dict(b.speckle[1]) if b.speckle else None,
    )
    if b.border is not None:
        kwargs["border_params"] = radiometry.BorderParameters(border_limit=b.border[0], trim_threshold=b.border[1])
    out = radiometry.radar_chain(product.safe, b.pol, product.window, **kwargs)
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------
# Terrain-Correction helpers
# --------------------------------------------------------------------------------------
def _map_crs(n: G.Node) -> CRS:
    text = n.value("mapProjection") or ""
    try:
        pc = pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        raise GraphError(
            f"node {n.id!r} (Terrain-Correction): mapProjection {text!r} is not a CRS the native engine "
            "understands (give EPSG:<code> or WKT; SNAP's AUTO:42001 is resolved by render(), not here)"
        ) from None
    if not pc.is_projected:
        raise GraphError(
            f"node {n.id!r} (Terrain-Correction): mapProjection {text!r} is not projected; "
            "the native engine writes metre grids only"
        )
    return CRS.from_wkt(pc.to_wkt())


def _check_grid(n: G.Node, grid: MapGrid, crs: CRS, spacing: float) -> None:
    """A caller's target grid must be one SNAP's parameters could produce."""
    if pyproj.CRS.from_user_input(grid.crs.to_wkt()) != pyproj.CRS.from_user_input(crs.to_wkt()):
        raise GraphError(f"node {n.id!r} (Terrain-Correction): target grid CRS {grid.crs} differs from mapProjection {crs}")
    t = grid.transform
    if not (math.isclose(t.a, spacing) and math.isclose(-t.e, spacing) and t.b == 0 and t.d == 0):
        raise GraphError(
            f"node {n.id!r} (Terrain-Correction): target grid pixel {t.a} x {-t.e} m "
            f"differs from pixelSpacingInMeter {spacing}"
        )
    if n.value("alignToStandardGrid"):
        ox = float(n.value("standardGridOriginX")) - spacing / 2  # SNAP: origin is a pixel centre
        oy = float(n.value("standardGridOriginY")) + spacing / 2
        for v, o, axis in ((t.c, ox, "x"), (t.f, oy, "y")):
            k = (v - o) / spacing
            if abs(k - round(k)) > 1e-6:
                raise GraphError(
                    f"node {n.id!r} (Terrain-Correction): target grid corner {axis}={v} is not on the standard grid "
                    f"(pixel centres at standardGridOrigin{axis.upper()} + k * {spacing})"
                )


def _snap_like_grid(n: G.Node, product: _Product, crs: CRS, spacing: float) -> MapGrid:
    """The grid SNAP's CRSGeoCodingHandler builds: bounding box of the source's corner
    lon/lat in the map CRS; with alignToStandardGrid the upper-left pixel CENTRE snapped to
    origin + k * spacing (floor in x, ceil in y), sizes rounded up."""
    safe, win = product.safe, product.window
    pol = next(iter(product.bands.values())).pol
    lon, lat = _window_lonlat(safe.annotation(pol), win)
    tr = pyproj.Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True)
    x, y = tr.transform(lon, lat)
    xmin, xmax, ymin, ymax = float(np.min(x)), float(np.max(x)), float(np.min(y)), float(np.max(y))
    if n.value("alignToStandardGrid"):
        ox, oy = float(n.value("standardGridOriginX")), float(n.value("standardGridOriginY"))
        e = math.floor((xmin - ox) / spacing) * spacing + ox
        no = math.ceil((ymax - oy) / spacing) * spacing + oy
        w = math.ceil((xmax - e) / spacing)
        h = math.ceil((no - ymin) / spacing)
    else:
        e, no = xmin, ymax
        w, h = math.floor((xmax - xmin) / spacing), math.floor((ymax - ymin) / spacing)
    # (e, no) is the centre of the upper-left pixel (SNAP reference pixel 0.5, 0.5)
    transform = Affine(spacing, 0.0, e - spacing / 2, 0.0, -spacing, no + spacing / 2)
    return MapGrid(crs, transform, (int(h), int(w)))


def _window_lonlat(ann: Any, win: Window) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """lon/lat along the border of a radar window, bilinear in the annotation's
    geolocation grid (as SNAP's tie-point geocoding)."""
    from scipy.interpolate import RegularGridInterpolator

    gg = ann.gcps
    lines = np.unique(np.asarray(gg.line, dtype=float))
    pixels = np.unique(np.asarray(gg.pixel, dtype=float))
    lat = gg.grid("latitude").astype(float)
    lon = gg.grid("longitude").astype(float)
    r0, c0 = float(win.row_off), float(win.col_off)
    r1, c1 = r0 + win.height - 1, c0 + win.width - 1
    t = np.linspace(0.0, 1.0, 33)
    rr = np.concatenate([np.full_like(t, r0), r0 + t * (r1 - r0), np.full_like(t, r1), r0 + t * (r1 - r0)])
    cc = np.concatenate([c0 + t * (c1 - c0), np.full_like(t, c1), c0 + t * (c1 - c0), np.full_like(t, c0)])
    pts = np.column_stack([rr, cc])
    kw = {"bounds_error": False, "fill_value": None}
    return (RegularGridInterpolator((lines, pixels), lon, **kw)(pts),
            RegularGridInterpolator((lines, pixels), lat, **kw)(pts))


def _native_dem(n: G.Node, ctx: _Context) -> Any:
    """The DEM a Terrain-Correction node names, opened with ``dem.open_dem``."""
    from bigearthnet_s1.dem import open_dem

    name = n.value("demName")
    if name == G.SRTM_1SEC:
        return open_dem("srtm1", ctx.dem_cache)
    if name == G.COPERNICUS_30M:
        return open_dem("glo30", ctx.dem_cache)
    if name != G.EXTERNAL_DEM:
        raise GraphError(
            f"node {n.id!r} (Terrain-Correction): parameter demName={name!r} is not implemented by the native "
            f"engine (implemented: {G.SRTM_1SEC}, {G.COPERNICUS_30M}, {G.EXTERNAL_DEM} with externalDEMFile)"
        )
    file = n.value("externalDEMFile")
    if not file:
        raise GraphError(f"node {n.id!r} (Terrain-Correction): demName is External DEM but externalDEMFile is empty")
    nodata = float(n.value("externalDEMNoDataValue"))
    try:
        with rasterio.open(file) as ds:
            tag = ds.nodata
    except rasterio.errors.RasterioError as exc:
        raise GraphError(f"node {n.id!r} (Terrain-Correction): externalDEMFile {file}: {exc}") from None
    # dem.RasterDem masks the file's own no-data tag; SNAP masks externalDEMNoDataValue.
    # They agree when the two are equal (a file without a tag: only with -32768, which such
    # a file is taken not to contain).
    if (tag is None and nodata != -32768.0) or (tag is not None and not (tag == nodata or (math.isnan(tag) and math.isnan(nodata)))):
        raise GraphError(
            f"node {n.id!r} (Terrain-Correction): parameter externalDEMNoDataValue={nodata:g} differs from "
            f"{file}'s no-data tag ({tag}); the native engine masks the file's tag, so they must agree"
        )
    vertical = "egm96" if n.value("externalDEMApplyEGM") else "ellipsoid"
    return open_dem(file, vertical=vertical)


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def write_geotiff(
    path: str | os.PathLike[str],
    data: NDArray[np.floating],
    grid: MapGrid,
    *,
    descriptions: Sequence[str],
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write (bands, rows, cols) float32, NaN no-data, tiled + deflate, atomically
    (temporary name in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[1:] != tuple(grid.shape) or len(descriptions) != arr.shape[0]:
        raise InputError(f"{path}: {arr.shape} array does not fit grid {grid.shape} / {len(descriptions)} band names")
    profile = dict(
        driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype="float32",
        crs=grid.crs, transform=grid.transform, nodata=float("nan"), compress="deflate", predictor=3,
        tiled=arr.shape[2] >= 256 and arr.shape[1] >= 256, BIGTIFF="IF_SAFER",
    )
    if profile["tiled"]:
        profile.update(blockxsize=256, blockysize=256)
    with atomic_path(path, suffix=".partial.tif") as tmp, rasterio.open(tmp, "w", **profile) as ds:
        ds.write(arr)
        for i, d in enumerate(descriptions, start=1):
            ds.set_band_description(i, d)
        if tags:
            ds.update_tags(**{k: str(v) for k, v in tags.items()})
    return path
