"""Scene simulator: synthetic Sentinel-1 IW GRDH products in SAFE format, with ground truth.

``simulate_product`` writes a ``.SAFE`` folder (optionally also its ``.zip``) whose files have
the element trees of real IW GRDH products (``manifest.safe``, product / calibration / noise
(/ RFI for IPF >= 3.4) annotation per polarisation, measurement GeoTIFFs with GCPs, preview
and support files), plus, beside it and outside the SAFE, ``<name>.truth.json`` and
``<name>.truth.tif`` (the sigma0 map the image was made from).

Geometry (shared with terrain correction through :mod:`bigearthnet_s1.orbit`):

* orbit: circular Keplerian orbit (inclination 98.18 deg, period 12 d / 175 so that orbit
  numbers count like Sentinel-1's), propagated in an inertial frame and rotated into ECEF
  with the Earth's rotation; solved so that the target is seen right-looking at the
  requested incidence, at the requested time (near the poles, where an orbit of the pass may
  not see the target at that incidence, at the nearest incidence of the swath that works). State vectors every 10 s, rounded to the
  annotation's precision (mm, um/s) before anything else uses them, so that every value in
  the product derives from the orbit a reader sees.
* GRD projection, in the convention of real products (``bigearthnet_s1.geocoding``, "esa"):
  pixel ``p`` (centre) of line ``l`` lies at ground range ``10 m * p`` along the ellipsoid
  raised by the terrain height of the line's 1 s block (the mean DEM height across the swath
  at the block's azimuth time; 0 without a DEM), measured from the point at the near slant
  range, in the zero-Doppler plane of time ``t0 + l * dt + (tau - tau_ref) / 2``: the
  bistatic residual of a two-way range time ``tau`` after the IPF's bulk correction at
  ``tau_ref``, the middle of IW2. The annotated ground-to-slant polynomial of the block (the
  one nearest in azimuth time; every 1 s) IS the geometry: the image, the GCPs and the truth
  use it; the slant-to-ground polynomials are its fitted inverse (~5 cm). The geolocation
  grid's azimuth times are the points' zero-Doppler times (so they carry the residual).
* forward geocoding (radar -> ground): the ground point of (line, pixel) is the point of the
  zero-Doppler plane at the pixel's slant range whose ellipsoidal height equals the DEM's
  (Newton iteration on the off-nadir angle); heights are treated as ellipsoidal.

Radiometry: the image is sigma0 (linear, ellipsoid-referenced, no terrain-induced radiometric
effects, no layover/shadow modelling) sampled at each pixel's ground point from a procedural
land-cover-like map on the tile's UTM grid (600 m parcels aligned to the patch grid, six
classes, a meandering river, bright point targets at known positions), then
``DN^2 = (sigma0 * A_sigma^2 + N) * speckle`` with ``A_sigma`` and ``N`` interpolated from the
annotated calibration and noise LUTs exactly as readers interpolate them, speckle
Gamma-distributed with mean 1 and ENL 4.4, and dark (DN = 0) ragged near/far range borders;
products with IPF < 2.9 also carry a band of border noise below the noise floor, like the
real ones did.

The package, one module per stage (each imports only those above it):

* ``timeline``: UTC datetime64 helpers and the annotation's time text;
* ``mission``: mission, orbit, radar and sampling constants; orbit numbers, datatakes, IPF
  versions, product names;
* ``ellipsoid``: ellipsoid normals and radii, the zero-Doppler plane's section of the ellipsoid;
* ``kepler``: the circular orbit that sees the target, its state vectors;
* ``frame``: the GRD radar frame (coordinate-conversion polynomials) and forward geocoding;
* ``terrain``: DEM heights;
* ``planning``: target area, pass, orbit and frame, mission and name (``_prepare``);
* ``luts``: calibration and noise LUTs, no-data borders;
* ``scene``: the procedural ground map and point targets (numba kernels);
* ``render``: measurement and truth GeoTIFFs (numba kernels over one typed bundle);
* ``annotation``: product, calibration, noise and RFI XML;
* ``manifest``: ``manifest.safe``, preview and support files;
* ``product``: :func:`simulate_product` and :func:`describe_product`.
"""

from __future__ import annotations

# Besides the public names, the internals the tests reach through the package
# (``simulate._prepare`` ...) stay importable from here as before the split (``x as x``:
# an explicit re-export).
from bigearthnet_s1.errors import SimulationError
from bigearthnet_s1.simulate.ellipsoid import _geodetic_normal as _geodetic_normal
from bigearthnet_s1.simulate.frame import _forward_geocode as _forward_geocode
from bigearthnet_s1.simulate.kepler import _incidence_at as _incidence_at
from bigearthnet_s1.simulate.kepler import _solve_kepler as _solve_kepler
from bigearthnet_s1.simulate.mission import (
    DEFAULT_MARGIN_M,
    crc16_ccitt,
    ipf_for_time,
    orbit_numbers,
    product_name,
)
from bigearthnet_s1.simulate.planning import _make_target as _make_target
from bigearthnet_s1.simulate.planning import _prepare as _prepare
from bigearthnet_s1.simulate.planning import _Request as _Request
from bigearthnet_s1.simulate.product import describe_product, simulate_product
from bigearthnet_s1.simulate.scene import LAND_CLASSES
from bigearthnet_s1.simulate.scene import _class_arrays as _class_arrays
from bigearthnet_s1.simulate.scene import _ground_class as _ground_class
from bigearthnet_s1.simulate.scene import _map_params as _map_params

__all__ = [
    "simulate_product", "describe_product", "SimulationError", "product_name", "orbit_numbers", "ipf_for_time",
    "crc16_ccitt", "DEFAULT_MARGIN_M", "LAND_CLASSES",
]
