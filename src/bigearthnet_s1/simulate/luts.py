"""Calibration and noise LUTs (values exactly as the XML writes them, and their rows at full
resolution for the renderer), and the ragged no-data borders of the image."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.errors import SimulationError
from bigearthnet_s1.simulate.frame import _forward_geocode, _Frame
from bigearthnet_s1.simulate.mission import (
    BETA_NOUGHT,
    CALIBRATION_STEP,
    FAR_INCIDENCE_DEG,
    LUT_PIXEL_STEP,
    NEAR_INCIDENCE_DEG,
)
from bigearthnet_s1.simulate.planning import _Plan
from bigearthnet_s1.simulate.timeline import _plus, _seconds


def _text_round(a: NDArray[np.float64], digits: int = 6) -> NDArray[np.float64]:
    """Values as a reader parses them back from ``%.{digits}e`` text."""
    a = np.asarray(a, dtype=np.float64)
    return np.array([float(f"{v:.{digits}e}") for v in a.ravel()], dtype=np.float64).reshape(a.shape)


@dataclass
class _Luts:
    """Annotated LUTs (values exactly as written in the XML) and their full-resolution rows."""

    cal_lines: NDArray[np.int64]
    cal_times: list[np.datetime64]
    cal_pixels: NDArray[np.int64]
    sigma: NDArray[np.float64]  # (n, m) amplitude A_sigma
    beta: NDArray[np.float64]
    gamma: NDArray[np.float64]
    dn: NDArray[np.float64]
    cal_rows: NDArray[np.float64]  # (n, samples) A_sigma interpolated along pixels
    noise_lines: NDArray[np.int64]
    noise_times: list[np.datetime64]
    noise_pixels: NDArray[np.int64]
    noise: dict[str, NDArray[np.float64]]  # pol -> (n, m) DN^2
    noise_rows: dict[str, NDArray[np.float64]]  # pol -> (n, samples)
    swaths: list[tuple[str, int, int]]  # (name, first sample, last sample) present in the image
    swath_of: NDArray[np.int8]  # (samples,) index into the three IW sub-swaths
    az_lines: NDArray[np.int64]
    az: dict[str, NDArray[np.float64]]  # pol -> (3, n_az) azimuth LUT per sub-swath
    az_rows: dict[str, NDArray[np.float64]]  # pol -> (3, lines)
    incidence_rows: NDArray[np.float64]  # (n, m) ellipsoid incidence at the calibration grid


def _lut_lines(frame: _Frame, beyond: bool) -> NDArray[np.int64]:
    step = CALIBRATION_STEP / frame.dt
    out = []
    k = 0
    while True:
        line = int(round(k * step))
        if line >= frame.lines - 1:
            break
        out.append(line)
        k += 1
    if beyond:  # as calibration vectors: two vectors at or past the last line
        out.append(int(round(k * step)))
        out.append(int(round((k + 1) * step)))
    else:  # as noise vectors: the last line closes the list
        out.append(frame.lines - 1)
    return np.array(out, dtype=np.int64)


def _lut_pixels(first: int, last: int) -> NDArray[np.int64]:
    px = list(range(first, last, LUT_PIXEL_STEP))
    if not px or px[-1] != last:
        px.append(last)
    return np.array(px, dtype=np.int64)


def _make_luts(plan: _Plan, new_noise: bool, zero_far_min: int) -> _Luts:
    frame = plan.frame
    ns = frame.samples
    cal_lines = _lut_lines(frame, beyond=True)
    cal_pixels = _lut_pixels(0, ns - 1)
    ll, pp = np.meshgrid(cal_lines.astype(np.float64), cal_pixels.astype(np.float64), indexing="ij")
    inc = _forward_geocode(frame, ll, pp, None)["incidence"]
    sin_i = np.sin(np.radians(inc))
    tan_i = np.tan(np.radians(inc))
    sigma = _text_round(BETA_NOUGHT / np.sqrt(sin_i))
    gamma = _text_round(BETA_NOUGHT / np.sqrt(tan_i))
    beta = np.full_like(sigma, BETA_NOUGHT)
    all_px = np.arange(ns, dtype=np.float64)
    cal_rows = np.stack([np.interp(all_px, cal_pixels, row) for row in sigma])

    # sub-swaths: boundaries where the mid-scene ellipsoid incidence crosses the IW1|IW2 and
    # IW2|IW3 angles; constant along the scene (one swathBounds block each, as real GRDs)
    mid = np.full(ns, (frame.lines - 1) / 2.0)
    inc_mid = _forward_geocode(frame, mid[:: max(1, ns // 2000)], all_px[:: max(1, ns // 2000)], None)["incidence"]
    px_mid = all_px[:: max(1, ns // 2000)]
    edges = [int(np.ceil(np.interp(b, inc_mid, px_mid, left=-1e9, right=1e9))) for b in plan.subswath_incidence]
    limits = [(0, edges[0] - 1), (edges[0], edges[1] - 1), (edges[1], ns - 1)]
    names = ["IW1", "IW2", "IW3"]
    swaths = []
    swath_of = np.zeros(ns, dtype=np.int8)
    for i, (a, b) in enumerate(limits):
        a, b = max(a, 0), min(b, ns - 1)
        if b >= a:
            swaths.append((names[i], a, b))
            swath_of[a : b + 1] = i
    # thermal noise: NESZ of -24.5 dB mid sub-swath rising to -21 dB at its edges (antenna
    # pattern), as noise power in DN^2 (NESZ * A_sigma^2), constant along azimuth
    inc_edges = [NEAR_INCIDENCE_DEG, *plan.subswath_incidence, FAR_INCIDENCE_DEG]
    noise_lines = _lut_lines(frame, beyond=False)
    noise_pixels = np.concatenate([_lut_pixels(a, b) for _n, a, b in swaths])
    nl_f = np.meshgrid(noise_lines.astype(np.float64), noise_pixels.astype(np.float64), indexing="ij")
    inc_n = _forward_geocode(frame, nl_f[0], nl_f[1], None)["incidence"]
    sw_n = swath_of[noise_pixels]
    lo = np.array(inc_edges[:-1])[sw_n]
    hi = np.array(inc_edges[1:])[sw_n]
    x = np.clip((inc_n - lo) / (hi - lo), 0.0, 1.0)
    nesz_db = -24.5 + 3.5 * (2.0 * x - 1.0) ** 2 - 0.5 * (sw_n == 1)
    a_sigma_n = BETA_NOUGHT / np.sqrt(np.sin(np.radians(inc_n)))
    base = 10.0 ** (nesz_db / 10.0) * a_sigma_n**2
    noise: dict[str, NDArray[np.float64]] = {}
    noise_rows: dict[str, NDArray[np.float64]] = {}
    for pol, factor in (("VV", 1.0), ("VH", 0.93)):
        values = base * factor
        if new_noise:  # real IPF 3 LUTs are 0 where the whole far border is no-data
            values = np.where(noise_pixels[None, :] > zero_far_min, 0.0, values)
        values = _text_round(values)
        noise[pol] = values
        noise_rows[pol] = np.stack([np.interp(all_px, noise_pixels.astype(np.float64), row) for row in values])
    # azimuth noise (IPF >= 2.9): burst scalloping of the noise, period ~2.76 s, per sub-swath
    az_lines = np.arange(0, frame.lines, 10, dtype=np.int64)
    if az_lines[-1] != frame.lines - 1:
        az_lines = np.append(az_lines, frame.lines - 1)
    az: dict[str, NDArray[np.float64]] = {}
    az_rows: dict[str, NDArray[np.float64]] = {}
    t_rel = az_lines * frame.dt + _seconds(frame.t0, np.datetime64("2014-01-01", "ns")) % 2.758
    all_lines = np.arange(frame.lines, dtype=np.float64)
    for pol, amp in (("VV", 0.12), ("VH", 0.10)):
        vals = np.ones((3, az_lines.size))
        rows = np.ones((3, frame.lines))
        if new_noise:
            for i, phase in enumerate((0.0, 0.31, 0.64)):
                vals[i] = _text_round(1.0 + amp * 0.5 * (1.0 - np.cos(2.0 * math.pi * (t_rel / 2.758 + phase))))
                rows[i] = np.interp(all_lines, az_lines, vals[i])
        az[pol] = vals
        az_rows[pol] = rows
    return _Luts(
        cal_lines, [_plus(frame.t0, ln * frame.dt) for ln in cal_lines], cal_pixels, sigma, beta, gamma,
        beta.copy(), cal_rows, noise_lines, [_plus(frame.t0, ln * frame.dt) for ln in noise_lines], noise_pixels,
        noise, noise_rows, swaths, swath_of, az_lines, az, az_rows, inc,
    )


class _Borders(NamedTuple):
    """Per line: DN = 0 before ``zero_near`` and after ``zero_far``, border noise outside
    [``valid_first``, ``valid_last``] (pixels); a NamedTuple, so the render kernels take it as is."""

    zero_near: NDArray[np.int64]  # first non-zero pixel per line
    valid_first: NDArray[np.int64]  # first valid (non border-noise) pixel
    valid_last: NDArray[np.int64]
    zero_far: NDArray[np.int64]  # last non-zero pixel


def _make_borders(lines: int, samples: int, border_noise: bool, rng: np.random.Generator, scale: float = 1.0) -> _Borders:
    """Ragged no-data borders: widths drawn per ~700-line block, interpolated, plus +-2 px jitter
    (``scale`` < 1 narrows them, for small products that are crops of a scene)."""

    def profile(lo: int, hi: int) -> NDArray[np.int64]:
        nb = lines // 700 + 2
        knots = rng.uniform(lo * scale, hi * scale, nb)
        w = np.interp(np.arange(lines), np.linspace(0, lines - 1, nb), knots)
        return np.round(w + rng.integers(-2, 3, lines)).astype(np.int64).clip(0)

    zero_near = profile(15, 60)
    zero_far = samples - 1 - profile(20, 70)
    if border_noise:
        valid_first = zero_near + profile(120, 300)
        valid_last = zero_far - profile(80, 250)
    else:
        valid_first, valid_last = zero_near.copy(), zero_far.copy()
    if np.any(valid_last - valid_first < 10):
        raise SimulationError(f"simulate: product only {samples} px wide, too narrow for its borders")
    return _Borders(zero_near, valid_first, valid_last, zero_far)
