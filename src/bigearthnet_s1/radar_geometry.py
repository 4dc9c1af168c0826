"""The range-Doppler geometry of one GRD image: which (line, pixel) sees a point on the ground.

:class:`RadarGeometry` holds what the solution needs from an ``ImageAnnotation`` (orbit,
timing, slant<->ground range polynomials, the bistatic reference) and solves it exactly
(Newton on the zero-Doppler condition against the interpolated orbit), for points given as
lon/lat and ellipsoidal height. Terrain correction (:mod:`bigearthnet_s1.geocoding`) uses it
through a coarse model (:mod:`bigearthnet_s1.coordinate_model`).

Geometry conventions (:data:`CONVENTIONS`; the ``geometryConvention`` of the graphs'
Terrain-Correction node). The Sentinel-1 Level-1 Product Specification (S1-RS-MDA-52-7441)
defines the annotation: ``azimuthTime`` of a line / geolocation grid point is a zero-Doppler
azimuth time (UTC), ``slantRangeTime`` is the two-way time, and each ``coordinateConversion``
entry is a slant<->ground range polynomial "at" its zero-Doppler ``azimuthTime``. The IPF
corrects the azimuth bistatic delay (the satellite moves during the echo's travel time) only
in bulk, with the delay of a reference range at mid-swath (the middle of IW2: ETAD Algorithm
Technical Baseline Document ETAD-DLR-DD-0008; Gisinger et al. 2021, IEEE TGRS 59(2) eq. 21;
the "Guide to Sentinel-1 Geocoding", UZH-S1-GC-AD, discusses the residual), so an image line
holds the targets whose zero-Doppler time is ``t_line + (tau - tau_ref) / 2``.

- ``"esa"`` (default): what the product's own geolocation grid says. line =
  ``(t_zd - (2 R / c - tau_ref) / 2 - t0) / dt``; ``tau_ref`` is read off the geolocation grid
  (its azimuth times minus its lines' times, against its slant range times; see
  :func:`bistatic_reference`); pixel = the inverse of the ground-to-slant polynomial NEAREST
  in azimuth time to the line (each polynomial pair holds for its ~1 s block: the GRD's
  ground range is taken on an ellipsoid raised by a terrain height that changes from block to
  block, so neighbouring polynomials differ by up to ~14 px at far range and are not to be
  blended; the grid's slant range times are exactly that polynomial's, while the published
  slant-to-ground polynomial is a fitted inverse off by up to ~0.008 px, so it only starts
  the Newton iteration). Reproduces every geolocation grid point of the real products to
  0.002 line and 0.0001 px.
- ``"snap"``: SNAP's Range-Doppler Terrain Correction (s1tbx RangeDopplerGeocodingOp with
  SARGeocoding.computeRangeIndex): no bistatic term for Sentinel-1 (its reader flags the
  product as corrected), line = ``(t_zd - t0) / dt``, the ground-to-slant polynomials
  interpolated linearly in zero-Doppler time and inverted (SNAP bisects to 0.1 m; here
  Newton to the exact inverse). BigEarthNet-S1 v1.0 was made this way.
- ``"sarsen"``: sarsen / xarray-sentinel: no bistatic term, slant-to-ground polynomial
  coefficients interpolated linearly in azimuth time.

Conventions: radar coordinates are GRD (line, pixel) with pixel CENTRES at integer values
(line 0 at ``first_line_time``, line spacing ``azimuth_time_interval``; ground range of pixel p
is ``p * range_pixel_spacing``). Slant ranges are one-way metres, heights metres above the
WGS84 ellipsoid, times seconds since the orbit's reference time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import GeometryError, InputError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, Orbit, geodetic_to_ecef

__all__ = ["CONVENTIONS", "DEFAULT_CONVENTION", "RadarGeometry", "bistatic_reference", "as_geometry"]

#: Geometry conventions (see the module doc) and their kernel codes.
CONVENTIONS = ("esa", "snap", "sarsen")
DEFAULT_CONVENTION = "esa"
_CONV_CODE = {"esa": 0, "sarsen": 1, "snap": 2}


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InputError(f"geometry convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    return convention


def bistatic_reference(ann: Any) -> float | None:
    """The two-way slant range time ``tau_ref`` (s) of the IPF's bulk bistatic correction, read
    off the annotation's geolocation grid; None when the grid carries no bistatic term.

    Each grid point gives ``d = azimuthTime - (first_line_time + line * dt)``; the product's
    convention is ``d = (slantRangeTime - tau_ref) / 2``. A least-squares line through the
    points must have slope 1/2 (then ``tau_ref`` = median of ``tau - 2 d``; the annotated
    times' microsecond rounding makes it good to ~2 us, i.e. 0.0007 lines) or 0 (no term).
    The GRD annotation does not carry the extent of the SLC's IW2 that ``tau_ref`` is defined
    from (ETAD ATBD), so the grid, which the IPF computed with it, is where it is read.
    """
    g = ann.gcps
    name = getattr(ann, "polarisation", "") or "annotation"
    if g.line.size < 3:
        raise InputError(f"annotation {name}: {g.line.size} geolocation grid points (need 3 or more)")
    dt = float(ann.azimuth_time_interval)
    lines = int(ann.lines)
    t0 = np.asarray(ann.first_line_time, dtype="datetime64[ns]")
    t_last = np.asarray(ann.last_line_time, dtype="datetime64[ns]")
    span = float((t_last - t0).astype(np.int64)) * 1e-9
    if lines > 1 and abs(span / (lines - 1) - dt) < 1e-6 * dt:
        dt = span / (lines - 1)
    d = (np.asarray(g.azimuth_time, dtype="datetime64[ns]") - t0) / np.timedelta64(1, "ns") * 1e-9 - g.line * dt
    tau = np.asarray(g.slant_range_time, dtype=np.float64)
    if np.ptp(tau) <= 0:
        raise InputError(f"annotation {name}: geolocation grid slant range times do not vary")
    slope, _ = np.polyfit(tau, d, 1)
    if abs(slope - 0.5) < 0.05:
        return float(np.median(tau - 2.0 * d))
    if abs(slope) < 0.05:
        return None
    raise GeometryError(
        f"annotation {name}: geolocation grid azimuth times vary with slant range time at {slope:.3f} s/s "
        "(expected 0.5 for the bistatic residual, or 0): not a convention this library knows"
    )


@dataclass(frozen=True)
class RadarGeometry:
    """What terrain correction needs from an ``ImageAnnotation`` (times in seconds since
    ``orbit.reference_time``; ranges one-way in metres)."""

    orbit: Orbit
    lines: int
    samples: int
    t0: float  # azimuth time of line 0
    dt: float  # s per line
    range_pixel_spacing: float  # m
    poly_t: NDArray[np.float64]  # (n,) azimuth times of the srgr polynomials
    poly_sr0: NDArray[np.float64]  # (n,) slant range origins
    poly_coef: NDArray[np.float64]  # (n, deg+1) slant -> ground range
    name: str = "scene"
    convention: str = DEFAULT_CONVENTION
    tau_ref: float = math.nan  # two-way s of the bulk bistatic correction (NaN: none)
    grsr_gr0: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # (n,) ground range origins
    grsr_coef: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 1)))  # (n, deg+1) ground -> slant
    # esa: per polynomial pair, ground range (m) = poly(inv_coef) in u = (R - inv_sr0) * inv_scale:
    # the ground-to-slant polynomial's exact inverse refitted (degree 14, < 1e-5 px)
    inv_sr0: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    inv_scale: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    inv_coef: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 1)))

    @classmethod
    def from_annotation(cls, ann: Any, name: str | None = None, convention: str = DEFAULT_CONVENTION) -> RadarGeometry:
        _check_convention(convention)
        orbit: Orbit = ann.orbit
        label = name or f"{getattr(ann, 'polarisation', '')} annotation"
        polys = sorted(ann.srgr, key=lambda p: p.azimuth_time)
        if not polys:
            raise InputError(f"annotation {label}: no slant-to-ground-range polynomials")
        deg = max(len(p.coefficients) for p in polys)
        coef = np.zeros((len(polys), deg))
        for i, p in enumerate(polys):
            coef[i, : len(p.coefficients)] = p.coefficients
        gpolys = sorted(getattr(ann, "grsr", ()) or (), key=lambda p: p.azimuth_time)
        if convention == "snap" and len(gpolys) != len(polys):
            raise InputError(f"annotation {label}: the snap convention needs a ground-to-slant polynomial per srgr polynomial")
        gdeg = max((len(p.coefficients) for p in gpolys), default=1)
        gcoef = np.zeros((len(gpolys), gdeg))
        for i, p in enumerate(gpolys):
            gcoef[i, : len(p.coefficients)] = p.coefficients
        t0 = float(orbit.seconds(ann.first_line_time))
        t_last = float(orbit.seconds(ann.last_line_time))
        lines = int(ann.lines)
        # line spacing: from first/last line times when consistent with the interval
        dt = float(ann.azimuth_time_interval)
        if lines > 1 and abs((t_last - t0) / (lines - 1) - dt) < 1e-6 * dt:
            dt = (t_last - t0) / (lines - 1)
        sr0 = np.array([getattr(p, "slant_range_origin", None) or p.slant_range_time * SPEED_OF_LIGHT / 2.0
                        for p in polys], dtype=np.float64)
        geo = cls(
            orbit=orbit, lines=lines, samples=int(ann.samples), t0=t0, dt=dt,
            range_pixel_spacing=float(ann.range_pixel_spacing),
            poly_t=np.asarray(orbit.seconds(np.array([p.azimuth_time for p in polys])), dtype=np.float64),
            poly_sr0=sr0, poly_coef=coef, name=label, convention="sarsen",
            grsr_gr0=np.array([float(getattr(p, "ground_range_origin", 0.0)) for p in gpolys], dtype=np.float64),
            grsr_coef=gcoef,
        )
        return geo.with_convention(convention, ann)

    def _exact_inverses(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(inv_sr0, inv_scale, inv_coef) of the esa kernel: each ground-to-slant polynomial's
        inverse refitted over the swath (+-20 px) at degree 14 in a scaled variable (the
        published slant-to-ground polynomials are degree-8 fits off by up to ~0.008 px).
        Without ground-to-slant polynomials: the published ones."""
        n = self.poly_coef.shape[0]
        if self.grsr_coef.shape[0] != n:
            return self.poly_sr0.copy(), np.ones(n), self.poly_coef.copy()
        rps = self.range_pixel_spacing
        # Chebyshev-spaced samples: a least-squares fit on them is near-minimax
        g0, g1 = -20.0 * rps, (self.samples + 20.0) * rps
        g = g0 + (g1 - g0) * 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, 400)))
        sr0 = np.empty(n)
        scale = np.empty(n)
        coef = np.empty((n, 15))
        for k in range(n):
            sr = np.polynomial.polynomial.polyval(g - self.grsr_gr0[k], self.grsr_coef[k])
            if not np.all(np.diff(sr) > 0):
                raise GeometryError(f"{self.name}: ground-to-slant polynomial {k} is not increasing over the swath")
            sr0[k] = sr[0]
            scale[k] = 1.0 / (sr[-1] - sr[0])
            coef[k] = np.polynomial.polynomial.polyfit((sr - sr[0]) * scale[k], g, 14)
        return sr0, scale, coef

    def with_convention(self, convention: str, ann: Any | None = None) -> RadarGeometry:
        """The same scene under another convention (``ann`` needed to read ``tau_ref`` for esa)."""
        _check_convention(convention)
        if convention == self.convention:
            return self
        if convention != "esa":
            return replace(self, convention=convention, tau_ref=math.nan)
        if ann is None:
            raise InputError(f"{self.name}: the esa convention needs the annotation (its geolocation grid)")
        ref = bistatic_reference(ann)
        inv_sr0, inv_scale, inv_coef = self._exact_inverses()
        return replace(self, convention=convention, tau_ref=math.nan if ref is None else ref,
                       inv_sr0=inv_sr0, inv_scale=inv_scale, inv_coef=inv_coef)

    @functools.cached_property
    def poly_jump_px(self) -> float:
        """Largest difference (px) between consecutive slant-to-ground polynomials over the
        swath: how far the nearest-polynomial rule can move a pixel across a block boundary."""
        n = self.poly_coef.shape[0]
        if n < 2:
            return 0.0
        gr_far = self.samples * self.range_pixel_spacing
        if self.grsr_coef.shape[0] == n:
            far = float(np.polynomial.polynomial.polyval(gr_far - self.grsr_gr0[0], self.grsr_coef[0])) - self.poly_sr0[0]
        else:
            far = 0.75 * gr_far
        x = np.linspace(0.0, max(far, 1.0), 33)
        vals = np.array([np.polynomial.polynomial.polyval(x + self.poly_sr0[0] - self.poly_sr0[k], self.poly_coef[k])
                         for k in range(n)])
        return float(np.max(np.abs(np.diff(vals, axis=0)))) / self.range_pixel_spacing

    @property
    def conv_code(self) -> int:
        return _CONV_CODE[self.convention]

    @property
    def bistatic(self) -> bool:
        return self.convention == "esa" and math.isfinite(self.tau_ref)

    @property
    def t_last(self) -> float:
        return self.t0 + (self.lines - 1) * self.dt

    def check_orbit(self) -> None:
        """GeometryError when the state vectors do not span the scene's azimuth times."""
        self.orbit.check_span(self.t0, self.t_last, what=f"scene ({self.name})")

    @property
    def poly_line(self) -> NDArray[np.float64]:
        """Azimuth positions of the srgr polynomials in (fractional) lines."""
        return (self.poly_t - self.t0) / self.dt

    def pixel_of(self, line: NDArray[np.float64], slant_range: NDArray[np.float64],
                 select: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """GRD pixel (centre convention) of one-way slant range (m) at (fractional) line, by
        the geometry convention (module doc). ``select``: the line that picks/interpolates the
        polynomials (default ``line``)."""
        line = np.asarray(line, dtype=np.float64)
        slant_range = np.asarray(slant_range, dtype=np.float64)
        line, slant_range = np.broadcast_arrays(line, slant_range)
        sel = line if select is None else np.broadcast_to(np.asarray(select, dtype=np.float64), line.shape)
        ok = np.isfinite(sel)
        ll = np.where(ok, sel, 0.0)
        pl = self.poly_line
        n = pl.size
        if n == 1:
            i = np.zeros(ll.shape, dtype=np.intp)
            w = np.zeros(ll.shape)
            i1 = i
        else:
            i = np.clip(np.searchsorted(pl, ll, side="right") - 1, 0, n - 2)
            w = np.clip((ll - pl[i]) / (pl[i + 1] - pl[i]), 0.0, 1.0)
            i1 = i + 1
        if self.convention == "esa":
            i = i1 = np.where(w < 0.5, i, i1)
            w = np.zeros(w.shape)
        c = self.poly_coef[i] * (1 - w)[..., None] + self.poly_coef[i1] * w[..., None]
        o = self.poly_sr0[i] * (1 - w) + self.poly_sr0[i1] * w
        x = slant_range - o
        g = np.zeros(x.shape)
        for k in range(c.shape[-1] - 1, -1, -1):  # Horner
            g = g * x + c[..., k]
        if self.convention != "sarsen" and self.grsr_coef.shape[0] == n:
            gc = self.grsr_coef[i] * (1 - w)[..., None] + self.grsr_coef[i1] * w[..., None]
            g0 = self.grsr_gr0[i] * (1 - w) + self.grsr_gr0[i1] * w
            for _ in range(3):  # Newton on the ground -> slant polynomial
                xg = g - g0
                f = np.zeros(xg.shape)
                df = np.zeros(xg.shape)
                for k in range(gc.shape[-1] - 1, -1, -1):
                    df = df * xg + f
                    f = f * xg + gc[..., k]
                g = g - (f - slant_range) / df
        return np.where(ok & np.isfinite(line), g / self.range_pixel_spacing, np.nan)

    def zero_doppler(self, lon: NDArray, lat: NDArray, h: NDArray) -> tuple[NDArray, NDArray]:
        """Zero-Doppler time (s since the orbit's reference) and one-way slant range (m)."""
        xyz = geodetic_to_ecef(lon, lat, h)
        return self.orbit.zero_doppler(xyz, t_guess=0.5 * (self.t0 + self.t_last), tol=1e-8)

    def line_of(self, t_zd: NDArray, slant_range: NDArray) -> NDArray:
        """Image line of zero-Doppler time ``t_zd`` and slant range (bistatic term applied by
        the esa convention)."""
        t = np.asarray(t_zd, dtype=np.float64)
        if self.bistatic:
            t = t - (2.0 * np.asarray(slant_range, dtype=np.float64) / SPEED_OF_LIGHT - self.tau_ref) / 2.0
        return (t - self.t0) / self.dt

    def solve_range(self, lon: NDArray, lat: NDArray, h: NDArray) -> tuple[NDArray, NDArray]:
        """Exact (line, one-way slant range m) of points given by lon/lat (deg) and ellipsoidal
        height (m). NaN outside the state vectors."""
        t, rng = self.zero_doppler(lon, lat, h)
        return self.line_of(t, rng), rng

    def solve(self, lon: NDArray, lat: NDArray, h: NDArray) -> tuple[NDArray, NDArray]:
        """Exact GRD (line, pixel) of points given by lon/lat (deg) and ellipsoidal height (m)."""
        line, rng = self.solve_range(lon, lat, h)
        return line, self.pixel_of(line, rng)


def as_geometry(annotation: Any, convention: str | None = None) -> RadarGeometry:
    """``annotation`` (an ``ImageAnnotation``, or a RadarGeometry passed through) as a RadarGeometry of ``convention``."""
    if isinstance(annotation, RadarGeometry):
        if convention is None or convention == annotation.convention:
            return annotation
        raise InputError(f"{annotation.name}: a RadarGeometry of convention {annotation.convention} was given with "
                         f"convention={convention!r}; build it with RadarGeometry.from_annotation(..., convention=)")
    return RadarGeometry.from_annotation(annotation, convention=convention or DEFAULT_CONVENTION)
