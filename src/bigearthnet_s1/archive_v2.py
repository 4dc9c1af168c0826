"""The BigEarthNet v2 (reBEN) output layout: writer, ``metadata.parquet`` and validator.

Layout (what reBEN's S1 archive and torchgeo's ``BigEarthNetV2`` use)::

    <archive>/BigEarthNet-S1/<S1 prefix>/<s1_name>/<s1_name>_VV.tif
                                                   <s1_name>_VH.tif
    <archive>/metadata.parquet

``s1_name`` is the v1 patch name (``S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48``), the S1
prefix is that name without tile, col and row (``S1A_IW_GRDH_1SDV_20170613T165043``). The
GeoTIFFs are byte for byte those of the v1 layout (``geotiff.geotiff_parts``); there is no
per-patch JSON: ``metadata.parquet`` carries everything, one row per S2 patch, with reBEN's
columns (``patch_id``, ``labels`` in the 19-class nomenclature, ``split``, ``country``,
``s1_name`` = this build's pairing, ``s2v1_name``, ``contains_seasonal_snow``,
``contains_cloud_or_shadow``) and the project's provenance columns (``scene_id``,
``s1_time``, ``s2_time`` UTC, ``time_gap_hours``, ``valid_fraction``, ``labels_known``).

Writes are atomic like v1's: each patch folder is assembled under a hidden temporary name in
its S1 prefix folder and renamed into place; complete patches are kept on re-runs;
``metadata.parquet`` is rebuilt from the archive index (``archive.merge_index``) and replaced
atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bigearthnet_s1.acquisition import Patch, TileAcquisition
from bigearthnet_s1.archive_index import read_origins
from bigearthnet_s1.atomic import atomic_path
from bigearthnet_s1.errors import ArchiveError, InputError, LabelError, TileError
from bigearthnet_s1.geotiff import check_geotiffs, geotiff_parts
from bigearthnet_s1.grid import PATCH_M
from bigearthnet_s1.labels import CLASSES_19, to_19
from bigearthnet_s1.mgrs import mgrs_tile_origin
from bigearthnet_s1.names import S1_PATCH_NAME_RE, SceneRef, parse_s1_patch_name, s1_patch_name
from bigearthnet_s1.patch_folder import check_patch_array, clean_temporaries, holds_files, write_patch_folder
from bigearthnet_s1.reben import METADATA_COLUMNS, METADATA_FILE, PATCH_ID_RE, S1_DIR, SPLITS, s1_prefix
from bigearthnet_s1.validation import ValidationReport, label_warnings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["S1_DIR", "METADATA_FILE", "PROVENANCE_COLUMNS", "patch_dir", "is_complete", "write_patch",
           "metadata_table", "write_metadata", "validate_v2"]

#: The project's columns after reBEN's in ``metadata.parquet``.
PROVENANCE_COLUMNS = ("scene_id", "s1_time", "s2_time", "time_gap_hours", "valid_fraction", "labels_known")


def _files(name: str) -> tuple[str, str]:
    return (f"{name}_VV.tif", f"{name}_VH.tif")


def patch_dir(root: str | os.PathLike[str], s1_name: str) -> Path:
    """``<root>/BigEarthNet-S1/<S1 prefix>/<s1_name>``."""
    return Path(root) / S1_DIR / s1_prefix(s1_name) / s1_name


def is_complete(folder: str | os.PathLike[str]) -> bool:
    """True if the v2 patch folder holds its two GeoTIFFs (non-empty; folders appear whole)."""
    d = os.fspath(folder)
    return holds_files(d, _files(os.path.basename(d)))


def write_patch(root: str | os.PathLike[str], tile: TileAcquisition, patch: Patch, scene: SceneRef,
                vv_db: np.ndarray, vh_db: np.ndarray, *, overwrite: bool = False, _checked: bool = False) -> Path:
    """Write one patch in the v2 layout atomically; return its folder.

    ``vv_db``/``vh_db``: (120, 120) backscatter in dB (float32 on disk, NaN no data), the same
    GeoTIFF bytes as the v1 writer. A complete patch is kept unless ``overwrite``.
    """
    name = s1_patch_name(scene.scene_id, tile.tile_id, patch.col, patch.row)
    parent = os.path.join(os.fspath(root), S1_DIR, s1_prefix(name))
    final = os.path.join(parent, name)
    if not overwrite and is_complete(final):
        return Path(final)
    vv = check_patch_array(vv_db, "VV", name, values=not _checked)
    vh = check_patch_array(vh_db, "VH", name, values=not _checked)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    else:
        clean_temporaries(parent)  # left by a killed writer in this prefix folder
    f_vv, f_vh = _files(name)
    write_patch_folder(parent, name, [
        (f_vv, geotiff_parts(vv, patch.ulx, patch.uly, tile.epsg)),
        (f_vh, geotiff_parts(vh, patch.ulx, patch.uly, tile.epsg)),
    ])
    return Path(final)


# --------------------------------------------------------------------------- metadata.parquet


def _schema() -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("s", tz="UTC")
    return pa.schema([
        ("patch_id", pa.string()), ("labels", pa.list_(pa.string())), ("split", pa.string()),
        ("country", pa.string()), ("s1_name", pa.string()), ("s2v1_name", pa.string()),
        ("contains_seasonal_snow", pa.bool_()), ("contains_cloud_or_shadow", pa.bool_()),
        ("scene_id", pa.string()), ("s1_time", ts), ("s2_time", ts), ("time_gap_hours", pa.float64()),
        ("valid_fraction", pa.float64()), ("labels_known", pa.bool_()),
    ])


def metadata_table(index: pd.DataFrame) -> pa.Table:
    """reBEN-style metadata of the archive's v2 patches from index rows (``archive`` index
    columns). Labels are given in the 19-class nomenclature (43-class labels are mapped with
    ``labels.to_19``); an unlabeled patch has ``labels`` [] and ``labels_known`` False."""
    import pyarrow as pa

    labels = []
    for s1, labs in zip(index["s1_name"], index["labels"], strict=True):
        try:
            labels.append(list(to_19(list(labs) if labs is not None else [])))
        except LabelError as exc:
            raise ArchiveError(f"patch {s1}: {exc}") from exc

    def col(name: str) -> list[Any]:
        return [None if _isna(v) else v for v in index[name].tolist()]

    known = [bool(v) if not _isna(v) else bool(labs) for v, labs in zip(col("labels_known"), labels, strict=True)]
    data = {
        "patch_id": col("patch_id"), "labels": labels, "split": col("split"), "country": col("country"),
        "s1_name": col("s1_name"), "s2v1_name": col("s2_name"),
        "contains_seasonal_snow": col("contains_seasonal_snow"),
        "contains_cloud_or_shadow": col("contains_cloud_or_shadow"),
        "scene_id": col("scene_id"), "s1_time": col("s1_time"), "s2_time": col("s2_time"),
        "time_gap_hours": col("time_gap_hours"), "valid_fraction": col("valid_fraction"), "labels_known": known,
    }
    missing = [s for s, p in zip(data["s1_name"], data["patch_id"], strict=True) if p is None]
    if missing:
        raise ArchiveError(f"patch {missing[0]} (and {len(missing) - 1} more) has no reBEN patch_id: "
                           "the S2 relative orbit could not be derived")
    return pa.Table.from_pydict(data, schema=_schema())


def _isna(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN / NaT
    except (TypeError, ValueError):  # arrays
        return False


def write_metadata(root: str | os.PathLike[str], index: pd.DataFrame) -> Path:
    """Write ``<root>/metadata.parquet`` from the index rows of the v2 patches (atomic)."""
    import pyarrow.parquet as pq

    path = Path(root) / METADATA_FILE
    table = metadata_table(index)
    try:
        with atomic_path(path, suffix=".part.parquet") as tmp:
            pq.write_table(table, tmp)
    except OSError as exc:
        raise ArchiveError(f"cannot write {path}: {exc}") from exc
    return path


# --------------------------------------------------------------------------- validation


def _expected_origin(name: str, coords: Mapping[str, tuple[int, float, float]]) -> tuple[int, float, float]:
    if name in coords:
        return coords[name]
    f = parse_s1_patch_name(name)
    epsg, ulx, uly = mgrs_tile_origin(f["tile_id"])
    return epsg, ulx + PATCH_M * f["col"], uly - PATCH_M * f["row"]


def validate_v2(root: str | os.PathLike[str], report: ValidationReport, *, workers: int = 4) -> None:
    """Check the v2 layout under ``root`` and add the results to ``report``.

    Checks: folder names (``BigEarthNet-S1/<S1 prefix>/<s1_name>`` with the prefix equal to
    the name's), exactly the two GeoTIFFs (as :func:`geotiff.check_geotiffs`, origin from the
    archive index or the v1 grid), a ``metadata.parquet`` with reBEN's and the provenance
    columns, one row per patch folder and a folder per row, ``patch_id`` of the same tile and
    col_row, ``labels`` 19-class names, ``split`` one of train/validation/test or empty.
    Unlabeled patches are a warning.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    s1_root = root / S1_DIR
    meta_path = root / METADATA_FILE
    rows: dict[str, dict[str, Any]] = {}
    meta_ok = False
    if not meta_path.is_file():
        report.bad.append((meta_path, [f"missing {METADATA_FILE}: the v2 layout keeps labels and pairing there"]))
    else:
        try:
            table = pq.read_table(meta_path)
        except (OSError, pa.ArrowException) as exc:
            report.bad.append((meta_path, [f"unreadable {METADATA_FILE}: {exc}"]))
        else:
            missing = [c for c in (*METADATA_COLUMNS, *PROVENANCE_COLUMNS) if c not in table.column_names]
            if missing:
                report.bad.append((meta_path, [f"missing column(s): {', '.join(missing)}"]))
            else:
                meta_ok = True
                dup: set[str] = set()
                for r in table.select(list(METADATA_COLUMNS) + ["labels_known"]).to_pylist():
                    if r["s1_name"] in rows:
                        dup.add(r["s1_name"])
                    rows[r["s1_name"]] = r
                if dup:
                    report.bad.append((meta_path, [f"duplicate s1_name rows: {', '.join(sorted(dup)[:5])}"]))
    coords = read_origins(root)
    dirs: list[Path] = []
    for prefix in sorted(os.scandir(s1_root), key=lambda e: e.name):
        if prefix.name.startswith("."):
            continue
        if not prefix.is_dir():
            report.bad.append((Path(prefix.path), [f"not an S1 prefix folder: a file in {S1_DIR}"]))
            continue
        for entry in sorted(os.scandir(prefix.path), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            dirs.append(Path(entry.path))

    def check(d: Path) -> tuple[list[str], list[str]]:
        name, reasons, warnings = d.name, [], []
        if not d.is_dir():
            return [f"not a patch folder: a file in {d.parent.name}"], []
        if not S1_PATCH_NAME_RE.match(name):
            return [f"bad folder name: {name!r} is not <S1 id>_<start>_<tile>_<col>_<row>"], []
        try:
            f = parse_s1_patch_name(name)
        except TileError as exc:
            return [f"bad folder name: {exc}"], []
        if s1_prefix(name) != d.parent.name:
            reasons.append(f"bad prefix folder: {d.parent.name}, expected {s1_prefix(name)}")
        expected = set(_files(name))
        try:
            present = {e.name for e in os.scandir(d)}
        except OSError as exc:
            return [f"unreadable folder: {exc}"], []
        reasons += [f"missing file: {x}" for x in sorted(expected - present)]
        reasons += [f"unexpected file: {x}" for x in sorted(present - expected)]
        epsg, ulx, uly = _expected_origin(name, coords)
        check_geotiffs(d, [x for x in _files(name) if x in present], {"ulx": ulx, "uly": uly}, epsg, reasons)
        if meta_ok:
            r = rows.get(name)
            if r is None:
                reasons.append(f"not in {METADATA_FILE}")
            else:
                m = PATCH_ID_RE.match(str(r["patch_id"]))
                if not m or m["tile"] != f["tile_id"] or (int(m["col"]), int(m["row"])) != (f["col"], f["row"]):
                    reasons.append(f"bad patch_id: {r['patch_id']!r} is not the S2 patch of {name}")
                labs = r["labels"]
                if not isinstance(labs, list) or not all(isinstance(x, str) for x in labs):
                    reasons.append("bad labels: not a list of strings")
                else:
                    unknown = [x for x in labs if x not in CLASSES_19]
                    if unknown:
                        reasons.append(f"bad labels: not 19-class names: {', '.join(unknown[:3])}")
                    elif r.get("labels_known") is False or not labs:
                        warnings.append(label_warnings([], layout="v2")[0])
                if r["split"] is not None and r["split"] not in SPLITS:
                    reasons.append(f"bad split: {r['split']!r}, expected one of {', '.join(SPLITS)} or empty")
        return reasons, warnings

    report.check_all(dirs, check, workers)
    if meta_ok:
        seen = {d.name for d in dirs}
        for name in sorted(set(rows) - seen):
            try:
                where = patch_dir(root, name)
            except InputError:  # a malformed s1_name: name the metadata file instead
                where = meta_path
            report.bad.append((where, [f"listed in {METADATA_FILE} but missing"]))
