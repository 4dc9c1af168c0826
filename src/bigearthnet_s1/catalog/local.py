"""Local catalogue: a folder of Sentinel-1 ``.SAFE`` folders and/or ``.zip`` files.

Each product is described from its ``manifest.safe`` alone (mission, mode, product type,
absolute and relative orbit, pass, data-take id, start/stop time, footprint), read by
:mod:`bigearthnet_s1.manifest`; zips are read in place, never unpacked. Records are cached per file by
modification time and size, so repeated searches only re-read changed products.

``url`` of a record is the path of the ``.SAFE`` folder or ``.zip``; ``size`` is the zip's
size in bytes (``None`` for a folder); ``online`` is ``True``.

Why not ``bigearthnet_s1.safe.open_safe``: a catalogue must describe a folder of possibly
incomplete products (annotation or measurement files missing, a zip still being copied) from
the manifest alone and keep going past a broken one; the manifest reader is enough.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from datetime import datetime
from pathlib import Path

from shapely.geometry.base import BaseGeometry

from bigearthnet_s1._time import require_utc
from bigearthnet_s1.catalog import ProductRecord, make_record
from bigearthnet_s1.errors import CatalogError, InputError
from bigearthnet_s1.manifest import MANIFEST, parse_manifest, read_manifest

__all__ = ["LocalCatalog", "read_manifest_record"]

log = logging.getLogger(__name__)

class LocalProductWarning(UserWarning):
    """A file in the local catalogue folder that is not a usable product (skipped)."""


def read_manifest_record(path: str | os.PathLike[str]) -> tuple[ProductRecord | None, str]:
    """(record, "") for an IW GRD product, or (None, reason) for another Sentinel-1 product.

    Raises ``InputError`` naming the file when it is not a readable Sentinel-1 product.
    """
    path = Path(path)
    name, data = read_manifest(path)
    m = parse_manifest(data, str(path))
    if m.mode != "IW" or m.product_type != "GRD":
        return None, f"{m.mode} {m.product_type} product, not IW GRD"
    record = make_record(
        name,
        source="local",
        footprint=m.footprint,
        uuid=None,
        mission=m.mission,
        start_time=m.start_time,
        stop_time=m.stop_time,
        absolute_orbit=m.absolute_orbit,
        relative_orbit=m.relative_orbit,
        orbit_direction=m.pass_direction,
        datatake_id=m.datatake_id,
        size=None if path.is_dir() else path.stat().st_size,
        online=True,
        url=str(path),
    )
    return record, ""


class LocalCatalog:
    """Sentinel-1 IW GRD products in a folder (``.SAFE`` folders and ``.zip`` files).

    ``recursive``: also look in sub-folders. ``strict``: raise on an unreadable product
    instead of skipping it with a :class:`LocalProductWarning` (listed in ``skipped`` and in
    ``unreadable``; the other skips are products that are not IW GRD, and duplicates).
    """

    def __init__(self, root: str | os.PathLike[str], *, recursive: bool = False, strict: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CatalogError(f"local catalogue: {self.root} is not a folder")
        self.recursive = recursive
        self.strict = strict
        self.skipped: list[tuple[Path, str]] = []
        self.unreadable: list[tuple[Path, str]] = []
        self._cache: dict[Path, tuple[int, int, ProductRecord | None, str, bool]] = {}

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

    @staticmethod
    def _stat(path: Path) -> os.stat_result:
        """The stat that says whether a product changed: its manifest for a folder, the file for a zip."""
        manifest = path / MANIFEST
        return manifest.stat() if path.is_dir() and manifest.exists() else path.stat()

    def state(self) -> str:
        """A fingerprint of the folder as a search sees it (hex): the product files' names, sizes
        and modification times (a ``.SAFE`` folder's manifest). Changes whenever a product is
        added, removed, renamed or rewritten, so a saved search can tell it is stale."""
        h = hashlib.sha256()
        for path in self._candidates():
            try:
                st = self._stat(path)
                h.update(f"{path.relative_to(self.root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:  # removed while listing: the next look sees the change
                h.update(f"{path.relative_to(self.root)}\0gone\n".encode())
        return h.hexdigest()

    def products(self) -> list[ProductRecord]:
        """Every IW GRD product in the folder (re-reading only changed files)."""
        self.skipped = []
        self.unreadable = []
        records: dict[str, ProductRecord] = {}
        for path in self._candidates():
            st = self._stat(path)
            cached = self._cache.get(path)
            if cached and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
                record, reason, broken = cached[2], cached[3], cached[4]
            else:
                broken = False
                try:
                    record, reason = read_manifest_record(path)
                except InputError as exc:
                    if self.strict:
                        raise CatalogError(f"local catalogue {self.root}: {exc}") from None
                    warnings.warn(f"local catalogue: skipping {path}: {exc}", LocalProductWarning, stacklevel=2)
                    record, reason, broken = None, str(exc), True
                self._cache[path] = (st.st_mtime_ns, st.st_size, record, reason, broken)
            if record is None:
                self.skipped.append((path, reason))
                if broken:
                    self.unreadable.append((path, reason))
                continue
            if record.name in records:
                # the same product as folder and zip: keep the first (folders sort before zips)
                self.skipped.append((path, f"duplicate of {records[record.name].url}"))
                continue
            records[record.name] = record
        return list(records.values())

    def search(self, footprint_wgs84: BaseGeometry, start: datetime, end: datetime) -> list[ProductRecord]:
        """Products whose footprint intersects ``footprint_wgs84`` and whose start is in [start, end] (UTC)."""
        start = require_utc(start, "local catalogue search start")
        end = require_utc(end, "local catalogue search end")
        found = [
            r for r in self.products()
            if start <= r.start_time <= end and r.footprint.intersects(footprint_wgs84)
        ]
        found.sort(key=lambda r: (r.start_time, r.name))
        log.info("local catalogue %s: %d IW GRD products in the window", self.root, len(found))
        return found
