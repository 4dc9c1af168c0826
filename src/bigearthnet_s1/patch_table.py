"""The S1/S2 patch-name table of BigEarthNet v1.0 as an S2 source.

``s1_s2_name_country_season.csv(.bz2)``, shipped with ``bigearthnet-common``: one row per
patch (S1 name, S2 name, country, season), 590,326 rows, no coordinates: the tile comes from
the S1 name's tile field, its grid from :func:`bigearthnet_s1.mgrs.mgrs_tile_origin`, patch
squares from (col, row). Also the country of any v1 patch, and the sensing times other sources
align with (:func:`align_with_table`).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bigearthnet_s1._time import format_compact
from bigearthnet_s1.acquisition import Patch, TileAcquisition, overpasses
from bigearthnet_s1.errors import TileError
from bigearthnet_s1.grid import PATCH_M, MapGrid
from bigearthnet_s1.mgrs import mgrs_tile_origin
from bigearthnet_s1.names import S1_PATCH_NAME_RE, S2_PATCH_NAME_RE, s2_product_time

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _load_table(path: str) -> Any:  # -> pyarrow.Table with s1_name, s2_name, country
    """The patch-name table's three used columns (cached; ~1.5 s for the 590 326 rows).

    bz2 is decompressed in one go and parsed by pyarrow's multithreaded CSV reader: pandas'
    C parser on the bz2 stream takes twice as long.
    """
    import bz2

    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if path.endswith(".bz2"):
            raw = bz2.decompress(raw)
        table = pacsv.read_csv(
            pa.py_buffer(raw),
            convert_options=pacsv.ConvertOptions(
                include_columns=["s1_name", "s2_name", "country"],
                column_types={"s1_name": pa.string(), "s2_name": pa.string(), "country": pa.string()},
            ),
        )
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise TileError(f"cannot read the patch-name table {path}: {exc}") from exc
    return table


def table_path(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        from bigearthnet_s1.samples import patch_name_table

        path = patch_name_table()
    p = Path(path)
    if not p.is_file():
        raise TileError(f"patch-name table not found: {p}")
    return str(p.resolve())


@functools.lru_cache(maxsize=4)
def country_index(path: str) -> dict[str, str]:
    t = _load_table(path)
    return {
        s2: c
        for s2, c in zip(t["s2_name"].to_pylist(), t["country"].to_pylist(), strict=True)
        if c
    }


def country_of(s2_name: str, table: str | os.PathLike[str] | None = None) -> str | None:
    """Country of a BigEarthNet-S2 patch according to the patch-name table (None if unknown)."""
    return country_index(table_path(table)).get(s2_name)


def read_patch_table(
    path: str | os.PathLike[str] | None = None, *, tiles: Iterable[str] | None = None
) -> list[TileAcquisition]:
    """Tile acquisitions from the S1/S2 patch-name table (``s1_s2_name_country_season.csv``).

    ``path`` defaults to the table bundled with bigearthnet-common (.csv or .csv.bz2). The
    table has no coordinates: the tile comes from the S1 name's tile field, the grid from
    :func:`mgrs_tile_origin`, patch coordinates from (col, row); labels are unknown (empty,
    ``labels_known`` False: see ``bigearthnet_s1.labels`` for sources), the country is the
    table's. ``tiles`` keeps only those MGRS tiles (none if empty). Sorted by
    (tile_id, sensing_time); patches by (row, col).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    tpath = table_path(path)
    t = _load_table(tpath)
    if tiles is not None:
        wanted = sorted({x.upper().removeprefix("T") for x in tiles})
        if not wanted:  # an empty selection keeps nothing (as read_tiles does for a folder)
            return []
        # the tile field sits between the S1 start time and col_row: match it as a substring
        mask = None
        for w in wanted:
            m = pc.match_substring(t["s1_name"], f"_{w}_")
            mask = m if mask is None else pc.or_(mask, m)
        t = t.filter(mask)
        if t.num_rows == 0:
            raise TileError(f"{tpath}: no patch of tile(s) {', '.join(wanted)}")
    s1 = pc.extract_regex(t["s1_name"], S1_PATCH_NAME_RE.pattern)
    s2 = pc.extract_regex(t["s2_name"], S2_PATCH_NAME_RE.pattern)
    bad = pc.or_(pc.is_null(s1), pc.is_null(s2)).to_numpy(zero_copy_only=False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TileError(
            f"{tpath}: malformed patch name in data row {i + 1} "
            f"({t['s1_name'][i].as_py()!r}, {t['s2_name'][i].as_py()!r})"
        )

    def field_np(struct: pa.ChunkedArray, name: str) -> np.ndarray:
        return pc.struct_field(struct, name).to_numpy(zero_copy_only=False)

    tile_ids = field_np(s1, "tile")
    cols = field_np(s2, "col").astype(np.int16)
    rows = field_np(s2, "row").astype(np.int16)
    mismatch = (cols != field_np(s1, "col").astype(np.int16)) | (
        rows != field_np(s1, "row").astype(np.int16)
    )
    if mismatch.any():
        i = int(np.flatnonzero(mismatch)[0])
        raise TileError(f"{tpath}: data row {i + 1}: S1 and S2 names disagree on col/row")
    stamps = pc.binary_join_element_wise(
        pc.struct_field(s2, "date"), pc.struct_field(s2, "time"), "T"
    ).to_numpy(zero_copy_only=False)
    s2_names = t["s2_name"].to_numpy(zero_copy_only=False)
    countries = t["country"].to_numpy(zero_copy_only=False)

    # Distinct (tile, name time) pairs are few (~160): cluster those into overpasses.
    pair_keys = np.char.add(np.char.add(tile_ids.astype(str), "|"), stamps.astype(str))
    uniq, inverse = np.unique(pair_keys, return_inverse=True)
    pairs: list[tuple[int, str, datetime]] = []  # (pair, tile, time)
    for k, key in enumerate(uniq):
        tile_id, stamp = key.split("|")
        # a full name for the parser's messages and checks (parsed once per stamp: cached)
        pairs.append((k, tile_id, s2_product_time(f"S2A_MSIL2A_{stamp}")))
    pair_acq = np.empty(len(uniq), dtype=np.int32)
    acq_meta: list[tuple[str, datetime]] = []
    for tile_id, members in overpasses(pairs, lambda p: p[1], lambda p: p[2]):
        pair_acq[[m[0] for m in members]] = len(acq_meta)
        acq_meta.append((tile_id, min(m[2] for m in members)))
    acq_of_row = pair_acq[inverse]

    order = np.lexsort((cols, rows, acq_of_row))
    acq_sorted = acq_of_row[order]
    cell = acq_sorted.astype(np.int64) * 10_000 + rows[order] * 100 + cols[order]
    dup = np.flatnonzero(cell[1:] == cell[:-1])
    if dup.size:
        i = order[dup[0] + 1]
        tile_id, sensing = acq_meta[acq_sorted[dup[0] + 1]]
        raise TileError(
            f"{tpath}: tile {tile_id} at {format_compact(sensing)} has two patches at col "
            f"{cols[i]}, row {rows[i]} (second: {s2_names[i]})"
        )
    bounds = np.searchsorted(acq_sorted, np.arange(len(acq_meta) + 1))
    # 590 326 small objects: the cyclic GC would rescan them again and again (half the time)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        out = _build_table_acquisitions(acq_meta, order, bounds, cols, rows, s2_names, countries)
    finally:
        if gc_was_enabled:
            gc.enable()
    out.sort(key=lambda x: (x.tile_id, x.sensing_time))
    return out


def _build_table_acquisitions(
    acq_meta: list[tuple[str, datetime]],
    order: np.ndarray,
    bounds: np.ndarray,
    cols: np.ndarray,
    rows: np.ndarray,
    s2_names: np.ndarray,
    countries: np.ndarray,
) -> list[TileAcquisition]:
    out: list[TileAcquisition] = []
    for a, (tile_id, sensing) in enumerate(acq_meta):
        epsg, tulx, tuly = mgrs_tile_origin(tile_id)
        sel = order[bounds[a] : bounds[a + 1]]
        c_sel = cols[sel].tolist()
        r_sel = rows[sel].tolist()
        ulxs = (tulx + PATCH_M * cols[sel]).tolist()
        ulys = (tuly - PATCH_M * rows[sel]).tolist()
        patches = tuple(
            Patch(n, c, r, (), x, y, x + PATCH_M, y - PATCH_M, co or None, labels_known=False)
            for n, c, r, x, y, co in zip(
                s2_names[sel].tolist(), c_sel, r_sel, ulxs, ulys, countries[sel].tolist(), strict=True
            )
        )
        out.append(TileAcquisition(tile_id, sensing, None, MapGrid.tile(epsg, tulx, tuly), patches))
    return out


def align_with_table(acqs: list[TileAcquisition], tpath: str) -> list[TileAcquisition]:
    """Give each acquisition whose patches the patch-name table lists the table's sensing time.

    Patch-name times of one overpass differ by a few seconds and the sensing time is the
    earliest of them, so a folder holding a subset of an acquisition's patches would get a
    later time, and another key, than the same acquisition read from the table. Acquisitions
    the table does not hold (new S2 tiles) keep their own time."""
    index = country_index(tpath)  # every S2 name of the table
    names = {p.s2_name for a in acqs for p in a.patches}
    known = sorted({a.tile_id for a in acqs if any(p.s2_name in index for p in a.patches)})
    if not known:
        return acqs
    table = [t for t in read_patch_table(tpath, tiles=known) if any(p.s2_name in names for p in t.patches)]
    out = []
    for a in acqs:
        mine = {p.s2_name for p in a.patches}
        match = [t for t in table if t.tile_id == a.tile_id and mine <= {p.s2_name for p in t.patches}]
        if len(match) == 1 and match[0].sensing_time != a.sensing_time:
            log.debug("tile %s: sensing time %s from the patch-name table (folder: %s)",
                      a.tile_id, match[0].sensing_time, a.sensing_time)
            a = replace(a, sensing_time=match[0].sensing_time)
        out.append(a)
    return out
