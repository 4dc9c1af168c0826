"""Local catalogue: a folder of Sentinel-1 ``.SAFE`` folders and/or ``.zip`` files.

Each product is described from its ``manifest.safe`` alone (mission, mode, product type,
absolute and relative orbit, pass, data-take id, start/stop time, footprint), parsed with
``defusedxml``; zips are read in place, never unpacked. Records are cached per file by
modification time and size, so repeated searches only re-read changed products.

``url`` of a record is the path of the ``.SAFE`` folder or ``.zip``; ``size`` is the zip's
size in bytes (``None`` for a folder); ``online`` is ``True``.

Why not ``bigearthnet_s1.safe.open_safe``: a catalogue must describe a folder of possibly
incomplete products (annotation or measurement files missing, a zip still being copied) from
the manifest alone and keep going past a broken one; a small manifest reader is enough.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DET
import shapely
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1.catalog import ProductRecord, make_record, product_name
from bigearthnet_s1.errors import CatalogError, InputError

__all__ = ["LocalCatalog", "read_manifest_record"]

log = logging.getLogger(__name__)

_MAX_MANIFEST_BYTES = 16 * 1024 * 1024


class LocalProductWarning(UserWarning):
    """A file in the local catalogue folder that is not a usable product (skipped)."""


def _text(root: Element, path: str, source: str, *, required: bool = True) -> str | None:
    el = root.find(path)
    if el is None or el.text is None or not el.text.strip():
        if required:
            raise InputError(f"{source}: manifest.safe has no {path.split('}')[-1]}")
        return None
    return el.text.strip()


def _time(text: str) -> datetime:
    # manifest times are UTC without a zone, microseconds optional
    return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=UTC)


def _footprint(root: Element, source: str) -> BaseGeometry:
    polys = []
    for coords in root.iterfind(".//{*}frameSet/{*}frame/{*}footPrint/{*}coordinates"):
        pts = []
        for pair in (coords.text or "").split():
            lat, lon = (float(v) for v in pair.split(","))
            pts.append((lon, lat))
        if len(pts) < 3:
            raise InputError(f"{source}: manifest footprint has {len(pts)} points")
        polys.append(shapely.Polygon(pts))  # closes the ring (manifests list 4 open corners)
    if not polys:
        raise InputError(f"{source}: manifest.safe has no footprint (frameSet/frame/footPrint)")
    return polys[0] if len(polys) == 1 else shapely.union_all(polys)


def parse_manifest(data: bytes, name: str, source: str) -> dict[str, object]:
    """The catalogue fields of one ``manifest.safe`` (``source`` names the file in errors)."""
    try:
        root = DET.fromstring(data)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise InputError(f"{source}: manifest.safe is not valid XML ({exc})") from None
    number = _text(root, ".//{*}platform/{*}number", source)
    family = _text(root, ".//{*}platform/{*}familyName", source)
    if family != "SENTINEL-1":
        raise InputError(f"{source}: platform {family!r} is not SENTINEL-1")
    datatake = _text(root, ".//{*}standAloneProductInformation/{*}missionDataTakeID", source, required=False)
    try:
        return _manifest_fields(root, name, source, number, datatake)
    except ValueError as exc:  # a number, time or coordinate that does not parse
        raise InputError(f"{source}: manifest.safe has an unreadable value ({exc})") from None


def _manifest_fields(
    root: Element, name: str, source: str, number: str | None, datatake: str | None
) -> dict[str, object]:
    return {
        "name": name,
        "mission": f"S1{number}",
        "mode": _text(root, ".//{*}platform/{*}instrument//{*}mode", source),
        "product_type": _text(root, ".//{*}standAloneProductInformation/{*}productType", source),
        "start_time": _time(_text(root, ".//{*}acquisitionPeriod/{*}startTime", source) or ""),
        "stop_time": _time(_text(root, ".//{*}acquisitionPeriod/{*}stopTime", source) or ""),
        "absolute_orbit": int(_text(root, ".//{*}orbitReference/{*}orbitNumber[@type='start']", source) or 0),
        "relative_orbit": _int_or_none(
            _text(root, ".//{*}orbitReference/{*}relativeOrbitNumber[@type='start']", source, required=False)
        ),
        "orbit_direction": _text(root, ".//{*}orbitReference//{*}orbitProperties/{*}pass", source),
        "datatake_id": f"{int(datatake):06X}" if datatake else None,
        "footprint": _footprint(root, source),
    }


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text else None


def _read_product(path: Path) -> tuple[str, bytes, int | None]:
    """(product name, manifest bytes, download size) of a ``.SAFE`` folder or ``.zip``."""
    if path.is_dir():
        manifest = path / "manifest.safe"
        if not manifest.is_file():
            raise InputError(f"{path}: no manifest.safe in the .SAFE folder")
        if manifest.stat().st_size > _MAX_MANIFEST_BYTES:
            raise InputError(f"{manifest}: manifest.safe larger than {_MAX_MANIFEST_BYTES} bytes")
        return product_name(path.name), manifest.read_bytes(), None
    try:
        with zipfile.ZipFile(path) as zf:
            members = [
                i for i in zf.infolist()
                if i.filename.endswith("/manifest.safe") and i.filename.count("/") == 1
            ]
            if len(members) != 1:
                raise InputError(f"{path}: expected one <name>.SAFE/manifest.safe in the zip, found {len(members)}")
            info = members[0]
            if info.file_size > _MAX_MANIFEST_BYTES:
                raise InputError(f"{path}: manifest.safe larger than {_MAX_MANIFEST_BYTES} bytes")
            data = zf.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip ({exc})") from None
    return product_name(info.filename.split("/", 1)[0]), data, path.stat().st_size


def read_manifest_record(path: str | os.PathLike[str]) -> tuple[ProductRecord | None, str]:
    """(record, "") for an IW GRD product, or (None, reason) for another Sentinel-1 product.

    Raises ``InputError`` naming the file when it is not a readable Sentinel-1 product.
    """
    path = Path(path)
    name, data, size = _read_product(path)
    fields = parse_manifest(data, name, str(path))
    if fields["mode"] != "IW" or fields["product_type"] != "GRD":
        return None, f"{fields['mode']} {fields['product_type']} product, not IW GRD"
    record = make_record(
        name,
        source="local",
        footprint=fields["footprint"],
        uuid=None,
        mission=fields["mission"],  # type: ignore[arg-type]
        start_time=fields["start_time"],  # type: ignore[arg-type]
        stop_time=fields["stop_time"],  # type: ignore[arg-type]
        absolute_orbit=fields["absolute_orbit"],  # type: ignore[arg-type]
        relative_orbit=fields["relative_orbit"],  # type: ignore[arg-type]
        orbit_direction=fields["orbit_direction"],  # type: ignore[arg-type]
        datatake_id=fields["datatake_id"],  # type: ignore[arg-type]
        size=size,
        online=True,
        url=str(path),
    )
    return record, ""


class LocalCatalog:
    """Sentinel-1 IW GRD products in a folder (``.SAFE`` folders and ``.zip`` files).

    ``recursive``: also look in sub-folders. ``strict``: raise on an unreadable product
    instead of skipping it with a :class:`LocalProductWarning` (listed in ``skipped``).
    """

    def __init__(self, root: str | os.PathLike[str], *, recursive: bool = False, strict: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CatalogError(f"local catalogue: {self.root} is not a folder")
        self.recursive = recursive
        self.strict = strict
        self.skipped: list[tuple[Path, str]] = []
        self._cache: dict[Path, tuple[int, int, ProductRecord | None, str]] = {}

    def __repr__(self) -> str:
        return f"LocalCatalog({str(self.root)!r})"

    def _candidates(self) -> list[Path]:
        it = self.root.rglob("*") if self.recursive else self.root.iterdir()
        out = []
        for p in it:
            if p.name.startswith("."):
                continue  # hidden / temporary files of an atomic writer
            if p.is_dir() and p.name.endswith(".SAFE"):
                out.append(p)
            elif p.is_file() and p.name.endswith(".zip"):
                out.append(p)
        return sorted(out)

    def products(self) -> list[ProductRecord]:
        """Every IW GRD product in the folder (re-reading only changed files)."""
        self.skipped = []
        records: dict[str, ProductRecord] = {}
        for path in self._candidates():
            st = (path / "manifest.safe").stat() if path.is_dir() and (path / "manifest.safe").exists() else path.stat()
            cached = self._cache.get(path)
            if cached and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
                record, reason = cached[2], cached[3]
            else:
                try:
                    record, reason = read_manifest_record(path)
                except InputError as exc:
                    if self.strict:
                        raise CatalogError(f"local catalogue {self.root}: {exc}") from None
                    warnings.warn(f"local catalogue: skipping {path}: {exc}", LocalProductWarning, stacklevel=2)
                    record, reason = None, str(exc)
                self._cache[path] = (st.st_mtime_ns, st.st_size, record, reason)
            if record is None:
                self.skipped.append((path, reason))
                continue
            if record.name in records:
                # the same product as folder and zip: keep the first (folders sort before zips)
                self.skipped.append((path, f"duplicate of {records[record.name].url}"))
                continue
            records[record.name] = record
        return list(records.values())

    def search(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> list[ProductRecord]:
        """Products whose footprint intersects ``footprint_wgs84`` and whose start is in [start, end] (UTC)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise InputError("local catalogue search: pass tz-aware UTC datetimes")
        found = [
            r for r in self.products()
            if start <= r.start_time <= end and r.footprint.intersects(footprint_wgs84)
        ]
        found.sort(key=lambda r: (r.start_time, r.name))
        log.info("local catalogue %s: %d IW GRD products in the window", self.root, len(found))
        return found
