"""The patch GeoTIFF of BigEarthNet-S1: its bytes, written, and its properties, checked.

One band of float32 backscatter (dB, NaN = no data, no nodata tag), 120 x 120 px of 10 m,
north up, origin at the patch's upper-left pixel CORNER in the tile's WGS 84 / UTM CRS,
striped, uncompressed: byte for byte what BigEarthNet-S1 v1.0 holds (the v2 layout stores the
same files). ``projection`` text of the v1.0 JSON is :func:`utm_wkt`.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from bigearthnet_s1.errors import ArchiveError
from bigearthnet_s1.grid import PATCH_PX, RESOLUTION

__all__ = ["utm_wkt", "geotiff_parts", "geotiff_bytes", "check_geotiffs"]


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


# --------------------------------------------------------------------------- bytes
#
# The patch GeoTIFF is assembled here byte by byte instead of through rasterio/GDAL, for two
# reasons: (1) byte identity with BigEarthNet-S1 v1.0, which was written by GDAL 2 / libtiff 4.0:
# current libtiff writes StripByteCounts as SHORT where v1.0 has LONG, so GDAL 3 cannot
# reproduce the files; (2) speed: a fixed 424-byte header plus the raw float32 rows costs a few
# microseconds, GDAL's open/write/close about a millisecond per file (the archive has 1.2 million
# of them). Every file is read back with rasterio in the tests and by check_geotiffs().

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
