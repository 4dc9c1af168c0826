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

import functools
import json
import logging
import math
import os
import re
import shutil
import socket
import struct
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.windows import Window

from bigearthnet_s1._time import format_iso, parse_compact, parse_iso, require_utc
from bigearthnet_s1.atomic import atomic_path
from bigearthnet_s1.errors import ArchiveError, InputError, TileError
from bigearthnet_s1.tiles import (
    MAX_PATCH_INDEX,
    PATCH_M,
    PATCH_PX,
    RESOLUTION,
    S1_NAME_RE,
    S2_NAME_RE,
    Patch,
    TileAcquisition,
    parse_s1_name,
    parse_s2_name,
    s2_product_time,
    to_wgs84,
)

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: ESA product id of a Sentinel-1 scene (no .SAFE / .zip)
SCENE_ID_RE = re.compile(
    r"^(?P<short>(?P<mission>S1[A-D])_(?P<mode>IW|EW|SM|S[1-6]|WV)_(?P<type>GRD[HMF]|SLC_|RAW_|OCN_)_"
    r"(?P<level>[0-9])(?P<klass>[SA])(?P<pol>SH|SV|DH|DV|HH|HV|VV|VH))"
    r"_(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})"
    r"_(?P<crc>[0-9A-F]{4})$"
)
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
INDEX_DIR = "index"
INDEX_FILE = "index.parquet"
GEOJSON_FILE = "patches.geojson"
#: Output layouts: BigEarthNet-S1 v1.0 (default) and BigEarthNet v2 / reBEN.
LAYOUTS = ("v1", "v2")
_TMP_MARK = ".tmp-"


# --------------------------------------------------------------------------- names and scenes


@dataclass(frozen=True)
class SceneRef:
    """A Sentinel-1 scene that supplies patches: its product id (no ``.SAFE``) and start time (UTC)."""

    scene_id: str
    start_time: datetime

    def __post_init__(self) -> None:
        if not SCENE_ID_RE.match(self.scene_id):
            raise ArchiveError(f"not a Sentinel-1 product id: {self.scene_id!r}")
        require_utc(self.start_time, f"scene {self.scene_id}: start_time", ArchiveError)

    @classmethod
    def from_scene_id(cls, scene_id: str) -> SceneRef:
        """Build from a product id, the start time read from the id (second precision)."""
        scene_id = _strip_product_suffix(scene_id)
        m = SCENE_ID_RE.match(scene_id)
        if not m:
            raise ArchiveError(f"not a Sentinel-1 product id: {scene_id!r}")
        return cls(scene_id, parse_compact(m.group("start")))

    def to_json(self) -> dict[str, str]:
        return {"scene_id": self.scene_id, "start_time": format_iso(self.start_time, zone="+00:00")}

    @classmethod
    def from_json(cls, d: Mapping[str, str]) -> SceneRef:
        return cls(d["scene_id"], parse_iso(d["start_time"]))


def _strip_product_suffix(name: str) -> str:
    for suffix in (".SAFE", ".zip", ".SAFE.zip"):
        name = name.removesuffix(suffix)
    return name


def s1_patch_name(scene_id: str, tile_id: str, col: int, row: int) -> str:
    """``<mission>_<mode>_<type>_<level+pol>_<start>_<tile>_<col>_<row>``, e.g.
    "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48" from scene
    "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"."""
    m = SCENE_ID_RE.match(_strip_product_suffix(scene_id))
    if not m:
        raise ArchiveError(f"not a Sentinel-1 product id: {scene_id!r}")
    name = f"{m.group('short')}_{m.group('start')}_{tile_id}_{col}_{row}"
    if not S1_NAME_RE.match(name) or not (0 <= col <= MAX_PATCH_INDEX and 0 <= row <= MAX_PATCH_INDEX):
        raise ArchiveError(f"patch name {name!r} (scene {scene_id}, tile {tile_id}) is not valid")
    return name


# --------------------------------------------------------------------------- CRS text


@functools.lru_cache(maxsize=128)
def utm_wkt(epsg: int) -> str:
    """The WKT1 text BigEarthNet v1.0 stores in ``projection`` for a WGS84 / UTM EPSG code.

    pyproj's WKT1_GDAL is GDAL 3's; v1.0 was written with GDAL 2, whose GEOGCS also carried
    ``AXIS["Latitude",NORTH],AXIS["Longitude",EAST]``: that clause is added back here.
    """
    from pyproj import CRS as ProjCRS

    if not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        raise ArchiveError(f"EPSG:{epsg} is not a WGS 84 / UTM zone")
    wkt = ProjCRS.from_epsg(epsg).to_wkt("WKT1_GDAL")
    anchor = 'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]]'
    if anchor not in wkt:  # pragma: no cover - depends on the PROJ database
        raise ArchiveError(f"unexpected WKT for EPSG:{epsg}: {wkt}")
    return wkt.replace(
        anchor,
        'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
        'AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]',
    )


def _utm_citation(epsg: int) -> str:
    zone = epsg % 100
    return f"WGS 84 / UTM zone {zone}{'N' if epsg < 32700 else 'S'}"


# --------------------------------------------------------------------------- GeoTIFF bytes
#
# The patch GeoTIFF is assembled here byte by byte instead of through rasterio/GDAL, for two
# reasons: (1) byte identity with BigEarthNet-S1 v1.0, which was written by GDAL 2 / libtiff 4.0:
# current libtiff writes StripByteCounts as SHORT where v1.0 has LONG, so GDAL 3 cannot
# reproduce the files; (2) speed: a fixed 424-byte header plus the raw float32 rows costs a few
# microseconds, GDAL's open/write/close about a millisecond per file (the archive has 1.2 million
# of them). Every file is read back with rasterio in the tests and by validate_archive().

_SHORT, _LONG, _ASCII, _DOUBLE = 3, 4, 2, 12
_ROWS_PER_STRIP = 17  # what GDAL chose for 120 float32 columns (8 KiB strips)


@functools.lru_cache(maxsize=128)
def _geotiff_layout(epsg: int, width: int, height: int) -> tuple[bytes, int, int]:
    """Header template for a float32 single-band striped GeoTIFF.

    Returns (header bytes with a zero tie point, offset of the tie point's X double, data
    offset). The tie point (X, Y) are patched in per file.
    """
    citation = _utm_citation(epsg)
    ascii_params = f"{citation}|WGS 84|".encode("ascii") + b"\0"
    geokeys = [
        1, 1, 0, 7,
        1024, 0, 1, 1,  # GTModelType: projected
        1025, 0, 1, 1,  # GTRasterType: PixelIsArea
        1026, 34737, len(citation) + 1, 0,  # GTCitation
        2049, 34737, 7, len(citation) + 1,  # GeogCitation "WGS 84|"
        2054, 0, 1, 9102,  # GeogAngularUnits: degree
        3072, 0, 1, epsg,  # ProjectedCSType
        3076, 0, 1, 9001,  # ProjLinearUnits: metre
    ]
    n_strips = math.ceil(height / _ROWS_PER_STRIP)
    row_bytes = width * 4
    strip_counts = [
        row_bytes * min(_ROWS_PER_STRIP, height - i * _ROWS_PER_STRIP) for i in range(n_strips)
    ]
    n_entries = 15
    ifd_size = 2 + 12 * n_entries + 4
    pos = 8 + ifd_size
    # out-of-line values, in the order libtiff wrote them in v1.0
    off_counts = pos
    pos += 4 * n_strips
    off_offsets = pos
    pos += 4 * n_strips
    off_scale = pos
    pos += 24
    off_tie = pos
    pos += 48
    off_keys = pos
    pos += 2 * len(geokeys)
    off_ascii = pos
    pos += len(ascii_params)
    pos += pos % 2  # word alignment
    data_offset = pos
    strip_offsets = [data_offset + sum(strip_counts[:i]) for i in range(n_strips)]

    def entry(tag: int, typ: int, count: int, value: int) -> bytes:
        if typ == _SHORT and count == 1:
            return struct.pack("<HHIHH", tag, typ, count, value, 0)
        return struct.pack("<HHII", tag, typ, count, value)

    entries = [
        entry(256, _SHORT, 1, width),
        entry(257, _SHORT, 1, height),
        entry(258, _SHORT, 1, 32),  # BitsPerSample
        entry(259, _SHORT, 1, 1),  # Compression: none
        entry(262, _SHORT, 1, 1),  # Photometric: min-is-black
        entry(273, _LONG, n_strips, off_offsets),  # StripOffsets
        entry(277, _SHORT, 1, 1),  # SamplesPerPixel
        entry(278, _SHORT, 1, _ROWS_PER_STRIP),  # RowsPerStrip
        entry(279, _LONG, n_strips, off_counts),  # StripByteCounts
        entry(284, _SHORT, 1, 1),  # PlanarConfiguration: contiguous
        entry(339, _SHORT, 1, 3),  # SampleFormat: IEEE float
        entry(33550, _DOUBLE, 3, off_scale),  # ModelPixelScale
        entry(33922, _DOUBLE, 6, off_tie),  # ModelTiepoint
        entry(34735, _SHORT, len(geokeys), off_keys),  # GeoKeyDirectory
        entry(34737, _ASCII, len(ascii_params), off_ascii),  # GeoAsciiParams
    ]
    assert len(entries) == n_entries
    head = bytearray(b"II*\0" + struct.pack("<I", 8))
    head += struct.pack("<H", n_entries) + b"".join(entries) + struct.pack("<I", 0)
    head += struct.pack(f"<{n_strips}I", *strip_counts)
    head += struct.pack(f"<{n_strips}I", *strip_offsets)
    head += struct.pack("<3d", RESOLUTION, RESOLUTION, 0.0)
    head += struct.pack("<6d", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    head += struct.pack(f"<{len(geokeys)}H", *geokeys)
    head += ascii_params
    head += b"\0" * (data_offset - len(head))
    assert len(head) == data_offset
    return bytes(head), off_tie + 24, data_offset


def geotiff_parts(array: np.ndarray, ulx: float, uly: float, epsg: int) -> tuple[bytes, bytes]:
    """(header, pixel data) of a BigEarthNet-S1 v1.0 GeoTIFF of ``array`` (float32 values;
    pixel-corner origin ``(ulx, uly)`` in metres of ``EPSG:epsg``, 10 m pixels, north up)."""
    if array.ndim != 2:
        raise ArchiveError(f"GeoTIFF array must be 2-D, got shape {array.shape}")
    height, width = array.shape
    head, tie_at, _ = _geotiff_layout(epsg, width, height)
    tie = struct.pack("<2d", float(ulx), float(uly))
    header = b"".join((head[:tie_at], tie, head[tie_at + 16 :]))
    return header, np.ascontiguousarray(array, dtype="<f4").tobytes()


def geotiff_bytes(array: np.ndarray, ulx: float, uly: float, epsg: int) -> bytes:
    """The whole GeoTIFF file of :func:`geotiff_parts` as one bytes object."""
    return b"".join(geotiff_parts(array, ulx, uly, epsg))


# --------------------------------------------------------------------------- patch JSON


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
        "scene_source": _strip_product_suffix(scene.scene_id),
        "acquisition_time": format_iso(scene.start_time, timespec="seconds", zone=""),
    }


def encode_metadata(meta: Mapping[str, Any]) -> bytes:
    """The bytes of a ``_labels_metadata.json``: one line, json's default separators, ASCII
    escapes, no trailing newline, as v1.0 has them (used by the writer and ``relabel``)."""
    return json.dumps(meta).encode("ascii")


# --------------------------------------------------------------------------- atomic patch writing


def _tmp_dir_name(name: str) -> str:
    return f".{name}{_TMP_MARK}{_hostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname().replace("-", "_")


def _patch_files(name: str) -> tuple[str, str, str]:
    return (f"{name}_VV.tif", f"{name}_VH.tif", f"{name}_labels_metadata.json")


def is_complete(patch_dir: str | os.PathLike[str]) -> bool:
    """True if the patch folder holds its three files (non-empty). Folders only appear
    complete (atomic rename), so this is a cheap check, not a validation."""
    d = os.fspath(patch_dir)
    name = os.path.basename(d)
    try:
        return all(os.stat(os.path.join(d, f)).st_size > 0 for f in _patch_files(name))
    except OSError:
        return False


def _check_array(arr: np.ndarray, what: str, name: str, *, values: bool = True) -> np.ndarray:
    a = np.asarray(arr)
    if a.shape != (PATCH_PX, PATCH_PX):
        raise ArchiveError(f"patch {name}: {what} has shape {a.shape}, expected (120, 120)")
    if a.dtype.kind not in "fiu":
        raise ArchiveError(f"patch {name}: {what} has dtype {a.dtype}, expected dB floats")
    if values and a.dtype.kind == "f":
        if np.isinf(a).any():
            raise ArchiveError(
                f"patch {name}: {what} has infinite dB values (log of zero power? floor them or "
                "set them to NaN)"
            )
        if np.isnan(a).all():
            raise ArchiveError(f"patch {name}: {what} has no valid pixel (all NaN)")
    return a


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
    vv = _check_array(vv_db, "VV", name, values=not _checked)
    vh = _check_array(vh_db, "VH", name, values=not _checked)
    meta = patch_metadata(tile, patch, scene)
    f_vv, f_vh, f_js = _patch_files(name)
    write_patch_folder(root_s, name, [
        (f_vv, geotiff_parts(vv, patch.ulx, patch.uly, tile.epsg)),
        (f_vh, geotiff_parts(vh, patch.ulx, patch.uly, tile.epsg)),
        (f_js, (encode_metadata(meta),)),
    ])
    return Path(final)


def write_patch_folder(parent: str, name: str, files: Iterable[tuple[str, Iterable[bytes]]]) -> str:
    """Create the folder ``parent/name`` holding ``files`` (file name, byte chunks) atomically:
    assembled in a hidden temporary folder beside it, then renamed into place (an existing
    folder of that name is replaced). Returns the folder's path."""
    final = os.path.join(parent, name)
    tmp = os.path.join(parent, _tmp_dir_name(name))
    published = False
    try:
        try:
            os.mkdir(tmp)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
            os.mkdir(tmp)
        for fname, chunks in files:
            _write_file(os.path.join(tmp, fname), chunks)
        _publish(tmp, final)
        published = True
    except OSError as exc:
        raise ArchiveError(f"cannot write patch {final}: {exc}") from exc
    finally:
        if not published:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_file(path: str, chunks: Iterable[bytes]) -> None:
    """Create ``path`` and write ``chunks`` (unbuffered, one writev call when possible)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        chunks = list(chunks)
        total = sum(len(c) for c in chunks)
        written = os.writev(fd, chunks)
        if written != total:  # short write (rare): finish the rest plainly
            rest = b"".join(chunks)[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]
    finally:
        os.close(fd)


def _publish(tmp: str, final: str) -> None:
    """Rename the finished temporary folder into place (atomic on POSIX for a new name)."""
    try:
        os.replace(tmp, final)  # fails if ``final`` exists (a non-empty folder)
        return
    except OSError:
        if not os.path.lexists(final):
            raise
    # overwrite (or an incomplete leftover from outside this module): move the old one aside
    # first; a folder cannot be replaced atomically when the target is not empty.
    parent, base = os.path.split(final)
    trash = os.path.join(parent, _tmp_dir_name(base + ".old"))
    os.replace(final, trash)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)


def clean_temporaries(root: str | os.PathLike[str], *, older_than: float = 6 * 3600.0) -> int:
    """Remove temporary folders left by killed writers: those of a dead process on this host,
    or older than ``older_than`` seconds. Returns how many were removed."""
    root = Path(root)
    if not root.is_dir():
        return 0
    host = _hostname()
    removed = 0
    now = time.time()
    for entry in os.scandir(root):
        if not (entry.name.startswith(".") and _TMP_MARK in entry.name and entry.is_dir()):
            continue
        owner = entry.name.rsplit(_TMP_MARK, 1)[1]
        parts = owner.rsplit("-", 2)
        dead = False
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            dead = not _pid_alive(int(parts[1]))
        try:
            old = now - entry.stat().st_mtime > older_than
        except OSError:
            continue
        if dead or old:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- tile writing + index


def _index_schema() -> pa.Schema:
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
    (bit 1 layover, bit 2 shadow; ``geocoding.layover_shadow_mask``), counted per patch into
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
            from bigearthnet_s1 import archive_v2

            path = archive_v2.write_patch(root, tile, patch, scene, vv_db[sl], vh_db[sl], overwrite=overwrite,
                                          _checked=True)
        else:
            path = write_patch(root, tile, patch, scene, vv_db[sl], vh_db[sl], overwrite=overwrite, _checked=True)
        vf = valid_fraction.get(patch.s2_name) if valid_fraction is not None else None
        if vf is None:
            vf = float(np.count_nonzero(f_vv & f_vh)) / f_vv.size
        counts: dict[str, int] = {}
        if layover_shadow is not None:
            ls = np.asarray(layover_shadow)[sl]
            counts = {"layover_px": int(np.count_nonzero(ls & 1)), "shadow_px": int(np.count_nonzero(ls & 2))}
        rows.append(index_row(tile, patch, scene, path.name, vf, geom, path=path.relative_to(root).as_posix(),
                              **counts))
    write_index_part(root, tile.key, rows)
    return rows


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
    if not S2_NAME_RE.match(s2_name):
        parse_s2_name(s2_name)  # raises with the name in the message
    return s2_product_time(s2_name.rsplit("_", 2)[0])


def index_row(
    tile: TileAcquisition,
    patch: Patch,
    scene: SceneRef,
    s1_name: str,
    valid_fraction: float,
    geometry_wgs84: Any | None = None,
    path: str | None = None,
    layover_px: int | None = None,
    shadow_px: int | None = None,
) -> dict[str, Any]:
    """One index row (JSON-safe except the WKB ``geometry`` bytes and datetimes). ``path``:
    the patch folder relative to the archive root (default: ``s1_name``, the v1 layout);
    ``layover_px``/``shadow_px``: the patch's pixels in radar layover / shadow (None: unknown)."""
    from bigearthnet_s1.reben import v2_patch_id
    s2_time = _s2_time(patch.s2_name)
    gap = abs((scene.start_time - s2_time).total_seconds()) / 3600.0
    geom = geometry_wgs84 if geometry_wgs84 is not None else to_wgs84(patch.box, tile.epsg, densify=0)
    return {
        "s1_name": s1_name,
        "s2_name": patch.s2_name,
        "scene_id": _strip_product_suffix(scene.scene_id),
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
        "patch_id": _patch_id_or_none(tile, patch, v2_patch_id),
        "reben_s1_name": patch.v2.s1_name if patch.v2 is not None else None,
        "contains_seasonal_snow": patch.v2.contains_seasonal_snow if patch.v2 is not None else None,
        "contains_cloud_or_shadow": patch.v2.contains_cloud_or_shadow if patch.v2 is not None else None,
        "layover_px": layover_px,
        "shadow_px": shadow_px,
        "geometry": geom.wkb,
    }


def _patch_id_or_none(tile: TileAcquisition, patch: Patch, namer: Any) -> str | None:
    try:
        return str(namer(tile, patch))
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
    table = pa.Table.from_pylist(rows, schema=_index_schema())
    try:
        with atomic_path(path) as tmp:  # ".part": never matched by merge_index's *.parquet
            pq.write_table(table, tmp)
    except OSError as exc:
        raise ArchiveError(f"cannot write index part {path}: {exc}") from exc
    return path


def merge_index(root: str | os.PathLike[str]) -> Path:
    """Combine ``index/*.parquet`` into ``index.parquet`` (GeoParquet, EPSG:4326) and
    ``patches.geojson``; a patch listed by several parts keeps its last row. Returns the
    path of ``index.parquet``."""
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely

    root = Path(root)
    parts = sorted((root / INDEX_DIR).glob("*.parquet"))
    if parts:
        table = pa.concat_tables([pq.read_table(p, schema=_index_schema()) for p in parts])
    else:
        table = _index_schema().empty_table()
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
    _write_loader_files(root, df)
    return out


def _write_loader_files(root: Path, df: Any) -> None:
    """What the ML loaders read besides the patches: reBEN's ``metadata.parquet`` when the
    archive has v2-layout patches; torchgeo's split CSVs when v1 patches have a known split."""
    from bigearthnet_s1 import archive_v2, splits

    paths = df["path"].fillna(df["s1_name"]).astype(str)
    v2 = paths.str.startswith(archive_v2.S1_DIR + "/")
    if v2.any():
        archive_v2.write_metadata(root, df[v2.to_numpy()])
    splits.write_split_files(root, df[~v2.to_numpy()])


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


# --------------------------------------------------------------------------- validation


@dataclass
class ValidationReport:
    """Result of :func:`validate_archive`: count of good patches and the bad ones with reasons."""

    root: Path
    ok: int = 0
    bad: list[tuple[Path, list[str]]] = field(default_factory=list)
    #: warning -> patches it concerns (valid patches can have warnings, e.g. no labels)
    warnings: dict[str, list[Path]] = field(default_factory=dict)
    layouts: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + len(self.bad)

    def warn(self, warning: str, patch: Path) -> None:
        self.warnings.setdefault(warning, []).append(patch)

    def warning_counts(self) -> dict[str, int]:
        """How many patches each warning concerns (most frequent first)."""
        return dict(sorted(((w, len(p)) for w, p in self.warnings.items()), key=lambda kv: (-kv[1], kv[0])))

    def reason_counts(self) -> dict[str, int]:
        """How many patches fail for each reason (reasons without their numbers)."""
        counts: dict[str, int] = {}
        for _, reasons in self.bad:
            for r in {r.split(":")[0] for r in reasons}:
                counts[r] = counts.get(r, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "layouts": list(self.layouts),
            "ok": self.ok,
            "bad": [{"patch": str(p), "reasons": r} for p, r in self.bad],
            "warnings": {w: {"count": len(p), "patches": [str(x) for x in p[:100]]}
                         for w, p in self.warnings.items()},
        }


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
    from bigearthnet_s1 import archive_v2, splits

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
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(_check_patch, dirs))
    for d, (reasons, warnings) in zip(dirs, results, strict=True):
        if reasons:
            report.bad.append((d, reasons))
        else:
            report.ok += 1
        for w in warnings:
            report.warn(w, d)
    if v2:
        report.layouts.append("v2")
        archive_v2.validate_v2(root, report, workers=workers)
    report.bad.sort(key=lambda b: b[0].name)
    return report


#: Warning texts of :func:`validate_archive` (also used by the v2 validator).
WARN_UNLABELED = "no labels: no label source knew the patch (see --labels-from and relabel)"
WARN_UNKNOWN_CLASS = "labels outside the BigEarthNet nomenclatures"
WARN_19_IN_V1 = "19-class labels in a v1 JSON (torchgeo's BigEarthNet reads 43-class names)"


def label_warnings(labels: Any, *, layout: str = "v1") -> list[str]:
    """Warnings about a patch's label list (see :func:`validate_archive`)."""
    from bigearthnet_s1.labels import nomenclature

    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        return []  # a format error, reported as such
    if not labels:
        return [WARN_UNLABELED]
    n = nomenclature(labels)
    if n is None:
        return [WARN_UNKNOWN_CLASS]
    if n == 19 and layout == "v1":
        return [WARN_19_IN_V1]
    return []


def check_patch(patch_dir: Path) -> list[str]:
    """Reasons why ``patch_dir`` is not a valid BigEarthNet-S1 v1.0 patch (empty if valid)."""
    return _check_patch(patch_dir)[0]


def _check_patch(patch_dir: Path) -> tuple[list[str], list[str]]:
    """(reasons the patch is invalid, warnings) for a v1.0 patch folder."""
    name = patch_dir.name
    reasons: list[str] = []
    warnings: list[str] = []
    m = S1_NAME_RE.match(name)
    if not m:
        return [f"bad folder name: {name!r} is not <S1 id>_<start>_<tile>_<col>_<row>"], warnings
    try:  # the pattern lets through dates that do not exist and col/row beyond 90
        parse_s1_name(name)
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


def check_geotiffs(patch_dir: Path, files: Iterable[str], coords: Mapping[str, float] | None,
                   epsg_expected: int | None, reasons: list[str]) -> None:
    """Append to ``reasons`` what is wrong with the patch GeoTIFFs ``files`` of ``patch_dir``
    (named ``..._VV.tif``/``..._VH.tif``): 1 band float32 120 x 120, no compression, no nodata
    tag, a WGS 84 / UTM CRS (= ``epsg_expected`` when given), 10 m north-up pixels, origin at
    ``coords["ulx"], coords["uly"]`` (pixel corner) when given, finite values, one valid pixel."""
    import rasterio

    epsg_json = epsg_expected
    for f in files:
        try:
            with rasterio.open(patch_dir / f) as ds:
                pol = f[-6:-4]
                if ds.count != 1:
                    reasons.append(f"bad band count: {pol} has {ds.count} bands, expected 1")
                if ds.dtypes[0] != "float32":
                    reasons.append(f"bad dtype: {pol} is {ds.dtypes[0]}, expected float32")
                if (ds.width, ds.height) != (PATCH_PX, PATCH_PX):
                    reasons.append(f"bad size: {pol} is {ds.width}x{ds.height}, expected 120x120")
                if ds.compression is not None:
                    reasons.append(f"bad compression: {pol} is {ds.compression.name}, expected none")
                if ds.nodata is not None:
                    reasons.append(f"bad nodata tag: {pol} has nodata={ds.nodata}, expected none")
                epsg = ds.crs.to_epsg() if ds.crs else None
                if epsg is None or not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
                    reasons.append(f"bad CRS: {pol} CRS is {ds.crs}, expected a WGS 84 / UTM zone")
                elif epsg_json is not None and epsg != epsg_json:
                    reasons.append(f"CRS mismatch: {pol} is EPSG:{epsg}, JSON projection EPSG:{epsg_json}")
                t = ds.transform
                if not (math.isclose(t.a, RESOLUTION) and math.isclose(t.e, -RESOLUTION) and t.b == 0 and t.d == 0):
                    reasons.append(f"bad pixel size: {pol} transform {tuple(t)[:6]}, expected 10 m north-up")
                if coords is not None and not (
                    math.isclose(t.c, coords["ulx"], abs_tol=1e-6)
                    and math.isclose(t.f, coords["uly"], abs_tol=1e-6)
                ):
                    reasons.append(
                        f"transform mismatch: {pol} origin ({t.c}, {t.f}) vs JSON ({coords['ulx']}, {coords['uly']})"
                    )
                if ds.count >= 1 and (ds.width, ds.height) == (PATCH_PX, PATCH_PX):
                    a = ds.read(1)
                    if a.dtype.kind == "f":
                        if np.isinf(a).any():
                            reasons.append(f"bad values: {pol} has infinite values")
                        if np.isnan(a).all():
                            reasons.append(f"bad values: {pol} has no valid pixel")
        except rasterio.errors.RasterioIOError as exc:
            reasons.append(f"unreadable GeoTIFF: {f}: {exc}")


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
        m2 = S2_NAME_RE.match(str(s2))
        if not m2:
            reasons.append(f"bad corresponding_s2_patch: {s2!r}")
        elif (int(m2.group("col")), int(m2.group("row"))) != (
            int(name_match.group("col")),
            int(name_match.group("row")),
        ):
            reasons.append(f"bad corresponding_s2_patch: {s2} is not at the folder's col/row")
    src = meta.get("scene_source")
    if "scene_source" in meta:
        ms = SCENE_ID_RE.match(str(src))
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
        if entry.is_dir() and S1_NAME_RE.match(entry.name):
            yield Path(entry.path)
