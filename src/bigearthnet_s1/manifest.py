"""``manifest.safe``: what a Sentinel-1 product is, read from its table of contents.

The one manifest reader of the library: the product reader (:mod:`bigearthnet_s1.safe`) and
the local catalogue (:mod:`bigearthnet_s1.catalog.local`, which must describe a folder of
possibly incomplete products from their manifests alone) both read products through it, and
both find the manifest inside a product zip the same way (:func:`manifest_member`).

Every SAFE XML member (the manifest, annotations, calibration and noise files) is parsed by
:func:`parse_xml`, with ``defusedxml``: a DTD is allowed (harmless), entity declarations and
external references are refused (billion-laughs and XXE payloads).

Conventions: times tz-aware UTC; the footprint in WGS84 lon/lat (the manifest writes
``lat,lon`` pairs); ``datatake_id`` the 6-digit upper-case hex id of product names.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DET
import shapely
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1._time import parse_iso
from bigearthnet_s1.errors import SafeError
from bigearthnet_s1.names import product_name

__all__ = ["MANIFEST", "DataObject", "Manifest", "data_objects", "manifest_member", "parse_manifest", "parse_xml",
           "read_manifest"]

MANIFEST = "manifest.safe"
#: A manifest is ~20 kB; a bigger member is not one (and is not read into memory).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

# repID of the manifest's dataObjects -> role names of SafeProduct.file
_ROLES = {
    "s1Level1ProductSchema": "annotation",
    "s1Level1CalibrationSchema": "calibration",
    "s1Level1NoiseSchema": "noise",
    "s1Level1MeasurementSchema": "measurement",
    "s1Level1RfiSchema": "rfi",
}
# s1b-iw-grd-vv-20211223t051122-... : the polarisation is the 4th dash-separated field
_FILE_RE = re.compile(r"(?:^|[-/])s1[abcd]-[a-z0-9]+-[a-z]+-(hh|hv|vh|vv)-", re.IGNORECASE)


def parse_xml(data: bytes, where: str, rel: str) -> Element:
    """Parse SAFE member ``rel`` of the product ``where`` names, refusing entities and external
    references; a :class:`SafeError` names both."""
    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise SafeError(
            f"{where}: file {rel} refused, it declares XML entities or external references "
            f"(possible entity-expansion or XXE payload): {exc!r}"
        ) from exc
    except ParseError as exc:
        raise SafeError(f"{where}: file {rel} cannot be read, it is not well-formed XML: {exc}") from exc


def manifest_member(names: Iterable[str], where: str) -> str:
    """The member name of the product's manifest in a zip's name list: ``<name>.SAFE/manifest.safe``
    (or ``manifest.safe`` at the zip's root). A zip with none, or with several products'
    manifests, raises a :class:`SafeError` naming ``where``."""
    found = [n for n in names if PurePosixPath(n.replace("\\", "/")).name == MANIFEST
             and len(PurePosixPath(n.replace("\\", "/")).parts) <= 2]
    if not found:
        raise SafeError(f"{where}: file {MANIFEST} is missing from the zip (not a SAFE product zip)")
    if len(found) > 1:
        raise SafeError(f"{where}: the zip holds {len(found)} manifests ({', '.join(sorted(found))}), one product expected")
    return found[0]


def read_manifest(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    """(product name, manifest bytes) of a ``.SAFE`` folder or a product ``.zip`` (read in place).

    Raises :class:`SafeError` naming ``path`` when it holds no readable manifest.
    """
    path = Path(path)
    if path.is_dir():
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise SafeError(f"{path}: no {MANIFEST} in the .SAFE folder")
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            raise SafeError(f"{manifest}: {MANIFEST} larger than {MAX_MANIFEST_BYTES} bytes")
        return product_name(path.name), manifest.read_bytes()
    try:
        with zipfile.ZipFile(path) as zf:
            member = manifest_member(zf.namelist(), str(path))
            info = zf.getinfo(member)
            if info.file_size > MAX_MANIFEST_BYTES:
                raise SafeError(f"{path}: {MANIFEST} larger than {MAX_MANIFEST_BYTES} bytes")
            data = zf.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SafeError(f"{path}: not a readable zip ({exc})") from None
    parent = PurePosixPath(member.replace("\\", "/")).parent.name
    return product_name(parent or path.name), data


@dataclass(frozen=True)
class Manifest:
    """The fields of a Sentinel-1 ``manifest.safe`` (None: the manifest does not say).

    ``files`` maps ``(role, polarisation)`` to the member path (relative to the ``.SAFE``
    root) of each annotation, calibration, noise, measurement and RFI file it lists.
    """

    mission: str  # "S1A"
    mode: str  # "IW"
    product_type: str  # "GRD", "SLC", ...
    polarisations: tuple[str, ...]  # ("VV", "VH")
    start_time: datetime
    stop_time: datetime
    absolute_orbit: int
    relative_orbit: int | None
    pass_direction: str  # "ASCENDING" | "DESCENDING"
    datatake_id: str | None  # hex, "039993"
    ipf_version: float | None
    footprint: BaseGeometry  # WGS84 lon/lat, the union of the frames' footprints
    files: Mapping[tuple[str, str], str] = field(default_factory=dict)


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse a ``manifest.safe``; ``where`` names the product in errors (:class:`SafeError`)."""
    root = parse_xml(data, where, MANIFEST)
    family = _text(root, ".//{*}platform/{*}familyName", where)
    if not family.upper().startswith("SENTINEL-1"):
        raise SafeError(f"{where}: platform {family!r} is not SENTINEL-1")
    try:
        return _fields(root, where)
    except ValueError as exc:  # a number, time or coordinate that does not parse
        raise SafeError(f"{where}: file {MANIFEST} has an unreadable value ({exc})") from None


def _text(root: Element, path: str, where: str, *, required: bool = True) -> str:
    el = root.find(path)
    if el is None or el.text is None or not el.text.strip():
        if required:
            raise SafeError(f"{where}: file {MANIFEST} lacks {path.split('}')[-1]}")
        return ""
    return el.text.strip()


def _fields(root: Element, where: str) -> Manifest:
    def text(path: str) -> str:
        return _text(root, path, where)

    relative = _text(root, ".//{*}orbitReference/{*}relativeOrbitNumber[@type='start']", where, required=False)
    datatake = _text(root, ".//{*}standAloneProductInformation/{*}missionDataTakeID", where, required=False)
    ipf = next((sw.get("version") for sw in root.iterfind(".//{*}software")
                if "IPF" in (sw.get("name") or "") and sw.get("version")), None)
    return Manifest(
        mission=f"S1{text('.//{*}platform/{*}number')}",
        mode=text(".//{*}instrumentMode/{*}mode"),
        product_type=text(".//{*}standAloneProductInformation/{*}productType"),
        polarisations=tuple(
            e.text.strip().upper()
            for e in root.iterfind(".//{*}standAloneProductInformation/{*}transmitterReceiverPolarisation")
            if e.text
        ),
        start_time=parse_iso(text(".//{*}acquisitionPeriod/{*}startTime")),
        stop_time=parse_iso(text(".//{*}acquisitionPeriod/{*}stopTime")),
        absolute_orbit=int(text(".//{*}orbitReference/{*}orbitNumber[@type='start']")),
        relative_orbit=int(relative) if relative else None,
        pass_direction=text(".//{*}orbitReference//{*}pass").upper(),
        datatake_id=f"{int(datatake):06X}" if datatake else None,
        ipf_version=float(ipf) if ipf else None,
        footprint=_footprint(root, where),
        files=_files(root),
    )


def _footprint(root: Element, where: str) -> BaseGeometry:
    polys = []
    for coords in root.iterfind(".//{*}frameSet/{*}frame/{*}footPrint/{*}coordinates"):
        pts = []
        for pair in (coords.text or "").split():
            lat, lon = (float(v) for v in pair.split(","))
            pts.append((lon, lat))
        if len(pts) < 3:
            raise SafeError(f"{where}: file {MANIFEST} has a footprint of {len(pts)} points")
        polys.append(shapely.Polygon(pts))  # closes the ring (manifests list 4 open corners)
    if not polys:
        raise SafeError(f"{where}: file {MANIFEST} has no footprint (frameSet/frame/footPrint)")
    return polys[0] if len(polys) == 1 else shapely.union_all(polys)


def _files(root: Element) -> dict[tuple[str, str], str]:
    files: dict[tuple[str, str], str] = {}
    for obj in root.iter("dataObject"):
        role = _ROLES.get(obj.get("repID", ""))
        loc = obj.find("byteStream/fileLocation")
        if role is None or loc is None:
            continue
        href = (loc.get("href") or "").removeprefix("./")
        m = _FILE_RE.search(PurePosixPath(href).name)
        if m is not None:
            files[(role, m.group(1).upper())] = href
    return files


class DataObject(NamedTuple):
    """A file the manifest lists: its path in the product, and its size and MD5 when listed."""

    href: str  # relative to the .SAFE root
    size: int | None  # bytes
    md5: str | None  # lower-case hex


def data_objects(data: bytes, where: str) -> list[DataObject]:
    """Every file (``byteStream``) a ``manifest.safe`` lists, for verifying a product folder."""
    root = parse_xml(data, where, MANIFEST)
    out: list[DataObject] = []
    for stream in root.iter("byteStream"):
        loc = stream.find("fileLocation")
        if loc is None or not loc.get("href"):
            continue
        href = str(loc.get("href")).removeprefix("./")
        size_text = stream.get("size")
        md5 = None
        for c in stream.findall("checksum"):
            if (c.get("checksumName") or "").upper() == "MD5" and c.text:
                md5 = c.text.strip().lower()
        out.append(DataObject(href, int(size_text) if size_text and size_text.isdigit() else None, md5))
    return out
