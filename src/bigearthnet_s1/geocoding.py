"""Range-Doppler terrain correction straight onto a target map grid (the S2 tile's 10 m grid).

For every target pixel centre: its height is the DEM's bilinear value there (sampled once,
between the DEM's own posts; geoid added at the posts), the point goes to ECEF, the
zero-Doppler time and slant range are solved against the interpolated orbit, and a
*geometry convention* turns them into GRD (line, pixel). The calibrated linear image is then
resampled there (bilinear by default; bicubic or nearest on request).

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
is ``p * range_pixel_spacing``). Map grids are (CRS, affine transform of pixel CORNERS, shape);
results refer to pixel centres. Images are linear power (sigma0/beta0/...), float32, NaN no-data.
Slant ranges are one-way metres, heights metres above the WGS84 ellipsoid.

Speed. Solving range-Doppler for 120 Mpx is slow (sarsen does it per pixel); here it is solved
exactly only on a coarse lattice of nodes (every 64 px) at three heights per node (Chebyshev
nodes spanning the block's DEM heights). Each pixel takes its line and slant range by bilinear
interpolation between nodes and quadratic interpolation in its DEM height (both are smooth in
x, y, h), then its GRD column exactly through the srgr polynomials. Per block of 1024 x 1024
px the model is checked against exact solutions at three points per lattice cell and four
heights between the levels; blocks whose error exceeds ``tolerance`` (0.05 px; typically
0.007 px is reached) halve their step until it does not. With the nearest-polynomial rule a
pixel whose modelled line lies within ``4 * tolerance`` lines of a block boundary is solved
exactly (the rule is discontinuous there). The per-pixel work (DEM position and height,
coordinate model, srgr, resampling of all bands) is a numba kernel, parallel over rows.

Heights are sampled once: each pixel's position in the DEM's own post lattice is interpolated
bilinearly between lattice nodes (exact at the nodes through PROJ; the map projection bends
by < 1 cm over a lattice cell) and its height is the bilinear value of the four posts around
it (:class:`~bigearthnet_s1.dem.DemPosts`).

Masks. :func:`layover_shadow_mask` flags layover (1) and shadow (2) per target pixel, active
and passive, by scanning each zero-Doppler line of the grid from near to far range (SNAP's
rule: layover where a point's slant range is not beyond every nearer point's, or not short of
every farther point's; shadow where its look angle does not exceed every nearer point's).
:func:`radar_window_for_grid` tells which GRD window a target grid needs.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numba
import numpy as np
import pyproj
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.windows import Window

from bigearthnet_s1.dem import Dem, DemPosts, open_dem
from bigearthnet_s1.errors import GeometryError, InputError
from bigearthnet_s1.orbit import SPEED_OF_LIGHT, Orbit, geodetic_to_ecef

log = logging.getLogger(__name__)

__all__ = [
    "terrain_correct",
    "radar_coordinates",
    "radar_window_for_grid",
    "layover_shadow_mask",
    "bistatic_reference",
    "RadarGeometry",
    "GeocodingStats",
    "RESAMPLING_METHODS",
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
]

RESAMPLING_METHODS = {"nearest": 0, "bilinear": 1, "bicubic": 2}
#: Geometry conventions (see the module doc) and their kernel codes.
CONVENTIONS = ("esa", "snap", "sarsen")
DEFAULT_CONVENTION = "esa"
_CONV_CODE = {"esa": 0, "sarsen": 1, "snap": 2}
#: Heights (Chebyshev nodes) per lattice node of the coordinate model.
N_LEVELS = 3
BLOCK = 1024
INITIAL_STEP = 64
MIN_STEP = 4
#: layover/shadow mask values (bits)
MASK_LAYOVER = 1
MASK_SHADOW = 2
#: numba fast-math flags: FMA contraction and reassociation, but NaN/inf semantics kept
_FM = {"contract", "reassoc", "arcp", "afn"}


# --------------------------------------------------------------------------------------
# radar geometry of one GRD image (from an ImageAnnotation)
# --------------------------------------------------------------------------------------
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


def _geometry(annotation: Any, convention: str | None = None) -> RadarGeometry:
    if isinstance(annotation, RadarGeometry):
        if convention is None or convention == annotation.convention:
            return annotation
        raise InputError(f"{annotation.name}: a RadarGeometry of convention {annotation.convention} was given with "
                         f"convention={convention!r}; build it with RadarGeometry.from_annotation(..., convention=)")
    return RadarGeometry.from_annotation(annotation, convention=convention or DEFAULT_CONVENTION)


# --------------------------------------------------------------------------------------
# target grid helpers
# --------------------------------------------------------------------------------------
def _crs(crs: Any) -> CRS:
    return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)


class _Grid:
    """A target grid and its lon/lat transformer."""

    def __init__(self, crs: Any, transform: Affine, shape: tuple[int, int]) -> None:
        self.crs = _crs(crs)
        self.transform = Affine(*tuple(transform)[:6])
        self.shape = (int(shape[0]), int(shape[1]))
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise InputError(f"target grid shape {shape} is empty")
        self._tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(self.crs.to_wkt()), "EPSG:4326", always_xy=True)

    def lonlat(self, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """lon/lat of (fractional) pixel-centre coordinates (row, col: centre of pixel 0 = 0)."""
        cc, rr = np.asarray(cols, dtype=np.float64) + 0.5, np.asarray(rows, dtype=np.float64) + 0.5
        xs, ys = self.transform @ (cc, rr)  # type: ignore[operator]  # affine's hints say scalars; it broadcasts arrays
        lon, lat = self._tr.transform(xs, ys)
        return np.asarray(lon), np.asarray(lat)

    def xy(self, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """Map coordinates of (fractional) pixel-centre coordinates."""
        cc, rr = np.asarray(cols, dtype=np.float64) + 0.5, np.asarray(rows, dtype=np.float64) + 0.5
        xs, ys = self.transform @ (cc, rr)  # type: ignore[operator]  # affine's hints say scalars; it broadcasts arrays
        return np.asarray(xs), np.asarray(ys)

    def post_index(self, posts: DemPosts, rows: NDArray, cols: NDArray) -> tuple[NDArray, NDArray]:
        """Fractional DEM post (row, col) of target pixel-centre coordinates."""
        xs, ys = self.xy(rows, cols)
        return posts.indices(self.crs, xs, ys)


def _dem_posts(n: int, k: float) -> int:
    """Number of DEM posts spanning n target pixel centres at about k pixels apart."""
    if n <= 1:
        return 1
    return min(n, max(2, math.ceil((n - 1) / k) + 1))


def _dem_grid(dem: Dem, grid: _Grid, res_hint: float | None = None) -> tuple[NDArray[np.float32], float, float]:
    """DEM heights on posts whose first/last centres sit on the target's first/last pixel
    centres, spaced at about ``res_hint`` (default: the DEM's resolution): a coarse height
    field for finding radar windows (terrain correction itself samples the DEM's own posts).
    Returns (heights, fy, fx): DEM post index per target pixel index."""
    h, w = grid.shape
    px = math.hypot(grid.transform.a, grid.transform.d)
    py = math.hypot(grid.transform.b, grid.transform.e)
    res = dem.resolution_m if res_hint is None else res_hint
    k = 1e9 if not math.isfinite(res) else max(1.0, res / max(min(px, py), 1e-9))
    hd, wd = _dem_posts(h, k), _dem_posts(w, k)
    sy = (h - 1) / (hd - 1) if hd > 1 else 1.0
    sx = (w - 1) / (wd - 1) if wd > 1 else 1.0
    dt = grid.transform @ Affine.translation(0.5 - sx / 2, 0.5 - sy / 2) @ Affine.scale(sx, sy)
    heights = np.ascontiguousarray(dem.heights(grid.crs, dt, (hd, wd)), dtype=np.float32)
    if heights.shape != (hd, wd) or not np.all(np.isfinite(heights)):
        raise GeometryError(f"DEM {dem.name} returned invalid heights for the target grid")
    return heights, (1.0 / sy if hd > 1 else 0.0), (1.0 / sx if wd > 1 else 0.0)


# --------------------------------------------------------------------------------------
# numba kernel
# --------------------------------------------------------------------------------------
@numba.njit(inline="always", cache=True)
def lerp_index(grid: NDArray, v: float) -> tuple[int, float]:
    """Linear interpolation at ``v`` in an increasing ``grid`` (>= 2 nodes): the interval
    ``k`` (0 .. n-2) and the weight ``w`` of node ``k + 1``, both clamped at the ends (no
    extrapolation). Inlined into its numba callers, whose fastmath flags then apply; numba's
    cache checks only the caller's file, so after changing this, clear the callers' caches
    (``__pycache__/*.nbi``, ``*.nbc`` of geocoding and simulate)."""
    n = grid.size
    k = int(np.searchsorted(grid, v, side="right")) - 1
    if k < 0:
        k = 0
    if k > n - 2:
        k = n - 2
    w = (v - grid[k]) / (grid[k + 1] - grid[k])
    if w < 0.0:
        w = 0.0
    if w > 1.0:
        w = 1.0
    return k, w




@numba.njit(inline="always", cache=True, fastmath=_FM)
def _grd_pixel(line: float, rng: float, conv: int, poly_line: NDArray, poly_sr0: NDArray, poly_coef: NDArray,
               grsr_gr0: NDArray, grsr_coef: NDArray, inv_sr0: NDArray, inv_scale: NDArray, inv_coef: NDArray,
               rps: float) -> tuple[float, float]:
    """GRD pixel of one-way slant range ``rng`` (m) at (fractional) ``line`` by convention
    ``conv`` (0 esa: the nearest polynomial pair, the ground-to-slant one inverted exactly
    through its refitted inverse ``inv_*``; 1 sarsen: srgr coefficients interpolated linearly in azimuth, clamped; 2 snap: grsr
    interpolated linearly and inverted), and the distance in lines to the nearest polynomial
    block boundary (esa; 1e30 otherwise). Without grsr polynomials esa uses the srgr one."""
    n = poly_line.shape[0]
    i = 0
    w = 0.0
    if n > 1:
        i, w = lerp_index(poly_line, line)
    i1 = i + 1 if n > 1 else i
    if conv == 0:
        j = i if w < 0.5 else i1
        dist = abs(w - 0.5) * (poly_line[i1] - poly_line[i]) if n > 1 else 1e30
        u = (rng - inv_sr0[j]) * inv_scale[j]
        g = 0.0
        for k in range(inv_coef.shape[1] - 1, -1, -1):
            g = g * u + inv_coef[j, k]
        return g / rps, dist
    nk = poly_coef.shape[1]
    x = rng - (poly_sr0[i] * (1 - w) + poly_sr0[i1] * w)
    g = 0.0
    for k in range(nk - 1, -1, -1):
        g = g * x + (poly_coef[i, k] * (1 - w) + poly_coef[i1, k] * w)
    if conv == 1 or grsr_coef.shape[0] != n:
        return g / rps, 1e30
    # snap: Newton on the linearly interpolated ground -> slant polynomial, from the
    # interpolated srgr value (within ~0.01 px of the root)
    g0 = grsr_gr0[i] * (1 - w) + grsr_gr0[i1] * w
    ng = grsr_coef.shape[1]
    for _ in range(2):
        xg = g - g0
        f = 0.0
        df = 0.0
        for k in range(ng - 1, -1, -1):
            ck = grsr_coef[i, k] * (1 - w) + grsr_coef[i1, k] * w
            df = df * xg + f
            f = f * xg + ck
        g -= (f - rng) / df
    return g / rps, 1e30


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _post_height(dem: NDArray, u: float, v: float) -> float:
    """Bilinear height at fractional post (row u, col v), clamped to the array."""
    hd, wd = dem.shape
    u = min(max(u, 0.0), hd - 1.0)
    v = min(max(v, 0.0), wd - 1.0)
    i = min(int(u), hd - 2) if hd > 1 else 0
    j = min(int(v), wd - 2) if wd > 1 else 0
    i1 = min(i + 1, hd - 1)
    j1 = min(j + 1, wd - 1)
    fu = u - i
    fv = v - j
    return (dem[i, j] * (1 - fv) + dem[i, j1] * fv) * (1 - fu) + (dem[i1, j] * (1 - fv) + dem[i1, j1] * fv) * fu
@numba.njit(inline="always", cache=True, fastmath=_FM)
def _cubic_w(t: float, a: float = -0.5) -> tuple[float, float, float, float]:
    """Keys cubic convolution weights for offsets -1, 0, 1, 2 at fraction t."""
    t2 = t * t
    t3 = t2 * t
    w0 = a * (t3 - 2 * t2 + t)
    w1 = (a + 2) * t3 - (a + 3) * t2 + 1
    w2 = -(a + 2) * t3 + (2 * a + 3) * t2 - a * t
    w3 = a * (t2 - t3)
    return w0, w1, w2, w3


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _bilinear(img: NDArray, k: int, li: float, pj: float) -> float:
    """Bilinear sample of band k at (li, pj) (pixel centres at integers); see the module doc."""
    nh, nw = img.shape[1], img.shape[2]
    i = int(math.floor(li))
    j = int(math.floor(pj))
    fi = li - i
    fj = pj - j
    if i >= 0 and j >= 0 and i + 1 < nh and j + 1 < nw:
        v00 = img[k, i, j]
        v01 = img[k, i, j + 1]
        v10 = img[k, i + 1, j]
        v11 = img[k, i + 1, j + 1]
        v = (v00 * (1 - fj) + v01 * fj) * (1 - fi) + (v10 * (1 - fj) + v11 * fj) * fi
        if math.isfinite(v):
            return v
    # slow path (edges, NaN neighbours): the nearest sample decides validity; other NaN neighbours are left out (weights renormalised)
    ni = min(max(int(math.floor(li + 0.5)), 0), nh - 1)
    nj = min(max(int(math.floor(pj + 0.5)), 0), nw - 1)
    if not math.isfinite(img[k, ni, nj]):
        return math.nan
    acc = 0.0
    wsum = 0.0
    for di in range(2):
        ii = min(max(i + di, 0), nh - 1)
        wi = fi if di == 1 else 1.0 - fi
        for dj in range(2):
            jj = min(max(j + dj, 0), nw - 1)
            wj = fj if dj == 1 else 1.0 - fj
            v = img[k, ii, jj]
            if math.isfinite(v):
                acc += wi * wj * v
                wsum += wi * wj
    return acc / wsum if wsum > 0 else math.nan


@numba.njit(inline="always", cache=True, fastmath=_FM)
def _sample(img: NDArray, k: int, li: float, pj: float, method: int) -> float:
    """Sample band k of (bands, lines, samples) ``img`` (indexed in place: a per-pixel
    ``img[k]`` view would cost a reference count per pixel)."""
    nh, nw = img.shape[1], img.shape[2]
    if method == 0:
        i = min(max(int(math.floor(li + 0.5)), 0), nh - 1)
        j = min(max(int(math.floor(pj + 0.5)), 0), nw - 1)
        return img[k, i, j]
    if method == 1:
        return _bilinear(img, k, li, pj)
    # bicubic (Keys, a = -0.5); any NaN among the 16 samples -> bilinear; negatives -> 0
    i = int(math.floor(li))
    j = int(math.floor(pj))
    wi0, wi1, wi2, wi3 = _cubic_w(li - i)
    wj0, wj1, wj2, wj3 = _cubic_w(pj - j)
    acc = 0.0
    for di in range(4):
        ii = min(max(i + di - 1, 0), nh - 1)
        wi = wi0 if di == 0 else (wi1 if di == 1 else (wi2 if di == 2 else wi3))
        row = 0.0
        for dj in range(4):
            jj = min(max(j + dj - 1, 0), nw - 1)
            wj = wj0 if dj == 0 else (wj1 if dj == 1 else (wj2 if dj == 2 else wj3))
            row += wj * img[k, ii, jj]
        acc += wi * row
    if not math.isfinite(acc):
        return _bilinear(img, k, li, pj)
    return acc if acc > 0.0 else 0.0




@numba.njit(parallel=True, cache=True, fastmath=_FM)
def _block_kernel(
    out: NDArray,  # image: (nb, H, W) float32; coords: (4, H, W) line, pixel, height, range - rng0
    images: NDArray,  # (nb, wh, ww) float32 radar window
    win_row: float, win_col: float, lines: int, samples: int,
    dem: NDArray, coef_u: NDArray, coef_v: NDArray,  # DEM posts; (nr, nc) post row/col at the lattice nodes
    coef_line: NDArray, coef_rng: NDArray,  # (nr, nc, N_LEVELS): line and slant range - rng_ref
    step: int, hc: float, hs: float, rng_ref: float, rng0: float,
    conv: int, poly_line: NDArray, poly_sr0: NDArray, poly_coef: NDArray, grsr_gr0: NDArray, grsr_coef: NDArray,
    inv_sr0: NDArray, inv_scale: NDArray, inv_coef: NDArray, rps: float,
    margin: float, redo: NDArray,  # (>= bh, >= bw) uint8: 1 where the pixel needs an exact solve
    redo_count: NDArray,  # (>= bh,) int64: flagged pixels per row
    r0: int, c0: int, bh: int, bw: int, method: int, coords: bool,
) -> None:
    nb = out.shape[0]
    nr = coef_line.shape[0]
    nc = coef_line.shape[1]
    nl = coef_line.shape[2]
    wh = images.shape[1]
    ww = images.shape[2]
    for rr in numba.prange(bh):
        r = r0 + rr
        fa = rr / step
        a = min(int(fa), nr - 2)
        wa = fa - a
        # lattice values interpolated to this row once
        row_l = np.empty((nc, nl))
        row_r = np.empty((nc, nl))
        row_u = np.empty(nc)
        row_v = np.empty(nc)
        buf_l = np.empty(bw)
        buf_p = np.empty(bw)
        flagged = 0
        for b in range(nc):
            row_u[b] = coef_u[a, b] * (1 - wa) + coef_u[a + 1, b] * wa
            row_v[b] = coef_v[a, b] * (1 - wa) + coef_v[a + 1, b] * wa
            for q in range(nl):
                row_l[b, q] = coef_line[a, b, q] * (1 - wa) + coef_line[a + 1, b, q] * wa
                row_r[b, q] = coef_rng[a, b, q] * (1 - wa) + coef_rng[a + 1, b, q] * wa
        for cc in range(bw):
            c = c0 + cc
            fb = cc / step
            b = min(int(fb), nc - 2)
            wb = fb - b
            u = row_u[b] * (1 - wb) + row_u[b + 1] * wb
            v = row_v[b] * (1 - wb) + row_v[b + 1] * wb
            hgt = _post_height(dem, u, v)
            s = (hgt - hc) / hs
            line = 0.0
            rng = 0.0
            for q in range(nl - 1, -1, -1):
                line = line * s + (row_l[b, q] * (1 - wb) + row_l[b + 1, q] * wb)
                rng = rng * s + (row_r[b, q] * (1 - wb) + row_r[b + 1, q] * wb)
            rng += rng_ref
            pix, dist = _grd_pixel(line, rng, conv, poly_line, poly_sr0, poly_coef, grsr_gr0, grsr_coef,
                                   inv_sr0, inv_scale, inv_coef, rps)
            if dist < margin:
                redo[rr, cc] = 1
                flagged += 1
            else:
                redo[rr, cc] = 0
            if coords:
                out[0, r, c] = line
                out[1, r, c] = pix
                out[2, r, c] = hgt
                out[3, r, c] = rng - rng0
                continue
            li = line - win_row
            pj = pix - win_col
            if not (line >= -0.5 and line <= lines - 0.5 and pix >= -0.5 and pix <= samples - 0.5
                    and li >= -0.5 and li <= wh - 0.5 and pj >= -0.5 and pj <= ww - 0.5):
                li = math.nan  # outside the scene or the window: no data
            buf_l[cc] = li
            buf_p[cc] = pj
        redo_count[rr] = flagged
        if coords:
            continue
        # second pass over the row: short independent iterations let the CPU overlap the
        # image loads (in the fused loop each load waited for the long coordinate chain)
        for k in range(nb):
            for cc in range(bw):
                li = buf_l[cc]
                if li != li:
                    out[k, r, c0 + cc] = math.nan
                else:
                    out[k, r, c0 + cc] = _sample(images, k, li, buf_p[cc], method)


@numba.njit(cache=True, fastmath=_FM)
def _sample_points(out: NDArray, images: NDArray, rows: NDArray, cols: NDArray, li: NDArray, pj: NDArray,
                   method: int) -> None:
    """Resample ``images`` at window coordinates (li, pj) into ``out[:, rows, cols]`` (NaN li: no data)."""
    for n in range(rows.shape[0]):
        for k in range(out.shape[0]):
            out[k, rows[n], cols[n]] = math.nan if li[n] != li[n] else _sample(images, k, li[n], pj[n], method)


# --------------------------------------------------------------------------------------
# coarse model per block
# --------------------------------------------------------------------------------------
@dataclass
class GeocodingStats:
    """What the coordinate model did: blocks processed/skipped, steps used, worst check error,
    exact solutions (lattice, checks, pixels at polynomial block boundaries)."""

    blocks: int = 0
    skipped: int = 0
    steps: dict[int, int] = field(default_factory=dict)
    max_error_px: float = 0.0
    exact_points: int = 0
    boundary_pixels: int = 0
    tolerance_px: float = 0.05


def _cheb(n: int) -> NDArray[np.float64]:
    return np.cos(np.pi * (np.arange(n) + 0.5) / n)[::-1]


_VANDER_INV: dict[int, NDArray[np.float64]] = {}


def _fit_levels(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """(..., N_LEVELS) values at Chebyshev heights -> monomial coefficients in s (ascending)."""
    n = values.shape[-1]
    if n not in _VANDER_INV:
        _VANDER_INV[n] = np.linalg.inv(np.vander(_cheb(n), n, increasing=True)).astype(np.float64)
    return values @ _VANDER_INV[n].T


def _eval_model(coef: NDArray, rr: NDArray, cc: NDArray, step: int, s: NDArray) -> NDArray:
    """numpy twin of the kernel's model (for the error check): rr/cc relative to the block."""
    nr, nc, _ = coef.shape
    fa = rr / step
    fb = cc / step
    a = np.minimum(fa.astype(np.intp), nr - 2)
    b = np.minimum(fb.astype(np.intp), nc - 2)
    wa = (fa - a)[..., None]
    wb = (fb - b)[..., None]
    cq = (coef[a, b] * (1 - wb) + coef[a, b + 1] * wb) * (1 - wa) + (coef[a + 1, b] * (1 - wb) + coef[a + 1, b + 1] * wb) * wa
    out = np.zeros(np.shape(rr))
    for q in range(coef.shape[-1] - 1, -1, -1):
        out = out * s + cq[..., q]
    return out


class _BlockModel:
    """Line and slant range of one block: bilinear over a lattice, polynomial in height; and
    the DEM post coordinates of the lattice nodes."""

    def __init__(self, coef_line: NDArray, coef_rng: NDArray, rng_ref: float, step: int, hc: float, hs: float,
                 post_u: NDArray, post_v: NDArray) -> None:
        self.coef_line = np.ascontiguousarray(coef_line)
        self.coef_rng = np.ascontiguousarray(coef_rng)
        self.post_u = np.ascontiguousarray(post_u, dtype=np.float64)
        self.post_v = np.ascontiguousarray(post_v, dtype=np.float64)
        self.rng_ref, self.step, self.hc, self.hs = rng_ref, step, hc, hs

    def radar_bounds(self, geo: RadarGeometry) -> tuple[float, float, float, float]:
        """(line min, line max, pixel min, pixel max) over the nodes, heights hmin..hmax."""
        s = np.array([-1.0, 1.0] + list(_cheb(N_LEVELS)))
        li = np.polynomial.polynomial.polyval(s, self.coef_line.reshape(-1, N_LEVELS).T)
        rg = np.polynomial.polynomial.polyval(s, self.coef_rng.reshape(-1, N_LEVELS).T) + self.rng_ref
        px = geo.pixel_of(li, rg)
        if not (np.isfinite(li).any() and np.isfinite(px).any()):
            return (math.nan,) * 4
        return float(np.nanmin(li)), float(np.nanmax(li)), float(np.nanmin(px)), float(np.nanmax(px))


#: quasi-random in-cell offsets (fractions of a step) of the error check points, besides centres
_CHECK_OFFSETS = np.array([[0.5, 0.5], [0.19, 0.73], [0.81, 0.31]])
_CHECK_LEVELS = np.array([-1.0, -0.45, 0.45, 1.0])


@dataclass
class _Block:
    """One block of the target grid and its coordinate model."""

    r0: int
    c0: int
    bh: int
    bw: int
    hmin: float
    hmax: float
    model: _BlockModel | None = None

    @property
    def hc(self) -> float:
        return 0.5 * (self.hmin + self.hmax)

    @property
    def hs(self) -> float:
        return max(0.5 * (self.hmax - self.hmin), 1.0)


def _lattice_points(b: _Block, step: int) -> tuple[NDArray, NDArray, NDArray, tuple[int, int]]:
    """Target (row, col) of the block's lattice nodes at each level, and the lattice shape."""
    nr = max(2, math.ceil((b.bh - 1) / step) + 1)
    nc = max(2, math.ceil((b.bw - 1) / step) + 1)
    rows = b.r0 + np.arange(nr, dtype=np.float64) * step
    cols = b.c0 + np.arange(nc, dtype=np.float64) * step
    R = np.broadcast_to(rows[:, None, None], (nr, nc, N_LEVELS))
    C = np.broadcast_to(cols[None, :, None], (nr, nc, N_LEVELS))
    H = np.broadcast_to(b.hc + b.hs * _cheb(N_LEVELS), (nr, nc, N_LEVELS))
    return R, C, H, (nr, nc)


def _check_points(b: _Block, step: int, shape: tuple[int, int]) -> tuple[NDArray, NDArray, NDArray]:
    """(row, col relative to the block; normalised height) of the error check points: a few
    points per lattice cell, at heights between the Chebyshev levels."""
    nr, nc = shape
    k = len(_CHECK_OFFSETS)
    ar = np.arange(nr - 1)[:, None, None] * step + _CHECK_OFFSETS[None, None, :, 0] * step
    ac = np.arange(nc - 1)[None, :, None] * step + _CHECK_OFFSETS[None, None, :, 1] * step
    RR = np.minimum(np.broadcast_to(ar, (nr - 1, nc - 1, k)), b.bh - 1)[..., None]
    CC = np.minimum(np.broadcast_to(ac, (nr - 1, nc - 1, k)), b.bw - 1)[..., None]
    SS = np.broadcast_to(_CHECK_LEVELS, RR.shape[:-1] + (_CHECK_LEVELS.size,))
    return np.broadcast_to(RR, SS.shape), np.broadcast_to(CC, SS.shape), SS




def _solve_batches(geo: RadarGeometry, grid: _Grid, batches: list[tuple[NDArray, NDArray, NDArray]],
                   stats: GeocodingStats) -> list[tuple[NDArray, NDArray]]:
    """Exact (line, slant range) of many point sets (target row, col, height) in one call:
    the Newton iteration is vectorised over all of them (per-block calls cost more in
    numpy overhead than in arithmetic)."""
    if not batches:
        return []
    sizes = [r.size for r, _, _ in batches]
    rows = np.concatenate([r.ravel() for r, _, _ in batches])
    cols = np.concatenate([c.ravel() for _, c, _ in batches])
    hs = np.concatenate([np.asarray(h, dtype=np.float64).ravel() for _, _, h in batches])
    lon, lat = grid.lonlat(rows, cols)
    line, rng = geo.solve_range(lon, lat, hs)
    stats.exact_points += line.size
    out = []
    i = 0
    for (r, _, _), n in zip(batches, sizes, strict=True):
        out.append((line[i:i + n].reshape(r.shape), rng[i:i + n].reshape(r.shape)))
        i += n
    return out


def _models(geo: RadarGeometry, grid: _Grid, posts: DemPosts, blocks: list[_Block], step: int | None,
            stats: GeocodingStats, tolerance: float | None) -> list[float]:
    """Fit every block's model at ``step`` (None: one cell per block) in one batch; with a
    ``tolerance``, also measure each model's error at its check points (in one batch).
    Returns the worst check error per block (0 without a check)."""
    steps = [step if step is not None else max(b.bh, b.bw) for b in blocks]
    lat_pts = [_lattice_points(b, st) for b, st in zip(blocks, steps, strict=True)]
    solved = _solve_batches(geo, grid, [(R, C, H) for R, C, H, _ in lat_pts], stats)
    # DEM post coordinates of all lattice nodes in one transform
    node_r = np.concatenate([R[..., 0].ravel() for R, _, _, _ in lat_pts])
    node_c = np.concatenate([C[..., 0].ravel() for _, C, _, _ in lat_pts])
    pu, pv = grid.post_index(posts, node_r, node_c)
    i = 0
    for b, st, (line, rng), (_, _, _, shape) in zip(blocks, steps, solved, lat_pts, strict=True):
        n = shape[0] * shape[1]
        rng_ref = float(np.nanmean(rng)) if np.isfinite(rng).any() else 0.0
        b.model = _BlockModel(_fit_levels(line), _fit_levels(rng - rng_ref), rng_ref, st, b.hc, b.hs,
                              pu[i:i + n].reshape(shape), pv[i:i + n].reshape(shape))
        i += n
    if tolerance is None:
        return [0.0] * len(blocks)
    checks = [_check_points(b, st, shape) for b, st, (_, _, _, shape) in zip(blocks, steps, lat_pts, strict=True)]
    exact = _solve_batches(geo, grid, [(b.r0 + RR, b.c0 + CC, b.hc + b.hs * SS)
                                       for b, (RR, CC, SS) in zip(blocks, checks, strict=True)], stats)
    worst = []
    for b, st, (RR, CC, SS), (le, re) in zip(blocks, steps, checks, exact, strict=True):
        m = b.model
        assert m is not None
        lm = _eval_model(m.coef_line, RR, CC, st, SS)
        rm = _eval_model(m.coef_rng, RR, CC, st, SS) + m.rng_ref
        # the pixel error with the exact solution's polynomial choice: near a block boundary
        # the nearest-polynomial rule jumps, which the kernel handles by exact solves
        err = np.hypot(lm - le, geo.pixel_of(lm, rm, select=le) - geo.pixel_of(le, re))
        err = err[np.isfinite(err)]
        worst.append(float(err.max()) if err.size else 0.0)
    return worst


def _checked_models(geo: RadarGeometry, grid: _Grid, posts: DemPosts, blocks: list[_Block], stats: GeocodingStats,
                    tolerance: float) -> None:
    """Models at ``INITIAL_STEP``, checked; blocks over ``tolerance`` halve their step until
    they are within it (or reach ``MIN_STEP``, with a warning).

    Line and slant range are smooth in (x, y, h) and are what is interpolated; the GRD pixel
    goes through the srgr polynomials per pixel (their choice or interpolation in azimuth is
    not smooth, so no lattice could follow it).
    """
    todo = blocks
    step = INITIAL_STEP
    while todo:
        worst = _models(geo, grid, posts, todo, step, stats, tolerance)
        again = []
        for b, e in zip(todo, worst, strict=True):
            if e <= tolerance or step <= MIN_STEP:
                if e > tolerance:
                    log.warning("%s: coordinate model error %.3f px > %.3f px at the minimum step %d (block %d,%d)",
                                geo.name, e, tolerance, step, b.r0, b.c0)
                stats.max_error_px = max(stats.max_error_px, e)
                stats.steps[step] = stats.steps.get(step, 0) + 1
            else:
                again.append(b)
        todo = again
        step //= 2


def _blocks(shape: tuple[int, int], block: int) -> list[tuple[int, int, int, int]]:
    h, w = shape
    return [(r, c, min(block, h - r), min(block, w - c)) for r in range(0, h, block) for c in range(0, w, block)]


def _block_height_ranges(grid: _Grid, posts: DemPosts, blocks: list[tuple[int, int, int, int]]) -> list[tuple[float, float]]:
    """(min, max) DEM height over each block: the posts under its footprint (9 x 9 sample
    points per block, in one transform; one post of margin around their bounding box)."""
    if posts.constant:
        h0 = float(posts.heights[0, 0])
        return [(h0, h0)] * len(blocks)
    t = np.linspace(0.0, 1.0, 9)
    rr = np.concatenate([(r0 + t[:, None] * (bh - 1) + 0 * t[None, :]).ravel() for r0, _, bh, _ in blocks])
    cc = np.concatenate([(c0 + 0 * t[:, None] + t[None, :] * (bw - 1)).ravel() for _, c0, _, bw in blocks])
    u, v = grid.post_index(posts, rr, cc)
    hd, wd = posts.heights.shape
    out = []
    for k in range(len(blocks)):
        uu, vv = u[k * 81:(k + 1) * 81], v[k * 81:(k + 1) * 81]  # (81,) post rows and columns
        i0 = int(np.clip(math.floor(uu.min()) - 1, 0, hd - 1))
        i1 = int(np.clip(math.ceil(uu.max()) + 2, i0 + 1, hd))
        j0 = int(np.clip(math.floor(vv.min()) - 1, 0, wd - 1))
        j1 = int(np.clip(math.ceil(vv.max()) + 2, j0 + 1, wd))
        sub = posts.heights[i0:i1, j0:j1]
        out.append((float(sub.min()), float(sub.max())))
    return out


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def _run(
    geo: RadarGeometry, dem: Dem, grid: _Grid, images: NDArray | None, window: Window | None,
    method: int, tolerance: float, stats: GeocodingStats, posts: DemPosts | None = None,
) -> tuple[NDArray[np.float32], float]:
    """Image mode: (bands, H, W) resampled image. Coords mode (``images`` None): (4, H, W)
    line, pixel, height, slant range - rng0; returns (array, rng0)."""
    geo.check_orbit()
    if posts is None:
        posts = dem.posts(grid.crs, grid.transform, grid.shape)
    dem_arr = np.ascontiguousarray(posts.heights, dtype=np.float32)
    h, w = grid.shape
    coords = images is None
    imgs: NDArray
    if coords:
        out = np.full((4, h, w), np.nan, dtype=np.float32)
        imgs = np.zeros((1, 1, 1), dtype=np.float32)
        wr = wc = 0.0
        wh, ww = geo.lines, geo.samples
    else:
        assert window is not None and images is not None
        imgs = images
        # every pixel of a processed block is written by the kernel (NaN where no data);
        # skipped blocks are filled below: no separate pass over the (large) output
        out = np.empty((imgs.shape[0], h, w), dtype=np.float32)
        wr, wc = float(window.row_off), float(window.col_off)
        wh, ww = imgs.shape[1], imgs.shape[2]
    poly_line = np.ascontiguousarray(geo.poly_line)
    geoms = _blocks(grid.shape, BLOCK)
    blocks = [_Block(r0, c0, bh, bw, lo, hi)
              for (r0, c0, bh, bw), (lo, hi) in zip(geoms, _block_height_ranges(grid, posts, geoms), strict=True)]
    # a cheap unchecked model first (one lattice cell per block): skip blocks far outside
    # the window/scene
    _models(geo, grid, posts, blocks, None, stats, None)
    lo_l, hi_l = max(wr, 0.0), min(wr + wh, geo.lines)
    lo_p, hi_p = max(wc, 0.0), min(wc + ww, geo.samples)
    active = []
    for b in blocks:
        assert b.model is not None
        lmin, lmax, pmin, pmax = b.model.radar_bounds(geo)
        margin = 4.0 + 0.01 * (lmax - lmin + pmax - pmin)  # the rough model's own error bound
        if geo.convention == "esa":
            margin += geo.poly_jump_px  # between nodes another polynomial may hold
        outside = not (math.isfinite(lmin) and math.isfinite(pmin)) or (
            lmax + margin < lo_l - 0.5 or lmin - margin > hi_l - 0.5 or pmax + margin < lo_p - 0.5
            or pmin - margin > hi_p - 0.5)
        if outside and not (coords and math.isfinite(lmin)):  # coordinates are wanted off the scene too
            stats.skipped += 1
            out[:, b.r0:b.r0 + b.bh, b.c0:b.c0 + b.bw] = np.nan
        else:
            active.append(b)
    touched = bool(active)
    _checked_models(geo, grid, posts, active, stats, tolerance)
    rng0 = float(np.mean([b.model.rng_ref for b in active if b.model is not None])) if active else 0.0
    margin_lines = 4.0 * tolerance if geo.convention == "esa" else -1.0
    redo = np.zeros((BLOCK, BLOCK), dtype=np.uint8)
    redo_count = np.zeros(BLOCK, dtype=np.int64)
    redo_rows: list[NDArray] = []
    redo_cols: list[NDArray] = []
    for b in active:
        m = b.model
        assert m is not None
        stats.blocks += 1
        _block_kernel(out, imgs, wr, wc, geo.lines, geo.samples, dem_arr, m.post_u, m.post_v,
                      m.coef_line, m.coef_rng, m.step, m.hc, m.hs, m.rng_ref, rng0,
                      geo.conv_code, poly_line, geo.poly_sr0, geo.poly_coef, geo.grsr_gr0, geo.grsr_coef,
                      geo.inv_sr0, geo.inv_scale, geo.inv_coef, geo.range_pixel_spacing, margin_lines, redo,
                      redo_count, b.r0, b.c0, b.bh, b.bw, method, coords)
        rows_hit = np.flatnonzero(redo_count[:b.bh])
        if rows_hit.size:
            rr, cc = np.nonzero(redo[rows_hit, :b.bw])
            redo_rows.append(rows_hit[rr] + b.r0)
            redo_cols.append(cc + b.c0)
    if redo_rows:
        _redo_exact(geo, grid, posts, out, imgs, np.concatenate(redo_rows), np.concatenate(redo_cols),
                    wr, wc, method, coords, rng0, stats)
    if not touched:
        raise GeometryError(
            f"{geo.name}: the target grid ({grid.crs}, origin {grid.transform.c:.1f}, {grid.transform.f:.1f}, "
            f"shape {grid.shape}) does not overlap the scene/window"
        )
    return out, rng0


def _redo_exact(geo: RadarGeometry, grid: _Grid, posts: DemPosts, out: NDArray, imgs: NDArray, rows: NDArray,
                cols: NDArray, wr: float, wc: float, method: int, coords: bool, rng0: float,
                stats: GeocodingStats) -> None:
    """Exact (line, pixel) of the pixels near a polynomial block boundary, and their values."""
    u, v = grid.post_index(posts, rows, cols)
    hgt = posts.sample(u, v)
    lon, lat = grid.lonlat(rows, cols)
    line, rng = geo.solve_range(lon, lat, hgt)
    pix = geo.pixel_of(line, rng)
    stats.exact_points += rows.size
    stats.boundary_pixels += rows.size
    if coords:
        out[0, rows, cols] = line
        out[1, rows, cols] = pix
        out[2, rows, cols] = hgt
        out[3, rows, cols] = rng - rng0
        return
    wh, ww = imgs.shape[1], imgs.shape[2]
    li = line - wr
    pj = pix - wc
    ok = ((line >= -0.5) & (line <= geo.lines - 0.5) & (pix >= -0.5) & (pix <= geo.samples - 0.5)
          & (li >= -0.5) & (li <= wh - 0.5) & (pj >= -0.5) & (pj <= ww - 0.5))
    li = np.where(ok, li, np.nan)
    _sample_points(out, imgs, rows.astype(np.int64), cols.astype(np.int64), li, np.where(ok, pj, 0.0), method)


def terrain_correct(
    image_linear: NDArray,
    window: Window,
    annotation: Any,
    dem: Dem | str,
    *,
    crs: Any,
    transform: Affine,
    shape: tuple[int, int],
    resampling: str = "bilinear",
    tolerance: float = 0.05,
    stats: GeocodingStats | None = None,
    convention: str | None = None,
) -> NDArray[np.float32]:
    """Terrain-correct a calibrated linear GRD image onto a map grid.

    ``image_linear``: (lines, samples) or (bands, lines, samples) linear power, NaN no-data,
    covering ``window`` (rasterio Window in GRD line/pixel of ``annotation``). ``dem``: a
    :class:`~bigearthnet_s1.dem.Dem` or an ``open_dem`` spec. ``convention``: the geometry
    convention (module doc; default "esa", or the RadarGeometry's own). Returns float32 of
    ``shape`` (or (bands,) + shape) on the grid's pixel centres: NaN where the grid falls
    outside the scene or the window, or on no-data. Raises GeometryError when the grid does
    not touch the scene/window or the orbit does not span the scene; DemError from the DEM.
    """
    if resampling not in RESAMPLING_METHODS:
        raise InputError(f"resampling {resampling!r}: expected one of {sorted(RESAMPLING_METHODS)}")
    geo = _geometry(annotation, convention)
    img = np.asarray(image_linear)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[None]
    if img.ndim != 3:
        raise InputError(f"terrain_correct: image must be 2-D or 3-D, got shape {img.shape}")
    win = Window(*window) if not isinstance(window, Window) else window
    if (img.shape[1], img.shape[2]) != (int(win.height), int(win.width)):
        raise InputError(f"terrain_correct: image shape {img.shape[1:]} does not match window {win}")
    img = np.ascontiguousarray(img, dtype=np.float32)
    grid = _Grid(crs, transform, shape)
    st = stats if stats is not None else GeocodingStats(tolerance_px=tolerance)
    out, _ = _run(geo, open_dem(dem), grid, img, win, RESAMPLING_METHODS[resampling], tolerance, st)
    return out[0] if squeeze else out


def radar_coordinates(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int],
    tolerance: float = 0.05, stats: GeocodingStats | None = None, convention: str | None = None,
    heights: bool = False,
) -> tuple[NDArray[np.float32], ...]:
    """(line, pixel) GRD coordinates (pixel centres, float32) of every target pixel centre;
    with ``heights``, also the ellipsoidal height (m) each pixel was geocoded at."""
    geo = _geometry(annotation, convention)
    grid = _Grid(crs, transform, shape)
    st = stats if stats is not None else GeocodingStats(tolerance_px=tolerance)
    out, _ = _run(geo, open_dem(dem), grid, None, None, 0, tolerance, st)
    return (out[0], out[1], out[2]) if heights else (out[0], out[1])


def radar_window_for_grid(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int], margin: int = 16,
    convention: str | None = None,
) -> Window | None:
    """The GRD window (rasterio Window, whole pixels, clipped to the image) that a target grid
    needs, grown by ``margin`` pixels on each side (room for resampling and speckle filters);
    None when the grid does not touch the scene."""
    geo = _geometry(annotation, convention)
    geo.check_orbit()
    dem_ = open_dem(dem)
    grid = _Grid(crs, transform, shape)
    h, w = grid.shape
    heights, _, _ = _dem_grid(dem_, grid, res_hint=max(dem_.resolution_m, 90.0) if math.isfinite(dem_.resolution_m) else None)
    hmin, hmax = float(heights.min()), float(heights.max())
    pad = 0.1 * (hmax - hmin) + 10.0 if hmax > hmin else 0.0
    hmin, hmax = hmin - pad, hmax + pad
    # boundary (dense) and interior (coarse) pixel centres at both height extremes
    n = 65
    t = np.linspace(0.0, 1.0, n)
    br = np.concatenate([np.zeros(n), t * (h - 1), np.full(n, h - 1.0), (1 - t) * (h - 1)])
    bc = np.concatenate([t * (w - 1), np.full(n, w - 1.0), (1 - t) * (w - 1), np.zeros(n)])
    ir, ic = np.meshgrid(np.linspace(0, h - 1, 9), np.linspace(0, w - 1, 9), indexing="ij")
    rr = np.concatenate([br, ir.ravel()])
    cc = np.concatenate([bc, ic.ravel()])
    lon, lat = grid.lonlat(rr, cc)
    lines, pixels = [], []
    for hh in (hmin, hmax):
        li, pi = geo.solve(lon, lat, np.full(lon.shape, hh))
        lines.append(li)
        pixels.append(pi)
    li = np.concatenate(lines)
    pi = np.concatenate(pixels)
    ok = np.isfinite(li) & np.isfinite(pi)
    if not ok.any():
        return None
    # the lattice is dense enough that the true extremes lie within a pixel of the sampled
    # ones; with the nearest-polynomial rule a pixel can sit up to one polynomial jump further
    jump = geo.poly_jump_px if geo.convention == "esa" else 0.0
    l0 = math.floor(li[ok].min()) - margin - 1
    l1 = math.ceil(li[ok].max()) + margin + 2
    p0 = math.floor(pi[ok].min() - jump) - margin - 1
    p1 = math.ceil(pi[ok].max() + jump) + margin + 2
    l0, l1 = max(l0, 0), min(l1, geo.lines)
    p0, p1 = max(p0, 0), min(p1, geo.samples)
    if l1 <= l0 or p1 <= p0:
        return None
    return Window(p0, l0, p1 - p0, l1 - l0)


# --------------------------------------------------------------------------------------
# layover and shadow
# --------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _scan_axis0(rng: NDArray, cosl: NDArray, sgn: int, shift: float, tol_r: float, tol_c: float,
                mask: NDArray) -> None:
    """Layover/shadow along scan lines that advance one row per step (``sgn`` = +1: rows in
    increasing order are nearer to farther range) and ``shift`` columns per row. ``rng``:
    slant range (m), ``cosl``: cosine of the look angle (NaN: no data). Sets MASK bits."""
    h, w = rng.shape
    max_r = np.full((h, w), np.nan)
    min_c = np.full((h, w), np.nan)
    min_r = np.full((h, w), np.nan)
    order = np.arange(h) if sgn > 0 else np.arange(h - 1, -1, -1)
    # near -> far: running max of range (layover) and min of cos(look angle) (shadow)
    for k in range(h):
        r = order[k]
        rp = r - sgn
        for c in range(w):
            pr = math.nan
            pc = math.nan
            if 0 <= rp < h:
                x = c - shift
                j = int(math.floor(x))
                f = x - j
                if j >= 0 and j + 1 < w:
                    a0, a1 = max_r[rp, j], max_r[rp, j + 1]
                    b0, b1 = min_c[rp, j], min_c[rp, j + 1]
                    pr = a0 if a1 != a1 else (a1 if a0 != a0 else a0 * (1 - f) + a1 * f)
                    pc = b0 if b1 != b1 else (b1 if b0 != b0 else b0 * (1 - f) + b1 * f)
            v = rng[r, c]
            cv = cosl[r, c]
            if v != v:
                max_r[r, c] = pr
                min_c[r, c] = pc
                continue
            if pr == pr and v < pr - tol_r:
                mask[r, c] |= 1
            if pc == pc and cv > pc + tol_c:
                mask[r, c] |= 2
            max_r[r, c] = v if pr != pr else max(v, pr)
            min_c[r, c] = cv if pc != pc else min(cv, pc)
    # far -> near: running min of range (the near end of a layover)
    for k in range(h - 1, -1, -1):
        r = order[k]
        rn = r + sgn
        for c in range(w):
            nr_ = math.nan
            if 0 <= rn < h:
                x = c + shift
                j = int(math.floor(x))
                f = x - j
                if j >= 0 and j + 1 < w:
                    a0, a1 = min_r[rn, j], min_r[rn, j + 1]
                    nr_ = a0 if a1 != a1 else (a1 if a0 != a0 else a0 * (1 - f) + a1 * f)
            v = rng[r, c]
            if v != v:
                min_r[r, c] = nr_
                continue
            if nr_ == nr_ and v > nr_ + tol_r:
                mask[r, c] |= 1
            min_r[r, c] = v if nr_ != nr_ else min(v, nr_)


@numba.njit(cache=True, parallel=True, fastmath=_FM)
def _range_and_look(line: NDArray, rng: NDArray, hgt: NDArray, rng0: float, rho_e: NDArray, step: int,
                    tl: NDArray, rho_s: NDArray) -> tuple[NDArray, NDArray]:
    """Slant range (m, float64) and the cosine of the look angle of every pixel of a coordinate
    grid (NaN where there is no solution): law of cosines with the sensor's geocentric radius
    at the pixel's line (``rho_s`` tabulated at lines ``tl``) and the point's (the ellipsoid's
    radius ``rho_e`` on a lattice every ``step`` pixels, bilinear, plus the height)."""
    h, w = line.shape
    nr, nc = rho_e.shape
    r_out = np.empty((h, w))
    c_out = np.empty((h, w))
    for r in numba.prange(h):
        fa = min(r / step, nr - 1.0)
        a = min(int(fa), nr - 2) if nr > 1 else 0
        wa = fa - a if nr > 1 else 0.0
        a1 = a + 1 if nr > 1 else a
        for c in range(w):
            li = line[r, c]
            rg = rng[r, c]
            if not (li == li and rg == rg):
                r_out[r, c] = math.nan
                c_out[r, c] = math.nan
                continue
            fb = min(c / step, nc - 1.0)
            b = min(int(fb), nc - 2) if nc > 1 else 0
            wb = fb - b if nc > 1 else 0.0
            b1 = b + 1 if nc > 1 else b
            re = (rho_e[a, b] * (1 - wb) + rho_e[a, b1] * wb) * (1 - wa) + (rho_e[a1, b] * (1 - wb) + rho_e[a1, b1] * wb) * wa
            k, wt = lerp_index(tl, li)
            rs = rho_s[k] * (1 - wt) + rho_s[k + 1] * wt
            R = rg + rng0
            rp = re + hgt[r, c]
            r_out[r, c] = R
            c_out[r, c] = (rs * rs + R * R - rp * rp) / (2.0 * rs * R)
    return r_out, c_out


def layover_shadow_mask(
    annotation: Any, dem: Dem | str, *, crs: Any, transform: Affine, shape: tuple[int, int],
    factor: int | None = None, convention: str | None = None, tolerance: float = 0.05,
) -> NDArray[np.uint8]:
    """Layover (bit 1, :data:`MASK_LAYOVER`) and shadow (bit 2, :data:`MASK_SHADOW`) of every
    target pixel (uint8; 3 = both, 0 = neither or outside the scene), active and passive.

    Each pixel's slant range and look angle come from the coordinate model (heights sampled
    once from the DEM's posts, as terrain correction); the grid is scanned along its
    zero-Doppler lines (the direction in which the image line stays constant and the range
    grows) from near to far range: a pixel is laid over when its range does not exceed the
    largest range of the nearer pixels, or is not below the smallest range of the farther
    ones; it is in shadow when its look angle does not exceed the largest look angle of the
    nearer pixels (SNAP's rule, applied on the map grid). ``factor``: the scan runs on a grid
    ``factor`` times coarser (default: about the DEM's post spacing, at most 20 Mpx), whose
    flags every target pixel it covers takes (nearest). A flat DEM gives no flags.
    """
    from bigearthnet_s1.dem import FlatDem

    geo = _geometry(annotation, convention)
    geo.check_orbit()
    dem_ = open_dem(dem)
    grid = _Grid(crs, transform, shape)
    h, w = grid.shape
    if isinstance(dem_, FlatDem):
        return np.zeros((h, w), dtype=np.uint8)
    px = min(math.hypot(grid.transform.a, grid.transform.d), math.hypot(grid.transform.b, grid.transform.e))
    if factor is None:
        f = max(1, round(dem_.resolution_m / px)) if math.isfinite(dem_.resolution_m) else 1
        f = max(f, math.ceil(math.sqrt(h * w / 20e6)))
    else:
        f = int(factor)
        if f < 1:
            raise InputError(f"layover_shadow_mask: factor {factor} must be >= 1")
    posts = dem_.posts(grid.crs, grid.transform, grid.shape)
    mh, mw = math.ceil(h / f), math.ceil(w / f)
    mgrid = _Grid(grid.crs, grid.transform @ Affine.scale(f), (mh, mw))
    stats = GeocodingStats(tolerance_px=tolerance)
    out, rng0 = _run(geo, dem_, mgrid, None, None, 0, tolerance, stats, posts=posts)
    line, hgt = out[0], out[2]
    ok = np.isfinite(line) & np.isfinite(out[3])
    if not ok.any():
        return np.zeros((h, w), dtype=np.uint8)
    # look angle: law of cosines with the sensor's and the point's geocentric radii
    lmin, lmax = float(np.nanmin(line)), float(np.nanmax(line))
    tl = np.linspace(lmin - 1.0, lmax + 1.0, 257)
    pos, _, _ = geo.orbit.interpolate(geo.t0 + tl * geo.dt)
    step = 32
    rr = np.arange(0, mh + step - 1, step, dtype=np.float64)
    cc = np.arange(0, mw + step - 1, step, dtype=np.float64)
    lon, lat = mgrid.lonlat(rr[:, None] + 0 * cc[None, :], 0 * rr[:, None] + cc[None, :])
    rho_e = np.ascontiguousarray(np.linalg.norm(geodetic_to_ecef(lon, lat, 0.0), axis=-1))
    rng, cosl = _range_and_look(line, out[3], hgt, rng0, rho_e, step, tl, np.linalg.norm(pos, axis=-1))
    # scan direction (mask pixels): along constant line, towards increasing range
    r_c, c_c = (mh - 1) / 2.0, (mw - 1) / 2.0
    lo3, la3 = mgrid.lonlat(np.array([r_c, r_c, r_c + 1.0]), np.array([c_c, c_c + 1.0, c_c]))
    hm = np.full(3, float(np.nanmean(hgt[ok])))
    l3, s3 = geo.solve_range(lo3, la3, hm)
    g_l = np.array([l3[2] - l3[0], l3[1] - l3[0]])  # d line / d (row, col)
    g_r = np.array([s3[2] - s3[0], s3[1] - s3[0]])
    d = g_r - (g_r @ g_l) / (g_l @ g_l) * g_l
    if not np.all(np.isfinite(d)) or np.hypot(*d) == 0:
        raise GeometryError(f"{geo.name}: no range direction on the target grid")
    d = d / np.hypot(*d)
    mask = np.zeros((mh, mw), dtype=np.uint8)
    tol_r, tol_c = 0.05, 1e-7
    if abs(d[0]) >= abs(d[1]):
        _scan_axis0(np.ascontiguousarray(rng), np.ascontiguousarray(cosl), 1 if d[0] > 0 else -1,
                    float(d[1] / abs(d[0])), tol_r, tol_c, mask)
    else:
        mt = np.zeros((mw, mh), dtype=np.uint8)
        _scan_axis0(np.ascontiguousarray(rng.T), np.ascontiguousarray(cosl.T), 1 if d[1] > 0 else -1,
                    float(d[0] / abs(d[1])), tol_r, tol_c, mt)
        mask = np.ascontiguousarray(mt.T)
    mask[~ok] = 0
    if f == 1:
        return mask
    return np.ascontiguousarray(np.repeat(np.repeat(mask, f, axis=0), f, axis=1)[:h, :w])
