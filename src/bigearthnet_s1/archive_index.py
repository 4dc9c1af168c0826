"""The archive's index: one row per patch, per tile (``index/<tile key>.parquet``) and merged.

A row says which S2 patch a patch pairs, from which scene (``scene_id``, ``s1_time``), how far
apart in time, how much of it is valid, its labels, split, country, reBEN names and flags,
layover/shadow pixel counts, where it lies (tile CRS corners, EPSG) and its square in WGS84 (WKB
``geometry``). Each tile writes its part atomically (workers never share a file);
:func:`merge_parts` combines them into ``index.parquet`` (GeoParquet, EPSG:4326) and
``patches.geojson``. Times are UTC, to the second.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bigearthnet_s1.acquisition import Patch, TileAcquisition
from bigearthnet_s1.atomic import atomic_path
from bigearthnet_s1.errors import ArchiveError, InputError, TileError
from bigearthnet_s1.mgrs import to_wgs84
from bigearthnet_s1.names import S2_PATCH_NAME_RE, SceneRef, parse_s2_patch_name, product_name, s2_product_time
from bigearthnet_s1.reben import v2_patch_id

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["INDEX_DIR", "INDEX_FILE", "GEOJSON_FILE", "index_row", "write_index_part", "merge_parts",
           "read_origins", "index_schema"]

INDEX_DIR = "index"
INDEX_FILE = "index.parquet"
GEOJSON_FILE = "patches.geojson"


def index_schema() -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("s", tz="UTC")
    return pa.schema(
        [
            ("s1_name", pa.string()),
            ("s2_name", pa.string()),
            ("scene_id", pa.string()),
            ("s1_time", ts),
            ("s2_time", ts),
            ("time_gap_hours", pa.float64()),
            ("valid_fraction", pa.float64()),
            ("labels", pa.list_(pa.string())),
            ("labels_known", pa.bool_()),
            ("split", pa.string()),
            ("country", pa.string()),
            ("tile_id", pa.string()),
            ("tile_key", pa.string()),
            ("col", pa.int16()),
            ("row", pa.int16()),
            ("epsg", pa.int32()),
            ("ulx", pa.float64()),
            ("uly", pa.float64()),
            ("lrx", pa.float64()),
            ("lry", pa.float64()),
            ("path", pa.string()),  # the patch folder, relative to the archive root
            ("patch_id", pa.string()),  # reBEN (v2) name of the S2 patch
            ("reben_s1_name", pa.string()),  # the S1 patch reBEN pairs with it, if known
            ("contains_seasonal_snow", pa.bool_()),
            ("contains_cloud_or_shadow", pa.bool_()),
            ("layover_px", pa.int32()),  # pixels of the patch in radar layover (null: not known)
            ("shadow_px", pa.int32()),  # pixels of the patch in radar shadow (null: not known)
            ("geometry", pa.binary()),  # WKB, WGS84 lon/lat
        ]
    )


def patch_geometries_wgs84(tile: TileAcquisition, patches: list[Patch]) -> list[Any]:
    """Patch squares in WGS84 lon/lat (corners only: a 1.2 km edge bends by millimetres),
    computed in one batch."""
    import shapely

    if not patches:
        return []
    bounds = np.array([p.bounds for p in patches], dtype=float)
    return list(to_wgs84(shapely.box(*bounds.T), tile.epsg, densify=0))


def _s2_time(s2_name: str) -> datetime:
    """Sensing time of an S2 patch name (parsed once per product time, not per patch)."""
    if not S2_PATCH_NAME_RE.match(s2_name):
        parse_s2_patch_name(s2_name)  # raises with the name in the message
    return s2_product_time(s2_name.rsplit("_", 2)[0])


def index_row(
    tile: TileAcquisition,
    patch: Patch,
    scene: SceneRef,
    s1_name: str,
    valid_fraction: float,
    geometry_wgs84: Any | None = None,
    path: str | None = None,
    flags: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One index row (JSON-safe except the WKB ``geometry`` bytes and datetimes). ``path``:
    the patch folder relative to the archive root (default: ``s1_name``, the v1 layout);
    ``flags``: the patch's pixels in radar layover and in shadow (None: not known)."""
    s2_time = _s2_time(patch.s2_name)
    gap = abs((scene.start_time - s2_time).total_seconds()) / 3600.0
    geom = geometry_wgs84 if geometry_wgs84 is not None else to_wgs84(patch.box, tile.epsg, densify=0)
    return {
        "s1_name": s1_name,
        "s2_name": patch.s2_name,
        "scene_id": product_name(scene.scene_id),
        "s1_time": scene.start_time.astimezone(UTC).replace(microsecond=0),
        "s2_time": s2_time,
        "time_gap_hours": gap,
        "valid_fraction": float(valid_fraction),
        "labels": list(patch.labels),
        "labels_known": bool(patch.labels_known),
        "split": patch.split,
        "country": patch.country,
        "tile_id": tile.tile_id,
        "tile_key": tile.key,
        "col": patch.col,
        "row": patch.row,
        "epsg": tile.epsg,
        "ulx": patch.ulx,
        "uly": patch.uly,
        "lrx": patch.lrx,
        "lry": patch.lry,
        "path": path or s1_name,
        "patch_id": _patch_id_or_none(tile, patch),
        "reben_s1_name": patch.v2.s1_name if patch.v2 is not None else None,
        "contains_seasonal_snow": patch.v2.contains_seasonal_snow if patch.v2 is not None else None,
        "contains_cloud_or_shadow": patch.v2.contains_cloud_or_shadow if patch.v2 is not None else None,
        "layover_px": flags[0] if flags is not None else None,
        "shadow_px": flags[1] if flags is not None else None,
        "geometry": geom.wkb,
    }


def _patch_id_or_none(tile: TileAcquisition, patch: Patch) -> str | None:
    try:
        return v2_patch_id(tile, patch)
    except (InputError, TileError):  # e.g. a mission whose S2 orbit phase is not modelled
        return None


def write_index_part(root: str | os.PathLike[str], tile_key: str, rows: list[dict[str, Any]]) -> Path:
    """Write ``index/<tile_key>.parquet`` atomically (plain Parquet, WKB geometry in WGS84)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    folder = root / INDEX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{tile_key}.parquet"
    table = pa.Table.from_pylist(rows, schema=index_schema())
    try:
        with atomic_path(path) as tmp:  # ".part": never matched by merge_index's *.parquet
            pq.write_table(table, tmp)
    except OSError as exc:
        raise ArchiveError(f"cannot write index part {path}: {exc}") from exc
    return path


def _write_geojson(gdf: Any, path: Path) -> None:
    # geopandas' __geo_interface__ gives a FeatureCollection; json keeps the file dependency-free
    # of the OGR GeoJSON driver options and writes it in one go.
    fc = gdf.to_geo_dict(drop_id=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(fc, fh, separators=(",", ":"), allow_nan=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not np.isfinite(o) else float(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def merge_parts(root: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Combine ``index/*.parquet`` into ``index.parquet`` (GeoParquet, EPSG:4326) and
    ``patches.geojson``; a patch listed by several parts keeps its last row. Returns the
    path of ``index.parquet`` and its rows (a pandas DataFrame, without geometry)."""
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    root = Path(root)
    parts = sorted((root / INDEX_DIR).glob("*.parquet"))
    if parts:
        table = pa.concat_tables([pq.read_table(p, schema=index_schema()) for p in parts])
    else:
        table = index_schema().empty_table()
    df = table.to_pandas()
    df = df.drop_duplicates("s1_name", keep="last").sort_values(["tile_key", "row", "col"])
    geometry = shapely.from_wkb(df.pop("geometry").to_numpy())
    gdf = gpd.GeoDataFrame(df.reset_index(drop=True), geometry=geometry, crs="EPSG:4326")
    out = root / INDEX_FILE
    try:
        with atomic_path(out) as tmp:
            gdf.to_parquet(tmp, index=False)
        gjdf = gdf.copy()
        for c in ("s1_time", "s2_time"):
            gjdf[c] = pd.to_datetime(gjdf[c]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        gjdf["labels"] = gjdf["labels"].map(lambda v: "; ".join(v) if v is not None else "")
        with atomic_path(root / GEOJSON_FILE) as tmp_gj:
            _write_geojson(gjdf, tmp_gj)
    except OSError as exc:
        raise ArchiveError(f"cannot write the archive index in {root}: {exc}") from exc
    return out, df


def read_origins(root: Path) -> dict[str, tuple[int, float, float]]:
    """s1_name -> (EPSG, ulx, uly) from the archive's ``index.parquet``, when it has one
    (an unreadable index is not a validator's subject: then nothing)."""
    p = root / INDEX_FILE
    if not p.is_file():
        return {}
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(p, columns=["s1_name", "epsg", "ulx", "uly"])
    except Exception:  # any Arrow or I/O failure: the caller falls back on the v1 grid
        return {}
    return {s: (int(e), float(x), float(y)) for s, e, x, y in zip(
        t["s1_name"].to_pylist(), t["epsg"].to_pylist(), t["ulx"].to_pylist(), t["uly"].to_pylist(), strict=True)}
