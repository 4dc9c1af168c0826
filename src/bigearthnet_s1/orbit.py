"""Satellite orbit interpolation and range-Doppler geometry primitives.

Conventions: positions in ECEF metres (WGS84, EPSG:4978), velocities in m/s, times as
seconds (float64) relative to ``Orbit.reference_time`` (a UTC ``numpy.datetime64[ns]``).
Heights are above the WGS84 ellipsoid. Slant range is one-way, in metres.

Shared by the scene simulator (radar -> ground) and terrain correction (ground -> radar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bigearthnet_s1.errors import GeometryError

#: Speed of light in vacuum, m/s (as in the Sentinel-1 product specification).
SPEED_OF_LIGHT = 299_792_458.0

# WGS84 ellipsoid.
WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def geodetic_to_ecef(lon: ArrayLike, lat: ArrayLike, height: ArrayLike) -> NDArray[np.float64]:
    """Longitude/latitude in degrees and ellipsoidal height in metres -> ECEF (..., 3) metres.

    Closed form, vectorised; equal to pyproj's EPSG:4979 -> EPSG:4978 to well under 1 mm
    and several times faster on large grids, which matters for terrain correction.
    """
    lon_r = np.radians(np.asarray(lon, dtype=np.float64))
    lat_r = np.radians(np.asarray(lat, dtype=np.float64))
    h = np.asarray(height, dtype=np.float64)
    sin_lat = np.sin(lat_r)
    cos_lat = np.cos(lat_r)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    x = (n + h) * cos_lat * np.cos(lon_r)
    y = (n + h) * cos_lat * np.sin(lon_r)
    z = (n * (1.0 - WGS84_E2) + h) * sin_lat
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(xyz: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """ECEF (..., 3) metres -> (lon deg, lat deg, ellipsoidal height m), Bowring's method
    with two refinement steps (sub-millimetre for points near the Earth's surface)."""
    p = np.asarray(xyz, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    lon = np.arctan2(y, x)
    r = np.hypot(x, y)
    ep2 = (WGS84_A**2 - WGS84_B**2) / WGS84_B**2
    theta = np.arctan2(z * WGS84_A, r * WGS84_B)
    lat = np.arctan2(z + ep2 * WGS84_B * np.sin(theta) ** 3, r - WGS84_E2 * WGS84_A * np.cos(theta) ** 3)
    for _ in range(2):
        n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
        h = r / np.cos(lat) - n
        lat = np.arctan2(z, r * (1.0 - WGS84_E2 * n / (n + h)))
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    h = np.where(np.abs(np.cos(lat)) > 1e-12, r / np.cos(lat) - n, np.abs(z) - WGS84_B)
    return np.degrees(lon), np.degrees(lat), h


@dataclass(frozen=True)
class Orbit:
    """Orbit state vectors and their interpolation.

    ``times`` are seconds since ``reference_time``; interpolation is a cubic Hermite spline
    on positions with the given velocities (exact at the vectors, C1 between them; velocity
    and acceleration are its derivatives). The references do otherwise: sarsen
    (``OrbitPolyfitInterpolator``) fits one degree-5 polynomial in time to all the positions
    by least squares, ignoring the annotated velocities, and derives velocity and
    acceleration from it; SNAP (``OrbitStateVectors``) evaluates a Lagrange polynomial through
    the 8 nearest vectors, separately for positions and velocities. Over the scene of the
    real S1B product of the test data (16 vectors, 10 s apart) the three agree within 0.3 mm
    in position and 0.1 mm/s in velocity.
    """

    reference_time: np.datetime64
    times: NDArray[np.float64]
    positions: NDArray[np.float64]
    velocities: NDArray[np.float64]

    @classmethod
    def from_state_vectors(
        cls, times: ArrayLike, positions: ArrayLike, velocities: ArrayLike
    ) -> Orbit:
        """Build from UTC ``datetime64`` times and (n, 3) ECEF positions (m) and velocities (m/s)."""
        t = np.asarray(times, dtype="datetime64[ns]")
        if t.size < 4:
            raise GeometryError(f"orbit needs at least 4 state vectors, got {t.size}")
        order = np.argsort(t)
        t = t[order]
        ref = t[0]
        secs = (t - ref).astype("timedelta64[ns]").astype(np.float64) * 1e-9
        if np.any(np.diff(secs) <= 0):
            raise GeometryError("orbit state vector times are not strictly increasing")
        pos = np.asarray(positions, dtype=np.float64)[order]
        vel = np.asarray(velocities, dtype=np.float64)[order]
        return cls(reference_time=ref, times=secs, positions=pos, velocities=vel)

    def seconds(self, t: ArrayLike) -> NDArray[np.float64]:
        """UTC ``datetime64`` -> seconds since ``reference_time``."""
        dt = np.asarray(t, dtype="datetime64[ns]") - self.reference_time
        return dt.astype("timedelta64[ns]").astype(np.float64) * 1e-9

    def datetime(self, seconds: ArrayLike) -> NDArray[np.datetime64]:
        """Seconds since ``reference_time`` -> UTC ``datetime64[ns]``."""
        ns = np.round(np.asarray(seconds, dtype=np.float64) * 1e9).astype("timedelta64[ns]")
        return self.reference_time + ns

    def check_span(self, t0: float, t1: float, what: str = "scene") -> None:
        """Raise ``GeometryError`` when [t0, t1] (seconds) is not inside the state vectors."""
        if t0 < self.times[0] or t1 > self.times[-1]:
            raise GeometryError(
                f"orbit state vectors span {self.datetime(self.times[0])}..{self.datetime(self.times[-1])}"
                f" but the {what} needs {self.datetime(t0)}..{self.datetime(t1)}"
            )

    def interpolate(self, t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Position (m), velocity (m/s) and acceleration (m/s^2) at ``t`` seconds, each (..., 3)."""
        tt = np.asarray(t, dtype=np.float64)
        i = np.clip(np.searchsorted(self.times, tt, side="right") - 1, 0, self.times.size - 2)
        t0 = self.times[i]
        h = self.times[i + 1] - t0
        s = ((tt - t0) / h)[..., None]
        p0, p1 = self.positions[i], self.positions[i + 1]
        m0, m1 = self.velocities[i] * h[..., None], self.velocities[i + 1] * h[..., None]
        s2, s3 = s * s, s * s * s
        pos = (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1
        dpos = (6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * m0 + (-6 * s2 + 6 * s) * p1 + (3 * s2 - 2 * s) * m1
        ddpos = (12 * s - 6) * p0 + (6 * s - 4) * m0 + (-12 * s + 6) * p1 + (6 * s - 2) * m1
        hh = h[..., None]
        return pos, dpos / hh, ddpos / (hh * hh)

    def zero_doppler(
        self, xyz: ArrayLike, t_guess: ArrayLike | None = None, tol: float = 1e-7, max_iter: int = 20
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Zero-Doppler time (s since reference) and one-way slant range (m) of ECEF points.

        Solves ``v(t) . (p(t) - x) = 0`` by Newton iteration, vectorised over ``xyz`` (..., 3).
        ``tol`` is in seconds (1e-7 s is under 1 mm along track). Points whose zero-Doppler
        time falls outside the state vectors get NaN.
        """
        x = np.asarray(xyz, dtype=np.float64)
        shape = x.shape[:-1]
        if t_guess is None:
            t = np.full(shape, 0.5 * (self.times[0] + self.times[-1]))
        else:
            t = np.broadcast_to(np.asarray(t_guess, dtype=np.float64), shape).copy()
        for _ in range(max_iter):
            p, v, a = self.interpolate(t)
            d = p - x
            f = np.einsum("...i,...i->...", v, d)
            df = np.einsum("...i,...i->...", a, d) + np.einsum("...i,...i->...", v, v)
            step = f / df
            t = t - step
            t = np.clip(t, self.times[0] - 60.0, self.times[-1] + 60.0)
            if np.all(np.abs(step) < tol):
                break
        p, _, _ = self.interpolate(t)
        rng = np.linalg.norm(p - x, axis=-1)
        outside = (t < self.times[0]) | (t > self.times[-1])
        t = np.where(outside, np.nan, t)
        rng = np.where(outside, np.nan, rng)
        return t, rng
