"""BigEarthNet v2 ("reBEN", Clasen et al., IGARSS 2025) as the S2 source: names, metadata, folders.

reBEN publishes ``metadata.parquet`` with one row per S2 patch: ``patch_id``
(``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57``: the S2 L2A product, then col_row),
``labels`` (19-class names), ``split`` ("train", "validation", "test"), ``country``,
``s1_name`` (the S1 patch it pairs, ``S1B_IW_GRDH_1SDV_20170612T165809_33UUP_26_57``),
``s2v1_name`` (the BigEarthNet v1 S2 name, ``S2A_MSIL2A_20170613T101031_26_57``),
``contains_seasonal_snow`` and ``contains_cloud_or_shadow``. Its patches are v1 patches: same
MGRS tile, same 1200 m squares (col_row). Folder layouts::

    BigEarthNet-S2/<S2 product>/<patch_id>/<patch_id>_B02.tif ...   (S2 product = patch_id
                                                                      without its col_row)
    BigEarthNet-S1/<S1 prefix>/<s1_name>/<s1_name>_VV.tif, _VH.tif   (S1 prefix = s1_name
                                                                      without tile, col, row)

This module reads a ``metadata.parquet`` and/or a v2 S2 folder into tile acquisitions (tile
from ``patch_id``, sensing time from its product time, squares from the v1 grid,
:func:`bigearthnet_s1.mgrs.mgrs_tile_origin`), names patches in v2 style, and selects the
Sentinel-1 products reBEN paired (:func:`select_named`) for builds that reproduce v2's S1
acquisitions.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bigearthnet_s1.acquisition import Patch, TileAcquisition, V2Info, overpasses
from bigearthnet_s1.errors import InputError, TileError
from bigearthnet_s1.grid import MAX_PATCH_INDEX, PATCH_M, PATCH_PX, MapGrid
from bigearthnet_s1.mgrs import mgrs_tile_origin
from bigearthnet_s1.names import S1_PATCH_NAME_RE, S2_PATCH_NAME_RE, parse_s2_patch_name, product_prefix, s2_product_time
from bigearthnet_s1.patch_table import align_with_table, table_path

if TYPE_CHECKING:
    import pyarrow as pa

    from bigearthnet_s1.catalog import ProductRecord
    from bigearthnet_s1.selection import Selection

log = logging.getLogger(__name__)

S1_DIR = "BigEarthNet-S1"
S2_DIR = "BigEarthNet-S2"
METADATA_FILE = "metadata.parquet"
#: reBEN's metadata columns, in its order.
METADATA_COLUMNS = ("patch_id", "labels", "split", "country", "s1_name", "s2v1_name",
                    "contains_seasonal_snow", "contains_cloud_or_shadow")
SPLITS = ("train", "validation", "test")

_TILE = r"\d{2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V]"
S2_PRODUCT_RE = re.compile(
    rf"^(?P<mission>S2[A-D])_MSIL2A_(?P<date>\d{{8}})T(?P<time>\d{{6}})_N(?P<baseline>\d{{4}})"
    rf"_R(?P<orbit>\d{{3}})_T(?P<tile>{_TILE})$"
)
PATCH_ID_RE = re.compile(
    rf"^(?P<product>(?P<mission>S2[A-D])_MSIL2A_(?P<date>\d{{8}})T(?P<time>\d{{6}})_N(?P<baseline>\d{{4}})"
    rf"_R(?P<orbit>\d{{3}})_T(?P<tile>{_TILE}))_(?P<col>\d{{1,2}})_(?P<row>\d{{1,2}})$"
)
_ORBIT_IN_PRODUCT = re.compile(r"_R(\d{3})_")

# --------------------------------------------------------------------------- names


def s1_prefix(s1_name: str) -> str:
    """The v2 S1 folder of a patch: ``s1_name`` without its tile, col and row
    (``S1B_IW_GRDH_1SDV_20170612T165809_33UUP_26_57`` -> ``S1B_IW_GRDH_1SDV_20170612T165809``)."""
    if not S1_PATCH_NAME_RE.match(s1_name):
        raise InputError(f"not a BigEarthNet-S1 patch name: {s1_name!r}")
    return s1_name.rsplit("_", 3)[0]


def s2_product(patch_id: str) -> str:
    """The v2 S2 folder of a patch: ``patch_id`` without its col and row."""
    if not PATCH_ID_RE.match(patch_id):
        raise InputError(f"not a reBEN patch_id: {patch_id!r}")
    return patch_id.rsplit("_", 2)[0]


def v1_name(patch_id: str) -> str:
    """The v1 S2 patch name of a reBEN ``patch_id`` (mission, product time, col, row)."""
    m = PATCH_ID_RE.match(patch_id)
    if not m:
        raise InputError(f"not a reBEN patch_id: {patch_id!r}")
    return f"{m['mission']}_MSIL2A_{m['date']}T{m['time']}_{int(m['col'])}_{int(m['row'])}"


#: Sentinel-2's repeat cycle is 143 orbits in exactly 10 days; relative orbits number the
#: ground tracks, the same for S2A and S2B (which flies half a cycle, 71.5 orbits, apart).
_S2_ORBIT_S = 864_000.0 / 143.0
#: ``t / period - (relative orbit - 1)`` (mod 143) of a datatake start time (Unix seconds),
#: per mission. Fitted on the six BigEarthNet example patches' L1C names (R022, R080, R037 for
#: S2A; R136, R036 for S2B; 2017-06 to 2018-02): S2A 128.06-128.10, S2B 56.56-56.58. Datatake
#: starts lie within a small part of the orbit after the ascending node, so rounding is
#: robust to about half an orbit (50 minutes) of spread.
_S2_PHASE = {"S2A": 128.08, "S2B": 56.58}


def s2_relative_orbit(mission: str, sensing: datetime) -> int:
    """Relative orbit (1..143) of a Sentinel-2 datatake that started at ``sensing`` (UTC).

    Used to name a v2 ``patch_id`` when the S2 source does not give the product's orbit
    (the patch-name table). Only S2A and S2B (the BigEarthNet missions) are known.
    """
    if mission not in _S2_PHASE:
        raise InputError(f"relative orbit of {mission} unknown (only S2A and S2B are modelled)")
    x = sensing.timestamp() / _S2_ORBIT_S - _S2_PHASE[mission]
    return int(round(x)) % 143 + 1


def v2_patch_id(tile: TileAcquisition, patch: Patch) -> str:
    """reBEN ``patch_id`` of a patch: reBEN's own when the source gave it; otherwise built like
    reBEN's (mission and time of the v1 name, baseline N9999, relative orbit from the tile's
    S2 product name or :func:`s2_relative_orbit`, tile, col, row). The time keeps the v1
    name's digits, zero-padded (``T93020`` -> ``T093020``)."""
    if patch.v2 is not None:
        return patch.v2.patch_id
    m = S2_PATCH_NAME_RE.match(patch.s2_name)
    if not m:
        raise InputError(f"not a BigEarthNet-S2 patch name: {patch.s2_name!r}")
    found = _ORBIT_IN_PRODUCT.search(tile.s2_product or "")
    if found:
        orbit = int(found.group(1))
    else:
        orbit = s2_relative_orbit(m["mission"], parse_s2_patch_name(patch.s2_name)[0])
    return (f"{m['mission']}_MSIL2A_{m['date']}T{m['time'].rjust(6, '0')}_N9999_R{orbit:03d}"
            f"_T{tile.tile_id}_{patch.col}_{patch.row}")


# --------------------------------------------------------------------------- metadata.parquet


def read_metadata(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """A reBEN ``metadata.parquet`` as a pyarrow Table (``columns``: those to read; missing
    optional columns are added as nulls). ``patch_id`` and ``labels`` are required."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(path)
    try:
        schema = pq.read_schema(p)
    except FileNotFoundError:
        raise TileError(f"reBEN metadata not found: {p}") from None
    except (OSError, pa.ArrowException) as exc:
        raise TileError(f"{p}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in ("patch_id", "labels") if c not in schema.names]
    if missing:
        raise TileError(f"{p}: not a reBEN metadata file: missing column(s) {', '.join(missing)} "
                        f"(has {', '.join(schema.names)})")
    wanted = list(columns or METADATA_COLUMNS)
    present = [c for c in wanted if c in schema.names]
    try:
        table = pq.read_table(p, columns=present)
    except (OSError, pa.ArrowException) as exc:
        raise TileError(f"{p}: cannot read ({exc})") from exc
    for c in wanted:
        if c not in present:
            typ = pa.bool_() if c.startswith("contains_") else pa.list_(pa.string()) if c == "labels" else pa.string()
            table = table.append_column(c, pa.nulls(table.num_rows, typ))
    if not pa.types.is_list(table.schema.field("labels").type) and not pa.types.is_large_list(
            table.schema.field("labels").type):
        raise TileError(f"{p}: column 'labels' is {table.schema.field('labels').type}, expected a list of strings")
    return table.select(wanted)


@dataclass(frozen=True)
class _Row:
    """One S2 patch of a reBEN source (before grouping into acquisitions)."""

    patch_id: str
    tile_id: str
    time: datetime
    col: int
    row: int
    s2_name: str
    labels: tuple[str, ...] | None
    split: str | None
    country: str | None
    v2: V2Info
    where: str  # for messages: file and row, or the patch folder
    ulx: float | None = None  # from the S2 GeoTIFF, when read from a folder
    uly: float | None = None


def _rows_from_table(table: pa.Table, path: Path, tiles: set[str] | None) -> list[_Row]:
    cols = {c: table[c].to_pylist() for c in METADATA_COLUMNS}
    rows: list[_Row] = []
    for i, pid in enumerate(cols["patch_id"]):
        where = f"{path} row {i + 1}"
        m = PATCH_ID_RE.match(pid or "")
        if not m:
            raise TileError(f"{where}: not a reBEN patch_id: {pid!r}")
        if tiles is not None and m["tile"] not in tiles:
            continue
        rows.append(_row(m, cols, i, where))
    return rows


def _parse_v1(name: str) -> tuple[datetime, int, int]:
    m = S2_PATCH_NAME_RE.match(name)
    if not m or int(m["col"]) > MAX_PATCH_INDEX or int(m["row"]) > MAX_PATCH_INDEX:
        return parse_s2_patch_name(name)  # raises with the reason
    return s2_product_time(name.rsplit("_", 2)[0]), int(m["col"]), int(m["row"])


def _row(m: re.Match[str], cols: Mapping[str, list[Any]], i: int, where: str) -> _Row:
    pid = m.group(0)
    col, row = int(m["col"]), int(m["row"])
    if col > MAX_PATCH_INDEX or row > MAX_PATCH_INDEX:
        raise TileError(f"{where}: patch_id {pid}: col/row outside 0..{MAX_PATCH_INDEX}")
    t = s2_product_time(f"{m['mission']}_MSIL2A_{m['date']}T{m['time']}")
    s2v1 = cols["s2v1_name"][i] or v1_name(pid)
    try:
        t1, c1, r1 = _parse_v1(s2v1)
    except TileError as exc:
        raise TileError(f"{where}: s2v1_name: {exc}") from exc
    if (c1, r1) != (col, row) or abs((t1 - t).total_seconds()) > 60:
        raise TileError(f"{where}: s2v1_name {s2v1} is not the patch {pid}")
    s1 = cols["s1_name"][i]
    if s1 is not None:
        ms = S1_PATCH_NAME_RE.match(s1)
        if not ms or ms["tile"] != m["tile"] or (int(ms["col"]), int(ms["row"])) != (col, row):
            raise TileError(f"{where}: s1_name {s1!r} is not a BigEarthNet-S1 name of patch {pid}")
    split = cols["split"][i]
    if split is not None and split not in SPLITS:
        raise TileError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    labels = cols["labels"][i]
    if labels is not None and not all(isinstance(x, str) for x in labels):
        raise TileError(f"{where}: labels is not a list of strings")
    snow, cloud = cols["contains_seasonal_snow"][i], cols["contains_cloud_or_shadow"][i]
    return _Row(pid, m["tile"], t, col, row, s2v1, tuple(labels) if labels is not None else None, split,
                cols["country"][i] or None, V2Info(pid, s1, None if snow is None else bool(snow),
                                                   None if cloud is None else bool(cloud)), where)


# --------------------------------------------------------------------------- v2 S2 folder


def _s2_folder(root: Path) -> Path | None:
    if root.name == S2_DIR and root.is_dir():
        return root
    if (root / S2_DIR).is_dir():
        return root / S2_DIR
    return None


def _rows_from_folder(folder: Path, meta: Mapping[str, _Row], tiles: set[str] | None) -> list[_Row]:
    """Patches of a v2 S2 folder; the georeferencing of each ``_B02.tif`` (10 m band) is checked
    against the v1 grid square its name gives. Labels and the rest come from ``meta`` (rows
    by patch_id) when it has the patch."""
    import rasterio

    rows: list[_Row] = []
    for prod in sorted(os.scandir(folder), key=lambda e: e.name):
        if prod.name.startswith(".") or not prod.is_dir():
            continue
        pm = S2_PRODUCT_RE.match(prod.name)
        if not pm:
            raise TileError(f"{prod.path}: not a reBEN S2 product folder name (expected e.g. "
                            "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP)")
        if tiles is not None and pm["tile"] not in tiles:
            continue
        for entry in sorted(os.scandir(prod.path), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            m = PATCH_ID_RE.match(entry.name)
            if not m or m["product"] != prod.name:
                raise TileError(f"{entry.path}: not a patch of {prod.name} (expected {prod.name}_<col>_<row>)")
            b02 = Path(entry.path) / f"{entry.name}_B02.tif"
            if not b02.is_file():
                raise TileError(f"{entry.path}: missing {b02.name} (its georeferencing is the check)")
            try:
                with rasterio.open(b02) as ds:
                    epsg = ds.crs.to_epsg() if ds.crs else None
                    t, size = ds.transform, (ds.width, ds.height)
            except rasterio.errors.RasterioIOError as exc:
                raise TileError(f"{b02}: unreadable GeoTIFF ({exc})") from exc
            col, row = int(m["col"]), int(m["row"])
            tile_epsg, tulx, tuly = mgrs_tile_origin(m["tile"])
            if epsg != tile_epsg:
                raise TileError(f"{b02}: CRS EPSG:{epsg} is not the CRS of MGRS tile {m['tile']} (EPSG:{tile_epsg})")
            if size != (PATCH_PX, PATCH_PX) or not (math.isclose(t.a, 10.0) and math.isclose(t.e, -10.0)):
                raise TileError(f"{b02}: {size[0]}x{size[1]} px of {t.a} m, expected a 120 x 120 px 10 m band")
            ex, ey = tulx + PATCH_M * col, tuly - PATCH_M * row
            if abs(t.c - ex) > 60 or abs(t.f - ey) > 60:
                raise TileError(f"{b02}: origin ({t.c}, {t.f}) is not square {col}_{row} of tile {m['tile']} "
                                f"(expected ({ex}, {ey}))")
            known = meta.get(entry.name)
            if known is not None:
                rows.append(_replace_row(known, ulx=float(t.c), uly=float(t.f), where=str(b02)))
            else:
                cols: dict[str, list[Any]] = {c: [None] for c in METADATA_COLUMNS}
                r = _row(m, cols, 0, str(entry.path))
                rows.append(_replace_row(r, ulx=float(t.c), uly=float(t.f)))
    return rows


def _replace_row(r: _Row, **kw: Any) -> _Row:
    from dataclasses import replace

    return replace(r, **kw)


# --------------------------------------------------------------------------- as tile acquisitions


def is_reben_source(path: str | os.PathLike[str]) -> bool:
    """A reBEN source: a ``.parquet`` file, a folder with ``metadata.parquet`` or
    ``BigEarthNet-S2/``, or a ``BigEarthNet-S2`` folder."""
    p = Path(path)
    if p.is_file():
        return p.suffix == ".parquet"
    return p.is_dir() and ((p / METADATA_FILE).is_file() or _s2_folder(p) is not None)


def read_reben(source: str | os.PathLike[str], *, tiles: Iterable[str] | None = None) -> list[TileAcquisition]:
    """Tile acquisitions of a reBEN source (see :func:`is_reben_source`).

    With a folder holding both ``metadata.parquet`` and ``BigEarthNet-S2/``, the folder's
    patches are the patch list and the metadata gives their labels, split and flags (a folder
    patch missing from the metadata has unknown labels). Patches are grouped by (tile,
    overpass) and the acquisition's sensing time is the earliest ``patch_id`` time, as for v1.
    ``tiles``: keep only these MGRS tiles. Sorted by (tile_id, sensing_time).
    """
    # 500,000 small objects: the cyclic GC would rescan them again and again (as in tiles)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _read_reben(Path(source).expanduser(), tiles)
    finally:
        if gc_was_enabled:
            gc.enable()


def _read_reben(p: Path, tiles: Iterable[str] | None) -> list[TileAcquisition]:
    wanted = {t.upper().removeprefix("T") for t in tiles} if tiles is not None else None
    meta_path = p if p.is_file() else p / METADATA_FILE
    meta_rows: list[_Row] = []
    if meta_path.is_file():
        meta_rows = _rows_from_table(read_metadata(meta_path), meta_path, wanted)
    elif p.is_file():
        raise TileError(f"{p}: not a reBEN metadata.parquet")
    folder = _s2_folder(p) if p.is_dir() else None
    if folder is not None:
        by_id = {r.patch_id: r for r in meta_rows}
        rows = _rows_from_folder(folder, by_id, wanted)
        unused = len(by_id) - len({r.patch_id for r in rows} & set(by_id))
        if unused:
            log.info("%s: %d metadata rows have no patch folder in %s (not built)", meta_path, unused, folder)
    elif meta_rows or meta_path.is_file():
        rows = meta_rows
    else:
        raise TileError(f"{p}: no reBEN {METADATA_FILE} and no {S2_DIR} folder")
    return _align_keys(_acquisitions(rows))


def _align_keys(acqs: list[TileAcquisition]) -> list[TileAcquisition]:
    """Give acquisitions of v1 patches the sensing time (hence the key) the patch-name table
    gives them, as a v1 S2 folder gets (``patch_table.align_with_table``): reBEN's product times
    can be a second later than the earliest v1 name of the overpass."""
    try:
        table = table_path(None)
    except (InputError, ModuleNotFoundError):  # no bigearthnet-common here: keep reBEN's times
        return acqs
    return sorted(align_with_table(acqs, table), key=lambda a: (a.tile_id, a.sensing_time))


def _acquisitions(rows: Sequence[_Row]) -> list[TileAcquisition]:
    out: list[TileAcquisition] = []
    for tile_id, members in overpasses(rows, lambda r: r.tile_id, lambda r: r.time):
        epsg, ulx, uly = mgrs_tile_origin(tile_id)
        group = sorted(members, key=lambda r: (r.row, r.col, r.patch_id))
        seen: dict[tuple[int, int], str] = {}
        patches = []
        for r in group:
            if (r.col, r.row) in seen:
                raise TileError(f"{r.where}: tile {tile_id} already has patch {r.col}_{r.row} "
                                f"({seen[(r.col, r.row)]})")
            seen[(r.col, r.row)] = r.where
            px, py = ulx + PATCH_M * r.col, uly - PATCH_M * r.row
            if r.ulx is not None and r.uly is not None:
                px, py = r.ulx, r.uly
            patches.append(Patch(r.s2_name, r.col, r.row, r.labels or (), px, py, px + PATCH_M,
                                 py - PATCH_M, r.country, labels_known=r.labels is not None,
                                 split=r.split, v2=r.v2))
        first = min(group, key=lambda r: r.time)
        grid_ulx, grid_uly = patches[0].ulx - PATCH_M * patches[0].col, patches[0].uly + PATCH_M * patches[0].row
        out.append(TileAcquisition(tile_id, first.time, s2_product(first.patch_id),
                                   MapGrid.tile(epsg, grid_ulx, grid_uly), tuple(patches)))
    out.sort(key=lambda a: (a.tile_id, a.sensing_time))
    return out


# --------------------------------------------------------------------------- pairing as reBEN did


def named_prefixes(tile: TileAcquisition) -> dict[str, list[str]]:
    """S1 prefix (``S1B_IW_GRDH_1SDV_20170612T165809``) -> S2 names of the tile's patches that
    reBEN pairs with it."""
    out: dict[str, list[str]] = defaultdict(list)
    for p in tile.patches:
        if p.v2 is not None and p.v2.s1_name:
            out[s1_prefix(p.v2.s1_name)].append(p.s2_name)
    return dict(out)


def select_named(tile: TileAcquisition, candidates: Sequence[ProductRecord], *, target: str = "patches",
                 tolerance: float = 0.999) -> Selection:
    """The products reBEN paired with ``tile``'s patches (by their ``s1_name``), among ``candidates``.

    Every candidate whose ``<mission>_IW_GRDH_1S<pol>_<start>`` is named by some patch is
    kept (one product per name: the first by name when the catalogue has several
    processings); the others are dropped with the reason. A named acquisition missing from the
    candidates is logged and listed (``missing``) in the decisions; the selection's coverage
    says what the kept products cover (tile CRS, as :func:`selection.select_products`).
    """
    import numpy as np
    import shapely

    from bigearthnet_s1.selection import Decision, Selection, _target_geometry, to_tile_crs

    named = named_prefixes(tile)
    if not named:
        raise InputError(f"tile {tile.key}: no patch carries a reBEN s1_name (pairing 'reben' needs a reBEN source)")
    kept: dict[str, ProductRecord] = {}
    decisions: list[Decision] = []
    for r in sorted(candidates, key=lambda r: r.name):
        pre = product_prefix(r.name)
        if pre in named and pre not in kept:
            kept[pre] = r
            decisions.append(Decision(r.name, True, f"named by reBEN's s1_name for {len(named[pre])} patch(es)"))
        elif pre in named:
            decisions.append(Decision(r.name, False, f"another processing of {pre} (kept {kept[pre].name})"))
        else:
            decisions.append(Decision(r.name, False, "not named by reBEN's s1_name for this tile"))
    missing = sorted(set(named) - set(kept))
    for pre in missing:
        log.warning("tile %s: reBEN pairs %d patch(es) with %s, which the catalogue does not have",
                    tile.key, len(named[pre]), pre)
        decisions.append(Decision(pre, False, f"missing: named by reBEN for {len(named[pre])} patch(es), "
                                              "not in the catalogue's results"))
    products = sorted(kept.values(), key=lambda r: r.start_time)
    goal = _target_geometry(tile, target)
    area = float(goal.area)
    fps = to_tile_crs(np.array([r.footprint for r in products], dtype=object), tile.epsg)
    covered = shapely.intersection(shapely.union_all(fps), goal) if len(fps) else None
    coverage = min(1.0, float(covered.area) / area) if covered is not None and area > 0 else 0.0
    gaps = [abs((r.start_time - tile.sensing_time).total_seconds()) for r in products]
    return Selection(tile_key=tile.key, products=products, coverage=coverage,
                     uncovered_fraction=max(0.0, 1.0 - coverage), time_gaps=gaps, decisions=decisions,
                     tolerance=tolerance, target=target, target_area=area)


def preferred_scenes(tile: TileAcquisition) -> dict[str, str]:
    """S2 name -> S1 prefix reBEN pairs the patch with (for :func:`mosaic.mosaic_tile`)."""
    return {p.s2_name: s1_prefix(p.v2.s1_name) for p in tile.patches if p.v2 is not None and p.v2.s1_name}
