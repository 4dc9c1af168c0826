"""Choose the Sentinel-1 products that cover an S2 tile acquisition.

Rule (recipe step 1, "one Sentinel-1 product per relative orbit, union covers the tile"):

1. Candidates that are not IW GRD, repeat the same acquisition (another processing of it),
   or whose footprint misses the target are dropped.
2. Candidates are grouped by track: (relative orbit, pass direction).
3. Within a track, the products of one pass (same mission, absolute orbit and data-take id)
   whose sensing times follow each other (next start within 5 s of the previous stop) are
   consecutive slices of one data-take: they form one *unit* when a single slice does not
   cover the part of the target that pass sees (to the tolerance); otherwise the best slice
   alone is the unit.
4. Each track keeps one unit: the one closest in time to the S2 sensing time among those
   covering (to the tolerance) as much of the target as the track's best unit.
5. Tracks are added greedily by largest new covered area (areas within the tolerance of each
   other count as equal and the smaller time gap wins) until the union covers
   ``tolerance`` of the target area. If the kept units cannot reach it, other passes of the
   tracks are tried the same way (a second product on a track is then allowed).
6. Products that the others make redundant are removed again (smallest unique part first).

Areas are computed in the tile's UTM CRS (square metres). Footprints (WGS84 lon/lat, edges
straight in lon/lat as the hubs draw them) are clipped to a lon/lat box around the tile,
densified every 0.1 degree (area error below 2e-5 of a tile at 67 N) and reprojected with
pyproj, vectorised through ``shapely.transform``. The target is the union of the tile's patch
squares (``target="patches"``, default) or the whole 109.8 km tile (``target="tile"``). Time
gaps are ``|S1 start - S2 sensing|`` in seconds, the measure the archive's statistics use.

Every candidate gets one :class:`Decision` (name, kept, reason).
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1.catalog import Catalog, ProductRecord, clean_footprint, name_kind
from bigearthnet_s1.errors import InputError, SelectionError

if TYPE_CHECKING:
    from bigearthnet_s1.acquisition import TileAcquisition

__all__ = [
    "Decision",
    "Selection",
    "select_products",
    "search_and_select",
    "select_many",
    "DEFAULT_TOLERANCE",
]

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.999
#: Slices of one data-take are consecutive when the next starts within this of the previous stop (s).
SLICE_GAP_S = 5.0
#: Footprint edges are densified every this many degrees before reprojection.
DENSIFY_DEG = 0.1


class Decision(NamedTuple):
    """Why a candidate product was kept or dropped."""

    name: str
    kept: bool
    reason: str


@dataclass
class Selection:
    """The products chosen for one tile acquisition.

    ``coverage``/``uncovered_fraction``: fractions (0..1) of the target area (tile CRS).
    ``time_gaps``: ``|start - sensing|`` in seconds, one per product. ``added_fraction``: the
    fraction of the target each product adds to those before it (in ``products`` order).
    ``window``: the search window half-width in days when made by :func:`search_and_select`.
    """

    tile_key: str
    products: list[ProductRecord]
    coverage: float
    uncovered_fraction: float
    time_gaps: list[float]
    decisions: list[Decision]
    tolerance: float = DEFAULT_TOLERANCE
    target: str = "patches"
    target_area: float = 0.0
    added_fraction: list[float] = field(default_factory=list)
    window_days: float | None = None
    windows_tried: list[float] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        """Whether the chosen products cover at least ``tolerance`` of the target."""
        return self.coverage >= self.tolerance

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.products]

    @property
    def tracks(self) -> list[tuple[int, str]]:
        """(relative orbit, direction) of each chosen product."""
        return [(p.relative_orbit, p.orbit_direction) for p in self.products]

    def decision(self, name: str) -> Decision:
        for d in self.decisions:
            if d.name == name:
                return d
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (products as :meth:`ProductRecord.to_json`)."""
        return {
            "tile_key": self.tile_key,
            "covered": self.covered,
            "coverage": self.coverage,
            "uncovered_fraction": self.uncovered_fraction,
            "tolerance": self.tolerance,
            "target": self.target,
            "target_area_m2": self.target_area,
            "window_days": self.window_days,
            "windows_tried": list(self.windows_tried),
            "products": [p.to_json() for p in self.products],
            "time_gaps": list(self.time_gaps),
            "added_fraction": list(self.added_fraction),
            "decisions": [{"name": d.name, "kept": d.kept, "reason": d.reason} for d in self.decisions],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Selection:
        try:
            return cls(
                tile_key=d["tile_key"],
                products=[ProductRecord.from_json(p) for p in d["products"]],
                coverage=float(d["coverage"]),
                uncovered_fraction=float(d["uncovered_fraction"]),
                time_gaps=[float(x) for x in d["time_gaps"]],
                decisions=[
                    Decision(x["name"], bool(x["kept"]), x["reason"]) if isinstance(x, dict) else Decision(*x)
                    for x in d["decisions"]
                ],
                tolerance=float(d.get("tolerance", DEFAULT_TOLERANCE)),
                target=d.get("target", "patches"),
                target_area=float(d.get("target_area_m2", 0.0)),
                added_fraction=[float(x) for x in d.get("added_fraction", [])],
                window_days=d.get("window_days"),
                windows_tried=[float(x) for x in d.get("windows_tried", [])],
            )
        except KeyError as exc:
            raise InputError(f"selection {d.get('tile_key', '?')}: missing field {exc}") from None


# ---------------------------------------------------------------------------------------
# helpers


@functools.lru_cache(maxsize=64)
def _from_wgs84(epsg: int) -> Any:  # pyproj.Transformer
    from pyproj import Transformer

    return Transformer.from_crs(4326, epsg, always_xy=True)


def to_tile_crs(footprints: np.ndarray, epsg: int, densify_deg: float = DENSIFY_DEG) -> np.ndarray:
    """Reproject WGS84 lon/lat geometries to ``EPSG:epsg`` in one vectorised pyproj call."""
    if len(footprints) == 0:
        return footprints
    geoms = shapely.segmentize(footprints, densify_deg) if densify_deg else footprints
    tr = _from_wgs84(epsg)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(geoms, fn)
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    return out


def _target_geometry(tile: TileAcquisition, target: str) -> BaseGeometry:
    if target == "patches":
        geom = tile.patches_footprint
        if geom.is_empty:
            raise SelectionError(f"tile {tile.key}: no patches, nothing to cover (use target='tile')")
        return geom
    if target == "tile":
        return tile.footprint
    raise InputError(f"selection target must be 'patches' or 'tile', not {target!r}")


_POLS = {"DV": "VV+VH", "DH": "HH+HV", "SV": "VV only", "SH": "HH only", "VV": "VV", "HH": "HH", "VH": "VH", "HV": "HV"}


def _pct(x: float) -> str:
    return f"{100.0 * x:.2f}%"


def _days(s: float) -> str:
    return f"{s / 86400.0:.2f} d"


def _track(r: ProductRecord) -> str:
    return f"relative orbit {r.relative_orbit} {r.orbit_direction.lower()}"


@dataclass(eq=False)
class _Unit:
    track: tuple[int, str]
    members: list[int]      # candidate indices, in time order
    part: BaseGeometry      # union of the members' parts of the target (tile CRS)
    area: float
    gap: float              # smallest member time gap (s)
    note: str = ""          # how the unit was formed


# ---------------------------------------------------------------------------------------
# selection


def select_products(
    tile: TileAcquisition,
    candidates: Iterable[ProductRecord],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    target: str = "patches",
    polarisation: str | None = "DV",
) -> Selection:
    """Choose products among ``candidates`` for ``tile`` (see the module doc for the rule).

    ``polarisation``: the polarisation code products must have in their name ("DV": VV+VH,
    what BigEarthNet-S1 holds; ``None`` accepts any). Never raises for lack of coverage: the
    result says ``covered`` and ``uncovered_fraction``.
    """
    _check_tolerance(tolerance)
    return _Selector(tile, list(candidates), tolerance=tolerance, target=target, polarisation=polarisation).run()


def _check_tolerance(tolerance: float) -> None:
    if not 0.0 < tolerance <= 1.0:
        raise InputError(f"tolerance must be in (0, 1], got {tolerance}")


class _Selector:
    """One tile's selection. Geometry conventions: ``parts[j]`` is candidate j's footprint
    intersected with the target, in the tile CRS; a footprint that contains the whole target
    has ``parts[j] is self.T`` (the target object itself), which lets unions, differences and
    areas involving it skip GEOS overlays (the common case: a 250 km swath over a 110 km tile).
    """

    def __init__(
        self,
        tile: TileAcquisition,
        candidates: list[ProductRecord],
        *,
        tolerance: float,
        target: str,
        footprints: np.ndarray | None = None,
        target_geom: BaseGeometry | None = None,
        polarisation: str | None = "DV",
    ) -> None:
        self.tile = tile
        self.polarisation = polarisation
        self.all = candidates
        self.tolerance = tolerance
        self.target = target
        self.T = target_geom if target_geom is not None else _target_geometry(tile, target)
        self.target_area = float(self.T.area)
        self.decisions: dict[str, Decision] = {}
        self._given_fps = footprints
        # areas within this of each other are "equal" (then the time gap decides)
        self.band = max((1.0 - tolerance) * self.target_area, 1e-9 * self.target_area)
        self.eps = 1e-9 * self.target_area
        self.goal = tolerance * self.target_area - self.eps

    def drop(self, name: str, reason: str) -> None:
        self.decisions.setdefault(name, Decision(name, False, reason))

    # -- geometry with the "whole target" shortcut ------------------------------------------
    def area(self, g: BaseGeometry | None) -> float:
        if g is None:
            return 0.0
        return self.target_area if g is self.T else float(g.area)

    def union(self, a: BaseGeometry | None, b: BaseGeometry) -> BaseGeometry:
        if a is None:
            return b
        if a is self.T or b is self.T:
            return self.T
        return shapely.union(a, b)

    def union_of(self, idx: Sequence[int]) -> BaseGeometry:
        parts = [self.parts[j] for j in idx]
        if any(p is self.T for p in parts):
            return self.T
        return parts[0] if len(parts) == 1 else shapely.union_all(parts)

    def new_areas(self, parts: Sequence[BaseGeometry], covered: BaseGeometry | None) -> np.ndarray:
        """Area of each part outside ``covered`` (m^2)."""
        out = np.empty(len(parts))
        if covered is None:
            return np.array([self.area(p) for p in parts])
        if covered is self.T:
            out[:] = 0.0
            return out
        covered_area = float(covered.area)
        plain = [k for k, p in enumerate(parts) if p is not self.T]
        for k, p in enumerate(parts):
            if p is self.T:
                out[k] = self.target_area - covered_area
        if plain:
            out[plain] = shapely.area(shapely.difference(np.array([parts[k] for k in plain], dtype=object), covered))
        return out

    # -- step 1/2: filter, footprints, parts ----------------------------------------------
    def prepare(self) -> None:
        kept: list[int] = []
        seen: set[str] = set()
        acquisitions: dict[tuple[Any, ...], str] = {}
        for i, r in enumerate(self.all):
            if r.name in seen:
                continue  # the same record twice (e.g. from two searches)
            seen.add(r.name)
            kind = name_kind(r.name)
            if kind is not None and kind[1:4] != ("IW", "GRD", 1):
                self.drop(r.name, f"not an IW GRD product ({kind[1]} {kind[2]})")
                continue
            if kind is not None and self.polarisation and kind[4] != self.polarisation:
                self.drop(
                    r.name,
                    f"polarisation {_POLS.get(kind[4], kind[4])}, not {_POLS.get(self.polarisation, self.polarisation)}",
                )
                continue
            acq = (r.mission, r.absolute_orbit, int(r.start_time.timestamp()), int(r.stop_time.timestamp()))
            if acq in acquisitions:
                self.drop(r.name, f"same acquisition as {acquisitions[acq]} (another processing of it)")
                continue
            acquisitions[acq] = r.name
            kept.append(i)
        recs = [self.all[i] for i in kept]
        if self._given_fps is not None:
            fps = np.asarray(self._given_fps, dtype=object)[kept]
        else:
            fps = np.array([r.footprint for r in recs], dtype=object)
            invalid = np.flatnonzero(~shapely.is_valid(fps)) if len(fps) else np.array([], dtype=np.intp)
            for j in invalid:
                fps[j] = clean_footprint(fps[j], recs[j].name)  # warns
        tile_wgs = self.tile.footprint_wgs84
        near = shapely.intersects(tile_wgs, fps) if len(fps) else np.zeros(0, bool)
        for j in np.flatnonzero(~near):
            self.drop(recs[j].name, f"footprint does not reach tile {self.tile.tile_id}")
        recs = [r for r, ok in zip(recs, near, strict=True) if ok]
        fps = fps[near]
        n = len(recs)
        parts = np.empty(n, dtype=object)
        areas = np.zeros(n)
        if n:
            # clip in lon/lat to a box around the tile (exact: its edges are lon/lat lines and
            # it holds the whole tile), so that only the useful piece is densified and projected
            w, s_, e, n_ = tile_wgs.bounds
            clipped = shapely.clip_by_rect(fps, w - 0.05, s_ - 0.05, e + 0.05, n_ + 0.05)
            utm = to_tile_crs(clipped, self.tile.epsg)
            hull = self.T.convex_hull
            full = shapely.contains(utm, hull)
            parts[full] = self.T
            areas[full] = self.target_area
            rest = np.flatnonzero(~full)
            if len(rest):
                parts[rest] = shapely.intersection(utm[rest], self.T)
                areas[rest] = shapely.area(parts[rest])
        useful = areas > self.eps
        for j in np.flatnonzero(~useful):
            self.drop(recs[j].name, f"footprint misses the target ({self.target}) of tile {self.tile.tile_id}")
        self.recs = [r for r, ok in zip(recs, useful, strict=True) if ok]
        self.parts = parts[useful]
        self.areas = areas[useful]
        sensing = self.tile.sensing_time
        self.gaps = np.array([abs((r.start_time - sensing).total_seconds()) for r in self.recs])

    # -- step 3: units ------------------------------------------------------------------------
    def _unit_from_chain(self, track: tuple[int, str], chain: list[int]) -> _Unit:
        best = max(chain, key=lambda j: (self.areas[j], -self.gaps[j]))
        chain_part = None
        if len(chain) == 1 or self.parts[best] is self.T:
            chain_area = float(self.areas[best])
        else:
            chain_part = self.union_of(chain)
            chain_area = self.area(chain_part)
        datatake = self.recs[best].datatake_id or f"orbit {self.recs[best].absolute_orbit}"
        if self.areas[best] >= self.tolerance * chain_area:
            for j in chain:
                if j != best:
                    self.drop(
                        self.recs[j].name,
                        f"{_track(self.recs[j])}: slice {self.recs[best].name} of the same data-take "
                        f"{datatake} covers this pass's part of the target alone",
                    )
            return _Unit(track, [best], self.parts[best], float(self.areas[best]), float(self.gaps[best]))
        members = [best]
        covered = self.parts[best]
        covered_area = float(self.areas[best])
        rest = [j for j in chain if j != best]
        if len(chain) == 2 and chain_part is not None:  # both slices needed: their union is known
            members, rest, covered, covered_area = list(chain), [], chain_part, chain_area
        while rest and covered_area < self.tolerance * chain_area:
            new = self.new_areas([self.parts[j] for j in rest], covered)
            k = int(np.argmax(new))
            if new[k] <= self.eps:
                break
            members.append(rest.pop(k))
            covered = self.union(covered, self.parts[members[-1]])
            covered_area = self.area(covered)
        for j in rest:
            self.drop(
                self.recs[j].name,
                f"{_track(self.recs[j])}: the other slices of data-take {datatake} cover this pass's part",
            )
        members.sort(key=lambda j: self.recs[j].start_time)
        single = float(self.areas[best]) / chain_area
        note = (
            f"{len(members)} consecutive slices of data-take {datatake} "
            f"(one slice alone covers {_pct(single)} of this pass's part)"
        )
        return _Unit(track, members, covered, covered_area, float(min(self.gaps[j] for j in members)), note)

    def build_units(self) -> dict[tuple[int, str], list[_Unit]]:
        by_pass: dict[tuple[int, str], dict[tuple[Any, ...], list[int]]] = defaultdict(lambda: defaultdict(list))
        for j, r in enumerate(self.recs):
            track = (r.relative_orbit, r.orbit_direction)
            by_pass[track][(r.mission, r.absolute_orbit, r.datatake_id)].append(j)
        units: dict[tuple[int, str], list[_Unit]] = {}
        for track in sorted(by_pass):
            lst: list[_Unit] = []
            for members in by_pass[track].values():
                members.sort(key=lambda j: self.recs[j].start_time)
                chain = [members[0]]
                for j in members[1:]:
                    prev = self.recs[chain[-1]]
                    if (self.recs[j].start_time - prev.stop_time).total_seconds() <= SLICE_GAP_S:
                        chain.append(j)
                    else:
                        lst.append(self._unit_from_chain(track, chain))
                        chain = [j]
                lst.append(self._unit_from_chain(track, chain))
            units[track] = lst
        return units

    # -- step 4: one unit per track -------------------------------------------------------------
    def choose_per_track(self, units: dict[tuple[int, str], list[_Unit]]) -> tuple[list[_Unit], list[_Unit]]:
        chosen: list[_Unit] = []
        others: list[_Unit] = []
        self.why_not: dict[int, str] = {}  # id(unit) -> reason it lost within its track
        for lst in units.values():
            best_area = max(u.area for u in lst)
            eligible = [u for u in lst if u.area >= self.tolerance * best_area - self.eps]
            pick = min(eligible, key=lambda u: (u.gap, -u.area, self.recs[u.members[0]].name))
            chosen.append(pick)
            for u in lst:
                if u is pick:
                    continue
                first = self.recs[pick.members[0]]
                if any(u is e for e in eligible):
                    why = (
                        f"{_track(first)}: the pass of {first.start_time:%Y-%m-%d %H:%M} is closer in time "
                        f"({_days(pick.gap)} vs {_days(u.gap)})"
                    )
                else:
                    why = (
                        f"{_track(first)}: the pass of {first.start_time:%Y-%m-%d %H:%M} covers more of the "
                        f"target ({_pct(pick.area / self.target_area)} vs {_pct(u.area / self.target_area)})"
                    )
                self.why_not[id(u)] = why
                others.append(u)
        return chosen, others

    # -- step 5: greedy cover ---------------------------------------------------------------------
    def greedy(
        self, pool: list[_Unit], covered: BaseGeometry | None, order: list[tuple[_Unit, str]], phase: str
    ) -> BaseGeometry | None:
        pool = list(pool)
        while pool and self.area(covered) < self.goal:
            new = self.new_areas([u.part for u in pool], covered)
            top = float(new.max())
            if top <= self.eps:
                break
            near_top = [k for k in range(len(pool)) if new[k] >= top - self.band]
            k = min(near_top, key=lambda k: (pool[k].gap, -new[k], self.recs[pool[k].members[0]].name))
            unit = pool.pop(k)
            covered = self.union(covered, unit.part)
            why = f"{phase}: adds {_pct(new[k] / self.target_area)} of the target, time gap {_days(unit.gap)}"
            if len(near_top) > 1:
                why += f" (closest in time of {len(near_top)} tracks adding about as much)"
            order.append((unit, why))
        return covered

    # -- step 6: prune --------------------------------------------------------------------------
    def prune(self, chosen: list[int]) -> list[int]:
        if len(chosen) <= 1:
            return chosen
        full = self.area(self.union_of(chosen))
        floor = min(self.tolerance * self.target_area, full) - self.eps
        changed = True
        while changed and len(chosen) > 1:
            changed = False
            # unique part of each product: what the others do not cover
            uniques = []
            for j in chosen:
                others = self.union_of([k for k in chosen if k != j])
                uniques.append((float(self.new_areas([self.parts[j]], others)[0]), j, others))
            uniques.sort(key=lambda t: (t[0], -self.gaps[t[1]]))
            for unique, j, others in uniques:
                others_area = self.area(others)
                if others_area >= floor:
                    chosen = [k for k in chosen if k != j]
                    self.drop(
                        self.recs[j].name,
                        f"{_track(self.recs[j])}: redundant, the other chosen products cover the target "
                        f"to {_pct(others_area / self.target_area)} without it "
                        f"(its own part: {_pct(unique / self.target_area)})",
                    )
                    changed = True
                    break
        return chosen

    # -- all -------------------------------------------------------------------------------------
    def run(self) -> Selection:
        self.prepare()
        order: list[tuple[_Unit, str]] = []
        covered: BaseGeometry | None = None
        others: list[_Unit] = []
        if self.recs:
            units = self.build_units()
            chosen_units, others = self.choose_per_track(units)
            covered = self.greedy(chosen_units, None, order, "one per relative orbit")
            unused = [u for u in chosen_units if all(u is not o for o, _ in order)]
            if self.area(covered) < self.goal:
                covered = self.greedy(others, covered, order, "another pass of a relative orbit to fill a gap")
            covered_area = self.area(covered)
            for u in unused:
                for j in u.members:
                    self.drop(
                        self.recs[j].name,
                        f"{_track(self.recs[j])}: not needed, the target is covered to "
                        f"{_pct(covered_area / self.target_area)} by the tracks chosen before"
                        if covered_area >= self.goal
                        else f"{_track(self.recs[j])}: adds no area not covered already",
                    )
            used_ids = {id(u) for u, _ in order}
            for u in others:
                if id(u) not in used_ids:
                    for j in u.members:
                        self.drop(self.recs[j].name, self.why_not[id(u)])
        # products in greedy order, unit members in time order
        chosen: list[int] = []
        reasons: dict[int, str] = {}
        for unit, why in order:
            for j in unit.members:
                chosen.append(j)
                reasons[j] = f"{_track(self.recs[j])}: {why}" + (f"; {unit.note}" if unit.note else "")
        chosen = self.prune(chosen)
        # final figures
        covered_geom: BaseGeometry | None = None
        added: list[float] = []
        for j in chosen:
            added.append(float(self.new_areas([self.parts[j]], covered_geom)[0]) / self.target_area)
            covered_geom = self.union(covered_geom, self.parts[j])
        coverage = min(1.0, self.area(covered_geom) / self.target_area)
        for j in chosen:
            self.decisions[self.recs[j].name] = Decision(self.recs[j].name, True, reasons[j])
        # one decision per candidate, in candidate order
        decisions = []
        seen: set[str] = set()
        for r in self.all:
            if r.name in seen:
                continue
            seen.add(r.name)
            decisions.append(self.decisions.get(r.name, Decision(r.name, False, "not considered")))
        sel = Selection(
            tile_key=self.tile.key,
            products=[self.recs[j] for j in chosen],
            coverage=coverage,
            uncovered_fraction=max(0.0, 1.0 - coverage),
            time_gaps=[float(self.gaps[j]) for j in chosen],
            decisions=decisions,
            tolerance=self.tolerance,
            target=self.target,
            target_area=self.target_area,
            added_fraction=added,
        )
        log.debug(
            "tile %s: %d of %d candidates chosen, coverage %s",
            self.tile.key, len(chosen), len(decisions), _pct(coverage),
        )
        return sel


# ---------------------------------------------------------------------------------------
# with a catalogue


def search_and_select(
    catalog: Catalog,
    tile: TileAcquisition,
    *,
    window: timedelta = timedelta(days=3),
    max_window: timedelta = timedelta(days=12),
    step: timedelta = timedelta(days=3),
    tolerance: float = DEFAULT_TOLERANCE,
    target: str = "patches",
    polarisation: str | None = "DV",
    complete: bool = True,
) -> Selection:
    """Search ``sensing_time +- window`` and select; widen by ``step`` up to ``max_window``
    while the target is not covered.

    The result of the widest window tried is returned even when not covered (its
    ``uncovered_fraction`` says how much is missing, and a warning is logged). With
    ``complete`` and a catalogue that has ``complete(records)`` (DHuS), the chosen records
    are completed with exact size, checksum and online status.
    """
    _check_tolerance(tolerance)
    if window <= timedelta(0) or step <= timedelta(0):
        raise InputError(f"tile {tile.key}: window and step must be positive")
    max_window = max(max_window, window)
    area = (tile.footprint_wgs84 if target == "tile" else tile.patches_footprint_wgs84).convex_hull
    w = window
    tried: list[float] = []
    while True:
        start, end = tile.sensing_time - w, tile.sensing_time + w
        candidates = catalog.search(area, start, end)
        sel = select_products(tile, candidates, tolerance=tolerance, target=target, polarisation=polarisation)
        tried.append(w.total_seconds() / 86400.0)
        if sel.covered or w >= max_window:
            break
        log.info(
            "tile %s: +-%s covers %s of the target with %d candidates; widening the window",
            tile.key, w, _pct(sel.coverage), len(candidates),
        )
        w = min(w + step, max_window)
    sel.window_days = tried[-1]
    sel.windows_tried = tried
    if not sel.covered:
        log.warning(
            "tile %s: no cover within +-%s of %s: %s of the target (%s) stays uncovered",
            tile.key, w, tile.sensing_time.isoformat(), _pct(sel.uncovered_fraction), target,
        )
    if complete and sel.products and hasattr(catalog, "complete"):
        done = {r.name: r for r in catalog.complete(sel.products)}
        sel.products = [done.get(r.name, r) for r in sel.products]
    return sel


def select_many(
    tiles: Sequence[TileAcquisition],
    candidates: Sequence[ProductRecord],
    *,
    window: timedelta = timedelta(days=3),
    tolerance: float = DEFAULT_TOLERANCE,
    target: str = "patches",
    polarisation: str | None = "DV",
) -> list[Selection]:
    """Select for many tiles against one candidate list (e.g. one big catalogue search).

    Candidates are matched to tiles with an STRtree on their WGS84 footprints (bounding boxes)
    and their start times (within ``sensing_time +- window``).
    """
    _check_tolerance(tolerance)
    recs = list(candidates)
    fps = np.array([r.footprint for r in recs], dtype=object)
    starts = np.array([r.start_time.timestamp() for r in recs], dtype=float)
    half = window.total_seconds()
    per_tile: list[np.ndarray] = [np.zeros(0, int)] * len(tiles)
    if len(tiles) and len(recs):
        # bounding boxes only: the exact footprint test is the selector's first step
        tree = shapely.STRtree(fps)
        boxes = shapely.envelope(np.array([t.footprint_wgs84 for t in tiles], dtype=object))
        pairs = tree.query(boxes)
        order = np.argsort(pairs[0], kind="stable")
        ti_sorted, ci_sorted = pairs[0][order], pairs[1][order]
        bounds = np.searchsorted(ti_sorted, np.arange(len(tiles) + 1))
        for ti, tile in enumerate(tiles):
            idx = np.sort(ci_sorted[bounds[ti]:bounds[ti + 1]])
            per_tile[ti] = idx[np.abs(starts[idx] - tile.sensing_time.timestamp()) <= half]
        # repair invalid footprints once, only among those some tile looks at
        used = np.unique(np.concatenate(per_tile)) if per_tile else np.zeros(0, int)
        for j in used[~shapely.is_valid(fps[used])]:
            fps[j] = clean_footprint(fps[j], recs[j].name)
    out = []
    for ti, tile in enumerate(tiles):
        idx = per_tile[ti]
        sub = [recs[i] for i in idx]
        sel = _Selector(
            tile, sub, tolerance=tolerance, target=target, polarisation=polarisation,
            footprints=fps[idx] if len(idx) else None,
        ).run()
        sel.window_days = half / 86400.0
        sel.windows_tried = [sel.window_days]
        out.append(sel)
    return out
