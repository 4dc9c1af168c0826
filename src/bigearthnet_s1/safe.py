"""Reading Sentinel-1 IW GRD products in the SAFE format, from a ``.SAFE`` folder or a ``.zip``.

The product is never unpacked: XML members are read straight out of the zip and the
measurement GeoTIFF is read through GDAL's ``/vsizip/`` virtual file system, window by window.
What the product is comes from its manifest (:mod:`bigearthnet_s1.manifest`); its annotation,
calibration and noise files are parsed into the values of :mod:`bigearthnet_s1.annotation`.

Conventions
- Radar geometry: ``line`` is the azimuth (row) index, ``pixel`` the ground-range (column)
  index, both 0-based; an integer (line, pixel) is the pixel CENTRE (as in the annotation's
  geolocation grid and LUT vectors). Windows are ``rasterio.windows.Window(col_off=pixel,
  row_off=line, width, height)``.
- Times: ``datetime`` values are tz-aware UTC; ``numpy.datetime64[ns]`` values are naive UTC.
- Digital numbers (DN) are uint16 amplitudes, as in the measurement TIFF.

Why we parse the XML ourselves instead of through xarray-sentinel: xarray-sentinel decodes
every file through ``xmlschema`` on the standard library's ElementTree, which (1) expands
internal entities (no protection against billion-laughs payloads; we must refuse them, so
we parse with ``defusedxml``), (2) needs fsspec URLs to read from zips, and (3) is slow
(several seconds per annotation file versus ~0.05 s here), and (4) its ``noise_azimuth``
group holds a single azimuth vector, while IW GRD noise files have one block per sub-swath
(three here), each needed for thermal noise removal. We keep xarray-sentinel as the
reference implementation in the tests (same LUTs, same calibrated intensities) and in the
benchmark.
"""

from __future__ import annotations

import os
import threading
import warnings
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from bigearthnet_s1.annotation import (
    CalibrationLUT,
    ImageAnnotation,
    NoiseLUT,
    parse_annotation,
    parse_calibration,
    parse_noise,
)
from bigearthnet_s1.errors import SafeError
from bigearthnet_s1.manifest import MANIFEST, Manifest, manifest_member, parse_manifest, parse_xml
from bigearthnet_s1.names import product_name

__all__ = [
    "open_safe",
    "SafeProduct",
    "SafeError",
    "normalise_window",
]

_OPEN_LOCK = threading.Lock()
_T = TypeVar("_T")


def normalise_window(window: Window | None, lines: int, samples: int, what: str = "") -> Window:
    """Integer window clipped to nothing: raise if it is not inside ``lines`` x ``samples``.

    ``None`` means the whole image. Fractional offsets/lengths are rounded to the nearest
    integer (windows are in whole pixels, pixel centres at integer line/pixel).
    """
    if window is None:
        return Window(0, 0, samples, lines)
    col = int(round(float(window.col_off)))
    row = int(round(float(window.row_off)))
    w = int(round(float(window.width)))
    h = int(round(float(window.height)))
    if w <= 0 or h <= 0 or col < 0 or row < 0 or col + w > samples or row + h > lines:
        raise SafeError(
            f"window (col_off={col}, row_off={row}, width={w}, height={h}) is not inside the "
            f"{samples} x {lines} image{' of ' + what if what else ''}"
        )
    return Window(col, row, w, h)


# --------------------------------------------------------------------------------------
# containers: folder or zip
# --------------------------------------------------------------------------------------
class _Container:
    """Read-only access to the members of a SAFE product, relative to the .SAFE root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.product_label = product_name(path.name)

    def read(self, rel: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def exists(self, rel: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def gdal_path(self, rel: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass


class _FolderContainer(_Container):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not (path / MANIFEST).is_file():
            raise SafeError(f"SAFE product {path.name}: file {MANIFEST} is missing ({path})")

    def read(self, rel: str) -> bytes:
        p = self.path / rel
        try:
            return p.read_bytes()
        except FileNotFoundError:
            raise SafeError(f"SAFE product {self.path.name}: file {rel} is missing") from None
        except OSError as exc:
            raise SafeError(f"SAFE product {self.path.name}: cannot read {rel}: {exc}") from exc

    def exists(self, rel: str) -> bool:
        return (self.path / rel).is_file()

    def gdal_path(self, rel: str) -> str:
        return str(self.path / rel)


class _ZipContainer(_Container):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SafeError(f"SAFE product {path.name}: not a readable zip file: {exc}") from exc
        names = self._zip.namelist()
        try:
            member = manifest_member(names, f"SAFE product {path.name}")
        except SafeError:
            self._zip.close()
            raise
        parent = PurePosixPath(member.replace("\\", "/")).parent
        self.prefix = "" if str(parent) == "." else f"{parent}/"
        self.product_label = product_name(parent.name if self.prefix else path.name)
        self._names = set(names)

    def read(self, rel: str) -> bytes:
        member = self.prefix + rel
        if member not in self._names:
            raise SafeError(f"SAFE product {self.product_label}: file {rel} is missing from {self.path.name}")
        try:
            return self._zip.read(member)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise SafeError(f"SAFE product {self.product_label}: cannot read {rel} from {self.path.name}: {exc}") from exc

    def exists(self, rel: str) -> bool:
        return (self.prefix + rel) in self._names

    def gdal_path(self, rel: str) -> str:
        return f"/vsizip/{self.path}/{self.prefix}{rel}"

    def close(self) -> None:
        self._zip.close()


class SafeProduct:
    """An opened Sentinel-1 SAFE product (folder or zip). Metadata comes from manifest.safe;
    per-polarisation files are parsed lazily and cached."""

    name: str
    path: Path
    mission: str
    mode: str
    product_type: str
    polarisations: tuple[str, ...]
    ipf_version: float
    absolute_orbit: int
    relative_orbit: int
    pass_direction: str
    datatake_id: str
    start_time: datetime
    stop_time: datetime
    footprint: BaseGeometry  # WGS84 lon/lat
    manifest: Manifest

    def __init__(self, path: Path, container: _Container) -> None:
        self.path = path
        self._c = container
        self.name = container.product_label
        self._files: dict[tuple[str, str], str] = {}
        self._cache: dict[tuple[str, str], Any] = {}
        self._parse_manifest()

    # -- manifest ------------------------------------------------------------------
    def _err(self, msg: str) -> SafeError:
        return SafeError(f"SAFE product {self.name}: {msg}")

    def _parse_manifest(self) -> None:
        where = f"SAFE product {self.name}"
        m = parse_manifest(self._c.read(MANIFEST), where)
        if m.relative_orbit is None or m.datatake_id is None or m.ipf_version is None:
            missing = [k for k, v in (("relativeOrbitNumber", m.relative_orbit), ("missionDataTakeID", m.datatake_id),
                                      ("IPF version", m.ipf_version)) if v is None]
            raise self._err(f"file {MANIFEST} lacks {', '.join(missing)}")
        self.manifest = m
        self.mission, self.mode, self.product_type = m.mission, m.mode, m.product_type
        self.polarisations = m.polarisations
        self.absolute_orbit, self.relative_orbit = m.absolute_orbit, m.relative_orbit
        self.pass_direction, self.datatake_id, self.ipf_version = m.pass_direction, m.datatake_id, m.ipf_version
        self.start_time, self.stop_time = m.start_time, m.stop_time
        self.footprint = m.footprint
        self._files = dict(m.files)

    def __repr__(self) -> str:
        return f"SafeProduct({self.name!r}, ipf={self.ipf_version}, pols={self.polarisations})"

    def __enter__(self) -> SafeProduct:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._c.close()

    # -- file lookup -----------------------------------------------------------------
    @property
    def available_polarisations(self) -> tuple[str, ...]:
        """Polarisations whose annotation, calibration, noise and measurement files are present."""
        return tuple(
            p
            for p in self.polarisations
            if all(self._c.exists(self._files.get((r, p), "\0")) for r in ("annotation", "calibration", "noise", "measurement"))
        )

    def file(self, role: str, pol: str) -> str:
        """Path (relative to the .SAFE root) of the ``role`` file of ``pol``; raises if the
        manifest does not list it. ``role`` in annotation | calibration | noise | measurement."""
        p = pol.upper()
        if p not in self.polarisations:
            raise self._err(
                f"has no polarisation {pol!r} (manifest.safe lists {', '.join(self.polarisations) or 'none'})"
            )
        rel = self._files.get((role, p))
        if rel is None:
            raise self._err(f"file manifest.safe lists no {role} file for polarisation {p}")
        return rel

    def measurement_path(self, pol: str) -> str:
        """GDAL-openable path of the measurement TIFF (``/vsizip/...`` inside a zip)."""
        rel = self.file("measurement", pol)
        if not self._c.exists(rel):
            raise self._err(f"file {rel} is missing")
        return self._c.gdal_path(rel)

    # -- per-polarisation metadata ---------------------------------------------------
    def _cached(self, key: tuple[str, str], make: Any) -> Any:
        # per-instance cache (functools.cache on methods would keep every product alive)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def annotation(self, pol: str) -> ImageAnnotation:
        """Parse the product annotation of ``pol`` (cached)."""
        return self._cached(("annotation", pol.upper()), lambda: self._annotation(pol))

    def calibration(self, pol: str) -> CalibrationLUT:
        """Parse the calibration LUTs of ``pol`` (cached)."""
        return self._cached(("calibration", pol.upper()), lambda: self._calibration(pol))

    def noise(self, pol: str) -> NoiseLUT:
        """Parse the thermal noise LUTs of ``pol`` (cached)."""
        return self._cached(("noise", pol.upper()), lambda: self._noise(pol))

    def _parse_file(self, kind: str, pol: str, parse: Callable[[Any, str], _T]) -> tuple[str, _T]:
        """``(relative path, parse(root, POL))`` of the ``kind`` XML of ``pol``; a parser
        failure becomes a SafeError naming the file."""
        rel = self.file(kind, pol)
        root = parse_xml(self._c.read(rel), f"SAFE product {self.name}", rel)
        try:
            return rel, parse(root, pol.upper())
        except (AttributeError, ValueError, TypeError, IndexError) as exc:
            raise self._err(f"file {rel} is incomplete or malformed: {exc!r}") from exc

    def _annotation(self, pol: str) -> ImageAnnotation:
        return self._parse_file("annotation", pol, parse_annotation)[1]

    def _calibration(self, pol: str) -> CalibrationLUT:
        rel, lut = self._parse_file("calibration", pol, parse_calibration)
        if lut.line.size < 2:
            raise self._err(f"file {rel} has {lut.line.size} calibration vector(s); at least 2 are needed")
        return lut

    def _noise(self, pol: str) -> NoiseLUT:
        rel, lut = self._parse_file("noise", pol, parse_noise)
        if lut.range_line.size < 1:
            raise self._err(f"file {rel} has no noise range vectors")
        return lut

    def read_dn(self, pol: str, window: Window | None = None, out: NDArray[np.uint16] | None = None) -> NDArray[np.uint16]:
        """Read digital numbers (uint16, amplitude DN) of ``pol`` for ``window`` (whole image
        when None) from the measurement TIFF, without reading anything outside the window."""
        rel = self.file("measurement", pol)
        if not self._c.exists(rel):
            raise self._err(f"file {rel} is missing")
        ann = self.annotation(pol)
        win = normalise_window(window, ann.lines, ann.samples, f"{self.name} {pol}")
        try:
            with _OPEN_LOCK, warnings.catch_warnings():  # catch_warnings is process-wide state
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # GRD TIFFs carry GCPs only
                ds = rasterio.open(self._c.gdal_path(rel))
            with ds:
                if (ds.height, ds.width) != (ann.lines, ann.samples):
                    raise self._err(
                        f"file {rel} is {ds.width} x {ds.height} px but the annotation says "
                        f"{ann.samples} x {ann.lines}"
                    )
                if ds.count != 1 or ds.dtypes[0] != "uint16":
                    # GRD measurements are one band of 16-bit unsigned amplitude DN; anything
                    # else (float32 intensities, complex SLC) would be cast into garbage sigma0
                    raise self._err(
                        f"file {rel} holds {ds.count} band(s) of {ds.dtypes[0]}, not the one band of "
                        "uint16 amplitude DN of a GRD measurement"
                    )
                data = ds.read(1, window=win, out=out, out_dtype=np.uint16)
        except SafeError:
            raise
        except (RasterioError, OSError) as exc:
            raise self._err(f"file {rel} cannot be read (truncated or corrupt?): {exc}") from exc
        return data


def open_safe(path: str | os.PathLike[str]) -> SafeProduct:
    """Open a Sentinel-1 product: a ``.SAFE`` folder, or a ``.zip`` read without unpacking."""
    p = Path(path).absolute()
    if p.is_dir():
        return SafeProduct(p, _FolderContainer(p))
    if p.is_file():
        if not zipfile.is_zipfile(p):
            raise SafeError(f"SAFE product {p.name}: neither a .SAFE folder nor a zip file ({p})")
        return SafeProduct(p, _ZipContainer(p))
    raise SafeError(f"SAFE product {p.name}: no such folder or file ({p})")
