"""Reading Sentinel-1 IW GRD products in the SAFE format, from a ``.SAFE`` folder or a ``.zip``.

The product is never unpacked: XML members are read straight out of the zip and the
measurement GeoTIFF is read through GDAL's ``/vsizip/`` virtual file system, window by window.

Conventions
- Radar geometry: ``line`` is the azimuth (row) index, ``pixel`` the ground-range (column)
  index, both 0-based; an integer (line, pixel) is the pixel CENTRE (as in the annotation's
  geolocation grid and LUT vectors). Windows are ``rasterio.windows.Window(col_off=pixel,
  row_off=line, width, height)``.
- Times: ``datetime`` values are tz-aware UTC; ``numpy.datetime64[ns]`` values are naive UTC.
- Slant range time is two-way, in seconds; slant and ground ranges are metres.
- LUT values are as annotated: calibration LUTs are amplitudes (sigma0 = DN^2 / A^2), noise
  LUTs are powers in DN^2.

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
import re
import threading
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as DET
import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from bigearthnet_s1.errors import SafeError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, Orbit

__all__ = [
    "open_safe",
    "SafeProduct",
    "ImageAnnotation",
    "SrgrPolynomial",
    "GeolocationGrid",
    "CalibrationLUT",
    "NoiseLUT",
    "NoiseAzimuthBlock",
    "SwathBounds",
    "SafeError",
    "normalise_window",
]

_OPEN_LOCK = threading.Lock()
_T = TypeVar("_T")

_NS = {
    "xfdu": "urn:ccsds:schema:xfdu:1",
    "safe": "http://www.esa.int/safe/sentinel-1.0",
    "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1",
    "s1sarl1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1",
    "gml": "http://www.opengis.net/gml",
}

# repID of the manifest's dataObjects -> our role names
_ROLES = {
    "s1Level1ProductSchema": "annotation",
    "s1Level1CalibrationSchema": "calibration",
    "s1Level1NoiseSchema": "noise",
    "s1Level1MeasurementSchema": "measurement",
    "s1Level1RfiSchema": "rfi",
}
# s1b-iw-grd-vv-20211223t051122-... : the polarisation is the 4th dash-separated field
_FILE_RE = re.compile(r"(?:^|[-/])s1[abcd]-[a-z0-9]+-[a-z]+-(hh|hv|vh|vv)-", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# small parsing helpers
# --------------------------------------------------------------------------------------
def _dt64(text: str) -> np.datetime64:
    return np.datetime64(text.strip().rstrip("Z"), "ns")


def _utc(text: str) -> datetime:
    t = text.strip().rstrip("Z")
    return datetime.fromisoformat(t).replace(tzinfo=UTC)


def _floats(text: str | None) -> NDArray[np.float64]:
    return np.array((text or "").split(), dtype=np.float64)


def _ints(text: str | None) -> NDArray[np.int64]:
    return np.array((text or "").split(), dtype=np.int64)


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
def _strip_suffix(name: str) -> str:
    return re.sub(r"\.(SAFE|zip)$", "", name, flags=re.IGNORECASE)


class _Container:
    """Read-only access to the members of a SAFE product, relative to the .SAFE root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.product_label = _strip_suffix(path.name)

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
        if not (path / "manifest.safe").is_file():
            raise SafeError(f"SAFE product {path.name}: file manifest.safe is missing ({path})")

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
        manifests = sorted(
            (n for n in names if PurePosixPath(n).name == "manifest.safe" and len(PurePosixPath(n).parts) <= 2),
            key=len,
        )
        if not manifests:
            self._zip.close()
            raise SafeError(f"SAFE product {path.name}: file manifest.safe is missing from the zip ({path})")
        parent = PurePosixPath(manifests[0]).parent
        self.prefix = "" if str(parent) == "." else f"{parent}/"
        self.product_label = _strip_suffix(parent.name if self.prefix else path.name)
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


def _parse_xml(container: _Container, rel: str) -> Element:
    """Parse a member with defusedxml: DTD allowed (harmless), entities and external refs refused."""
    data = container.read(rel)
    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise SafeError(
            f"SAFE product {container.product_label}: file {rel} refused, it declares XML entities or "
            f"external references (possible entity-expansion or XXE payload): {exc!r}"
        ) from exc
    except ParseError as exc:
        raise SafeError(f"SAFE product {container.product_label}: file {rel} is not well-formed XML: {exc}") from exc


# --------------------------------------------------------------------------------------
# shared types
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SrgrPolynomial:
    """One slant-range <-> ground-range conversion polynomial of ``<coordinateConversion>``.

    For ``ImageAnnotation.srgr`` the polynomial maps slant range (m) to ground range (m):
    ``gr = sum c_i (sr - slant_range_origin)^i``; for ``ImageAnnotation.grsr`` it maps ground
    range to slant range: ``sr = sum c_i (gr - ground_range_origin)^i``. Ground range of
    pixel ``p`` is ``p * range_pixel_spacing`` (pixel centres).
    """

    azimuth_time: np.datetime64  # UTC
    slant_range_time: float  # two-way s
    slant_range_origin: float  # sr0, m (one-way)
    ground_range_origin: float  # gr0, m
    coefficients: NDArray[np.float64]

    kind: str = "srgr"  # "srgr" (slant -> ground) or "grsr" (ground -> slant)

    @property
    def origin(self) -> float:
        """The origin subtracted from the argument: sr0 for srgr, gr0 for grsr (m)."""
        return self.slant_range_origin if self.kind == "srgr" else self.ground_range_origin

    def __call__(self, x: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Evaluate at range ``x`` (m): slant range for srgr, ground range for grsr."""
        return np.asarray(np.polynomial.polynomial.polyval(np.asarray(x, dtype=np.float64) - self.origin,
                                                           self.coefficients), dtype=np.float64)


@dataclass(frozen=True)
class GeolocationGrid:
    """The annotation's geolocation grid points (1-D arrays of equal length).

    ``line``/``pixel`` are pixel centres; latitude/longitude in degrees (WGS84), height in m
    above the ellipsoid, angles in degrees, ``slant_range_time`` two-way in seconds.
    """

    line: NDArray[np.float64]
    pixel: NDArray[np.float64]
    azimuth_time: NDArray[np.datetime64]
    slant_range_time: NDArray[np.float64]
    latitude: NDArray[np.float64]
    longitude: NDArray[np.float64]
    height: NDArray[np.float64]
    incidence_angle: NDArray[np.float64]
    elevation_angle: NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int]:
        """(number of distinct lines, number of distinct pixels) of the regular grid."""
        return (np.unique(self.line).size, np.unique(self.pixel).size)

    def grid(self, name: str) -> NDArray[Any]:
        """Field ``name`` reshaped to (lines, pixels), rows sorted by line then pixel."""
        order = np.lexsort((self.pixel, self.line))
        return np.asarray(getattr(self, name))[order].reshape(self.shape)


@dataclass(frozen=True)
class SwathBounds:
    """Valid extent of one sub-swath in the merged GRD image (inclusive line/pixel bounds)."""

    swath: str
    first_line: int
    last_line: int
    first_sample: int
    last_sample: int


@dataclass(frozen=True)
class ImageAnnotation:
    """Product annotation of one polarisation (``annotation/s1?-iw-grd-<pol>-....xml``)."""

    polarisation: str
    lines: int
    samples: int
    first_line_time: np.datetime64  # UTC, azimuth time of line 0
    last_line_time: np.datetime64
    azimuth_time_interval: float  # s
    range_pixel_spacing: float  # m, ground range
    azimuth_pixel_spacing: float  # m
    slant_range_time: float  # two-way s, near range (pixel 0)
    radar_frequency: float  # Hz
    pass_direction: str  # "ASCENDING" | "DESCENDING"
    orbit: Orbit
    srgr: tuple[SrgrPolynomial, ...]
    grsr: tuple[SrgrPolynomial, ...]
    gcps: GeolocationGrid
    # extensions
    mission: str = ""
    range_sampling_rate: float = float("nan")  # Hz
    platform_heading: float = float("nan")  # deg
    incidence_angle_mid_swath: float = float("nan")  # deg
    swath_bounds: tuple[SwathBounds, ...] = ()
    terrain_height: float = 0.0  # m, mean of the annotated terrain heights
    product_first_line_utc: datetime | None = None
    thermal_noise_corrected: bool = False  # processingInformation/thermalNoiseCorrectionPerformed

    @property
    def wavelength(self) -> float:
        """Radar wavelength in m."""
        return SPEED_OF_LIGHT / self.radar_frequency

    def azimuth_time(self, line: NDArray[np.float64] | float) -> NDArray[np.datetime64]:
        """UTC azimuth time of (fractional) line numbers."""
        ns = np.round(np.asarray(line, dtype=np.float64) * self.azimuth_time_interval * 1e9)
        return self.first_line_time + ns.astype("timedelta64[ns]")

    def _poly_at(self, polys: tuple[SrgrPolynomial, ...], line: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
        """Coefficients and origin of the polynomial nearest in azimuth time to each line: each
        holds for its block of lines (the product's convention, which its geolocation grid
        follows; see ``bigearthnet_s1.geocoding``), and neighbours are not blended."""
        order = sorted(range(len(polys)), key=lambda k: polys[k].azimuth_time)
        t_poly = np.array([(polys[k].azimuth_time - self.first_line_time) / np.timedelta64(1, "ns") for k in order]) * 1e-9
        t = np.asarray(line, dtype=np.float64) * self.azimuth_time_interval
        coefs = np.stack([polys[k].coefficients for k in order])
        origin = np.array([polys[k].origin for k in order], dtype=np.float64)
        j = np.searchsorted(0.5 * (t_poly[1:] + t_poly[:-1]), t, side="right")
        return coefs[j], origin[j]

    def slant_range(self, line: NDArray[np.float64] | float, pixel: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """One-way slant range (m) of (line, pixel) centres from the ground-to-slant polynomials."""
        line_a, pixel_a = np.broadcast_arrays(np.asarray(line, np.float64), np.asarray(pixel, np.float64))
        c, o = self._poly_at(self.grsr, line_a)
        x = pixel_a * self.range_pixel_spacing - o
        out = np.zeros(x.shape)
        for k in range(c.shape[-1] - 1, -1, -1):  # Horner
            out = out * x + c[..., k]
        return out

    def ground_pixel(self, line: NDArray[np.float64] | float, slant_range: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Fractional pixel (centre convention) of a one-way slant range (m) at ``line``, through
        the published slant-to-ground polynomial (a fitted inverse of the ground-to-slant one,
        good to ~0.01 px; ``geocoding`` inverts the latter exactly)."""
        line_a, sr = np.broadcast_arrays(np.asarray(line, np.float64), np.asarray(slant_range, np.float64))
        c, o = self._poly_at(self.srgr, line_a)
        x = sr - o
        out = np.zeros(x.shape)
        for k in range(c.shape[-1] - 1, -1, -1):
            out = out * x + c[..., k]
        return out / self.range_pixel_spacing


@dataclass(frozen=True)
class CalibrationLUT:
    """Calibration vectors of one polarisation (amplitude LUTs: sigma0 = DN^2 / A^2).

    ``line`` (n,) are the vector lines (pixel centres, increasing); ``pixel`` (n, m) the
    sample positions of each vector (identical rows in every product seen, kept per vector
    anyway); ``sigma_nought``, ``beta_nought``, ``gamma``, ``dn`` are (n, m).
    """

    polarisation: str
    line: NDArray[np.int64]
    pixel: NDArray[np.int64]
    azimuth_time: NDArray[np.datetime64]
    sigma_nought: NDArray[np.float64]
    beta_nought: NDArray[np.float64]
    gamma: NDArray[np.float64]
    dn: NDArray[np.float64]
    absolute_calibration_constant: float = 1.0

    _KINDS = {
        "sigma0": "sigma_nought",
        "sigma_nought": "sigma_nought",
        "sigmanought": "sigma_nought",
        "beta0": "beta_nought",
        "beta_nought": "beta_nought",
        "betanought": "beta_nought",
        "gamma0": "gamma",
        "gamma": "gamma",
        "dn": "dn",
    }

    def values(self, kind: str) -> NDArray[np.float64]:
        """The (n, m) LUT for ``kind`` in sigma0 | beta0 | gamma0 | dn (SNAP names accepted)."""
        key = self._KINDS.get(kind.lower().replace(" ", "").replace("-", "_"))
        if key is None:
            raise SafeError(f"unknown calibration LUT {kind!r}; expected sigma0, beta0, gamma0 or dn")
        return getattr(self, key)


@dataclass(frozen=True)
class NoiseAzimuthBlock:
    """One noise azimuth vector (IPF >= 2.9): a block of the image (inclusive bounds) with a
    LUT along azimuth (``line`` increasing, values are unitless scale factors)."""

    swath: str
    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    line: NDArray[np.int64]
    values: NDArray[np.float64]


@dataclass(frozen=True)
class NoiseLUT:
    """Thermal noise LUTs of one polarisation (noise power in DN^2).

    Range vectors (``noiseRangeVector`` for IPF >= 2.9, ``noiseVector`` before): ``range_line``
    (n,), and per vector ``range_pixel[i]`` / ``range_values[i]`` (lengths may differ between
    vectors in old products). Azimuth blocks are empty for IPF < 2.9 (then the range LUT alone
    gives the noise, as SNAP does).
    """

    polarisation: str
    range_line: NDArray[np.int64]
    range_azimuth_time: NDArray[np.datetime64]
    range_pixel: tuple[NDArray[np.int64], ...]
    range_values: tuple[NDArray[np.float64], ...]
    azimuth_blocks: tuple[NoiseAzimuthBlock, ...] = ()

    @property
    def has_azimuth(self) -> bool:
        return len(self.azimuth_blocks) > 0


# --------------------------------------------------------------------------------------
# the product
# --------------------------------------------------------------------------------------
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
    footprint: shapely.Polygon

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
        root = _parse_xml(self._c, "manifest.safe")

        def text(xpath: str, required: bool = True) -> str:
            el = root.find(xpath, _NS)
            if el is None or el.text is None:
                if required:
                    raise self._err(f"file manifest.safe lacks {xpath.split('/')[-1]}")
                return ""
            return el.text.strip()

        number = text(".//safe:platform/safe:number")
        family = text(".//safe:platform/safe:familyName")
        self.mission = ("S1" if family.upper().startswith("SENTINEL-1") else family) + number
        self.mode = text(".//s1sarl1:instrumentMode/s1sarl1:mode")
        self.product_type = text(".//s1sarl1:standAloneProductInformation/s1sarl1:productType")
        pols = [
            e.text.strip().upper()
            for e in root.findall(".//s1sarl1:standAloneProductInformation/s1sarl1:transmitterReceiverPolarisation", _NS)
            if e.text
        ]
        self.polarisations = tuple(pols)
        self.absolute_orbit = int(text(".//safe:orbitReference/safe:orbitNumber[@type='start']"))
        self.relative_orbit = int(text(".//safe:orbitReference/safe:relativeOrbitNumber[@type='start']"))
        self.pass_direction = text(".//safe:orbitReference//s1:pass").upper()
        self.datatake_id = f"{int(text('.//s1sarl1:missionDataTakeID')):06X}"
        self.start_time = _utc(text(".//safe:acquisitionPeriod/safe:startTime"))
        self.stop_time = _utc(text(".//safe:acquisitionPeriod/safe:stopTime"))
        version = ""
        for sw in root.iter(f"{{{_NS['safe']}}}software"):
            if "IPF" in (sw.get("name") or "") and sw.get("version"):
                version = sw.get("version", "")
                break
        try:
            self.ipf_version = float(version)
        except ValueError:
            raise self._err(f"file manifest.safe has no readable IPF version ({version!r})") from None
        coords = text(".//safe:frameSet/safe:frame/safe:footPrint/gml:coordinates")
        try:
            latlon = np.array([[float(v) for v in pair.split(",")] for pair in coords.split()])
            self.footprint = shapely.Polygon(latlon[:, ::-1])
        except (ValueError, IndexError) as exc:
            raise self._err(f"file manifest.safe has an unreadable footprint {coords!r}") from exc
        for obj in root.iter("dataObject"):
            role = _ROLES.get(obj.get("repID", ""))
            loc = obj.find("byteStream/fileLocation")
            if role is None or loc is None:
                continue
            href = (loc.get("href") or "").removeprefix("./")
            m = _FILE_RE.search(PurePosixPath(href).name)
            if m is None:
                continue
            self._files[(role, m.group(1).upper())] = href

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
        root = _parse_xml(self._c, rel)
        try:
            return rel, parse(root, pol.upper())
        except (AttributeError, ValueError, TypeError, IndexError) as exc:
            raise self._err(f"file {rel} is incomplete or malformed: {exc!r}") from exc

    def _annotation(self, pol: str) -> ImageAnnotation:
        return self._parse_file("annotation", pol, _parse_annotation)[1]

    def _calibration(self, pol: str) -> CalibrationLUT:
        rel, lut = self._parse_file("calibration", pol, _parse_calibration)
        if lut.line.size < 2:
            raise self._err(f"file {rel} has {lut.line.size} calibration vector(s); at least 2 are needed")
        return lut

    def _noise(self, pol: str) -> NoiseLUT:
        rel, lut = self._parse_file("noise", pol, _parse_noise)
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


# --------------------------------------------------------------------------------------
# XML -> types
# --------------------------------------------------------------------------------------
def _t(el: Element, path: str) -> str:
    found = el.find(path)
    if found is None or found.text is None:
        raise ValueError(f"missing element {path}")
    return found.text.strip()


def _parse_annotation(root: Element, pol: str) -> ImageAnnotation:
    info = root.find("imageAnnotation/imageInformation")
    gen = root.find("generalAnnotation/productInformation")
    if info is None or gen is None:
        raise ValueError("missing imageAnnotation/imageInformation or generalAnnotation/productInformation")

    times, pos, vel = [], [], []
    for o in root.iterfind("generalAnnotation/orbitList/orbit"):
        times.append(_dt64(_t(o, "time")))
        pos.append([float(_t(o, f"position/{c}")) for c in "xyz"])
        vel.append([float(_t(o, f"velocity/{c}")) for c in "xyz"])
    orbit = Orbit.from_state_vectors(np.array(times), np.array(pos), np.array(vel))

    srgr, grsr = [], []
    for cc in root.iterfind("coordinateConversion/coordinateConversionList/coordinateConversion"):
        az, srt = _dt64(_t(cc, "azimuthTime")), float(_t(cc, "slantRangeTime"))
        sr0, gr0 = float(_t(cc, "sr0")), float(_t(cc, "gr0"))
        srgr.append(SrgrPolynomial(az, srt, sr0, gr0, _floats(_t(cc, "srgrCoefficients")), "srgr"))
        grsr.append(SrgrPolynomial(az, srt, sr0, gr0, _floats(_t(cc, "grsrCoefficients")), "grsr"))

    cols: dict[str, list[Any]] = {k: [] for k in ("line", "pixel", "azimuth_time", "slant_range_time", "latitude",
                                                  "longitude", "height", "incidence_angle", "elevation_angle")}
    tags = {"line": "line", "pixel": "pixel", "slant_range_time": "slantRangeTime", "latitude": "latitude",
            "longitude": "longitude", "height": "height", "incidence_angle": "incidenceAngle",
            "elevation_angle": "elevationAngle"}
    for g in root.iterfind("geolocationGrid/geolocationGridPointList/geolocationGridPoint"):
        cols["azimuth_time"].append(_dt64(_t(g, "azimuthTime")))
        for k, tag in tags.items():
            cols[k].append(float(_t(g, tag)))
    f64 = {k: np.array(v, dtype=np.float64) for k, v in cols.items() if k != "azimuth_time"}
    gcps = GeolocationGrid(
        line=f64["line"], pixel=f64["pixel"], azimuth_time=np.array(cols["azimuth_time"], dtype="datetime64[ns]"),
        slant_range_time=f64["slant_range_time"], latitude=f64["latitude"], longitude=f64["longitude"],
        height=f64["height"], incidence_angle=f64["incidence_angle"], elevation_angle=f64["elevation_angle"],
    )

    bounds = []
    for sm in root.iterfind("swathMerging/swathMergeList/swathMerge"):
        sw = _t(sm, "swath")
        for b in sm.iterfind("swathBoundsList/swathBounds"):
            bounds.append(SwathBounds(sw, int(_t(b, "firstAzimuthLine")), int(_t(b, "lastAzimuthLine")),
                                      int(_t(b, "firstRangeSample")), int(_t(b, "lastRangeSample"))))
    heights = [float(_t(h, "value")) for h in root.iterfind("generalAnnotation/terrainHeightList/terrainHeight")]

    return ImageAnnotation(
        polarisation=pol,
        lines=int(_t(info, "numberOfLines")),
        samples=int(_t(info, "numberOfSamples")),
        first_line_time=_dt64(_t(info, "productFirstLineUtcTime")),
        last_line_time=_dt64(_t(info, "productLastLineUtcTime")),
        azimuth_time_interval=float(_t(info, "azimuthTimeInterval")),
        range_pixel_spacing=float(_t(info, "rangePixelSpacing")),
        azimuth_pixel_spacing=float(_t(info, "azimuthPixelSpacing")),
        slant_range_time=float(_t(info, "slantRangeTime")),
        radar_frequency=float(_t(gen, "radarFrequency")),
        pass_direction=_t(gen, "pass").upper(),
        orbit=orbit,
        srgr=tuple(srgr),
        grsr=tuple(grsr),
        gcps=gcps,
        mission=root.findtext("adsHeader/missionId", "").strip(),
        range_sampling_rate=float(_t(gen, "rangeSamplingRate")),
        platform_heading=float(_t(gen, "platformHeading")),
        incidence_angle_mid_swath=float(info.findtext("incidenceAngleMidSwath", "nan")),
        swath_bounds=tuple(bounds),
        terrain_height=float(np.mean(heights)) if heights else 0.0,
        product_first_line_utc=_utc(_t(info, "productFirstLineUtcTime")),
        thermal_noise_corrected=root.findtext(
            "imageAnnotation/processingInformation/thermalNoiseCorrectionPerformed", "false"
        ).strip().lower() == "true",
    )


def _parse_calibration(root: Element, pol: str) -> CalibrationLUT:
    lines, times, pixels = [], [], []
    vals: dict[str, list[NDArray[np.float64]]] = {"sigmaNought": [], "betaNought": [], "gamma": [], "dn": []}
    for v in root.iterfind("calibrationVectorList/calibrationVector"):
        lines.append(int(_t(v, "line")))
        times.append(_dt64(_t(v, "azimuthTime")))
        px = _ints(_t(v, "pixel"))
        pixels.append(px)
        for k in vals:
            a = _floats(_t(v, k))
            if a.size != px.size:
                raise ValueError(f"calibration vector at line {lines[-1]}: {k} has {a.size} values for {px.size} pixels")
            vals[k].append(a)
    sizes = {p.size for p in pixels}
    if len(sizes) > 1:
        raise ValueError(f"calibration vectors have different lengths {sorted(sizes)}")
    order = np.argsort(lines, kind="stable")
    const = root.findtext("calibrationInformation/absoluteCalibrationConstant")

    def stack(xs: list[NDArray[Any]]) -> NDArray[Any]:
        return np.stack(xs)[order] if xs else np.zeros((0, 0))

    return CalibrationLUT(
        polarisation=pol,
        line=np.array(lines, dtype=np.int64)[order],
        pixel=stack(pixels).astype(np.int64),
        azimuth_time=np.array(times, dtype="datetime64[ns]")[order],
        sigma_nought=stack(vals["sigmaNought"]),
        beta_nought=stack(vals["betaNought"]),
        gamma=stack(vals["gamma"]),
        dn=stack(vals["dn"]),
        absolute_calibration_constant=float(const) if const else 1.0,
    )


def _parse_noise(root: Element, pol: str) -> NoiseLUT:
    vectors = root.findall("noiseRangeVectorList/noiseRangeVector")
    lut_tag = "noiseRangeLut"
    if not vectors:  # IPF < 2.9: a single list of range vectors, no azimuth LUT
        vectors = root.findall("noiseVectorList/noiseVector")
        lut_tag = "noiseLut"
    lines, times, pixels, values = [], [], [], []
    for v in vectors:
        lines.append(int(_t(v, "line")))
        times.append(_dt64(_t(v, "azimuthTime")))
        px = _ints(_t(v, "pixel"))
        val = _floats(_t(v, lut_tag))
        if px.size != val.size:
            raise ValueError(f"noise vector at line {lines[-1]}: {val.size} values for {px.size} pixels")
        pixels.append(px)
        values.append(val)
    order = np.argsort(lines, kind="stable")
    blocks = []
    for a in root.iterfind("noiseAzimuthVectorList/noiseAzimuthVector"):
        line = _ints(_t(a, "line"))
        val = _floats(_t(a, "noiseAzimuthLut"))
        if line.size != val.size:
            raise ValueError(f"noise azimuth vector {a.findtext('swath')}: {val.size} values for {line.size} lines")
        blocks.append(
            NoiseAzimuthBlock(
                swath=a.findtext("swath", "").strip(),
                first_line=int(_t(a, "firstAzimuthLine")),
                last_line=int(_t(a, "lastAzimuthLine")),
                first_sample=int(_t(a, "firstRangeSample")),
                last_sample=int(_t(a, "lastRangeSample")),
                line=line,
                values=val,
            )
        )
    return NoiseLUT(
        polarisation=pol,
        range_line=np.array(lines, dtype=np.int64)[order],
        range_azimuth_time=np.array(times, dtype="datetime64[ns]")[order],
        range_pixel=tuple(pixels[i] for i in order),
        range_values=tuple(values[i] for i in order),
        azimuth_blocks=tuple(blocks),
    )
