"""The simulator's orbit: a circular Keplerian orbit placed so that it sees the target
right-looking at the requested incidence, at the requested time, on the requested pass; its
state vectors as the annotation writes them; the Earth rotation angle (attitude)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import GeometryError
from bigearthnet_s1.orbit import Orbit, geodetic_to_ecef
from bigearthnet_s1.simulate.ellipsoid import _dot, _geodetic_normal, _local_radius, _unit
from bigearthnet_s1.simulate.mission import (
    EARTH_ROTATION,
    FAR_INCIDENCE_DEG,
    INCLINATION_DEG,
    MEAN_MOTION,
    NEAR_INCIDENCE_DEG,
    SEMI_MAJOR_AXIS,
    STATE_VECTOR_MARGIN,
    STATE_VECTOR_STEP,
)
from bigearthnet_s1.simulate.timeline import _plus, _seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Kepler:
    """Circular orbit in ECEF as a function of ``tau`` (s since the target's zero-Doppler time).

    ``lam`` is the ascending node's longitude in the Earth-fixed frame at tau = 0 (right
    ascension of the node minus the Earth rotation angle), ``u_c`` the argument of latitude at
    tau = 0. Inertial motion at mean motion ``MEAN_MOTION``; the Earth-fixed state is the
    inertial one rotated by ``-EARTH_ROTATION * tau`` about z (velocity includes the
    ``-omega x r`` term), so positions and velocities are exactly consistent.
    """

    lam: float
    u_c: float

    def inertial(self, tau: NDArray[np.float64] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Position and velocity in the frame that coincides with ECEF at tau = 0."""
        u = self.u_c + MEAN_MOTION * np.asarray(tau, dtype=np.float64)
        inc = math.radians(INCLINATION_DEG)
        cl, sl, ci, si = math.cos(self.lam), math.sin(self.lam), math.cos(inc), math.sin(inc)
        node = np.array([cl, sl, 0.0])
        normal_dir = np.array([-sl * ci, cl * ci, si])
        cu, su = np.cos(u)[..., None], np.sin(u)[..., None]
        r = SEMI_MAJOR_AXIS * (cu * node + su * normal_dir)
        v = SEMI_MAJOR_AXIS * MEAN_MOTION * (-su * node + cu * normal_dir)
        return r, v

    def state(self, tau: NDArray[np.float64] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """ECEF position (m) and velocity (m/s) at ``tau``."""
        tau = np.asarray(tau, dtype=np.float64)
        r, v = self.inertial(tau)
        th = EARTH_ROTATION * tau
        c, s = np.cos(th), np.sin(th)
        x = c * r[..., 0] + s * r[..., 1]
        y = -s * r[..., 0] + c * r[..., 1]
        vx = c * v[..., 0] + s * v[..., 1] + EARTH_ROTATION * y
        vy = -s * v[..., 0] + c * v[..., 1] - EARTH_ROTATION * x
        return np.stack([x, y, r[..., 2]], axis=-1), np.stack([vx, vy, v[..., 2]], axis=-1)


def _kepler_state0(lam: NDArray[np.float64], u: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """ECEF position and velocity at tau = 0 of the orbits (lam, u_c) (arrays): ``_Kepler.state(0)``
    vectorised over orbits (the grid search of :func:`_solve_kepler`)."""
    inc = math.radians(INCLINATION_DEG)
    cl, sl, ci, si = np.cos(lam), np.sin(lam), math.cos(inc), math.sin(inc)
    cu, su = np.cos(u), np.sin(u)
    node = np.stack([cl, sl, np.zeros_like(cl)], axis=-1)
    normal_dir = np.stack([-sl * ci, cl * ci, np.full_like(cl, si)], axis=-1)
    r = SEMI_MAJOR_AXIS * (cu[..., None] * node + su[..., None] * normal_dir)
    v = SEMI_MAJOR_AXIS * MEAN_MOTION * (-su[..., None] * node + cu[..., None] * normal_dir)
    v = v + EARTH_ROTATION * np.stack([r[..., 1], -r[..., 0], np.zeros_like(cl)], axis=-1)
    return r, v


def _solve_kepler(
    lon: float, lat: float, height: float, incidence_deg: float, ascending: bool, *, spherical_guess: bool = True
) -> _Kepler:
    """The orbit that sees the ground point right-looking at ``incidence_deg`` at tau = 0 with
    zero Doppler, on an ascending or descending pass.

    Two equations (zero Doppler, incidence) in the node longitude and the argument of latitude,
    solved with MINPACK (``fsolve``) from first guesses on a sphere; a solution counts when
    its residuals are below 1e-10 (cosine, deg/10), the target lies to the right of the
    velocity and the satellite's pass is the requested one. If none of those guesses gets
    there, the guesses are the best points of a 1 deg x 0.5 deg grid of all orbits of that pass
    (so the answer never hangs on the spherical guess alone; ``spherical_guess=False`` goes
    straight to the grid, for tests). GeometryError when no orbit
    of the pass sees the point at that incidence (e.g. the south polar gap of a right-looking
    SAR, or beyond the incidence the orbit's geometry allows near the poles).
    """
    from scipy.optimize import fsolve

    target = geodetic_to_ecef(lon, lat, height)
    n_t = _geodetic_normal(lon, lat)
    inc = math.radians(INCLINATION_DEG)

    def equations(x: NDArray[np.float64]) -> list[float]:
        p, v = _Kepler(float(x[0]), float(x[1])).state(0.0)
        look = p - target
        rng = np.linalg.norm(look)
        f1 = float(v @ look / (np.linalg.norm(v) * rng))
        # clipped: fsolve may try an orbit right above the point (rounding past 1 would be a ValueError)
        f2 = (math.degrees(math.acos(max(-1.0, min(1.0, float(n_t @ look / rng))))) - incidence_deg) / 10.0
        return [f1, f2]

    def solve(guesses: Sequence[tuple[float, float]]) -> _Kepler | None:
        for lam0, u0 in guesses:
            sol, _info, _ier, _msg = fsolve(equations, [lam0, u0], full_output=True, xtol=1e-13)
            k = _Kepler(float(sol[0]) % (2 * math.pi), float(sol[1]) % (2 * math.pi))
            if max(abs(e) for e in equations(np.array([k.lam, k.u_c]))) > 1e-10:
                continue
            p, v = k.state(0.0)
            right = np.cross(v, _unit(p))
            going_north = v[2] > 0
            if float((target - p) @ right) > 0 and going_north == ascending:
                return k
        return None

    # first guess on a sphere: the sub-satellite point lies the incidence's ground angle to the
    # left of the target, across a ground track of heading asin(cos i / cos lat)
    r_e = float(_local_radius(np.array([lat]))[0])
    look = math.asin(r_e / (r_e + 700e3) * math.sin(math.radians(incidence_deg)))
    gamma = math.radians(incidence_deg) - look
    sin_head = max(-1.0, min(1.0, math.cos(inc) / max(math.cos(math.radians(lat)), 1e-6)))
    heading = math.asin(sin_head) if ascending else math.pi - math.asin(sin_head)
    guesses = []
    for scale in (1.0, 0.9, 1.1, 0.7, 1.3):
        la1, lo1 = math.radians(lat), math.radians(lon)
        az = heading - math.pi / 2  # to the left of the track
        d = gamma * scale
        la2 = math.asin(math.sin(la1) * math.cos(d) + math.cos(la1) * math.sin(d) * math.cos(az))
        lo2 = lo1 + math.atan2(math.sin(az) * math.sin(d) * math.cos(la1), math.cos(d) - math.sin(la1) * math.sin(la2))
        s = max(-1.0, min(1.0, math.sin(la2) / math.sin(inc)))
        u0 = math.asin(s) if ascending else math.pi - math.asin(s)
        guesses.append((lo2 - math.atan2(math.cos(inc) * math.sin(u0), math.cos(u0)), u0))
    k = solve(guesses) if spherical_guess else None
    if k is None:
        k = solve(_grid_guesses(target, n_t, incidence_deg, ascending))
    if k is None:
        raise GeometryError(
            f"simulate: no {'ascending' if ascending else 'descending'} right-looking Sentinel-1 orbit sees "
            f"lon {lon:.4f} lat {lat:.4f} at incidence {incidence_deg:.2f} deg"
        )
    return k


def _grid_guesses(
    target: NDArray[np.float64], n_t: NDArray[np.float64], incidence_deg: float, ascending: bool, count: int = 4
) -> list[tuple[float, float]]:
    """Starting points for :func:`_solve_kepler` from a grid of all orbits of one pass (node
    longitude every 1 deg, argument of latitude every 0.5 deg over the pass's half orbit):
    the ``count`` best right-looking ones (smallest Doppler and incidence misfit), at least
    3 deg apart."""
    lam = np.radians(np.arange(0.0, 360.0, 1.0))
    u = np.radians(np.arange(-89.75, 90.0, 0.5) + (0.0 if ascending else 180.0))
    lam_g, u_g = (a.ravel() for a in np.meshgrid(lam, u, indexing="ij"))
    p, v = _kepler_state0(lam_g, u_g)
    look = p - target
    rng = np.linalg.norm(look, axis=-1)
    f1 = _dot(v, look) / (np.linalg.norm(v, axis=-1) * rng)
    f2 = (np.degrees(np.arccos(np.clip(_dot(look, n_t) / rng, -1.0, 1.0))) - incidence_deg) / 10.0
    right = _dot(-look, np.cross(v, _unit(p))) > 0
    visible = _dot(look, n_t) > 0
    cost = np.where(right & visible & ((v[:, 2] > 0) == ascending), f1 * f1 + f2 * f2, np.inf)
    out: list[tuple[float, float]] = []
    for i in np.argsort(cost, kind="stable"):
        if not np.isfinite(cost[i]) or len(out) == count:
            break
        far = all(min(abs(lam_g[i] - a) % (2 * math.pi), -abs(lam_g[i] - a) % (2 * math.pi)) > math.radians(3.0)
                  or abs(u_g[i] - b) > math.radians(3.0) for a, b in out)
        if far:
            out.append((float(lam_g[i]), float(u_g[i])))
    return out


def _incidence_at(swath_position: float) -> float:
    """Ellipsoid incidence (deg) of a position across the IW swath (0 near .. 1 far)."""
    return NEAR_INCIDENCE_DEG + swath_position * (FAR_INCIDENCE_DEG - NEAR_INCIDENCE_DEG)

#: Swath positions tried, nearest first, when the requested one has no orbit (then refined).
_SWATH_SCAN = tuple(float(x) for x in np.round(np.linspace(0.0, 1.0, 41), 3))


def _place_orbit(
    lon: float, lat: float, height: float, swath_position: float, ascending: bool, what: str,
) -> tuple[_Kepler, float]:
    """The orbit seeing the target centre (lon, lat deg, height m) right-looking on the
    requested pass at ``swath_position`` (0 near .. 1 far), and the swath position used.

    Where no orbit of that pass sees the point at that incidence, the nearest swath position
    that has one is used instead (scan every 0.025, then bisection to 0.001 of the
    boundary) and logged; GeometryError naming ``what`` (tile, time) and the pass when no
    position across the swath works."""
    try:
        return _solve_kepler(lon, lat, height, _incidence_at(swath_position), ascending), swath_position
    except GeometryError:
        pass
    pass_name = "ascending" if ascending else "descending"
    found: tuple[_Kepler, float] | None = None
    for sp in sorted(_SWATH_SCAN, key=lambda x: (abs(x - swath_position), x)):
        try:
            found = _solve_kepler(lon, lat, height, _incidence_at(sp), ascending), sp
            break
        except GeometryError:
            continue
    if found is None:
        raise GeometryError(
            f"simulate: {what}: no {pass_name} right-looking Sentinel-1 orbit sees lon {lon:.4f} lat {lat:.4f} "
            f"anywhere across the IW swath (incidence {NEAR_INCIDENCE_DEG}-{FAR_INCIDENCE_DEG} deg, swath_position "
            f"0..1)"
        )
    bad, (k, good) = swath_position, found
    while abs(good - bad) > 1e-3:  # the boundary of the feasible positions, approached from inside
        mid = round(0.5 * (good + bad), 6)
        try:
            k, good = _solve_kepler(lon, lat, height, _incidence_at(mid), ascending), mid
        except GeometryError:
            bad = mid
    log.warning(
        "simulate: %s: no %s orbit sees the target centre (lon %.4f lat %.4f) at swath_position %.3f "
        "(incidence %.2f deg); using the nearest feasible swath_position %.3f (incidence %.2f deg)",
        what, pass_name, lon, lat, swath_position, _incidence_at(swath_position), good, _incidence_at(good),
    )
    return k, good


def _orbit_from_kepler(k: _Kepler, t_c: np.datetime64, first: np.datetime64, last: np.datetime64) -> Orbit:
    """State vectors every 10 s (on whole 10 s of UTC) covering [first - 60 s, last + 60 s],
    rounded like the annotation (mm, um/s, us) so that every geometry computation uses the
    vectors a reader parses."""
    ns_step = int(STATE_VECTOR_STEP * 1e9)
    t_start = np.datetime64(int(_plus(first, -STATE_VECTOR_MARGIN).astype(np.int64)) // ns_step * ns_step, "ns")
    n = int(math.ceil(_seconds(_plus(last, STATE_VECTOR_MARGIN), t_start) / STATE_VECTOR_STEP)) + 1
    times = t_start + np.arange(n) * np.timedelta64(ns_step, "ns")
    tau = np.array([_seconds(t, t_c) for t in times])
    pos, vel = k.state(tau)
    return Orbit.from_state_vectors(times, np.round(pos, 3), np.round(vel, 6))


def _earth_rotation_angle(t: np.datetime64) -> float:
    """Earth rotation angle (rad) at UTC ``t`` (IERS 2003 ERA, UT1 ~ UTC): ECEF -> inertial."""
    days = _seconds(t, np.datetime64("2000-01-01T12:00:00", "ns")) / 86400.0
    return 2.0 * math.pi * ((0.7790572732640 + 1.00273781191135448 * days) % 1.0)
