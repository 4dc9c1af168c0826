"""Preprocessing: one Sentinel-1 GRD product + one S2 tile acquisition -> the contract GeoTIFF.

:func:`preprocess` picks the graph (the no-calibration fallback for flagged products or on
request), renders it for the tile (UTM CRS, grid origin, DEM, radar window), runs it with
the ``native`` engine (:func:`bigearthnet_s1.engine.execute`) or SNAP's ``gpt``
(:mod:`bigearthnet_s1.gpt`), adds the layover/shadow flags, and writes the GeoTIFF: one
float32 band per polarisation (descriptions "VV", "VH"), backscatter in dB, NaN no-data, on
a window of the tile's 10 m grid aligned to its 1200 m patch lattice (grid transform = pixel
CORNERS), a last band LAYOVER_SHADOW, tags SCENE_ID and START_TIME (UTC).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
import pyproj
import rasterio
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.windows import Window

from bigearthnet_s1 import graph as G
from bigearthnet_s1._time import format_iso
from bigearthnet_s1.atomic import atomic_path, sweep, temporary_dir
from bigearthnet_s1.engine import ENGINES, execute, write_geotiff
from bigearthnet_s1.errors import GeometryError, GraphError, InputError
from bigearthnet_s1.grid import PATCH_PX, MapGrid

log = logging.getLogger(__name__)

__all__ = [
    "TERRAIN_HEIGHT_RANGE",
    "PreprocessOptions",
    "calibration_flag",
    "flat_dem_bounds",
    "preprocess",
    "target_window",
    "write_flat_dem",
]


def calibration_flag(safe: Any, polarisations: Sequence[str], flagged: Collection[str] = ()) -> str | None:
    """Why a product needs the no-calibration fallback graph, or None.

    Flagged when its name is in ``flagged`` (a list kept by the operator, as the recipe's
    "defected" products were), or when its own calibration LUT is unusable (a sigma0 LUT
    value that is not finite and > 0 would make Calibration divide by zero or NaN).
    """
    if safe.name in set(flagged):
        return f"product {safe.name} is on the calibration-flagged list"
    for pol in polarisations:
        lut = safe.calibration(pol)
        vals = np.asarray(lut.values("sigma0"), dtype=float)
        bad = ~(np.isfinite(vals) & (vals > 0))
        if bad.any():
            return f"product {safe.name} {pol}: {int(bad.sum())} sigma0 calibration LUT value(s) not finite and > 0"
    return None


def target_window(tile: Any, footprint_wgs84: shapely.Geometry) -> Window | None:
    """Window of the tile grid to produce: the tile's patches (or the whole tile when it
    lists none) intersected with the product footprint, grown to whole 120 px patch cells
    and clipped to the tile; None when they do not meet."""
    grid = tile.grid
    area = tile.patches_footprint if tile.patches else tile.footprint
    tr = pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{grid.epsg}", always_xy=True)
    fp = shapely.transform(shapely.segmentize(footprint_wgs84, 0.01), lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    inter = shapely.intersection(area, fp)
    if inter.is_empty or inter.area <= 0:
        return None
    left, bottom, right, top = inter.bounds
    res = grid.resolution
    c0 = math.floor((left - grid.ulx) / res / PATCH_PX) * PATCH_PX
    r0 = math.floor((grid.uly - top) / res / PATCH_PX) * PATCH_PX
    c1 = math.ceil((right - grid.ulx) / res / PATCH_PX) * PATCH_PX
    r1 = math.ceil((grid.uly - bottom) / res / PATCH_PX) * PATCH_PX
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, grid.width), min(r1, grid.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def write_flat_dem(path: str | os.PathLike[str], bounds_wgs84: tuple[float, float, float, float], *,
                   step_deg: float = 0.01) -> Path:
    """A zero-height DEM (int16, heights above the WGS84 ELLIPSOID, no-data -32768) covering
    ``bounds_wgs84`` (lon_min, lat_min, lon_max, lat_max) grown by two posts: the "flat" DEM as
    a file both engines can read (SNAP: External DEM, externalDEMApplyEGM=false)."""
    lon0, lat0, lon1, lat1 = bounds_wgs84
    lon0, lat0 = lon0 - 2 * step_deg, max(lat0 - 2 * step_deg, -90.0)
    lon1, lat1 = lon1 + 2 * step_deg, min(lat1 + 2 * step_deg, 90.0)
    w = max(2, math.ceil((lon1 - lon0) / step_deg))
    h = max(2, math.ceil((lat1 - lat0) / step_deg))
    path = Path(path)
    with atomic_path(path, suffix=".partial.tif") as tmp, rasterio.open(
        tmp, "w", driver="GTiff", width=w, height=h, count=1, dtype="int16", crs="EPSG:4326",
        transform=Affine(step_deg, 0, lon0, 0, -step_deg, lat0 + h * step_deg), nodata=-32768, compress="deflate",
    ) as ds:
        ds.write(np.zeros((1, h, w), dtype=np.int16))
    return path


def flat_dem_bounds(footprint_bounds: tuple[float, float, float, float], grid: MapGrid) -> tuple[float, float, float, float]:
    """WGS84 bounds a flat DEM needs: the product footprint's and the target grid's together.

    The grid is made of whole 1200 m patch cells, which can reach past the footprint by ~1.7 km:
    more than the flat DEM's two-post margin (0.02 deg of longitude is ~1 km at 62 deg N)."""
    gb = grid.bounds_wgs84()
    return (min(footprint_bounds[0], gb[0]), min(footprint_bounds[1], gb[1]),
            max(footprint_bounds[2], gb[2]), max(footprint_bounds[3], gb[3]))


def _dem_choice(dem: str | os.PathLike[str], lat_range: tuple[float, float], bounds_wgs84: tuple[float, float, float, float],
                scratch: Path) -> G.DemChoice:
    """Map a DEM spec ("flat", "auto", "srtm1", "glo30", or a raster path) to the graph's DEM."""
    spec = os.fspath(dem)
    if spec == "flat":
        return G.DemChoice.external(write_flat_dem(scratch / "flat-dem.tif", bounds_wgs84), apply_egm=False, nodata=-32768.0)
    if spec == "auto":
        return G.dem_for_latitudes(*lat_range)
    if spec == "srtm1":
        return G.DemChoice(G.SRTM_1SEC)
    if spec == "glo30":
        return G.DemChoice(G.COPERNICUS_30M)
    p = Path(spec).expanduser()
    if not p.is_file():
        raise InputError(f"DEM {spec!r} is neither flat, auto, srtm1, glo30 nor an existing raster file")
    from bigearthnet_s1.dem import RasterDem

    vertical = RasterDem(p).vertical
    with rasterio.open(p) as ds:
        nodata = ds.nodata
    return G.DemChoice.external(p.absolute(), apply_egm=(vertical == "egm96"),
                                nodata=-32768.0 if nodata is None else float(nodata))


#: Ellipsoidal height range (m) a named DEM (SRTM, GLO-30) may hold anywhere on Earth:
#: Dead Sea shore (-430 m) plus the lowest geoid undulation (-106 m) .. Everest plus geoid.
TERRAIN_HEIGHT_RANGE = (-600.0, 8900.0)


def _radar_window(ann: Any, choice: G.DemChoice, grid: MapGrid, margin: int) -> Window | None:
    """The radar window (grown by ``margin`` px) the target grid needs with DEM ``choice``.

    A DEM file is opened and used as is. A named DEM (SRTM/GLO-30, fetched by the engine
    later) is not read here: the window is the union of the windows for flat terrain at both
    ends of ``TERRAIN_HEIGHT_RANGE``. Terrain at height h moves towards near range by about
    h / tan(incidence) in ground range (1.7 h at 30 deg), so a window for h = 0 plus a fixed
    margin loses the near-range edge of the grid in high mountains.
    """
    from bigearthnet_s1.geocoding import radar_window_for_grid

    kw = dict(crs=grid.crs, transform=grid.transform, shape=grid.shape, margin=margin)
    if choice.file is not None:
        from bigearthnet_s1.dem import open_dem

        return radar_window_for_grid(ann, open_dem(choice.file, vertical="egm96" if choice.apply_egm else "ellipsoid"), **kw)
    wins = [w for h in TERRAIN_HEIGHT_RANGE if (w := radar_window_for_grid(ann, f"flat:{h:g}", **kw)) is not None]
    if not wins:
        return None
    c0 = min(int(w.col_off) for w in wins)
    r0 = min(int(w.row_off) for w in wins)
    c1 = max(int(w.col_off + w.width) for w in wins)
    r1 = max(int(w.row_off + w.height) for w in wins)
    return Window(c0, r0, c1 - c0, r1 - r0)


class PreprocessOptions(TypedDict, total=False):
    """The keyword options of :func:`preprocess` (see there)."""

    engine: str
    graph: str | os.PathLike[str] | None
    dem: str | os.PathLike[str]
    polarisations: Sequence[str]
    flagged: Collection[str]
    margin: int
    gpt_options: Any | None
    dem_cache: str | os.PathLike[str] | None
    geometry: str | None


@dataclass(frozen=True)
class _Settings:
    """:class:`PreprocessOptions` checked, with their defaults."""

    engine: str
    graph: str | None  # None: chosen per product (full, or the fallback when flagged)
    dem: str
    polarisations: tuple[str, ...]
    flagged: frozenset[str]
    margin: int
    gpt_options: Any | None
    dem_cache: str | os.PathLike[str] | None
    geometry: str

    @classmethod
    def of(cls, options: PreprocessOptions) -> _Settings:
        from bigearthnet_s1.geocoding import CONVENTIONS, DEFAULT_CONVENTION

        engine = options.get("engine", "native")
        if engine not in ENGINES:
            raise InputError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
        geometry = options.get("geometry") or ("snap" if engine == "snap" else DEFAULT_CONVENTION)
        if geometry not in CONVENTIONS:
            raise InputError(f"geometry convention {geometry!r}: expected one of {', '.join(CONVENTIONS)}")
        if engine == "snap" and geometry != "snap":
            raise InputError(f"geometry convention {geometry!r}: SNAP's gpt applies its own (snap); use --engine native")
        graph = options.get("graph")
        return cls(
            engine=engine,
            graph=None if graph is None else os.fspath(graph),
            dem=os.fspath(options.get("dem", "flat")),
            polarisations=tuple(p.upper() for p in options.get("polarisations", ("VV", "VH"))),
            flagged=frozenset(options.get("flagged", ())),
            margin=int(options.get("margin", 32)),
            gpt_options=options.get("gpt_options"),
            dem_cache=options.get("dem_cache"),
            geometry=geometry,
        )


def preprocess(
    product_path: str | os.PathLike[str],
    tile: Any,
    out_path: str | os.PathLike[str],
    **options: Unpack[PreprocessOptions],
) -> Path:
    """Preprocess one Sentinel-1 GRD product for one S2 tile acquisition.

    ``engine``: "native" (default) or "snap". ``graph``: None (the full chain, or the
    no-calibration fallback when :func:`calibration_flag` flags the product, e.g. by its name
    in ``flagged``), "full", "nocal" (alias "fallback"), or a graph XML path. ``dem``: "flat"
    (ellipsoid height 0, the default), "auto" (SRTM 1Sec HGT up to 60 N, Copernicus 30 m
    beyond), "srtm1", "glo30", or a DEM raster path; ``dem_cache``: where named DEM tiles are
    kept. ``polarisations``: ("VV", "VH") by default. ``margin``: radar pixels read around
    the window the grid needs (32). ``gpt_options``: ``gpt.GptOptions`` for the snap engine.
    Writes ``out_path`` atomically: float32 GeoTIFF, one band per polarisation (descriptions =
    polarisations), backscatter in dB (sigma0, or uncalibrated intensity with the fallback),
    NaN no-data, on the tile-grid window :func:`target_window`; tags SCENE_ID, START_TIME
    (UTC), GRAPH, ENGINE, DEM, GEOMETRY. A last band LAYOVER_SHADOW holds each pixel's layover
    (bit 1) and shadow (bit 2) flags (``layover.layover_shadow_mask``, from the same DEM and
    geometry; NaN where both data bands are). ``geometry``: the terrain correction's geometry
    convention (``geocoding.CONVENTIONS``; default "esa" with the native engine; SNAP's gpt
    applies its own, "snap", and refuses any other). Raises GeometryError when the product
    does not cover the tile.
    """
    from bigearthnet_s1.safe import open_safe

    settings = _Settings.of(options)
    if settings.engine == "snap":
        from bigearthnet_s1 import gpt as gpt_mod

        gpt_mod.find_gpt()  # fail first, with the install hint, before any work
    out_path = Path(out_path)
    safe = open_safe(product_path)
    with safe:
        pols = settings.polarisations
        missing = [p for p in pols if p not in safe.available_polarisations]
        if missing:
            raise InputError(
                f"product {safe.name}: polarisation(s) {', '.join(missing)} requested but not available "
                f"(measurement, annotation, calibration and noise present for: {', '.join(safe.available_polarisations) or 'none'})"
            )
        template = _template(safe, settings)
        win = target_window(tile, safe.footprint)
        if win is None:
            raise GeometryError(f"product {safe.name} does not cover tile {tile.key} (no overlap with its patches)")
        grid = tile.grid.sub(win)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        sweep(out_path.parent)  # scratch folders of killed runs
        with temporary_dir(out_path.parent / out_path.stem) as scratch:
            fp_bounds = safe.footprint.bounds
            choice = _dem_choice(settings.dem, (fp_bounds[1], fp_bounds[3]), flat_dem_bounds(fp_bounds, grid), scratch)
            ann = safe.annotation(pols[0])
            rwin = _radar_window(ann, choice, grid, settings.margin)
            if rwin is None:
                raise GeometryError(f"product {safe.name} does not reach tile {tile.key} window {win}")
            rendered = _render(safe, tile, choice, template, settings, rwin.round_offsets().round_lengths(),
                               scratch / "snap-output.tif")
            data = _run(rendered, grid, settings, scratch / "snap-output.tif")
            flags = _layover_shadow(ann, choice, grid, settings.geometry, flat=settings.dem == "flat",
                                    dem_cache=settings.dem_cache)
            flags_band = np.where(np.isnan(data).all(axis=0), np.float32(np.nan), flags.astype(np.float32))
            data = np.concatenate([data, flags_band[None]])
            tags = {
                "SCENE_ID": safe.name,
                "START_TIME": format_iso(safe.start_time, timespec="microseconds"),
                "TILE": tile.key,
                "GRAPH": rendered.id,
                "ENGINE": settings.engine,
                "DEM": "flat (ellipsoid height 0)" if settings.dem == "flat" else str(choice.file or choice.name),
                "UNITS": "dB",
                "GEOMETRY": settings.geometry,
                "LAYOVER_SHADOW": "last band: bit 1 layover, bit 2 shadow (0 neither, 3 both), NaN no data",
            }
            write_geotiff(out_path, data, grid, descriptions=[*pols, "LAYOVER_SHADOW"], tags=tags)
    log.info("%s -> %s (%s engine, graph %s, %d x %d px)", safe.name, out_path, settings.engine, rendered.id,
             grid.shape[1], grid.shape[0])
    return out_path


def _template(safe: Any, settings: _Settings) -> str:
    """The graph to run: the one asked for, else the full chain or (flagged) the fallback."""
    if settings.graph is not None:
        return "nocal" if settings.graph == "fallback" else settings.graph
    reason = calibration_flag(safe, settings.polarisations, settings.flagged)
    if reason:
        log.warning("%s: using the no-calibration fallback graph: %s", safe.name, reason)
        return "nocal"
    return "full"


def _render(safe: Any, tile: Any, choice: G.DemChoice, template: str, settings: _Settings, rwin: Window,
            snap_output: Path) -> G.Graph:
    """The graph rendered for the tile's grid, the DEM and the radar window ``rwin`` (whole pixels)."""
    params = G.RenderParams(
        input=Path(safe.path) / "manifest.safe" if Path(safe.path).is_dir() else Path(safe.path),
        output=snap_output, epsg=int(tile.grid.epsg), grid_origin=(tile.grid.ulx, tile.grid.uly),
        dem=choice, polarisations=settings.polarisations, pixel_spacing=float(tile.grid.resolution),
        pixel_region=(int(rwin.col_off), int(rwin.row_off), int(rwin.width), int(rwin.height)),
        geometry_convention=settings.geometry,
    )
    return G.render(template, params)


def _run(rendered: G.Graph, grid: MapGrid, settings: _Settings, snap_output: Path) -> NDArray[np.float32]:
    """(polarisations, rows, cols) dB on ``grid`` from the chosen engine."""
    if settings.engine == "native":
        res = execute(rendered, target_grid=grid, write=False, dem_cache=settings.dem_cache)
        return np.stack([res.bands[nm] for nm in G.band_names(rendered, settings.polarisations)])
    return _run_snap(rendered, grid, settings.polarisations, snap_output, settings.gpt_options)


def _layover_shadow(ann: Any, choice: G.DemChoice, grid: MapGrid, geometry: str, *, flat: bool,
                    dem_cache: str | os.PathLike[str] | None) -> NDArray[np.uint8]:
    """Layover/shadow flags of the output grid from the terrain correction's DEM (none on the
    flat ellipsoid)."""
    from bigearthnet_s1.dem import open_dem
    from bigearthnet_s1.layover import layover_shadow_mask

    if flat:
        return np.zeros(grid.shape, dtype=np.uint8)
    if choice.file is not None:
        dem = open_dem(choice.file, vertical="egm96" if choice.apply_egm else "ellipsoid")
    else:
        dem = open_dem("srtm1" if choice.name == G.SRTM_1SEC else "glo30", dem_cache)
    return layover_shadow_mask(ann, dem, crs=grid.crs, transform=grid.transform, shape=grid.shape, convention=geometry)


def _run_snap(rendered: G.Graph, grid: MapGrid, pols: Sequence[str], tmp_out: Path, gpt_options: Any | None) -> NDArray[np.float32]:
    """Run gpt and cut its output (bands in the graph's sourceBands order, on SNAP's grid
    aligned to the tile grid) to ``grid``; SNAP's no-data 0 (and its -1e-30 underflow) -> NaN."""
    from rasterio.windows import from_bounds

    from bigearthnet_s1 import gpt as gpt_mod

    gpt_mod.run_gpt(rendered, tmp_out, options=gpt_options or gpt_mod.GptOptions())
    left = grid.transform.c
    top = grid.transform.f
    right = left + grid.shape[1] * grid.transform.a
    bottom = top + grid.shape[0] * grid.transform.e
    with rasterio.open(tmp_out) as ds:
        if ds.count < len(pols):
            raise GraphError(f"gpt output {tmp_out} has {ds.count} band(s), expected {len(pols)} ({', '.join(pols)})")
        w = from_bounds(left, bottom, right, top, transform=ds.transform).round_offsets().round_lengths()
        data = ds.read(list(range(1, len(pols) + 1)), window=w, boundless=True, fill_value=0.0, out_dtype="float32")
    data = data[:, : grid.shape[0], : grid.shape[1]]
    data[(data == 0.0) | (data == np.float32(-1e-30))] = np.nan
    return data
