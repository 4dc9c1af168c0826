"""The BigEarthNet-S1 v1.0 archive writer, index and validator.

One folder per patch, ``<S1 short id>_<S1 start>_<MGRS tile>_<col>_<row>/`` holding
``..._VV.tif``, ``..._VH.tif`` (float32 backscatter in dB, 120 x 120 px, 1 band, striped, no
compression, no nodata tag, tile UTM CRS, transform ``(10, 0, ulx, 0, -10, uly)``, pixel
corners) and ``..._labels_metadata.json`` (one line; keys ``labels``, ``coordinates``
``{ulx, uly, lrx, lly}``, ``projection``, ``corresponding_s2_patch``, ``scene_source``,
``acquisition_time``), exactly as the real archive has them: the files written here are
byte-identical to the real example patches given the same values.

Writes are atomic: a patch is assembled in a hidden temporary folder beside its final place
and renamed into place, so a patch appears whole or not at all; re-running skips complete
patches. Each tile writes an index part ``index/<tile key>.parquet``; :func:`merge_index`
combines the parts into ``index.parquet`` (GeoParquet) and ``patches.geojson``.
"""


from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from bigearthnet_s1 import archive_v2, splits
from bigearthnet_s1._time import format_iso, parse_compact
from bigearthnet_s1.acquisition import Patch, TileAcquisition
from bigearthnet_s1.archive_index import (
    GEOJSON_FILE,
    INDEX_DIR,
    INDEX_FILE,
    index_row,
    merge_parts,
    patch_geometries_wgs84,
    write_index_part,
)
from bigearthnet_s1.errors import ArchiveError, TileError
from bigearthnet_s1.geotiff import check_geotiffs, geotiff_parts, utm_wkt
from bigearthnet_s1.grid import PATCH_M, PATCH_PX
from bigearthnet_s1.names import (
    PRODUCT_NAME_RE,
    S1_PATCH_NAME_RE,
    S2_PATCH_NAME_RE,
    SceneRef,
    parse_s1_patch_name,
    product_name,
    s1_patch_name,
)
from bigearthnet_s1.patch_folder import check_patch_array, clean_temporaries, holds_files, write_patch_folder
from bigearthnet_s1.validation import ValidationReport, label_warnings

log = logging.getLogger(__name__)

JSON_KEYS = (
    "labels",
    "coordinates",
    "projection",
    "corresponding_s2_patch",
    "scene_source",
    "acquisition_time",
)
COORD_KEYS = ("ulx", "uly", "lrx", "lly")  # sic: v1.0 writes "lly" for the lower-right y
POLARISATIONS = ("VV", "VH")
#: Output layouts: BigEarthNet-S1 v1.0 (default) and BigEarthNet v2 / reBEN.
LAYOUTS = ("v1", "v2")


# --------------------------------------------------------------------------- v1.0 patch: JSON and folder


def _coord(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def patch_metadata(tile: TileAcquisition, patch: Patch, scene: SceneRef) -> dict[str, Any]:
    """The ``_labels_metadata.json`` content of a patch, keys in the v1.0 order."""
    return {
        "labels": list(patch.labels),
        "coordinates": {
            "ulx": _coord(patch.ulx),
            "uly": _coord(patch.uly),
            "lrx": _coord(patch.lrx),
            "lly": _coord(patch.lry),
        },
        "projection": utm_wkt(tile.epsg),
        "corresponding_s2_patch": patch.s2_name,
        "scene_source": product_name(scene.scene_id),
        "acquisition_time": format_iso(scene.start_time, timespec="seconds", zone=""),
    }


def encode_metadata(meta: Mapping[str, Any]) -> bytes:
    """The bytes of a ``_labels_metadata.json``: one line, json's default separators, ASCII
    escapes, no trailing newline, as v1.0 has them (used by the writer and ``relabel``)."""
    return json.dumps(meta).encode("ascii")


def _patch_files(name: str) -> tuple[str, str, str]:
    return (f"{name}_VV.tif", f"{name}_VH.tif", f"{name}_labels_metadata.json")


def is_complete(patch_dir: str | os.PathLike[str]) -> bool:
    """True if the patch folder holds its three files (non-empty). Folders only appear
    complete (atomic rename), so this is a cheap check, not a validation."""
    d = os.fspath(patch_dir)
    return holds_files(d, _patch_files(os.path.basename(d)))


def write_patch(
    root: str | os.PathLike[str],
    tile: TileAcquisition,
    patch: Patch,
    scene: SceneRef,
    vv_db: np.ndarray,
    vh_db: np.ndarray,
    *,
    overwrite: bool = False,
    _checked: bool = False,
) -> Path:
    """Write one patch folder atomically; return its path.

    ``vv_db``/``vh_db``: (120, 120) backscatter in dB (stored as float32; NaN = no data, kept
    as is, v1.0 has no nodata tag; infinite values or a band without any valid pixel are an
    ArchiveError). An existing complete patch is kept unless ``overwrite``.
    """
    # plain str paths in this hot loop: pathlib costs as much as the writes on tmpfs
    root_s = os.fspath(root)
    name = s1_patch_name(scene.scene_id, tile.tile_id, patch.col, patch.row)
    final = os.path.join(root_s, name)
    if not overwrite and is_complete(final):
        return Path(final)
    vv = check_patch_array(vv_db, "VV", name, values=not _checked)
    vh = check_patch_array(vh_db, "VH", name, values=not _checked)
    meta = patch_metadata(tile, patch, scene)
    f_vv, f_vh, f_js = _patch_files(name)
    write_patch_folder(root_s, name, [
        (f_vv, geotiff_parts(vv, patch.ulx, patch.uly, tile.epsg)),
        (f_vh, geotiff_parts(vh, patch.ulx, patch.uly, tile.epsg)),
        (f_js, (encode_metadata(meta),)),
    ])
    return Path(final)


# --------------------------------------------------------------------------- a tile's patches, either layout


def write_tile_patches(
    root: str | os.PathLike[str],
    tile: TileAcquisition,
    vv_db: np.ndarray,
    vh_db: np.ndarray,
    *,
    window: Window,
    patch_scenes: Mapping[str, SceneRef],
    valid_fraction: Mapping[str, float] | None = None,
    overwrite: bool = False,
    layout: str = "v1",
    layover_shadow: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Write the patches of ``tile`` from arrays covering ``window`` of the tile grid.

    ``layout``: "v1" (BigEarthNet-S1 v1.0: one folder per patch at the root, with its JSON)
    or "v2" (reBEN: ``BigEarthNet-S1/<S1 prefix>/<s1_name>/``, the same GeoTIFFs, no JSON; see
    ``bigearthnet_s1.archive_v2``).

    ``vv_db``/``vh_db``: dB values (float, NaN = no data) with shape (window.height,
    window.width); ``window`` in tile-grid pixels, aligned anywhere on the grid. Patches not in
    ``patch_scenes`` (S2 name -> scene) are skipped, and so are patches without any valid
    pixel in VV or VH (logged); a patch not fully inside the window is an error. Existing
    complete patches are kept (unless ``overwrite``). ``valid_fraction`` defaults to the
    fraction of pixels finite in both bands. ``layover_shadow``: uint8 flags over the window
    (bit 1 layover, bit 2 shadow; ``layover.layover_shadow_mask``), counted per patch into
    the index columns ``layover_px``/``shadow_px`` (null without it). The tile's index part
    ``index/<tile.key>.parquet`` is written atomically; its rows are returned.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise ArchiveError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    vv_db = np.asarray(vv_db)
    vh_db = np.asarray(vh_db)
    c0, r0 = int(window.col_off), int(window.row_off)
    h, w = int(window.height), int(window.width)
    if (c0, r0, w, h) != (window.col_off, window.row_off, window.width, window.height):
        raise ArchiveError(f"tile {tile.key}: window {window} is not on whole pixels")
    if vv_db.shape != (h, w) or vh_db.shape != (h, w):
        raise ArchiveError(
            f"tile {tile.key}: arrays {vv_db.shape}/{vh_db.shape} do not match window {h}x{w}"
        )
    if layover_shadow is not None and np.shape(layover_shadow) != (h, w):
        raise ArchiveError(f"tile {tile.key}: layover/shadow flags {np.shape(layover_shadow)} do not match window {h}x{w}")
    clean_temporaries(root)
    # finiteness once for the whole window (per-patch checks would repeat it 3 times)
    fin_vv, fin_vh = np.isfinite(vv_db), np.isfinite(vh_db)
    for band, arr, fin in (("VV", vv_db, fin_vv), ("VH", vh_db, fin_vh)):
        if not fin.all() and np.isinf(arr[~fin]).any():
            r, c = (int(v[0]) for v in np.nonzero(np.isinf(arr)))
            raise ArchiveError(
                f"tile {tile.key}: {band} has infinite dB values (first at window row {r}, col {c}; "
                "log of zero power? floor them or set them to NaN)"
            )
    todo = [p for p in tile.patches if p.s2_name in patch_scenes]
    geoms = patch_geometries_wgs84(tile, todo)
    rows: list[dict[str, Any]] = []
    for patch, geom in zip(todo, geoms, strict=True):
        scene = patch_scenes[patch.s2_name]
        pc, pr = PATCH_PX * patch.col - c0, PATCH_PX * patch.row - r0
        if pc < 0 or pr < 0 or pc + PATCH_PX > w or pr + PATCH_PX > h:
            raise ArchiveError(
                f"tile {tile.key}: patch {patch.s2_name} (col {patch.col}, row {patch.row}) is "
                f"outside the window {window}"
            )
        sl = np.s_[pr : pr + PATCH_PX, pc : pc + PATCH_PX]
        f_vv, f_vh = fin_vv[sl], fin_vh[sl]
        if not (f_vv.any() and f_vh.any()):
            log.warning("tile %s: patch %s has no valid pixel in VV or VH, not written", tile.key, patch.s2_name)
            continue
        if layout == "v2":
            path = archive_v2.write_patch(root, tile, patch, scene, vv_db[sl], vh_db[sl], overwrite=overwrite,
                                          _checked=True)
        else:
            path = write_patch(root, tile, patch, scene, vv_db[sl], vh_db[sl], overwrite=overwrite, _checked=True)
        vf = valid_fraction.get(patch.s2_name) if valid_fraction is not None else None
        if vf is None:
            vf = float(np.count_nonzero(f_vv & f_vh)) / f_vv.size
        flags = None
        if layover_shadow is not None:
            ls = np.asarray(layover_shadow)[sl]
            flags = (int(np.count_nonzero(ls & 1)), int(np.count_nonzero(ls & 2)))
        rows.append(index_row(tile, patch, scene, path.name, vf, geom, path=path.relative_to(root).as_posix(),
                              flags=flags))
    write_index_part(root, tile.key, rows)
    return rows


def merge_index(root: str | os.PathLike[str]) -> Path:
    """Combine the tiles' index parts into ``index.parquet`` and ``patches.geojson``
    (:func:`archive_index.merge_parts`), then write what the ML loaders read. Returns the path
    of ``index.parquet``."""
    root = Path(root)
    out, df = merge_parts(root)
    _write_loader_files(root, df)
    return out


def _write_loader_files(root: Path, df: Any) -> None:
    """What the ML loaders read besides the patches: reBEN's ``metadata.parquet`` when the
    archive has v2-layout patches; torchgeo's split CSVs when v1 patches have a known split."""
    paths = df["path"].fillna(df["s1_name"]).astype(str)
    v2 = paths.str.startswith(archive_v2.S1_DIR + "/")
    if v2.any():
        archive_v2.write_metadata(root, df[v2.to_numpy()])
    splits.write_split_files(root, df[~v2.to_numpy()])


# --------------------------------------------------------------------------- validation


def validate_archive(root: str | os.PathLike[str], *, workers: int = 4) -> ValidationReport:
    """Check every patch folder under ``root`` against the BigEarthNet-S1 v1.0 format.

    Checks: folder name pattern; the three files present and nothing else; JSON one object
    with keys in v1.0 order, coordinates ``{ulx, uly, lrx, lly}`` of a 1200 m square, labels a
    list of strings, S2 name/scene id/acquisition time consistent with the folder name; each
    GeoTIFF 1 band float32 120 x 120, uncompressed, no nodata tag, CRS = the JSON projection
    and a WGS84 UTM zone, transform (10, 0, ulx, 0, -10, uly); values finite where not NaN
    and at least one valid pixel. Hidden entries, ``index/``, the index files and the split
    CSVs are skipped; a ``BigEarthNet-S1/`` folder is checked as the v2 (reBEN) layout with
    its ``metadata.parquet`` (``archive_v2.validate_v2``).

    Warnings (the patch still counts as ok): no labels (``labels`` empty: no label source
    knew the patch), names outside both BigEarthNet nomenclatures, 19-class names in a v1
    JSON (torchgeo's ``BigEarthNet`` reads 43-class names).
    """
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"archive folder not found: {root}")
    dirs: list[Path] = []
    report = ValidationReport(root)
    skip = {INDEX_DIR, INDEX_FILE, GEOJSON_FILE, archive_v2.METADATA_FILE, archive_v2.S1_DIR,
            *splits.SPLIT_FILES.values()}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name in skip:
            continue
        if not entry.is_dir():
            report.bad.append((Path(entry.path), ["not a patch folder: a file in the archive root"]))
            continue
        dirs.append(Path(entry.path))
    v2 = (root / archive_v2.S1_DIR).is_dir()
    if not dirs and not report.bad and not v2:
        raise ArchiveError(f"{root}: no patch folders")
    if dirs or not v2:
        report.layouts.append("v1")
    report.check_all(dirs, _check_patch, workers)
    if v2:
        report.layouts.append("v2")
        archive_v2.validate_v2(root, report, workers=workers)
    report.bad.sort(key=lambda b: b[0].name)
    return report


def check_patch(patch_dir: Path) -> list[str]:
    """Reasons why ``patch_dir`` is not a valid BigEarthNet-S1 v1.0 patch (empty if valid)."""
    return _check_patch(patch_dir)[0]


def _check_patch(patch_dir: Path) -> tuple[list[str], list[str]]:
    """(reasons the patch is invalid, warnings) for a v1.0 patch folder."""
    name = patch_dir.name
    reasons: list[str] = []
    warnings: list[str] = []
    m = S1_PATCH_NAME_RE.match(name)
    if not m:
        return [f"bad folder name: {name!r} is not <S1 id>_<start>_<tile>_<col>_<row>"], warnings
    try:  # the pattern lets through dates that do not exist and col/row beyond 90
        parse_s1_patch_name(name)
    except TileError as exc:
        return [f"bad folder name: {exc}"], warnings
    expected = set(_patch_files(name))
    try:
        present = {e.name for e in os.scandir(patch_dir)}
    except OSError as exc:
        return [f"unreadable folder: {exc}"], warnings
    for f in sorted(expected - present):
        reasons.append(f"missing file: {f}")
    for f in sorted(present - expected):
        reasons.append(f"unexpected file: {f}")

    f_vv, f_vh, f_js = _patch_files(name)
    coords: dict[str, float] | None = None
    epsg_json: int | None = None
    if f_js in present:
        try:
            text = (patch_dir / f_js).read_text(encoding="utf-8")
            meta = json.loads(text)
        except (OSError, ValueError) as exc:
            meta = None
            reasons.append(f"bad JSON: {exc}")
        if meta is not None:
            if "\n" in text.strip():
                reasons.append("bad JSON layout: not one line")
            coords, epsg_json = _check_meta(meta, m, reasons)
            if isinstance(meta, dict):
                warnings.extend(label_warnings(meta.get("labels")))
    check_geotiffs(patch_dir, [f for f in (f_vv, f_vh) if f in present], coords, epsg_json, reasons)
    return reasons, warnings


def _check_meta(
    meta: Any, name_match: re.Match[str], reasons: list[str]
) -> tuple[dict[str, float] | None, int | None]:
    if not isinstance(meta, dict):
        reasons.append("bad JSON: not an object")
        return None, None
    keys = list(meta)
    for k in JSON_KEYS:
        if k not in meta:
            reasons.append(f"missing JSON key: {k}")
    extra = [k for k in keys if k not in JSON_KEYS]
    if extra:
        reasons.append(f"unexpected JSON key: {', '.join(extra)}")
    if not extra and len(keys) == len(JSON_KEYS) and tuple(keys) != JSON_KEYS:
        reasons.append(f"bad JSON key order: {keys}")
    labels = meta.get("labels")
    if "labels" in meta and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        reasons.append("bad labels: not a list of strings")
    coords = None
    c = meta.get("coordinates")
    if "coordinates" in meta:
        if not isinstance(c, dict) or tuple(c) != COORD_KEYS:
            reasons.append(f"bad coordinates: keys {list(c) if isinstance(c, dict) else c}, expected {list(COORD_KEYS)}")
        elif not all(isinstance(c[k], (int, float)) and math.isfinite(c[k]) for k in COORD_KEYS):
            reasons.append("bad coordinates: not finite numbers")
        else:
            coords = {k: float(c[k]) for k in COORD_KEYS}
            if not (
                math.isclose(coords["lrx"] - coords["ulx"], PATCH_M)
                and math.isclose(coords["uly"] - coords["lly"], PATCH_M)
            ):
                reasons.append("bad coordinates: not a 1200 m square")
    epsg = None
    if "projection" in meta:
        from rasterio.crs import CRS

        try:
            epsg = CRS.from_wkt(str(meta["projection"])).to_epsg()
        except Exception:  # rasterio.errors.CRSError and friends
            epsg = None
        if epsg is None or not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
            reasons.append("bad projection: not a WGS 84 / UTM zone")
            epsg = None
    s2 = meta.get("corresponding_s2_patch")
    if "corresponding_s2_patch" in meta:
        m2 = S2_PATCH_NAME_RE.match(str(s2))
        if not m2:
            reasons.append(f"bad corresponding_s2_patch: {s2!r}")
        elif (int(m2.group("col")), int(m2.group("row"))) != (
            int(name_match.group("col")),
            int(name_match.group("row")),
        ):
            reasons.append(f"bad corresponding_s2_patch: {s2} is not at the folder's col/row")
    src = meta.get("scene_source")
    if "scene_source" in meta:
        ms = PRODUCT_NAME_RE.match(str(src))
        if not ms:
            reasons.append(f"bad scene_source: {src!r}")
        elif f"{ms.group('short')}_{ms.group('start')}" != f"{name_match.group('short')}_{name_match.group('time')}":
            reasons.append(f"bad scene_source: {src} does not match the folder name")
    if "acquisition_time" in meta:
        expected = format_iso(parse_compact(name_match.group("time")), timespec="seconds", zone="")
        if meta["acquisition_time"] != expected:
            reasons.append(f"bad acquisition_time: {meta['acquisition_time']!r}, expected {expected!r}")
    return coords, epsg


def read_patch_arrays(patch_dir: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """VV and VH arrays (dB, float32) of a patch folder, read with rasterio."""
    import rasterio

    d = Path(patch_dir)
    out = {}
    for pol in POLARISATIONS:
        with rasterio.open(d / f"{d.name}_{pol}.tif") as ds:
            out[pol] = ds.read(1)
    return out


def iter_patch_dirs(root: str | os.PathLike[str]) -> Iterable[Path]:
    """Patch folders of an archive (names matching the S1 patch pattern), sorted."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and S1_PATCH_NAME_RE.match(entry.name):
            yield Path(entry.path)
