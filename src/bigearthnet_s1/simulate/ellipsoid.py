"""Vector geometry on the WGS84 ellipsoid as a state vector sees it: ellipsoid normals and
radii, ground-track heading, and the section of the (raised) ellipsoid by the zero-Doppler
plane. ECEF metres, m/s, degrees unless a name says radians."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.orbit import WGS84_A, WGS84_B, ecef_to_geodetic


def _dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.einsum("...i,...i->...", a, b)


def _unit(a: NDArray[np.float64]) -> NDArray[np.float64]:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _geodetic_normal(lon: NDArray[np.float64] | float, lat: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Unit ellipsoid normal (..., 3) at geodetic lon/lat (degrees)."""
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    la = np.radians(np.asarray(lat, dtype=np.float64))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _local_radius(lat_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Geocentric radius (m) of the WGS84 ellipsoid at geodetic latitude."""
    la = np.radians(lat_deg)
    a2, b2 = WGS84_A**2, WGS84_B**2
    c, s = np.cos(la), np.sin(la)
    return np.sqrt(((a2 * c) ** 2 + (b2 * s) ** 2) / ((WGS84_A * c) ** 2 + (WGS84_B * s) ** 2))


def _heading_deg(p: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    """Ground-track heading (deg clockwise from north, -180..180) of a state vector."""
    lon, lat, _ = ecef_to_geodetic(p)
    lo, la = math.radians(float(lon)), math.radians(float(lat))
    east = np.array([-math.sin(lo), math.cos(lo), 0.0])
    north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    return math.degrees(math.atan2(float(v @ east), float(v @ north)))


def _zero_doppler_basis(p: NDArray[np.float64], v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Orthonormal basis of the zero-Doppler plane: ``down`` (towards nadir, normal to the
    velocity) and ``right`` (velocity x up: the side Sentinel-1 looks to)."""
    ev = _unit(v)
    down = _unit(-(p - _dot(p, ev)[..., None] * ev))
    right = np.cross(ev, -down)
    return down, right


def _plane_ellipsoid_points(
    p: NDArray[np.float64], down: NDArray[np.float64], right: NDArray[np.float64], theta: NDArray[np.float64], h: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slant range and ECEF point where the look direction at off-nadir angle ``theta`` (rad)
    in the zero-Doppler plane meets the ellipsoid with axes (a + h, b + h)."""
    look = np.cos(theta)[..., None] * down + np.sin(theta)[..., None] * right
    w = np.array([1.0 / (WGS84_A + h) ** 2, 1.0 / (WGS84_A + h) ** 2, 1.0 / (WGS84_B + h) ** 2])
    qa = _dot(look * look, w)
    qb = 2.0 * _dot(look * p, w)
    qc = _dot(p * p, w) - 1.0
    with np.errstate(invalid="ignore"):  # NaN beyond the horizon
        rng = (-qb - np.sqrt(qb * qb - 4.0 * qa * qc)) / (2.0 * qa)
    return rng, p + rng[..., None] * look


def _range_at_incidence(
    p: NDArray[np.float64], v: NDArray[np.float64], incidence_deg: Sequence[float], h: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slant range (m) and ground arc length from the first one (m) at given ellipsoid
    incidence angles in the zero-Doppler plane of (p, v)."""
    down, right = _zero_doppler_basis(p, v)
    th = np.radians(np.linspace(10.0, 55.0, 45001))
    rng, pts = _plane_ellipsoid_points(p, down, right, th, h)
    lon, lat, _ = ecef_to_geodetic(pts)
    inc = np.degrees(np.arccos(_dot(_geodetic_normal(lon, lat), _unit(p - pts))))
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    r = np.interp(incidence_deg, inc, rng)
    a = np.interp(incidence_deg, inc, arc)
    return r, a - a[0]
