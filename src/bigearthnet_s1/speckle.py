"""Speckle filters for detected SAR intensity images, with ESA SNAP's names and defaults.

Input and output are linear intensity (power: sigma0, beta0, gamma0 or DN^2), float32 2-D
arrays in radar geometry; NaN is no-data. A no-data centre pixel stays NaN; no-data
neighbours are left out of the statistics (SNAP treats its no-data value the same way);
pixels outside the array count as no-data. To filter a window of a larger image without
edge effects, pass the window grown by ``filter_halo(...)`` pixels on each side and crop
(``radiometry.radar_chain`` does this).

Filters and parameters follow SNAP's ``Speckle-Filter`` operator (microwave-toolbox /
s1tbx ``SpeckleFilterOp``; read for the algorithm, not copied):

=============  ====================================================================
``filter``     parameters used (SNAP name = default)
=============  ====================================================================
Boxcar         filterSizeX=3, filterSizeY=3 (also accepted as "Mean")
Lee            filterSizeX=3, filterSizeY=3, estimateENL=False, enl=1.0
Gamma Map      filterSizeX=3, filterSizeY=3, estimateENL=False, enl=1.0
Refined Lee    none (fixed 7x7 window, edge-aligned 28-pixel sub-windows)
Lee Sigma      numLooksStr="1", windowSize="7x7", targetWindowSizeStr="3x3", sigmaStr="0.9"
=============  ====================================================================

SNAP's own default filter is "Lee Sigma"; this project's chain uses "Refined Lee"
(``DEFAULT_FILTER``) like the original BigEarthNet-S1 recipe. Frost, Median and IDAN are
not implemented and are refused with a clear error.

Known, deliberate differences from SNAP (all documented where they happen):
- SNAP computes per-tile quantities on its own 512-ish pixel tiles (``estimateENL``, Lee
  Sigma's 98th percentile and point-target marking); here they are computed per array
  passed in (per processing strip in ``radar_chain``), over valid pixels only.
- Refined Lee: where the 28 edge-aligned pixels have zero variance SNAP returns 0.0; we
  return their mean (a constant area stays constant instead of turning black).
- A no-data centre pixel returns no-data in every filter (SNAP's Lee/Gamma Map would mix
  the no-data value into the result).

Equivalent number of looks, ENL = mean^2 / variance over a homogeneous area (intensity):
for uncorrelated speckle a Boxcar of N pixels multiplies it by about N; Lee and Gamma Map
with ``enl`` at or above the data's looks behave like a Boxcar there; Refined Lee averages
the 28 edge-aligned pixels of a 7x7 window (ENL gain up to ~28 on a flat area, less
because its noise-variance estimate lets some of the centre pixel through); Lee Sigma
averages the pixels of the 7x7 window inside the sigma range.

Why one module of ~800 lines: it is one concept, SNAP's ``Speckle-Filter`` operator. The five
filters share its parameter names and validation (:func:`normalise_parameters`, the halo), the
no-data-aware window statistics and the serial/parallel twins of every numba kernel
(:func:`serial_kernels`); two thirds of the length are the Refined Lee and Lee Sigma kernels,
which follow SNAP's algorithms step by step and are best read beside that shared machinery.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import SpeckleFilterError

__all__ = [
    "DEFAULT_FILTER",
    "FILTERS",
    "SNAP_DEFAULTS",
    "SpeckleFilterError",
    "speckle_filter",
    "filter_halo",
    "normalise_parameters",
    "boxcar",
    "lee",
    "gamma_map",
    "refined_lee",
    "lee_sigma",
    "equivalent_number_of_looks",
]


# ------------------------------------------------------------------------------- kernels
# Every heavy kernel is compiled with parallel=True (prange over rows) for callers that
# filter one big array. ``radiometry.radar_chain`` instead runs one strip per worker thread
# (dynamic load balance over strips, reading overlapped with computing); there each thread
# must use a serial twin of the kernel (numba's default workqueue threading layer must not
# be entered from two threads at once). ``serial_kernels()`` selects the twins for the
# calling thread.
_TLS = threading.local()
_TWINS: dict[Any, Any] = {}
_TWINS_LOCK = threading.Lock()


@contextlib.contextmanager
def serial_kernels() -> Iterator[None]:
    """Within this context the calling thread uses single-threaded (nogil) kernels."""
    old = getattr(_TLS, "serial", False)
    _TLS.serial = True
    try:
        yield
    finally:
        _TLS.serial = old


def _k(kernel: Any) -> Any:
    """``kernel`` or, inside ``serial_kernels()``, its serial twin (compiled on first use;
    a distinct qualified name keeps numba's on-disk cache entries apart)."""
    if not getattr(_TLS, "serial", False):
        return kernel
    twin = _TWINS.get(kernel)
    if twin is None:
        with _TWINS_LOCK:
            twin = _TWINS.get(kernel)
            if twin is None:
                f = kernel.py_func
                g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
                g.__qualname__ = f.__qualname__ + "_serial"
                g.__module__ = f.__module__
                twin = _TWINS[kernel] = numba.njit(cache=True, nogil=True)(g)
    return twin


DEFAULT_FILTER = "Refined Lee"
FILTERS = ("Boxcar", "Lee", "Gamma Map", "Refined Lee", "Lee Sigma")
_ALIASES = {
    "boxcar": "Boxcar",
    "mean": "Boxcar",
    "lee": "Lee",
    "gamma map": "Gamma Map",
    "gamma-map": "Gamma Map",
    "gammamap": "Gamma Map",
    "refined lee": "Refined Lee",
    "refined-lee": "Refined Lee",
    "refinedlee": "Refined Lee",
    "lee sigma": "Lee Sigma",
    "lee-sigma": "Lee Sigma",
    "leesigma": "Lee Sigma",
}
_UNSUPPORTED = {"frost": "Frost", "median": "Median", "idan": "IDAN"}

#: SNAP's parameter names and defaults (``SpeckleFilterOp``; note SNAP's GPF default for
#: estimateENL is "false", from its @Parameter annotation).
SNAP_DEFAULTS: dict[str, Any] = {
    "filterSizeX": 3,
    "filterSizeY": 3,
    "dampingFactor": 2,
    "estimateENL": False,
    "enl": 1.0,
    "numLooksStr": "1",
    "windowSize": "7x7",
    "targetWindowSizeStr": "3x3",
    "sigmaStr": "0.9",
    "anSize": 50,
}
_IGNORED = {"sourceBands", "sourceBandNames"}  # band selection is the graph engine's business


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        if v.strip().lower() in ("true", "1", "yes"):
            return True
        if v.strip().lower() in ("false", "0", "no", ""):
            return False
        raise SpeckleFilterError(f"speckle filter: {v!r} is not a boolean")
    return bool(v)


def _size(v: Any, name: str) -> int:
    try:
        n = int(str(v).lower().split("x")[0]) if isinstance(v, str) else int(v)
    except ValueError:
        raise SpeckleFilterError(f"speckle filter: {name}={v!r} is not a window size") from None
    if n < 1 or n > 101:
        raise SpeckleFilterError(f"speckle filter: {name}={v!r} is out of range 1..101")
    return n


def normalise_parameters(filter: str, **params: Any) -> tuple[str, dict[str, Any]]:
    """Canonical SNAP filter name and a complete, typed parameter dict (SNAP names).

    Parameters may be given as strings (as in a SNAP graph XML). Unknown names and
    unsupported filters raise ``SpeckleFilterError``.
    """
    key = str(filter).strip().lower()
    if key in _UNSUPPORTED:
        raise SpeckleFilterError(
            f"speckle filter {_UNSUPPORTED[key]!r} is not implemented by the native engine "
            f"(supported: {', '.join(FILTERS)})"
        )
    name = _ALIASES.get(key)
    if name is None:
        raise SpeckleFilterError(f"unknown speckle filter {filter!r} (supported: {', '.join(FILTERS)})")
    unknown = set(params) - set(SNAP_DEFAULTS) - _IGNORED
    if unknown:
        raise SpeckleFilterError(
            f"speckle filter {name!r}: unknown parameter(s) {', '.join(sorted(unknown))} "
            f"(SNAP names: {', '.join(SNAP_DEFAULTS)})"
        )
    p = dict(SNAP_DEFAULTS)
    p.update({k: v for k, v in params.items() if k not in _IGNORED and v is not None})
    p["filterSizeX"] = _size(p["filterSizeX"], "filterSizeX")
    p["filterSizeY"] = _size(p["filterSizeY"], "filterSizeY")
    p["estimateENL"] = _as_bool(p["estimateENL"])
    try:
        p["enl"] = float(p["enl"])
        p["dampingFactor"] = int(p["dampingFactor"])
        p["anSize"] = int(p["anSize"])
    except ValueError as exc:
        raise SpeckleFilterError(f"speckle filter {name!r}: bad numeric parameter: {exc}") from None
    if p["enl"] <= 0:
        raise SpeckleFilterError(f"speckle filter {name!r}: enl must be > 0, got {p['enl']}")
    if name == "Lee Sigma":
        looks = str(p["numLooksStr"]).strip()
        if looks not in ("1", "2", "3", "4"):
            raise SpeckleFilterError(f"speckle filter 'Lee Sigma': numLooksStr must be 1..4, got {looks!r}")
        ws = str(p["windowSize"]).strip()
        if ws not in ("5x5", "7x7", "9x9", "11x11", "13x13", "15x15", "17x17"):
            raise SpeckleFilterError(f"speckle filter 'Lee Sigma': unknown windowSize {ws!r}")
        tws = str(p["targetWindowSizeStr"]).strip()
        if tws not in ("3x3", "5x5"):
            raise SpeckleFilterError(f"speckle filter 'Lee Sigma': unknown targetWindowSizeStr {tws!r}")
        sg = str(p["sigmaStr"]).strip()
        if sg not in ("0.5", "0.6", "0.7", "0.8", "0.9"):
            raise SpeckleFilterError(f"speckle filter 'Lee Sigma': unknown sigmaStr {sg!r}")
        p.update(numLooksStr=looks, windowSize=ws, targetWindowSizeStr=tws, sigmaStr=sg)
    return name, p


def filter_halo(filter: str | None, **params: Any) -> tuple[int, int]:
    """(rows, cols) of context a filter needs on each side of the pixels it outputs."""
    if filter is None:
        return (0, 0)
    name, p = normalise_parameters(filter, **params)
    if name == "Refined Lee":
        return (3, 3)
    if name == "Lee Sigma":
        h = _size(p["windowSize"], "windowSize") // 2
        return (h, h)
    return (p["filterSizeY"] // 2, p["filterSizeX"] // 2)


def speckle_filter(
    image: NDArray[np.floating],
    filter: str = DEFAULT_FILTER,
    *,
    out: NDArray[np.float32] | None = None,
    scratch: dict | None = None,
    **params: Any,
) -> NDArray[np.float32]:
    """Apply the SNAP-named speckle ``filter`` to linear intensity ``image`` (NaN = no-data).

    ``params`` are SNAP's parameter names; ``out`` (an array for the result) and
    ``scratch`` (a dict of reusable work arrays) are optional, for callers that filter many
    strips of the same size."""
    name, p = normalise_parameters(filter, **params)
    if name == "Boxcar":
        return boxcar(image, p["filterSizeX"], p["filterSizeY"])
    if name == "Lee":
        return lee(image, p["filterSizeX"], p["filterSizeY"], p["estimateENL"], p["enl"])
    if name == "Gamma Map":
        return gamma_map(image, p["filterSizeX"], p["filterSizeY"], p["estimateENL"], p["enl"])
    if name == "Refined Lee":
        return refined_lee(image, out=out, scratch=scratch)
    return lee_sigma(image, p["numLooksStr"], p["windowSize"], p["targetWindowSizeStr"], p["sigmaStr"], out=out)


# --------------------------------------------------------------------------------------
# window statistics (no-data aware box sums)
# --------------------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, nogil=True)
def _box_sums(img: NDArray[np.float32], hy: int, hx: int) -> tuple[NDArray, NDArray, NDArray]:
    """Sum, sum of squares and count of valid (non-NaN) pixels in the (2hy+1)x(2hx+1)
    window centred on each pixel; outside the array counts as no-data. float64."""
    h, w = img.shape
    rs1 = np.zeros((h, w))
    rs2 = np.zeros((h, w))
    rn = np.zeros((h, w))
    for y in numba.prange(h):
        c1 = np.zeros(w + 1)
        c2 = np.zeros(w + 1)
        cn = np.zeros(w + 1)
        for x in range(w):
            v = img[y, x]
            if v == v:
                c1[x + 1] = c1[x] + v
                c2[x + 1] = c2[x] + v * v
                cn[x + 1] = cn[x] + 1.0
            else:
                c1[x + 1] = c1[x]
                c2[x + 1] = c2[x]
                cn[x + 1] = cn[x]
        for x in range(w):
            a = max(0, x - hx)
            b = min(w, x + hx + 1)
            rs1[y, x] = c1[b] - c1[a]
            rs2[y, x] = c2[b] - c2[a]
            rn[y, x] = cn[b] - cn[a]
    s1 = np.zeros((h, w))
    s2 = np.zeros((h, w))
    n = np.zeros((h, w))
    for y in numba.prange(h):
        a = max(0, y - hy)
        b = min(h, y + hy + 1)
        for yy in range(a, b):
            for x in range(w):
                s1[y, x] += rs1[yy, x]
                s2[y, x] += rs2[yy, x]
                n[y, x] += rn[yy, x]
    return s1, s2, n


def _mean_var(image: NDArray[np.floating], sy: int, sx: int) -> tuple[NDArray, NDArray, NDArray]:
    """Mean, sample variance (n-1) and count of valid pixels in an sy x sx window
    (centred; for even sizes SNAP's half-size sy//2 on both sides is used)."""
    img = np.ascontiguousarray(image, dtype=np.float32)
    s1, s2, n = _k(_box_sums)(img, sy // 2, sx // 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.where(n > 1, (s2 - s1 * mean) / (n - 1), 0.0)
    np.maximum(var, 0.0, out=var)  # rounding
    return mean, var, n


def equivalent_number_of_looks(intensity: NDArray[np.floating]) -> float:
    """ENL = mean^2 / variance (population) of the valid pixels of a linear intensity image."""
    v = np.asarray(intensity, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan")
    m = v.mean()
    var = v.var()
    return float(m * m / var) if var > 0 else float("inf")


def _enl(image: NDArray[np.floating], estimate: bool, enl: float) -> float:
    if not estimate:
        return enl
    # SNAP estimates on its target tile; here over the array passed in (per strip).
    n = equivalent_number_of_looks(image)
    return n if np.isfinite(n) and n > 0 else enl


# --------------------------------------------------------------------------------------
# Boxcar, Lee, Gamma Map
# --------------------------------------------------------------------------------------
def boxcar(image: NDArray[np.floating], filterSizeX: int = 3, filterSizeY: int = 3) -> NDArray[np.float32]:  # noqa: N803
    """Mean of the valid pixels in a filterSizeX x filterSizeY window (SNAP "Boxcar")."""
    mean, _, n = _mean_var(image, filterSizeY, filterSizeX)
    out = mean.astype(np.float32)
    out[np.isnan(np.asarray(image))] = np.nan
    return out


def lee(
    image: NDArray[np.floating],
    filterSizeX: int = 3,  # noqa: N803
    filterSizeY: int = 3,  # noqa: N803
    estimateENL: bool = False,  # noqa: N803
    enl: float = 1.0,
) -> NDArray[np.float32]:
    """Lee filter (SNAP "Lee"): with Cu = 1/sqrt(ENL) and Ci = std/mean of the window,
    out = mean where Ci < Cu, else cp*W + mean*(1-W) with W = 1 - Cu^2/Ci^2."""
    img = np.asarray(image, dtype=np.float32)
    mean, var, n = _mean_var(img, filterSizeY, filterSizeX)
    cu2 = 1.0 / _enl(img, estimateENL, enl)
    with np.errstate(invalid="ignore", divide="ignore"):
        ci2 = var / (mean * mean)
        w = 1.0 - cu2 / ci2
        out = np.where((mean <= np.finfo(float).tiny) | (var <= np.finfo(float).tiny) | (ci2 < cu2),
                       mean, img * w + mean * (1.0 - w))
    out = out.astype(np.float32)
    out[np.isnan(img)] = np.nan
    return out


def gamma_map(
    image: NDArray[np.floating],
    filterSizeX: int = 3,  # noqa: N803
    filterSizeY: int = 3,  # noqa: N803
    estimateENL: bool = False,  # noqa: N803
    enl: float = 1.0,
) -> NDArray[np.float32]:
    """Gamma MAP filter (SNAP "Gamma Map"): mean where Ci <= Cu, the centre pixel where
    Ci >= sqrt(2) Cu, else the MAP estimate of a Gamma-distributed scene
    ``(b*mean + sqrt(mean^2 b^2 + 4 alpha ENL mean cp)) / (2 alpha)``,
    alpha = (1 + Cu^2)/(Ci^2 - Cu^2), b = alpha - ENL - 1."""
    img = np.asarray(image, dtype=np.float32)
    mean, var, n = _mean_var(img, filterSizeY, filterSizeX)
    L = _enl(img, estimateENL, enl)
    cu2 = 1.0 / L
    with np.errstate(invalid="ignore", divide="ignore"):
        ci2 = var / (mean * mean)
        alpha = (1.0 + cu2) / (ci2 - cu2)
        b = alpha - L - 1.0
        d = mean * mean * b * b + 4.0 * alpha * L * mean * img
        map_est = (b * mean + np.sqrt(d)) / (2.0 * alpha)
        flat = (mean <= np.finfo(float).tiny) | (var <= np.finfo(float).tiny) | (ci2 <= cu2)
        out = np.where(flat, mean, np.where(ci2 < 2.0 * cu2, map_est, img))
    out = out.astype(np.float32)
    out[np.isnan(img)] = np.nan
    return out


# --------------------------------------------------------------------------------------
# Refined Lee (SNAP's variant)
# --------------------------------------------------------------------------------------
# The 8 edge-aligned 28-pixel sub-windows of the 7x7 window, d = 0..7 as in SNAP: 0 right
# half, 1 upper-right triangle, 2 upper half, 3 upper-left triangle, 4 left half, 5 lower-left
# triangle, 6 lower half, 7 lower-right triangle. Stored as, for each window row dy = -3..3,
# the inclusive column range [lo, hi] (offsets from the centre; lo > hi = empty row).
def _scratch(cache: dict | None, key: str, shape: tuple[int, ...], dtype: Any) -> NDArray:
    """A scratch array of ``shape`` from ``cache`` (reused across calls: fresh large
    allocations are slow to touch on a loaded machine), or a new one."""
    if cache is None:
        return np.empty(shape, dtype=dtype)
    a = cache.get(key)
    n = int(np.prod(shape))
    if a is None or a.size < n or a.dtype != dtype:
        a = cache[key] = np.empty(n, dtype=dtype)
    return a[:n].reshape(shape)


def _direction_ranges() -> NDArray[np.int64]:
    r = np.zeros((8, 7, 2), dtype=np.int64)
    for d in range(8):
        for y in range(7):
            cols = [
                x for x in range(7)
                if (d == 0 and x >= 3) or (d == 1 and x >= y) or (d == 2 and y <= 3) or (d == 3 and x + y <= 6)
                or (d == 4 and x <= 3) or (d == 5 and x <= y) or (d == 6 and y >= 3) or (d == 7 and x + y >= 6)
            ]
            r[d, y] = (min(cols) - 3, max(cols) - 3) if cols else (1, 0)
        assert sum(max(0, hi - lo + 1) for lo, hi in r[d]) == 28
    return r


_DIR_RANGES = _direction_ranges()
# sub-window d per gradient direction 0..3 when the first ("a") side resembles the centre
# (row 0), or the second side does (row 1); SNAP's choice
_DIR_SIDES = np.array([[4, 1, 2, 3], [0, 5, 6, 7]], dtype=np.int64)


@numba.njit(parallel=True, cache=True, nogil=True)
def _prefix_sums(img, p1, p2, pn):  # type: ignore[no-untyped-def]
    """Row prefix sums of the valid values, their squares and their count: p[y, x] is the
    sum over img[y, :x] (NaN counted as 0 and not counted). Shapes (h, w + 1), float64."""
    h, w = img.shape
    for y in numba.prange(h):
        a = 0.0
        b = 0.0
        n = 0.0
        p1[y, 0] = 0.0
        p2[y, 0] = 0.0
        pn[y, 0] = 0.0
        for x in range(w):
            v = float(img[y, x])
            if v == v:
                a += v
                b += v * v
                n += 1.0
            p1[y, x + 1] = a
            p2[y, x + 1] = b
            pn[y, x + 1] = n


@numba.njit(parallel=True, cache=True, nogil=True)
def _subarea_stats(p1, p2, pn, mean3, nv3):  # type: ignore[no-untyped-def]
    """Mean and normalised sample variance (var/mean^2, 0 when mean <= 0) of the 3x3
    sub-area centred on each pixel into ``mean3``/``nv3``; NaN where the sub-area is not
    complete (outside the image or holding no-data)."""
    h, w = mean3.shape
    for y in numba.prange(h):
        for x in range(w):
            if y == 0 or y == h - 1 or x == 0 or x == w - 1:
                mean3[y, x] = np.nan
                nv3[y, x] = np.nan
                continue
            n = 0.0
            s1 = 0.0
            s2 = 0.0
            for yy in range(y - 1, y + 2):
                n += pn[yy, x + 2] - pn[yy, x - 1]
                s1 += p1[yy, x + 2] - p1[yy, x - 1]
                s2 += p2[yy, x + 2] - p2[yy, x - 1]
            if n < 9.0:
                mean3[y, x] = np.nan
                nv3[y, x] = np.nan
                continue
            m = s1 / 9.0
            mean3[y, x] = m
            if m > 0.0:
                var = (s2 - s1 * m) / 8.0
                if var < 0.0:
                    var = 0.0
                nv3[y, x] = var / (m * m)
            else:
                nv3[y, x] = 0.0


@numba.njit(cache=True, nogil=True)
def _noise_variance(vals: NDArray[np.float64], n: int) -> float:
    """SNAP's local noise variance: average of the first min(5, n) entries after sorting the
    first n-1 of them (SNAP sorts ``[0, n-1)``, so the last complete sub-area is never moved;
    kept for fidelity)."""
    if n < 1:
        return 0.0
    m = n - 1
    for i in range(1, m):  # insertion sort of vals[0:m]
        key = vals[i]
        j = i - 1
        while j >= 0 and vals[j] > key:
            vals[j + 1] = vals[j]
            j -= 1
        vals[j + 1] = key
    k = min(5, n)
    s = 0.0
    for i in range(k):
        s += vals[i]
    return s / k


@numba.njit(parallel=True, cache=True, nogil=True)
def _refined_lee_kernel(img, p1, p2, mean3, nv3, offs, sides, out):  # type: ignore[no-untyped-def]
    h, w = img.shape
    wp = w + 1
    f1 = p1.ravel()
    f2 = p2.ravel()
    for y in numba.prange(h):
        m = np.empty((3, 3))
        nvs = np.empty(9)
        pa = np.empty(4)
        pb = np.empty(4)
        for x in range(w):
            c = img[y, x]
            if c != c:
                out[y, x] = np.nan
                continue
            full = y >= 3 and y + 3 < h and x >= 3 and x + 3 < w
            if full:
                tot9 = 0.0
                for j in range(3):
                    for i in range(3):
                        v = mean3[y - 2 + 2 * j, x - 2 + 2 * i]
                        tot9 += v
                        m[j, i] = v
                full = tot9 == tot9  # a NaN sub-area mean: fewer than 49 valid pixels
            if full:
                # strongest of the four gradients (first maximum on ties, as SNAP), then the
                # side of the edge that resembles the centre; written branch-free (selects)
                # because the choice is data-dependent and mispredicted branches dominated
                g0 = abs(m[1, 0] - m[1, 2])
                g1 = abs(m[0, 2] - m[2, 0])
                g2 = abs(m[0, 1] - m[2, 1])
                g3 = abs(m[0, 0] - m[2, 2])
                direction = 1 if g1 > g0 else 0
                gmax = max(g0, g1)
                direction = 2 if g2 > gmax else direction
                gmax = max(gmax, g2)
                direction = 3 if g3 > gmax else direction
                pa[0] = m[1, 0]
                pa[1] = m[0, 2]
                pa[2] = m[0, 1]
                pa[3] = m[0, 0]
                pb[0] = m[1, 2]
                pb[1] = m[2, 0]
                pb[2] = m[2, 1]
                pb[3] = m[2, 2]
                near = abs(pa[direction] - m[1, 1]) < abs(m[1, 1] - pb[direction])
                d = sides[0, direction] if near else sides[1, direction]
                s1 = 0.0
                s2 = 0.0
                # row ranges of the sub-window from the row prefix sums (empty rows have
                # lo = hi + 1 and add 0); flat unsigned indices avoid numba's negative-index
                # wraparound code on every load
                base = np.uint64((y - 3) * wp + x)
                for r in range(7):
                    lo = base + np.uint64(offs[d, r, 0] + 3) - np.uint64(3)
                    hi = base + np.uint64(offs[d, r, 1] + 4) - np.uint64(3)
                    s1 += f1[hi] - f1[lo]
                    s2 += f2[hi] - f2[lo]
                    base += np.uint64(wp)
                mean_y = s1 / 28.0
                var_y = (s2 - s1 * mean_y) / 27.0
                if var_y <= 0.0:
                    out[y, x] = mean_y  # SNAP returns 0.0 here; see module docstring
                    continue
                # SNAP's noise variance with 9 complete sub-areas: mean of the 5 lowest of
                # the first 8 (see _noise_variance); branch-free as total minus the top 3.
                t1 = -np.inf
                t2 = -np.inf
                t3 = -np.inf
                tot = 0.0
                for k9 in range(8):
                    v = float(nv3[y - 2 + 2 * (k9 // 3), x - 2 + 2 * (k9 % 3)])
                    tot += v
                    lo1 = min(t1, v)
                    t1 = max(t1, v)
                    lo2 = min(t2, lo1)
                    t2 = max(t2, lo1)
                    t3 = max(t3, lo2)
                sigma_v = (tot - t1 - t2 - t3) / 5.0
            else:
                # fewer than 49 valid pixels: SNAP's local-statistics Lee on the valid ones
                s1 = 0.0
                s2 = 0.0
                k = 0
                for dy in range(-3, 4):
                    yy = y + dy
                    if yy < 0 or yy >= h:
                        continue
                    for dx in range(-3, 4):
                        xx = x + dx
                        if xx < 0 or xx >= w:
                            continue
                        v = img[yy, xx]
                        if v == v:
                            s1 += v
                            s2 += v * v
                            k += 1
                mean_y = s1 / k
                var_y = (s2 - s1 * mean_y) / (k - 1) if k > 1 else 0.0
                if var_y <= 0.0:
                    out[y, x] = mean_y
                    continue
                n9 = 0
                for j in range(3):
                    yy = y - 2 + 2 * j
                    for i in range(3):
                        xx = x - 2 + 2 * i
                        if yy >= 0 and yy < h and xx >= 0 and xx < w:
                            v = nv3[yy, xx]
                            if v == v:
                                nvs[n9] = v
                                n9 += 1
                sigma_v = _noise_variance(nvs, n9)
            var_x = (var_y - mean_y * mean_y * sigma_v) / (1.0 + sigma_v)
            if var_x < 0.0:
                var_x = 0.0
            b = var_x / var_y
            out[y, x] = mean_y + b * (c - mean_y)


def refined_lee(
    image: NDArray[np.floating], *, out: NDArray[np.float32] | None = None, scratch: dict | None = None
) -> NDArray[np.float32]:
    """SNAP's Refined Lee filter (7x7 window).

    On a complete 7x7 window: the means of the nine 3x3 sub-areas (stride 2) give four
    gradients; the strongest picks an edge direction and the side of the edge that
    resembles the centre, i.e. one of eight 28-pixel sub-windows; the output is the local
    linear MMSE estimate ``mean + b (centre - mean)`` on that sub-window, with
    ``b = var_x / var_y``, ``var_x = (var_y - mean^2 sigma_v) / (1 + sigma_v)`` and the
    speckle variance ``sigma_v`` estimated from the lowest normalised variances of the 3x3
    sub-areas. With fewer than 49 valid pixels, the same estimate on all valid pixels.
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise SpeckleFilterError(f"speckle filter 'Refined Lee': expected a 2-D image, got shape {img.shape}")
    h, w = img.shape
    p1 = _scratch(scratch, "rl_p1", (h, w + 1), np.float64)
    p2 = _scratch(scratch, "rl_p2", (h, w + 1), np.float64)
    pn = _scratch(scratch, "rl_pn", (h, w + 1), np.float64)
    mean3 = _scratch(scratch, "rl_mean3", img.shape, np.float32)
    nv3 = _scratch(scratch, "rl_nv3", img.shape, np.float32)
    _k(_prefix_sums)(img, p1, p2, pn)
    _k(_subarea_stats)(p1, p2, pn, mean3, nv3)
    if out is None or out.shape != img.shape or out.dtype != np.float32:
        out = np.empty_like(img)
    _k(_refined_lee_kernel)(img, p1, p2, mean3, nv3, _DIR_RANGES, _DIR_SIDES, out)
    return out


# --------------------------------------------------------------------------------------
# Lee Sigma (Lee et al. 2009, SNAP's implementation)
# --------------------------------------------------------------------------------------
# Intensity sigma ranges (I1, I2) and the revised speckle std (sigma_v') for 1..4 looks and
# sigma = 0.5..0.9, the published constants of Lee et al. (2009) as SNAP tabulates them.
_SIGMA_TABLE = {
    1: {5: (0.436, 1.920, 0.4057), 6: (0.343, 2.210, 0.4954), 7: (0.254, 2.582, 0.5911),
        8: (0.168, 3.094, 0.6966), 9: (0.084, 3.941, 0.8191)},
    2: {5: (0.582, 1.584, 0.2763), 6: (0.501, 1.755, 0.3388), 7: (0.418, 1.972, 0.4062),
        8: (0.327, 2.260, 0.4810), 9: (0.221, 2.744, 0.5699)},
    3: {5: (0.652, 1.458, 0.2222), 6: (0.580, 1.586, 0.2736), 7: (0.505, 1.751, 0.3280),
        8: (0.419, 1.965, 0.3892), 9: (0.313, 2.320, 0.4624)},
    4: {5: (0.694, 1.385, 0.1921), 6: (0.630, 1.495, 0.2348), 7: (0.560, 1.627, 0.2825),
        8: (0.480, 1.804, 0.3354), 9: (0.378, 2.094, 0.3991)},
}


@numba.njit(cache=True, nogil=True)
def _mmse(vals: NDArray[np.float64], n: int, sigma_v2: float, centre: float) -> float:
    s = 0.0
    for i in range(n):
        s += vals[i]
    mean = s / n
    var = 0.0
    if n > 1:
        for i in range(n):
            d = vals[i] - mean
            var += d * d
        var /= n - 1
    if var == 0.0:
        return mean
    var_x = (var - mean * mean * sigma_v2) / (1.0 + sigma_v2)
    if var_x < 0.0:
        var_x = 0.0
    b = var_x / var
    return (1.0 - b) * mean + b * centre


@numba.njit(parallel=True, cache=True, nogil=True)
def _lee_sigma_kernel(img, out, half, thalf, i1, i2, sv2, svp2, block_rows):  # type: ignore[no-untyped-def]
    h, w = img.shape
    nblocks = (h + block_rows - 1) // block_rows
    for bi in numba.prange(nblocks):
        b0 = bi * block_rows
        b1 = min(h, b0 + block_rows)
        # 98th percentile of the valid pixels of the block and its halo (SNAP: its source tile)
        s0 = max(0, b0 - half)
        s1 = min(h, b1 + half)
        buf = np.empty((s1 - s0) * w)
        nv = 0
        for y in range(s0, s1):
            for x in range(w):
                v = img[y, x]
                if v == v:
                    buf[nv] = v
                    nv += 1
        z98 = np.inf
        if nv > 0:
            k = max(0, int(nv * 0.98) - 1)
            z98 = np.partition(buf[:nv], k)[k]
        point = np.zeros((b1 - b0, w), dtype=np.bool_)
        vals = np.empty((2 * half + 1) * (2 * half + 1))
        for y in range(b0, b1):
            for x in range(w):
                v = img[y, x]
                if v != v:
                    out[y, x] = np.nan
                    continue
                if point[y - b0, x]:
                    out[y, x] = v
                    continue
                if y - half < 0 or y + half >= h or x - half < 0 or x + half >= w:
                    n = 0
                    for yy in range(max(0, y - half), min(h, y + half + 1)):
                        for xx in range(max(0, x - half), min(w, x + half + 1)):
                            u = img[yy, xx]
                            if u == u:
                                vals[n] = u
                                n += 1
                    out[y, x] = _mmse(vals, n, sv2, v)
                    continue
                # point target: bright centre in a cluster of more than 5 bright pixels
                if v > z98:
                    cnt = 0
                    for yy in range(y - thalf, y + thalf + 1):
                        for xx in range(x - thalf, x + thalf + 1):
                            u = img[yy, xx]
                            if u == u and u > z98:
                                cnt += 1
                    if cnt > 5:
                        for yy in range(y - thalf, y + thalf + 1):
                            for xx in range(x - thalf, x + thalf + 1):
                                u = img[yy, xx]
                                if u == u and u > z98 and yy >= b0 and yy < b1:
                                    point[yy - b0, xx] = True
                        out[y, x] = v
                        continue
                n = 0
                for yy in range(y - thalf, y + thalf + 1):
                    for xx in range(x - thalf, x + thalf + 1):
                        u = img[yy, xx]
                        if u == u:
                            vals[n] = u
                            n += 1
                mean_est = _mmse(vals, n, sv2, v)
                lo = mean_est * i1
                hi = mean_est * i2
                n = 0
                for yy in range(y - half, y + half + 1):
                    for xx in range(x - half, x + half + 1):
                        u = img[yy, xx]
                        if u == u and u >= lo and u <= hi:
                            vals[n] = u
                            n += 1
                if n == 0:
                    out[y, x] = v
                else:
                    out[y, x] = _mmse(vals, n, svp2, v)


def lee_sigma(
    image: NDArray[np.floating],
    numLooksStr: str = "1",  # noqa: N803
    windowSize: str = "7x7",  # noqa: N803
    targetWindowSizeStr: str = "3x3",  # noqa: N803
    sigmaStr: str = "0.9",  # noqa: N803
    block_rows: int = 512,
    *,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Improved Lee Sigma filter (SNAP "Lee Sigma", intensity data).

    Pixels above the block's 98th percentile that sit in a cluster of more than five such
    pixels in the target window are point targets and kept. Otherwise an MMSE estimate on
    the target window gives a mean, the pixels of the filter window inside the sigma range
    ``[I1, I2] * mean`` are selected, and the MMSE estimate on them (with the revised
    speckle deviation) is the output. Blocks of ``block_rows`` rows play the role of SNAP's
    tiles (percentile and point-target marking per block), processed in parallel.
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    looks = int(numLooksStr)
    sigma = int(round(float(sigmaStr) * 10))
    i1, i2, svp = _SIGMA_TABLE[looks][sigma]
    half = _size(windowSize, "windowSize") // 2
    thalf = _size(targetWindowSizeStr, "targetWindowSizeStr") // 2
    if out is None or out.shape != img.shape or out.dtype != np.float32:
        out = np.empty_like(img)
    _k(_lee_sigma_kernel)(img, out, half, thalf, i1, i2, 1.0 / looks, svp * svp, int(block_rows))
    return out
