"""Scene planning: the target area and its truth grid, the pass, the orbit and radar frame of
the product, and everything else decided before a file is written (mission, orbit numbers,
datatake, IPF, name, and the parameters a finished product is recognised by)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import DemError, GeometryError, SimulationError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, geodetic_to_ecef
from bigearthnet_s1.simulate.ellipsoid import _plane_ellipsoid_points, _range_at_incidence, _zero_doppler_basis
from bigearthnet_s1.simulate.frame import HeightFn, _forward_geocode, _Frame, _make_frame
from bigearthnet_s1.simulate.kepler import _incidence_at, _Kepler, _orbit_from_kepler, _place_orbit
from bigearthnet_s1.simulate.mission import (
    FAR_INCIDENCE_DEG,
    FULL_DURATION,
    MEAN_MOTION,
    NEAR_INCIDENCE_DEG,
    PIXEL_SPACING,
    SUBSWATH_INCIDENCE_DEG,
    _choose_mission,
    _datatake_id,
    _normalise_ipf,
    orbit_numbers,
    product_name,
)
from bigearthnet_s1.simulate.terrain import _DemSampler
from bigearthnet_s1.simulate.timeline import _iso, _plus, _round_us, _seconds, _to_datetime64

if TYPE_CHECKING:  # pragma: no cover
    from bigearthnet_s1.tiles import TileAcquisition


@dataclass
class _Target:
    """What the product must show: an area in a UTM CRS and the truth grid over it."""

    epsg: int
    area: Any  # shapely Polygon in the CRS (what must be covered)
    anchor: tuple[float, float]  # (ulx, uly) the parcel grid hangs from (the S2 tile corner)
    truth_origin: tuple[float, float]  # (x0, y0) upper-left corner of the truth grid
    truth_shape: tuple[int, int]  # (rows, cols) at 10 m
    tile_id: str | None = None
    tile_key: str | None = None

    def to_wgs84(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lon, lat = _transformer(self.epsg, True).transform(x, y)
        return np.asarray(lon, np.float64), np.asarray(lat, np.float64)

    def from_wgs84(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x, y = _transformer(self.epsg, False).transform(lon, lat)
        return np.asarray(x, np.float64), np.asarray(y, np.float64)

_TRANSFORMERS: dict[tuple[int, bool], Any] = {}


def _transformer(epsg: int, inverse: bool) -> Any:
    from pyproj import Transformer

    key = (epsg, inverse)
    if key not in _TRANSFORMERS:
        _TRANSFORMERS[key] = (
            Transformer.from_crs(epsg, 4326, always_xy=True) if inverse else Transformer.from_crs(4326, epsg, always_xy=True)
        )
    return _TRANSFORMERS[key]


def _snap_window(
    bounds: tuple[float, float, float, float], anchor: tuple[float, float], res: float = 10.0
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Grid corner and shape of the smallest ``res`` grid aligned on ``anchor`` covering bounds."""
    left, bottom, right, top = bounds
    ax, ay = anchor
    c0 = math.floor((left - ax) / res)
    c1 = math.ceil((right - ax) / res)
    r0 = math.floor((ay - top) / res)
    r1 = math.ceil((ay - bottom) / res)
    return (ax + c0 * res, ay - r0 * res), (r1 - r0, c1 - c0)


def _make_target(
    tile: TileAcquisition | None, bounds_wgs84: Sequence[float] | None, size: str, margin: float
) -> _Target:
    import shapely
    from shapely.geometry import box

    if tile is None and bounds_wgs84 is None:
        raise SimulationError("simulate: give a tile or bounds_wgs84 (lon_min, lat_min, lon_max, lat_max)")
    if bounds_wgs84 is not None:
        if len(bounds_wgs84) != 4:
            raise SimulationError(f"simulate: bounds_wgs84 needs 4 numbers, got {bounds_wgs84!r}")
        lon0, lat0, lon1, lat1 = (float(v) for v in bounds_wgs84)
        if not (-180 <= lon0 < lon1 <= 180 and -85 <= lat0 < lat1 <= 85):
            raise SimulationError(f"simulate: bad bounds_wgs84 {bounds_wgs84!r}")
    if tile is not None:
        epsg = int(tile.epsg)
        anchor = (float(tile.grid.ulx), float(tile.grid.uly))
    else:
        lon_c, lat_c = 0.5 * (lon0 + lon1), 0.5 * (lat0 + lat1)
        zone = int((lon_c + 180.0) // 6.0) + 1
        epsg = (32600 if lat_c >= 0 else 32700) + zone
        anchor = (0.0, 0.0)
    tgt = _Target(epsg, None, anchor, (0.0, 0.0), (0, 0))
    if bounds_wgs84 is not None:
        xs = np.concatenate([np.linspace(lon0, lon1, 50), np.full(50, lon1), np.linspace(lon1, lon0, 50), np.full(50, lon0)])
        ys = np.concatenate([np.full(50, lat0), np.linspace(lat0, lat1, 50), np.full(50, lat1), np.linspace(lat1, lat0, 50)])
        x, y = tgt.from_wgs84(xs, ys)
        area = shapely.Polygon(np.stack([x, y], axis=1))
    elif tile is not None and len(tile.patches) > 0:
        area = box(*tile.patches_footprint.bounds)
    else:
        assert tile is not None
        area = box(*tile.grid.bounds)
    tgt.area = area
    if tile is not None:
        tgt.tile_id = tile.tile_id
        tgt.tile_key = tile.key
    if size == "full" and tile is not None:
        tgt.truth_origin = anchor
        tgt.truth_shape = (int(tile.grid.height), int(tile.grid.width))
    else:
        west, south, east, north = area.bounds
        extra = margin if size == "small" else 0.0
        tgt.truth_origin, tgt.truth_shape = _snap_window((west - extra, south - extra, east + extra, north + extra), anchor)
    return tgt


def _resolve_pass(pass_direction: str | None, t64: np.datetime64, lon: float) -> bool:
    """True for ascending. "auto"/None: Sentinel-1's dawn-dusk orbit crosses the equator
    northwards at ~18:00 local solar time, so afternoon/evening passes ascend."""
    p = (pass_direction or "auto").strip().lower()
    if p in ("ascending", "asc", "a"):
        return True
    if p in ("descending", "desc", "d"):
        return False
    if p != "auto":
        raise SimulationError(f"simulate: pass must be ascending, descending or auto, got {pass_direction!r}")
    hours = _seconds(t64, t64.astype("datetime64[D]").astype("datetime64[ns]")) / 3600.0
    solar = (hours + lon / 15.0) % 24.0
    return solar >= 12.0


@dataclass
class _Plan:
    frame: _Frame
    kepler: _Kepler
    t_c: np.datetime64  # zero-Doppler time of the target centre
    ascending: bool
    incidence_c: float
    h_ref: float
    subswath_incidence: tuple[float, float]  # IW1|IW2, IW2|IW3 boundaries (deg)
    swath_position: float  # of the target centre, as used (the requested one unless it had no orbit)


def _plan_scene(
    target: _Target, t_start: np.datetime64, size: str, ascending: bool, heights: HeightFn | None,
    h_ref: float, swath_position: float, azimuth_position: float,
) -> _Plan:
    """Orbit and radar frame of the product (first line exactly at ``t_start``). The target
    centre is seen at ``swath_position`` across the swath, or at the nearest position an orbit
    of the pass allows (see :func:`_place_orbit`; ``_Plan.swath_position`` says which)."""
    cx, cy = target.area.centroid.x, target.area.centroid.y
    lon_c, lat_c = (float(v[0]) for v in target.to_wgs84(np.array([cx]), np.array([cy])))
    h_c = float(heights(np.array([lon_c]), np.array([lat_c]))[0]) if heights is not None else 0.0
    what = (f"tile {target.tile_key or target.tile_id}" if target.tile_id else "area") + f" at {_iso(t_start)}Z"
    kep, swath_position = _place_orbit(lon_c, lat_c, h_c, swath_position, ascending, what)
    inc_c = _incidence_at(swath_position)

    # provisional orbit: target crossing 100 s after t_start (only relative timing matters)
    t_prov = _plus(t_start, 100.0)
    orb = _orbit_from_kepler(kep, t_prov, _plus(t_prov, -150.0), _plus(t_prov, 150.0))
    s_c = float(orb.seconds(t_prov))
    p, v, _ = orb.interpolate(np.array([s_c - 0.5, s_c, s_c + 0.5]))
    (r_n, r_f), (_, width_full) = _range_at_incidence(p[1], v[1], [NEAR_INCIDENCE_DEG, FAR_INCIDENCE_DEG], h_ref)
    bounds_inc = SUBSWATH_INCIDENCE_DEG
    # azimuth time interval: 10 m along the ground track at mid swath
    r_mid = 0.5 * (r_n + r_f)
    ground = []
    for k in (0, 2):
        down, right = _zero_doppler_basis(p[k], v[k])
        th = np.radians(np.linspace(10.0, 55.0, 9001))
        rng, pts = _plane_ellipsoid_points(p[k], down, right, th, h_ref)
        ground.append(np.array([np.interp(r_mid, rng, pts[:, i]) for i in range(3)]))
    dt = PIXEL_SPACING / float(np.linalg.norm(ground[1] - ground[0]))

    if size == "full":  # exactly 25 s from the first to the last line, as real slices
        lines = int(round(FULL_DURATION / dt)) + 1
        dt = FULL_DURATION / (lines - 1)
        tau0 = -azimuth_position * (lines - 1) * dt
        r_near = float(r_n)
        width = float(width_full)
    else:
        # the area (+ margin) in radar coordinates, from its densified outline
        outline = target.area.exterior.segmentize(100.0)
        xy = np.asarray(outline.coords)
        lon, lat = target.to_wgs84(xy[:, 0], xy[:, 1])
        hh = heights(lon, lat) if heights is not None else np.zeros_like(lon)
        s, rng = orb.zero_doppler(geodetic_to_ecef(lon, lat, hh), t_guess=s_c)
        if not np.all(np.isfinite(s)):
            raise GeometryError("simulate: the target area is too long for one product")
        pad = 16
        lines = int(math.ceil((s.max() - s.min()) / dt)) + 2 * pad + 1
        tau0 = float(s.min() - s_c) - pad * dt
        r_near = float(rng.min()) - pad * PIXEL_SPACING * 0.5
        width = float((rng.max() - r_near) / math.sin(math.radians(max(inc_c - 12.0, 15.0))) + 4000.0)
    # final orbit: line 0 at t_start exactly; the geometry relative to the target is unchanged
    duration = (lines - 1) * dt
    span = _round_us(_plus(t_start, duration))
    dt = _seconds(span, t_start) / (lines - 1)
    t_c = _plus(t_start, -tau0)
    orbit = _orbit_from_kepler(kep, t_c, t_start, span)
    # the IPF's bulk bistatic correction: the delay of the middle of IW2 (ETAD ATBD)
    p_c, v_c, _ = orbit.interpolate(np.array([float(orbit.seconds(t_c))]))
    r_iw2, _ = _range_at_incidence(p_c[0], v_c[0], list(bounds_inc), h_ref)
    tau_ref = round(float(np.mean(r_iw2)) * 2.0 / SPEED_OF_LIGHT, 12)
    frame = replace(_make_frame(orbit, t_start, dt, lines, r_near, width, h_ref, heights), tau_ref=tau_ref)
    if size != "full":
        s, rng = orbit.zero_doppler(geodetic_to_ecef(lon, lat, hh), t_guess=float(orbit.seconds(t_c)))
        px = frame.pixel_of(frame.image_line(s, rng), rng)
        frame.samples = int(math.ceil(px.max())) + 16 + 1
        if frame.samples * PIXEL_SPACING > width:
            raise GeometryError("simulate: internal error, small frame narrower than the target")
    return _Plan(frame, kep, t_c, ascending, inc_c, h_ref, bounds_inc, swath_position)


@dataclass(frozen=True, kw_only=True)
class _Request:
    """The arguments of :func:`~bigearthnet_s1.simulate.simulate_product` that decide the
    product (see there; ``describe_product`` has seed 0)."""

    tile: TileAcquisition | None
    bounds_wgs84: Sequence[float] | None
    time: datetime | str
    size: str
    pass_direction: str | None
    dem: str | os.PathLike[str] | None
    seed: int
    mission: str | None
    ipf_version: str | float | None
    swath_position: float
    azimuth_position: float
    margin_m: float


@dataclass
class _Prepared:
    """Everything decided before a file is written."""

    request: _Request
    target: _Target
    plan: _Plan
    heights: _DemSampler | None
    ascending: bool
    mission: str
    numbers: dict[str, int]  # absolute, relative, cycle
    datatake: int
    anx: np.datetime64
    ipf: str
    ipf_value: float
    params: dict[str, Any]  # what a finished product is recognised by (its truth JSON's "parameters")
    prefix: str  # the product name without its CRC suffix
    t_start: np.datetime64
    dem_path: Path | None


def _prepare(req: _Request) -> _Prepared:
    """Everything decided before writing: target, orbit and frame, mission, numbers, name."""
    size, swath_position, azimuth_position, margin_m = req.size, req.swath_position, req.azimuth_position, req.margin_m
    if size not in ("small", "full"):
        raise SimulationError(f"simulate: size must be 'small' or 'full', got {size!r}")
    if not (0.0 <= swath_position <= 1.0 and 0.0 <= azimuth_position <= 1.0):
        raise SimulationError("simulate: swath_position and azimuth_position must be within 0..1")
    if margin_m < 0:
        raise SimulationError(f"simulate: margin_m must be >= 0, got {margin_m}")
    dem_path = Path(req.dem) if req.dem is not None else None
    if dem_path is not None and not dem_path.is_file():
        raise DemError(f"DEM {dem_path}: no such file")
    t_start = _round_us(_to_datetime64(req.time))
    target = _make_target(req.tile, req.bounds_wgs84, size, margin_m)
    lon_c, lat_c = (float(v[0]) for v in target.to_wgs84(np.array([target.area.centroid.x]), np.array([target.area.centroid.y])))
    ascending = _resolve_pass(req.pass_direction, t_start, lon_c)
    if size == "small":
        from shapely.geometry import box

        plan_target = _Target(target.epsg, box(*target.area.buffer(margin_m, join_style="mitre").bounds), target.anchor,
                              target.truth_origin, target.truth_shape, target.tile_id, target.tile_key)
    else:
        plan_target = target

    # plan on the ellipsoid, then (with a DEM) again with the heights of the scene
    plan = _plan_scene(plan_target, t_start, size, ascending, None, 0.0, swath_position, azimuth_position)
    heights: _DemSampler | None = None
    if dem_path is not None:
        corners = _forward_geocode(plan.frame, np.array([0.0, 0.0, plan.frame.lines - 1.0, plan.frame.lines - 1.0]),
                                   np.array([0.0, plan.frame.samples - 1.0, 0.0, plan.frame.samples - 1.0]))
        heights = _DemSampler(dem_path, (corners["lon"].min() - 0.05, corners["lat"].min() - 0.05,
                                         corners["lon"].max() + 0.05, corners["lat"].max() + 0.05))
        west, south, east, north = target.area.bounds
        gx, gy = np.meshgrid(np.linspace(west, east, 40), np.linspace(south, north, 40))
        h_ref = float(np.mean(heights(*target.to_wgs84(gx.ravel(), gy.ravel()))))
        plan = _plan_scene(plan_target, t_start, size, ascending, heights, h_ref, plan.swath_position,
                           azimuth_position)
    frame = plan.frame
    anx = _round_us(_plus(plan.t_c, -plan.kepler.u_c / MEAN_MOTION))
    mission_id = _choose_mission(req.mission, t_start, anx)
    numbers = orbit_numbers(mission_id, anx)
    datatake = _datatake_id(mission_id, numbers["absolute"])
    ipf_text, ipf_value = _normalise_ipf(req.ipf_version, t_start)
    params = _parameters(req, target, t_start, ascending, mission_id, ipf_text, dem_path)
    stop = frame.last_time
    prefix = product_name(mission_id, t_start, stop, numbers["absolute"], datatake, None)
    return _Prepared(req, target, plan, heights, ascending, mission_id, numbers, datatake, anx, ipf_text, ipf_value,
                     params, prefix, t_start, dem_path)


def _parameters(
    req: _Request, target: _Target, t_start: np.datetime64, ascending: bool, mission: str, ipf: str, dem: Path | None,
) -> dict[str, Any]:
    """What a finished product is recognised by (kept in its truth JSON): the request as
    resolved (time, pass, mission, IPF), the DEM file's identity, the target area."""
    dem_id = None
    if dem is not None:
        st = dem.stat()
        dem_id = {"path": str(dem.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}
    return {
        "simulator": 1, "time": _iso(t_start), "size": req.size, "pass": "ASCENDING" if ascending else "DESCENDING",
        "mission": mission, "ipf": ipf, "seed": int(req.seed), "dem": dem_id, "swath_position": req.swath_position,
        "azimuth_position": req.azimuth_position, "margin_m": req.margin_m, "epsg": target.epsg,
        "area_bounds": [round(v, 3) for v in target.area.bounds], "anchor": list(target.anchor),
    }
