"""Sentinel-1 mission constants and timeline: the orbit, radar and annotation-sampling
constants of the simulator, the real satellites' orbit-number and datatake timelines, the IPF
version by date, and ESA product names."""

from __future__ import annotations

import binascii
import math
from datetime import datetime
from typing import Any

import numpy as np

from bigearthnet_s1.errors import SimulationError
from bigearthnet_s1.simulate.timeline import _iso, _seconds, _to_datetime, _to_datetime64

MU_EARTH = 3.986004418e14  # m^3 s^-2
EARTH_ROTATION = 7.2921150e-5  # rad/s (IERS)
#: Sentinel-1 repeats its ground track after 175 orbits in 12 days.
ORBITS_PER_CYCLE = 175
NODAL_PERIOD = 12 * 86400.0 / ORBITS_PER_CYCLE  # s
MEAN_MOTION = 2.0 * math.pi / NODAL_PERIOD  # rad/s
#: Keplerian semi-major axis with that period: 7077 km, ~700 km above the equator (the real
#: orbit's height varies 693..720 km with latitude; the annotated real vectors give 700-705).
SEMI_MAJOR_AXIS = (MU_EARTH / MEAN_MOTION**2) ** (1.0 / 3.0)
INCLINATION_DEG = 98.18
RADAR_FREQUENCY = 5.405000454334350e9  # Hz
RANGE_SAMPLING_RATE = 6.434523812571428e7  # Hz
PIXEL_SPACING = 10.0  # m, GRDH ground range and azimuth
NEAR_INCIDENCE_DEG = 30.40  # IW swath near edge (ellipsoid)
FAR_INCIDENCE_DEG = 45.90  # IW swath far edge
SUBSWATH_INCIDENCE_DEG = (36.3, 41.6)  # IW1|IW2 and IW2|IW3 boundaries (the real products: 36.2-36.5, 41.5-41.7)
FULL_DURATION = 25.0  # s, one GRD slice (~16,700 lines)
ENL = 4.4  # equivalent number of looks of IW GRDH
BETA_NOUGHT = 474.0  # calibration constant (amplitude) of IW GRD products
STATE_VECTOR_STEP = 10.0  # s
STATE_VECTOR_MARGIN = 60.0  # s of vectors before the first and after the last line
CONVERSION_STEP = 1.0  # s between coordinateConversion entries (as real products)
CALIBRATION_STEP = 1.0  # s between calibration / noise range vectors (as real products)
LUT_PIXEL_STEP = 40  # px between calibration / noise LUT samples (as real products)
DEFAULT_MARGIN_M = 5000.0  # small products: margin around the target area

#: Absolute orbit / ascending node time pairs read off the manifests of two real products
#: (S1A_IW_GRDH_1SDV_20210119T031653_..._043ED0_8255 and the S1B product of the sarsen 0.9.6
#: test data, see bigearthnet_s1.testdata), plus Sentinel-1's relative orbit offsets and the
#: cycle numbers they carry. Absolute orbits count ascending node crossings.
_MISSIONS: dict[str, dict[str, Any]] = {
    "S1A": {
        "ref_abs": 36201,
        "ref_anx": np.datetime64("2021-01-19T02:22:31.388113", "ns"),
        "rel_offset": 73,
        "cycle_offset": 14,
        "nssdc": "2014-016A",
        # (absolute orbit, mission datatake id) of real products (BigEarthNet-S1 scene names
        # and the real S1A product above): datatake ids are interpolated between them.
        "datatakes": ((17018, 0x01C579), (17070, 0x01C718), (18527, 0x01F38C), (19797, 0x021ACD), (20452, 0x022F7E),
                      (36201, 0x043ED0)),
        "active": (np.datetime64("2014-04-03", "ns"), np.datetime64("2100-01-01", "ns")),
    },
    "S1B": {
        "ref_abs": 30148,
        "ref_anx": np.datetime64("2021-12-23T04:33:35.556206", "ns"),
        "rel_offset": 27,
        "cycle_offset": 6,
        "nssdc": "2016-025A",
        "datatakes": ((30148 - 24000, 0x039993 - 8 * 24000), (30148, 0x039993)),
        "active": (np.datetime64("2016-04-25", "ns"), np.datetime64("2021-12-23T23:59:59", "ns")),
    },
}

#: IPF version used when none is given, by acquisition date (first day of use).
_IPF_BY_DATE = (
    (np.datetime64("2018-03-13", "ns"), "002.84"),
    (np.datetime64("2019-06-26", "ns"), "002.91"),
    (np.datetime64("2021-11-04", "ns"), "003.31"),
    (None, "003.40"),
)


def ipf_for_time(t: datetime | str | np.datetime64) -> str:
    """The IPF version ("002.84", "002.91", "003.31", "003.40") a product of time ``t`` had."""
    t64 = _to_datetime64(t)
    for until, version in _IPF_BY_DATE:
        if until is None or t64 < until:
            return version
    return _IPF_BY_DATE[-1][1]  # pragma: no cover


def _normalise_ipf(ipf: str | float | None, t64: np.datetime64) -> tuple[str, float]:
    if ipf is None:
        text = ipf_for_time(t64)
    else:
        try:
            value = float(ipf)
        except (TypeError, ValueError):
            raise SimulationError(f"simulate: IPF version {ipf!r} is not a number like '002.84'") from None
        if not 2.0 <= value < 10.0:
            raise SimulationError(f"simulate: IPF version {ipf!r} out of range (2.x or 3.x expected)")
        text = f"{value:06.2f}"
    return text, float(text)


def orbit_numbers(mission: str, ascending_node_time: datetime | str | np.datetime64) -> dict[str, int]:
    """Absolute orbit, relative orbit, cycle number of the orbit starting at an ANX time.

    Absolute orbits count ascending node crossings every 12 d / 175 from a real product's
    (``_MISSIONS``); relative orbit = (abs - 73) % 175 + 1 for S1A, (abs - 27) % 175 + 1 for S1B.
    """
    m = _MISSIONS.get(mission)
    if m is None:
        raise SimulationError(f"simulate: unknown mission {mission!r} (S1A or S1B)")
    t = _to_datetime64(ascending_node_time)
    n = int(round(_seconds(t, m["ref_anx"]) / NODAL_PERIOD))
    absolute = m["ref_abs"] + n
    if absolute < 1:
        raise SimulationError(f"simulate: {mission} did not fly at {_iso(t)}")
    relative = (absolute - m["rel_offset"]) % ORBITS_PER_CYCLE + 1
    cycle = (absolute - m["rel_offset"]) // ORBITS_PER_CYCLE + 1 + m["cycle_offset"]
    return {"absolute": absolute, "relative": relative, "cycle": cycle}


def _orbit_phase_error(mission: str, anx: np.datetime64) -> float:
    """Distance (in orbits, 0..0.5) of an ANX time from the mission's orbit timeline."""
    x = _seconds(anx, _MISSIONS[mission]["ref_anx"]) / NODAL_PERIOD
    return abs(x - round(x))


def _datatake_id(mission: str, absolute_orbit: int) -> int:
    anchors = np.array(_MISSIONS[mission]["datatakes"], dtype=np.float64)
    x, y = anchors[:, 0], anchors[:, 1]
    if absolute_orbit <= x[0]:
        slope = (y[1] - y[0]) / (x[1] - x[0])
        v = y[0] + slope * (absolute_orbit - x[0])
    elif absolute_orbit >= x[-1]:
        slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
        v = y[-1] + slope * (absolute_orbit - x[-1])
    else:
        v = float(np.interp(absolute_orbit, x, y))
    return int(min(max(round(v), 1), 0xFFFFFF))


def _choose_mission(mission: str | None, t_start: np.datetime64, anx: np.datetime64) -> str:
    if mission is not None:
        m = mission.upper()
        if m not in _MISSIONS:
            raise SimulationError(f"simulate: unknown mission {mission!r} (S1A or S1B)")
        lo, hi = _MISSIONS[m]["active"]
        if not lo <= t_start <= hi:
            raise SimulationError(f"simulate: {m} was not operating at {_iso(t_start)}")
        return m
    candidates = [m for m, d in _MISSIONS.items() if d["active"][0] <= t_start <= d["active"][1]]
    if not candidates:
        raise SimulationError(f"simulate: no Sentinel-1 satellite was operating at {_iso(t_start)}")
    # the satellite whose real orbit timeline puts an ascending node closest to this pass's
    return min(candidates, key=lambda m: _orbit_phase_error(m, anx))


def product_name(
    mission: str, start: np.datetime64, stop: np.datetime64, absolute_orbit: int, datatake: int, crc: int | None
) -> str:
    """ESA product name ``S1A_IW_GRDH_1SDV_<start>_<stop>_<abs>_<datatake>_<crc>`` (no .SAFE).

    Times are truncated to whole seconds; ``crc=None`` leaves the suffix out.
    """
    fmt = "%Y%m%dT%H%M%S"
    s = _to_datetime(start).strftime(fmt)
    e = _to_datetime(stop).strftime(fmt)
    name = f"{mission}_IW_GRDH_1SDV_{s}_{e}_{absolute_orbit:06d}_{datatake:06X}"
    return name if crc is None else f"{name}_{crc:04X}"


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): the product name suffix is this CRC of
    manifest.safe, as in the Sentinel-1 product specification."""
    return binascii.crc_hqx(data, 0xFFFF)
