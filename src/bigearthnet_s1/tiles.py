"""The BigEarthNet-S2 input: tile acquisitions read from whatever source the user names.

:func:`read_tiles` reads a BigEarthNet-S2 v1.0 folder (patch folders holding
``<name>_labels_metadata.json``; :func:`read_s2_archive`, here), the S1/S2 patch-name table
shipped with ``bigearthnet-common`` (:mod:`bigearthnet_s1.patch_table`) or a reBEN source
(:mod:`bigearthnet_s1.reben`), and returns :class:`~bigearthnet_s1.acquisition.TileAcquisition`
values.

Conventions: coordinates are metres in the tile's UTM CRS, pixel CORNERS (see
:mod:`bigearthnet_s1.grid`); times are tz-aware UTC.

The model (:mod:`bigearthnet_s1.acquisition`), the tile grid (:mod:`bigearthnet_s1.grid`), the
MGRS corner (:mod:`bigearthnet_s1.mgrs`) and the table reader are re-exported here, so that
``from bigearthnet_s1.tiles import TileAcquisition, TileGrid, mgrs_tile_origin, read_patch_table``
keeps working for scripts; the library imports each from its own module.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from rasterio.crs import CRS

from bigearthnet_s1 import reben
from bigearthnet_s1._time import parse_compact
from bigearthnet_s1.acquisition import Patch, TileAcquisition, V2Info, overpasses
from bigearthnet_s1.errors import TileError
from bigearthnet_s1.grid import PATCH_M, MapGrid, TileGrid
from bigearthnet_s1.mgrs import mgrs_tile_origin
from bigearthnet_s1.names import S2_PATCH_NAME_RE, parse_s2_patch_name
from bigearthnet_s1.patch_table import align_with_table, country_index, country_of, read_patch_table, table_path

__all__ = [
    "MapGrid",
    "Patch",
    "TileAcquisition",
    "TileGrid",
    "V2Info",
    "country_of",
    "mgrs_tile_origin",
    "read_patch_table",
    "read_s2_archive",
    "read_tiles",
]

log = logging.getLogger(__name__)

#: Largest accepted difference between the time in a patch name and its ``acquisition_date``.
#: Real archive: ``S2B_MSIL2A_20180204T94161`` (09:41:61 = 09:42:01) vs 09:41:56.
TIME_TOLERANCE = timedelta(seconds=60)
_TILE_SOURCE_RE = re.compile(r"_T(\d{2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V])_")
_JSON_SUFFIX = "_labels_metadata.json"


# --------------------------------------------------------------------------- S2 archive folder


@dataclass(frozen=True, slots=True)
class _S2Record:
    """One S2 patch folder's JSON: the patch (country not known yet) and where it came from."""

    path: Path
    patch: Patch
    tile_id: str
    epsg: int
    time: datetime
    tile_source: str | None


@functools.lru_cache(maxsize=64)
def _epsg_of_wkt(wkt: str) -> int | None:
    try:
        crs = CRS.from_wkt(wkt)
    except Exception:  # rasterio raises CRSError; any failure means "unreadable"
        return None
    return crs.to_epsg()


def _read_s2_json(path: Path, name: str) -> _S2Record:
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as exc:
        raise TileError(f"{path}: cannot read JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise TileError(f"{path}: JSON is not an object")
    missing = [k for k in ("labels", "coordinates", "projection", "tile_source") if k not in meta]
    if missing:
        raise TileError(f"{path}: missing key(s) {', '.join(missing)}")
    coords = meta["coordinates"]
    if not isinstance(coords, dict):
        raise TileError(f"{path}: 'coordinates' is not an object")
    if "lry" not in coords and "lly" in coords:  # BigEarthNet-S1 v1.0 spelling
        coords = {**coords, "lry": coords["lly"]}
    cmissing = [k for k in ("ulx", "uly", "lrx", "lry") if k not in coords]
    if cmissing:
        raise TileError(f"{path}: missing coordinate(s) {', '.join(cmissing)}")
    try:
        ulx, uly, lrx, lry = (float(coords[k]) for k in ("ulx", "uly", "lrx", "lry"))
    except (TypeError, ValueError) as exc:
        raise TileError(f"{path}: non-numeric coordinates") from exc
    if not (math.isclose(lrx - ulx, PATCH_M) and math.isclose(uly - lry, PATCH_M)):
        raise TileError(f"{path}: patch is not 1200 m square (coordinates {coords})")
    labels = meta["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise TileError(f"{path}: 'labels' is not a list of strings")
    src = str(meta["tile_source"] or "")
    m = _TILE_SOURCE_RE.search(src)
    if not m:
        raise TileError(f"{path}: tile_source {src!r} names no MGRS tile (expected '..._T33UUP_...')")
    tile_id = m.group(1)
    epsg = _epsg_of_wkt(str(meta["projection"]))
    if epsg is None:
        raise TileError(f"{path}: projection is not a known EPSG CRS")
    t, col, row = parse_s2_patch_name(name)
    if "acquisition_date" in meta and meta["acquisition_date"]:
        try:
            acq = parse_compact(str(meta["acquisition_date"]), "%Y-%m-%d %H:%M:%S")
        except ValueError as exc:
            raise TileError(f"{path}: bad acquisition_date {meta['acquisition_date']!r}") from exc
        if abs(acq - t) > TIME_TOLERANCE:
            raise TileError(
                f"{path}: acquisition_date {meta['acquisition_date']} disagrees with the patch "
                f"name's time {t:%Y-%m-%d %H:%M:%S}"
            )
    patch = Patch(name, col, row, tuple(labels), ulx, uly, lrx, lry)
    return _S2Record(path, patch, tile_id, epsg, t, src.removesuffix(".SAFE") or None)


def patch_dirs(root: Path) -> list[Path]:
    """Patch folders under ``root`` (flat v1.0 layout, or one level of tile folders)."""
    if (root / f"{root.name}{_JSON_SUFFIX}").is_file():
        return [root]
    dirs: list[Path] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        p = Path(entry.path)
        if S2_PATCH_NAME_RE.match(entry.name):
            dirs.append(p)
        elif (p / f"{entry.name}{_JSON_SUFFIX}").is_file():
            raise TileError(f"{p}: not a BigEarthNet-S2 patch name: {entry.name!r}")
        else:
            sub = [Path(e.path) for e in os.scandir(p) if e.is_dir() and not e.name.startswith(".")]
            if sub and all(S2_PATCH_NAME_RE.match(s.name) for s in sub):
                dirs.extend(sorted(sub))
            else:
                raise TileError(f"{p}: not a BigEarthNet-S2 patch folder: {entry.name!r}")
    return dirs


def read_s2_archive(
    root: str | os.PathLike[str], *, countries: bool | str | os.PathLike[str] = True
) -> list[TileAcquisition]:
    """Tile acquisitions of a BigEarthNet-S2 archive folder (patch folders with JSON metadata).

    Patches are grouped by (MGRS tile from ``tile_source``, overpass); the sensing time is the
    earliest patch-name time of the group. The grid's corner is derived from the patch
    coordinates (all patches must agree) and checked against :func:`mgrs_tile_origin`.
    ``countries``: True to look countries up in the bundled patch-name table, a path for
    another table, False to skip. Sorted by (tile_id, sensing_time).
    """
    root = Path(root)
    if not root.is_dir():
        raise TileError(f"BigEarthNet-S2 archive folder not found: {root}")
    dirs = patch_dirs(root)
    if not dirs:
        raise TileError(f"{root}: empty folder, no BigEarthNet-S2 patch folders")
    records: list[_S2Record] = []
    for d in dirs:
        js = d / f"{d.name}{_JSON_SUFFIX}"
        if not js.is_file():
            raise TileError(f"{d}: missing {js.name}")
        records.append(_read_s2_json(js, d.name))

    by_name: Mapping[str, str] = {}
    table: str | None = None
    if countries:
        table = table_path(None if countries is True else countries)
        by_name = country_index(table)

    out: list[TileAcquisition] = []
    for tile_id, members in overpasses(records, lambda r: r.tile_id, lambda r: r.time):
        group = sorted(members, key=lambda r: (r.patch.row, r.patch.col, r.patch.s2_name))
        out.append(_acquisition_from_records(tile_id, group, by_name))
    if table is not None:
        out = align_with_table(out, table)
    out.sort(key=lambda t: (t.tile_id, t.sensing_time))
    return out


def _acquisition_from_records(
    tile_id: str, group: list[_S2Record], countries: Mapping[str, str]
) -> TileAcquisition:
    epsg, mulx, muly = mgrs_tile_origin(tile_id)
    first = group[0]
    for r in group:
        if r.epsg != first.epsg:
            raise TileError(
                f"{r.path}: mixed CRS in tile {tile_id}: EPSG:{r.epsg} here, EPSG:{first.epsg} "
                f"in {first.path}"
            )
    if first.epsg != epsg:
        raise TileError(
            f"{first.path}: projection EPSG:{first.epsg} is not the CRS of MGRS tile {tile_id} "
            f"(EPSG:{epsg})"
        )
    ulx = first.patch.ulx - PATCH_M * first.patch.col
    uly = first.patch.uly + PATCH_M * first.patch.row
    seen: dict[tuple[int, int], Path] = {}
    for r in group:
        p = r.patch
        if (p.col, p.row) in seen:
            raise TileError(f"{r.path}: tile {tile_id} already has patch {p.col}_{p.row} ({seen[(p.col, p.row)]})")
        seen[(p.col, p.row)] = r.path
        if abs(p.ulx - PATCH_M * p.col - ulx) > 1e-6 or abs(p.uly + PATCH_M * p.row - uly) > 1e-6:
            raise TileError(
                f"{r.path}: coordinates ({p.ulx}, {p.uly}) are off the patch grid of tile "
                f"{tile_id} (corner ({ulx}, {uly}) from {first.path})"
            )
    if abs(ulx - mulx) > 60 or abs(uly - muly) > 60:
        raise TileError(
            f"{first.path}: patch grid corner ({ulx}, {uly}) does not belong to MGRS tile "
            f"{tile_id} (expected ({mulx}, {muly}))"
        )
    if (ulx, uly) != (mulx, muly):
        log.warning(
            "tile %s: patch grid corner (%s, %s) differs from the MGRS-derived corner (%s, %s); "
            "using the patches' corner",
            tile_id, ulx, uly, mulx, muly,
        )
    sensing = min(r.time for r in group)
    src = min(group, key=lambda r: r.time).tile_source
    patches = tuple(replace(r.patch, country=countries.get(r.patch.s2_name) or None) for r in group)
    return TileAcquisition(tile_id, sensing, src, MapGrid.tile(epsg, ulx, uly), patches)


def read_tiles(source: str | os.PathLike[str], *, tiles: Iterable[str] | None = None) -> list[TileAcquisition]:
    """Read a BigEarthNet-S2 archive folder, a patch-name table (.csv / .csv.bz2) or a reBEN
    source (``metadata.parquet``, a v2 folder: see ``bigearthnet_s1.reben``)."""
    p = Path(source)
    if reben.is_reben_source(p):
        return reben.read_reben(p, tiles=tiles)
    if p.is_dir():
        acqs = read_s2_archive(p)
        if tiles is not None:
            wanted = {t.upper().removeprefix("T") for t in tiles}
            acqs = [a for a in acqs if a.tile_id in wanted]
        return acqs
    if p.is_file():
        return read_patch_table(p, tiles=tiles)
    raise TileError(f"no BigEarthNet-S2 archive folder or patch-name table at {p}")
