"""Fixtures for the geocoding/DEM tests: the real S1B geometry and a minimal forward model.

The forward model goes the other way from terrain correction (radar -> ground), with other
formulas, in the product's own convention (the one its geolocation grid follows, see
``bigearthnet_s1.geocoding``): for each GRD pixel, the ground-to-slant polynomial nearest in
azimuth time to the line gives the slant range R, the zero-Doppler time is the line's time
plus the bistatic residual ``(2 R / c - tau_ref) / 2`` (``tau_ref`` read here off the grid
independently of the library), and a Newton iteration finds the ground point on the
(analytic) terrain that has range R at zero Doppler then. The image value is a known map
pattern sampled at that ground point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from scipy.interpolate import RegularGridInterpolator

from bigearthnet_s1.orbit import SPEED_OF_LIGHT, geodetic_to_ecef
from bigearthnet_s1.safe import open_safe

UTM33 = 32633


@pytest.fixture(scope="session")
def s1b_annotation(s1b_rome_safe: Path):
    return open_safe(s1b_rome_safe).annotation("VV")


@dataclass
class Hill:
    """Analytic terrain: ellipsoidal height (m) = base + peak * exp(-r^2 / 2 sigma^2) (UTM 33N)."""

    x0: float
    y0: float
    peak: float = 700.0
    sigma: float = 1200.0
    base: float = 60.0

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r2 = (np.asarray(x) - self.x0) ** 2 + (np.asarray(y) - self.y0) ** 2
        return self.base + self.peak * np.exp(-r2 / (2 * self.sigma**2))


def write_dem(path: Path, func: Callable, crs: int | str, transform: Affine, shape: tuple[int, int],
              to_utm: bool = False, dtype: str = "float32", nodata: float | None = None,
              holes: np.ndarray | None = None) -> Path:
    """Write func(x_utm, y_utm) sampled at the pixel centres of a grid (in ``crs``) to a GeoTIFF."""
    h, w = shape
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    xs, ys = transform @ (cols, rows)
    if to_utm:
        tr = pyproj.Transformer.from_crs(crs, UTM33, always_xy=True)
        xs, ys = tr.transform(xs, ys)
    z = func(xs, ys).astype(dtype)
    if holes is not None:
        z[holes] = nodata if nodata is not None else np.nan
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype, crs=crs,
                       transform=transform, nodata=nodata) as ds:
        ds.write(z, 1)
    return path


@dataclass
class Forward:
    """GRD window simulated from a map pattern over analytic terrain (see module doc)."""

    image: np.ndarray  # float32 (lines, samples) of ``window``
    window: Window
    x: np.ndarray  # UTM 33N easting of each GRD pixel centre's ground point
    y: np.ndarray


def esa_tau_ref(ann) -> float:
    """Two-way range time of the bulk bistatic correction, from the geolocation grid: the
    median of ``slantRangeTime - 2 (azimuthTime - line time)``."""
    g = ann.gcps
    d = (g.azimuth_time - ann.first_line_time) / np.timedelta64(1, "ns") * 1e-9 - g.line * ann.azimuth_time_interval
    return float(np.median(g.slant_range_time - 2.0 * d))


def esa_slant_range(ann, line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """One-way slant range (m) of GRD pixel centres: the ground-to-slant polynomial whose
    azimuth time is nearest to the line's."""
    polys = sorted(ann.grsr, key=lambda p: p.azimuth_time)
    t_poly = np.array([(p.azimuth_time - ann.first_line_time) / np.timedelta64(1, "ns") * 1e-9 for p in polys])
    t = np.asarray(line, dtype=np.float64) * ann.azimuth_time_interval
    k = np.abs(t[..., None] - t_poly).argmin(axis=-1)
    gr = np.asarray(pixel, dtype=np.float64) * ann.range_pixel_spacing
    out = np.empty(np.broadcast(t, gr).shape)
    for j in np.unique(k):
        m = k == j
        out[m] = polys[j](np.broadcast_to(gr, out.shape)[m])
    return out


def forward_model(ann, window: Window, pattern: Callable, terrain: Callable, geoid: Callable | None = None) -> Forward:
    """Simulate the GRD pixels of ``window`` (pixel centres) seeing ``pattern(x, y)``.

    ``terrain(x, y)`` gives orthometric heights when ``geoid(lon, lat)`` is given (ellipsoidal
    height = terrain + geoid), else ellipsoidal heights directly.
    """
    orbit = ann.orbit
    r0, c0, nh, nw = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    line, pix = np.meshgrid(np.arange(r0, r0 + nh, dtype=np.float64), np.arange(c0, c0 + nw, dtype=np.float64),
                            indexing="ij")
    t_line = orbit.seconds(ann.first_line_time) + line * ann.azimuth_time_interval
    rng = esa_slant_range(ann, line, pix)
    t = t_line + (2.0 * rng / SPEED_OF_LIGHT - esa_tau_ref(ann)) / 2.0
    sat, vel, _ = orbit.interpolate(t)
    # initial guess from the annotated geolocation grid
    g = ann.gcps
    gl = np.unique(g.line)
    gp = np.unique(g.pixel)
    lat0 = RegularGridInterpolator((gl, gp), g.grid("latitude"), bounds_error=False, fill_value=None)
    lon0 = RegularGridInterpolator((gl, gp), g.grid("longitude"), bounds_error=False, fill_value=None)
    pts = np.stack([line, pix], axis=-1)
    lat = lat0(pts)
    lon = lon0(pts)
    to_utm = pyproj.Transformer.from_crs(4326, UTM33, always_xy=True)

    def height(lo: np.ndarray, la: np.ndarray) -> np.ndarray:
        x, y = to_utm.transform(lo, la)
        hh = terrain(x, y)
        return hh + geoid(lo, la) if geoid is not None else hh

    vn = vel / np.linalg.norm(vel, axis=-1, keepdims=True)

    def resid(lo: np.ndarray, la: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = geodetic_to_ecef(lo, la, height(lo, la))
        d = p - sat
        return np.einsum("...i,...i->...", d, vn), np.linalg.norm(d, axis=-1) - rng

    eps = 1e-6
    for _ in range(30):
        f1, f2 = resid(lon, lat)
        a1, a2 = resid(lon + eps, lat)
        b1, b2 = resid(lon, lat + eps)
        j11, j12 = (a1 - f1) / eps, (b1 - f1) / eps
        j21, j22 = (a2 - f2) / eps, (b2 - f2) / eps
        det = j11 * j22 - j12 * j21
        dlon = (f1 * j22 - f2 * j12) / det
        dlat = (j11 * f2 - j21 * f1) / det
        lon = lon - dlon
        lat = lat - dlat
        if max(np.abs(dlon).max(), np.abs(dlat).max()) < 1e-11:
            break
    f1, f2 = resid(lon, lat)
    assert np.abs(f1).max() < 1e-3 and np.abs(f2).max() < 1e-3, "forward model did not converge"
    x, y = to_utm.transform(lon, lat)
    return Forward(image=pattern(x, y).astype(np.float32), window=window, x=x, y=y)


class PointPattern:
    """Background plus Gaussian bright points (sigma in metres) at given UTM positions, and an
    optional step edge x > edge_x (brighter)."""

    def __init__(self, points: np.ndarray, sigma: float = 15.0, amp: float = 1.0, background: float = 0.05,
                 edge_x: float | None = None, edge_step: float = 0.1) -> None:
        self.points = np.asarray(points, dtype=np.float64)
        self.sigma, self.amp, self.background = sigma, amp, background
        self.edge_x, self.edge_step = edge_x, edge_step

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.full(np.shape(x), self.background, dtype=np.float64)
        if self.edge_x is not None:
            out += np.where(x > self.edge_x, self.edge_step, 0.0)
        for px, py in self.points:
            d2 = (x - px) ** 2 + (y - py) ** 2
            near = d2 < (6 * self.sigma) ** 2
            out[near] += self.amp * np.exp(-d2[near] / (2 * self.sigma**2))
        return out


def centroid_offsets(img: np.ndarray, transform: Affine, points: np.ndarray, background: float,
                     half: int = 4) -> np.ndarray:
    """(n, 2) offsets (d_col, d_row) in pixels between the intensity centroid of each bright
    point in ``img`` (map grid) and its true position; NaN rows for points off the image."""
    inv = ~transform
    out = np.full((len(points), 2), np.nan)
    for k, (px, py) in enumerate(points):
        c, r = inv @ (px, py)
        c -= 0.5
        r -= 0.5  # pixel-centre coordinates
        ic, ir = int(round(c)), int(round(r))
        if ir - half < 0 or ic - half < 0 or ir + half >= img.shape[0] or ic + half >= img.shape[1]:
            continue
        sub = img[ir - half: ir + half + 1, ic - half: ic + half + 1].astype(np.float64)
        if not np.all(np.isfinite(sub)):
            continue
        wgt = np.clip(sub - background, 0.0, None)
        rr, cc = np.mgrid[ir - half: ir + half + 1, ic - half: ic + half + 1]
        out[k] = ((wgt * cc).sum() / wgt.sum() - c, (wgt * rr).sum() / wgt.sum() - r)
    return out


@pytest.fixture(scope="session")
def rome_grid() -> tuple[int, Affine, tuple[int, int]]:
    """A 10 m UTM 33N grid (5 x 5 km) inside the Rome DEM and the S1B scene."""
    return UTM33, Affine(10.0, 0.0, 290000.0, 0.0, -10.0, 4656000.0), (500, 500)


@pytest.fixture(scope="session")
def gh():
    """The helpers above as one namespace (pytest's importlib mode: no helper imports)."""
    from types import SimpleNamespace

    return SimpleNamespace(Hill=Hill, write_dem=write_dem, forward_model=forward_model, PointPattern=PointPattern,
                           centroid_offsets=centroid_offsets, UTM33=UTM33)
