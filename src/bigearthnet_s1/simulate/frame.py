"""The radar frame of a GRD product: line/pixel <-> azimuth time/slant range through the
annotated coordinate-conversion polynomials (one per 1 s block, nearest applies, as real
products), and forward geocoding (radar -> ground) over the DEM.

Pixel and line numbers refer to pixel centres; slant ranges are one-way, in metres; heights
are treated as ellipsoidal."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import GeometryError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, Orbit, ecef_to_geodetic
from bigearthnet_s1.simulate.ellipsoid import (
    _dot,
    _geodetic_normal,
    _local_radius,
    _plane_ellipsoid_points,
    _unit,
    _zero_doppler_basis,
)
from bigearthnet_s1.simulate.mission import CONVERSION_STEP, PIXEL_SPACING
from bigearthnet_s1.simulate.timeline import _plus, _round_us, _seconds

HeightFn = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def _conversion_polynomials(
    p: NDArray[np.float64], v: NDArray[np.float64], r_near: float, width: float, h_ref: float, degree: int = 8
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Ground-to-slant (origin gr0 = 0, constant term = r_near) and slant-to-ground (origin
    sr0 = r_near) polynomials of one azimuth time; ground range is the arc length along the
    zero-Doppler plane's section of the ellipsoid raised by ``h_ref``, from the near-range
    point. Returns (grsr, srgr, max fit residual of grsr in m)."""
    down, right = _zero_doppler_basis(p, v)
    # off-nadir angle of the near range: Newton on R(theta) = r_near
    theta = 0.45
    for _ in range(50):
        r1, _x = _plane_ellipsoid_points(p, down, right, np.array([theta, theta + 1e-7]), h_ref)
        step = (r1[0] - r_near) / ((r1[1] - r1[0]) / 1e-7)
        theta -= step
        if abs(step) < 1e-13:
            break
    # how far out: coarse then fine sampling of the curve
    coarse = theta + np.linspace(0.0, math.radians(35.0), 400)
    rc, xc = _plane_ellipsoid_points(p, down, right, coarse, h_ref)
    ok = np.isfinite(rc)
    arc_c = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xc[ok], axis=0), axis=1))])
    need = width * 1.02 + 2000.0
    if arc_c[-1] < need:
        raise GeometryError(f"simulate: swath of {width / 1000:.0f} km does not fit under the orbit's horizon")
    theta_far = coarse[ok][np.searchsorted(arc_c, need)]
    fine = np.linspace(theta, theta_far, 2000)
    rng, pts = _plane_ellipsoid_points(p, down, right, fine, h_ref)
    gr = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    scale = float(gr[-1])
    g = gr / scale
    vander = np.stack([g**k for k in range(1, degree + 1)], axis=1)
    c, *_ = np.linalg.lstsq(vander, rng - r_near, rcond=None)
    grsr = np.concatenate([[r_near], c / scale ** np.arange(1, degree + 1)])
    r_fit = np.polynomial.polynomial.polyval(gr, grsr)
    resid = float(np.max(np.abs(r_fit - rng)))
    # slant -> ground: the inverse of the published ground -> slant polynomial
    x = r_fit - r_near
    xs = float(x[-1])
    d = np.polynomial.polynomial.polyfit(x / xs, gr, degree)
    srgr = d / xs ** np.arange(degree + 1)
    return grsr, srgr, resid


@dataclass
class _Frame:
    """Radar geometry of a GRD product: line/pixel <-> azimuth time/slant range.

    Pixel and line numbers refer to pixel centres. Slant ranges are one-way, in metres.
    """

    orbit: Orbit
    t0: np.datetime64  # azimuth time of line 0 (UTC, whole microseconds)
    dt: float  # azimuth time interval, s
    lines: int
    samples: int
    r_near: float  # slant range of pixel 0 (m), the same for every line
    h_ref: float  # height (m) of the ellipsoid the ground range is measured on
    cc_time: NDArray[np.datetime64]  # coordinateConversion azimuth times (us)
    grsr: NDArray[np.float64]  # (k, 9) ground -> slant range, gr0 = 0
    srgr: NDArray[np.float64]  # (k, 9) slant -> ground range, sr0 = r_near
    fit_residual: float = 0.0
    cc_height: NDArray[np.float64] | None = None  # (k,) terrain height of each polynomial's block (m)
    tau_ref: float = math.nan  # two-way range time (s) of the bulk bistatic correction (NaN: none)

    @property
    def s0(self) -> float:
        """Orbit seconds of line 0."""
        return float(self.orbit.seconds(self.t0))

    @property
    def last_time(self) -> np.datetime64:
        return _plus(self.t0, (self.lines - 1) * self.dt)

    def line_seconds(self, line: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Orbit seconds of (fractional) lines."""
        return self.s0 + np.asarray(line, dtype=np.float64) * self.dt

    def _interp(self, polys: NDArray[np.float64], line: NDArray[np.float64]) -> NDArray[np.float64]:
        """Coefficients of the polynomial nearest in azimuth time: each holds for its block of
        lines (as in real products; ``bigearthnet_s1.geocoding``'s esa convention)."""
        return polys[self.block_of(line)]

    def block_of(self, line: NDArray[np.float64] | float) -> NDArray[np.intp]:
        """Index of the coordinateConversion entry whose block holds (fractional) lines."""
        t_poly = np.array([_seconds(t, self.t0) for t in self.cc_time])
        t = np.asarray(line, dtype=np.float64) * self.dt
        return np.searchsorted(0.5 * (t_poly[1:] + t_poly[:-1]), t, side="right")

    def block_boundaries(self) -> NDArray[np.float64]:
        """Fractional lines where one polynomial's block ends and the next one's begins."""
        t_poly = np.array([_seconds(t, self.t0) for t in self.cc_time])
        return 0.5 * (t_poly[1:] + t_poly[:-1]) / self.dt

    def bistatic_seconds(self, slant_range: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Zero-Doppler time minus the line's time at a slant range (m): (tau - tau_ref) / 2."""
        if not math.isfinite(self.tau_ref):
            return np.zeros(np.shape(slant_range))
        return (2.0 * np.asarray(slant_range, dtype=np.float64) / SPEED_OF_LIGHT - self.tau_ref) / 2.0

    def zero_doppler_seconds(self, line: NDArray[np.float64] | float, slant_range: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Orbit seconds of the zero-Doppler time of the targets at (line, slant range)."""
        return self.line_seconds(line) + self.bistatic_seconds(slant_range)

    def image_line(self, orbit_seconds: NDArray[np.float64] | float, slant_range: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Image line of a target with zero-Doppler time ``orbit_seconds`` and slant range (m)."""
        return self.line_of(np.asarray(orbit_seconds, dtype=np.float64) - self.bistatic_seconds(slant_range))

    def slant_range(self, line: NDArray[np.float64] | float, pixel: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """One-way slant range (m) of pixel centres, from the annotated ground-to-slant polynomials."""
        line_a, pixel_a = np.broadcast_arrays(np.asarray(line, np.float64), np.asarray(pixel, np.float64))
        c = self._interp(self.grsr, line_a)
        x = pixel_a * PIXEL_SPACING
        out = np.zeros(x.shape)
        for k in range(c.shape[-1] - 1, -1, -1):
            out = out * x + c[..., k]
        return out

    def pixel_of(self, line: NDArray[np.float64] | float, slant_range: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Fractional pixel of a slant range at ``line``: the exact inverse of :meth:`slant_range`
        (Newton), not the slant-to-ground polynomial (which is a ~5 cm approximation of it).

        ``radar_geometry`` inverts the same kind of polynomial for the reader; the simulator keeps
        its own on purpose: it is the ground truth the reader is tested against, and a shared
        helper would let one mistake pass both sides."""
        line_a, r = np.broadcast_arrays(np.asarray(line, np.float64), np.asarray(slant_range, np.float64))
        c = self._interp(self.grsr, line_a)
        cs = self._interp(self.srgr, line_a)
        x = r - self.r_near
        g = np.zeros(x.shape)
        for k in range(cs.shape[-1] - 1, -1, -1):
            g = g * x + cs[..., k]
        for _ in range(8):
            f = np.zeros(g.shape)
            df = np.zeros(g.shape)
            for k in range(c.shape[-1] - 1, -1, -1):
                df = df * g + f
                f = f * g + c[..., k]
            g = g - (f - r) / df
        return g / PIXEL_SPACING

    def line_of(self, orbit_seconds: NDArray[np.float64] | float) -> NDArray[np.float64]:
        return (np.asarray(orbit_seconds, dtype=np.float64) - self.s0) / self.dt


def _block_heights(orbit: Orbit, cc_time: NDArray[np.datetime64], r_near: float, width: float, h_ref: float,
                   heights: HeightFn | None) -> NDArray[np.float64]:
    """Terrain height of each polynomial's block (m): the mean DEM height along the swath at
    the block's azimuth time (as the IPF raises each block's ellipsoid by its own terrain
    height; 0 without a DEM)."""
    if heights is None:
        return np.zeros(cc_time.size)
    p, v, _ = orbit.interpolate(orbit.seconds(cc_time))
    out = np.empty(cc_time.size)
    for k in range(cc_time.size):
        down, right = _zero_doppler_basis(p[k], v[k])
        th = np.radians(np.linspace(10.0, 55.0, 2001))
        rng, pts = _plane_ellipsoid_points(p[k], down, right, th, h_ref)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        a0 = float(np.interp(r_near, rng, arc))
        sel = np.clip(np.searchsorted(arc, a0 + np.linspace(0.0, width, 41)), 0, arc.size - 1)
        lon, lat, _ = ecef_to_geodetic(pts[sel])
        out[k] = float(np.mean(heights(lon, lat)))
    return np.round(out, 3)


def _make_frame(
    orbit: Orbit, t0: np.datetime64, dt: float, lines: int, r_near: float, width: float, h_ref: float,
    heights: HeightFn | None = None,
) -> _Frame:
    """Frame with coordinateConversion entries every second from 2 s before line 0 to at least
    1 s after the last line (as real products), fitted over ``width`` metres of ground range,
    each on the ellipsoid raised by its block's terrain height (``heights``: the DEM). The
    samples span ``width``; no bistatic correction (``tau_ref`` NaN: set it with
    ``dataclasses.replace``)."""
    duration = (lines - 1) * dt
    n = int(math.ceil(duration + 3.0)) + 1
    cc_time = np.array([_round_us(_plus(t0, -2.0 + k * CONVERSION_STEP)) for k in range(n)], dtype="datetime64[ns]")
    p, v, _ = orbit.interpolate(orbit.seconds(cc_time))
    cc_h = _block_heights(orbit, cc_time, r_near, width, h_ref, heights)
    grsr, srgr, resid = [], [], 0.0
    for k in range(n):
        g, s, r = _conversion_polynomials(p[k], v[k], r_near, width, float(cc_h[k]))
        grsr.append(g)
        srgr.append(s)
        resid = max(resid, r)
    samples = int(math.floor(width / PIXEL_SPACING)) + 1
    return _Frame(orbit, t0, dt, lines, samples, r_near, h_ref, cc_time, np.array(grsr), np.array(srgr), resid, cc_h)


def _forward_geocode(
    frame: _Frame,
    line: NDArray[np.float64],
    pixel: NDArray[np.float64],
    heights: HeightFn | None = None,
    *,
    tol: float = 1e-4,
    max_iter: int = 40,
) -> dict[str, NDArray[np.float64]]:
    """Ground point of radar (line, pixel) centres: on the range sphere and in the zero-Doppler
    plane of the targets the line holds at that range (the line's time plus the bistatic
    residual), at the height given by ``heights(lon, lat)`` (None: ellipsoid, h = 0).

    Solved for the off-nadir angle in the zero-Doppler plane (so range and Doppler hold
    exactly): Newton on h(theta) - H(theta), then secant steps that include the DEM slope.
    Returns xyz (ECEF), lon, lat (deg), height (m, geodetic height of the point found),
    incidence and elevation angles (deg, w.r.t. the ellipsoid normal), satellite position.
    """
    line_a, pixel_a = np.broadcast_arrays(np.asarray(line, np.float64), np.asarray(pixel, np.float64))
    shape = line_a.shape
    line_f, pixel_f = line_a.ravel(), pixel_a.ravel()
    rng = frame.slant_range(line_f, pixel_f)
    p, v, _ = frame.orbit.interpolate(frame.zero_doppler_seconds(line_f, rng))
    down, right = _zero_doppler_basis(p, v)
    # start: the ellipsoid at the frame's reference height (closed form in the plane)
    r_p = np.linalg.norm(p, axis=-1)
    _lon_p, lat_p, _h_p = ecef_to_geodetic(p)
    rho = _local_radius(lat_p) + frame.h_ref
    cos_t = np.clip((r_p**2 + rng**2 - rho**2) / (2.0 * r_p * rng), -1.0, 1.0)
    theta = np.arccos(cos_t)

    def evaluate(th: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        look = np.cos(th)[:, None] * down + np.sin(th)[:, None] * right
        xyz = p + rng[:, None] * look
        lon, lat, h = ecef_to_geodetic(xyz)
        target = heights(lon, lat) if heights is not None else np.zeros_like(h)
        return xyz, lon, lat, h, h - target

    xyz, lon, lat, h, f = evaluate(theta)
    prev_theta, prev_f = None, None
    for _ in range(max_iter):
        if np.all(np.abs(f) < tol):
            break
        dlook = -np.sin(theta)[:, None] * down + np.cos(theta)[:, None] * right
        slope_geom = rng * _dot(_geodetic_normal(lon, lat), dlook)  # dh/dtheta, > 0
        step = f / slope_geom
        if prev_f is not None:
            dth = theta - prev_theta
            df = f - prev_f
            with np.errstate(divide="ignore", invalid="ignore"):
                secant = df / dth
            use = np.isfinite(secant) & (np.abs(dth) > 1e-15) & (secant > 0.1 * slope_geom)
            step = np.where(use, f / np.where(use, secant, 1.0), 0.7 * step)
        prev_theta, prev_f = theta, f
        theta = theta - np.where(np.abs(f) < tol, 0.0, step)
        xyz, lon, lat, h, f = evaluate(theta)
    normal = _geodetic_normal(lon, lat)
    to_sat = _unit(p - xyz)
    incidence = np.degrees(np.arccos(np.clip(_dot(normal, to_sat), -1.0, 1.0)))
    lon_s, lat_s, _ = ecef_to_geodetic(p)
    nadir = -_geodetic_normal(lon_s, lat_s)
    elevation = np.degrees(np.arccos(np.clip(_dot(nadir, -to_sat), -1.0, 1.0)))
    out = {
        "xyz": xyz.reshape(shape + (3,)),
        "lon": lon.reshape(shape),
        "lat": lat.reshape(shape),
        "height": h.reshape(shape),
        "incidence": incidence.reshape(shape),
        "elevation": elevation.reshape(shape),
        "misfit": np.abs(f).reshape(shape),
    }
    return out
