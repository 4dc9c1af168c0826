"""Terrain heights for the simulator: bilinear DEM heights at any lon/lat."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import DemError


class _DemSampler:
    """Bilinear heights (m, treated as ellipsoidal) between the posts (pixel centres) of a
    GeoTIFF/VRT DEM. Nodata posts take the nearest valid post's height and points beyond the
    DEM its edge's (clamped), so the terrain has no cliffs. Reads only the window covering the
    given lon/lat box (plus a little)."""

    def __init__(self, path: str | os.PathLike[str], bounds: tuple[float, float, float, float]) -> None:
        import rasterio
        from pyproj import CRS as ProjCRS
        from pyproj import Transformer
        from rasterio.windows import from_bounds

        self.path = Path(path)
        try:
            src = rasterio.open(self.path)
        except rasterio.RasterioIOError as exc:
            raise DemError(f"DEM {self.path}: cannot open ({exc})") from exc
        with src:
            if src.crs is None:
                raise DemError(f"DEM {self.path}: no CRS")
            crs = ProjCRS.from_wkt(src.crs.to_wkt())
            if crs.is_compound:
                crs = crs.sub_crs_list[0]
            self._to_dem = (
                None if crs.is_geographic and crs.equals(ProjCRS.from_epsg(4326), ignore_axis_order=True)
                else Transformer.from_crs("EPSG:4326", crs, always_xy=True)
            )
            lon0, lat0, lon1, lat1 = bounds
            lons = np.array([lon0, lon1, lon0, lon1, 0.5 * (lon0 + lon1)])
            lats = np.array([lat0, lat0, lat1, lat1, 0.5 * (lat0 + lat1)])
            xs, ys = self._project(lons, lats)
            pad = 0.02 if self._to_dem is None else 2000.0
            win = from_bounds(xs.min() - pad, ys.min() - pad, xs.max() + pad, ys.max() + pad, src.transform)
            c0 = max(0, math.floor(win.col_off))
            r0 = max(0, math.floor(win.row_off))
            c1 = min(src.width, math.ceil(win.col_off + win.width))
            r1 = min(src.height, math.ceil(win.row_off + win.height))
            if c1 - c0 < 2 or r1 - r0 < 2:
                raise DemError(f"DEM {self.path} does not cover the simulated scene (lon {lon0:.3f}..{lon1:.3f}, "
                               f"lat {lat0:.3f}..{lat1:.3f})")
            win = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
            data = src.read(1, window=win, masked=True).astype(np.float64)
            self._inv = ~src.window_transform(win)
        arr = np.ma.filled(data, np.nan)
        valid = np.isfinite(arr)
        self.nodata_fraction = float(1.0 - valid.mean())
        if not valid.any():
            raise DemError(f"DEM {self.path}: only nodata over the simulated scene")
        if not valid.all():  # holes take the nearest valid post (no cliffs for the geocoding)
            from scipy.ndimage import distance_transform_edt

            idx = distance_transform_edt(~valid, return_distances=False, return_indices=True)
            arr = arr[tuple(idx)]
        self._arr = arr
        self.mean_height = float(arr.mean())
        self.inside = 0
        self.outside = 0

    def _project(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self._to_dem is None:
            return np.asarray(lon, np.float64), np.asarray(lat, np.float64)
        x, y = self._to_dem.transform(lon, lat)
        return np.asarray(x, np.float64), np.asarray(y, np.float64)

    def __call__(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
        from scipy.ndimage import map_coordinates

        x, y = self._project(np.asarray(lon), np.asarray(lat))
        t = self._inv
        col = t.a * x + t.b * y + t.c - 0.5  # pixel centres
        row = t.d * x + t.e * y + t.f - 0.5
        ny, nx = self._arr.shape
        inside = (col >= 0) & (row >= 0) & (col <= nx - 1) & (row <= ny - 1)
        self.inside += int(inside.sum())
        self.outside += int(inside.size - inside.sum())
        h = map_coordinates(self._arr, [row.ravel(), col.ravel()], order=1, mode="nearest")
        return h.reshape(np.shape(lon))
