"""The annotation files of a Sentinel-1 IW GRD product, parsed into plain values.

One product annotation (geometry: orbit, timing, slant<->ground range polynomials,
geolocation grid, swath bounds), its calibration LUTs and its thermal-noise LUTs per
polarisation. :class:`bigearthnet_s1.safe.SafeProduct` finds the files and hands their
parsed XML to :func:`parse_annotation`, :func:`parse_calibration` and :func:`parse_noise`;
they raise ``ValueError``/``AttributeError`` on a missing or malformed element, which the
product turns into a :class:`~bigearthnet_s1.errors.SafeError` naming the file.

Conventions
- ``line`` is the azimuth (row) index, ``pixel`` the ground-range (column) index, both
  0-based; an integer (line, pixel) is the pixel CENTRE (as in the geolocation grid and the
  LUT vectors).
- Times: ``numpy.datetime64[ns]`` values are UTC (numpy has no zones); ``datetime`` values
  are tz-aware UTC.
- Slant range time is two-way, in seconds; slant and ground ranges are metres.
- LUT values are as annotated: calibration LUTs are amplitudes (sigma0 = DN^2 / A^2), noise
  LUTs are powers in DN^2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1._time import parse_datetime64, parse_iso
from bigearthnet_s1.errors import SafeError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, Orbit

__all__ = [
    "ImageAnnotation",
    "SrgrPolynomial",
    "GeolocationGrid",
    "SwathBounds",
    "CalibrationLUT",
    "NoiseLUT",
    "NoiseAzimuthBlock",
    "parse_annotation",
    "parse_calibration",
    "parse_noise",
]


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
# XML -> types
# --------------------------------------------------------------------------------------
def _floats(text: str | None) -> NDArray[np.float64]:
    return np.array((text or "").split(), dtype=np.float64)


def _ints(text: str | None) -> NDArray[np.int64]:
    return np.array((text or "").split(), dtype=np.int64)


def _t(el: Element, path: str) -> str:
    found = el.find(path)
    if found is None or found.text is None:
        raise ValueError(f"missing element {path}")
    return found.text.strip()


def parse_annotation(root: Element, pol: str) -> ImageAnnotation:
    info = root.find("imageAnnotation/imageInformation")
    gen = root.find("generalAnnotation/productInformation")
    if info is None or gen is None:
        raise ValueError("missing imageAnnotation/imageInformation or generalAnnotation/productInformation")

    times, pos, vel = [], [], []
    for o in root.iterfind("generalAnnotation/orbitList/orbit"):
        times.append(parse_datetime64(_t(o, "time")))
        pos.append([float(_t(o, f"position/{c}")) for c in "xyz"])
        vel.append([float(_t(o, f"velocity/{c}")) for c in "xyz"])
    orbit = Orbit.from_state_vectors(np.array(times), np.array(pos), np.array(vel))

    srgr, grsr = [], []
    for cc in root.iterfind("coordinateConversion/coordinateConversionList/coordinateConversion"):
        az, srt = parse_datetime64(_t(cc, "azimuthTime")), float(_t(cc, "slantRangeTime"))
        sr0, gr0 = float(_t(cc, "sr0")), float(_t(cc, "gr0"))
        srgr.append(SrgrPolynomial(az, srt, sr0, gr0, _floats(_t(cc, "srgrCoefficients")), "srgr"))
        grsr.append(SrgrPolynomial(az, srt, sr0, gr0, _floats(_t(cc, "grsrCoefficients")), "grsr"))

    cols: dict[str, list[Any]] = {k: [] for k in ("line", "pixel", "azimuth_time", "slant_range_time", "latitude",
                                                  "longitude", "height", "incidence_angle", "elevation_angle")}
    tags = {"line": "line", "pixel": "pixel", "slant_range_time": "slantRangeTime", "latitude": "latitude",
            "longitude": "longitude", "height": "height", "incidence_angle": "incidenceAngle",
            "elevation_angle": "elevationAngle"}
    for g in root.iterfind("geolocationGrid/geolocationGridPointList/geolocationGridPoint"):
        cols["azimuth_time"].append(parse_datetime64(_t(g, "azimuthTime")))
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
        first_line_time=parse_datetime64(_t(info, "productFirstLineUtcTime")),
        last_line_time=parse_datetime64(_t(info, "productLastLineUtcTime")),
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
        product_first_line_utc=parse_iso(_t(info, "productFirstLineUtcTime")),
        thermal_noise_corrected=root.findtext(
            "imageAnnotation/processingInformation/thermalNoiseCorrectionPerformed", "false"
        ).strip().lower() == "true",
    )


def parse_calibration(root: Element, pol: str) -> CalibrationLUT:
    lines, times, pixels = [], [], []
    vals: dict[str, list[NDArray[np.float64]]] = {"sigmaNought": [], "betaNought": [], "gamma": [], "dn": []}
    for v in root.iterfind("calibrationVectorList/calibrationVector"):
        lines.append(int(_t(v, "line")))
        times.append(parse_datetime64(_t(v, "azimuthTime")))
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


def parse_noise(root: Element, pol: str) -> NoiseLUT:
    vectors = root.findall("noiseRangeVectorList/noiseRangeVector")
    lut_tag = "noiseRangeLut"
    if not vectors:  # IPF < 2.9: a single list of range vectors, no azimuth LUT
        vectors = root.findall("noiseVectorList/noiseVector")
        lut_tag = "noiseLut"
    lines, times, pixels, values = [], [], [], []
    for v in vectors:
        lines.append(int(_t(v, "line")))
        times.append(parse_datetime64(_t(v, "azimuthTime")))
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
