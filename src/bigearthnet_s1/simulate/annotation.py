"""XML writers of the annotation: product annotation, calibration, noise and RFI files of one
polarisation, with the element trees and number formats of real IW GRDH products."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.orbit import SPEED_OF_LIGHT, WGS84_A, WGS84_B, Orbit
from bigearthnet_s1.simulate.ellipsoid import _unit
from bigearthnet_s1.simulate.frame import _forward_geocode, _Frame
from bigearthnet_s1.simulate.kepler import _earth_rotation_angle
from bigearthnet_s1.simulate.luts import _Luts
from bigearthnet_s1.simulate.mission import (
    EARTH_ROTATION,
    FULL_DURATION,
    PIXEL_SPACING,
    RADAR_FREQUENCY,
    RANGE_SAMPLING_RATE,
)
from bigearthnet_s1.simulate.planning import _Plan
from bigearthnet_s1.simulate.render import _ImageStats
from bigearthnet_s1.simulate.timeline import _iso, _plus, _round_us


def _e(x: float, digits: int = 15) -> str:
    return f"{float(x):.{digits}e}"


def _e6(x: float) -> str:
    return f"{float(x):.6e}"


def _join(values: Sequence[float] | NDArray[Any], fmt: Callable[[float], str] = _e6) -> str:
    return " ".join(fmt(v) for v in np.asarray(values, dtype=np.float64).ravel())


def _join_int(values: Sequence[int] | NDArray[Any]) -> str:
    return " ".join(str(int(v)) for v in np.asarray(values).ravel())


@dataclass
class _Meta:
    """Everything the XML files need besides the plan and the LUTs."""

    mission: str
    ipf: str
    ipf_value: float
    absolute_orbit: int
    relative_orbit: int
    cycle: int
    datatake: int
    anx: np.datetime64
    start: np.datetime64
    stop: np.datetime64
    heading: float
    incidence_mid: float
    gcp: dict[str, NDArray[Any]]  # line, pixel, azimuth_time (s since t0), lon, lat, height, incidence, elevation
    processing_start: np.datetime64
    stats: _ImageStats | None = None

    @property
    def new_noise(self) -> bool:
        return self.ipf_value >= 2.9

    @property
    def rfi(self) -> bool:
        return self.ipf_value >= 3.4


def _el(parent: ET.Element, tag: str, text: Any = None, **attrib: Any) -> ET.Element:
    e = ET.SubElement(parent, tag, {k: str(v) for k, v in attrib.items()})
    if text is not None:
        e.text = str(text)
    return e


def _leaves(parent: ET.Element, items: Sequence[tuple[str, Any]]) -> ET.Element:
    for tag, text in items:
        _el(parent, tag, text)
    return parent


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _ads_header(parent: ET.Element, meta: _Meta, pol: str, image_number: str) -> None:
    h = _el(parent, "adsHeader")
    _leaves(h, [
        ("missionId", meta.mission), ("productType", "GRD"), ("polarisation", pol), ("mode", "IW"), ("swath", "IW"),
        ("startTime", _iso(meta.start)), ("stopTime", _iso(meta.stop)), ("absoluteOrbitNumber", meta.absolute_orbit),
        ("missionDataTakeId", meta.datatake), ("imageNumber", image_number),
    ])

_SWATH_CONST = {  # per IW sub-swath: PRF (Hz), swath number, rank, steering rate (deg/s), processor scaling
    "IW1": (1717.128973878037, 10, 9, 1.590368784, 1.02692e12),
    "IW2": (1451.834526634445, 11, 8, 0.979863325, 8.80278e11),
    "IW3": (1685.817302492702, 12, 9, 1.397440818, 1.05467e12),
}

_BIT_ERRORS = (
    "numErrSyncMarker numErrDataTakeId numErrEccNumber numErrTestMode numErrRxChannelId numErrInstrumentConfigId "
    "numErrPacketCount numErrPriCount numErrSsbErrorFlag numErrBaqMode numErrBaqBlockLength numErrRangeDecimation "
    "numErrRxGain numErrTxRampRate numErrTxPulseStartFrequency numErrRank numErrPri numErrSwst numErrSwl "
    "numErrPolarisation numErrTempComp numErrElevationBeamAddress numErrAzimuthBeamAddress numErrSasTestMode "
    "numErrCalType numErrCalibrationBeamAddress numErrCalMode numErrTxPulseNumber numErrSignalType numErrSwapFlag "
    "numErrSwathNumber numErrNumberOfQuads numIspHeaderErrors"
).split()

BURST_PERIOD = 2.758  # s, IW burst cycle


def _statistics(parent: ET.Element, mean: float, std: float) -> None:
    st = _el(parent, "imageStatistics")
    m = _el(st, "outputDataMean")
    _leaves(m, [("re", _e6(mean)), ("im", _e6(0.0))])
    s = _el(st, "outputDataStdDev")
    _leaves(s, [("re", _e6(std)), ("im", _e6(0.0))])


def _attitude(orbit: Orbit, t: np.datetime64) -> dict[str, float]:
    """Zero-Doppler-steered, right-rolled (30 deg) attitude in the inertial frame: quaternion
    (body -> inertial), body rates (rad/s) and roll/pitch/yaw (deg) of the rotation matrix."""
    p, v, _ = orbit.interpolate(orbit.seconds(t))
    th = _earth_rotation_angle(t)
    c, s = math.cos(th), math.sin(th)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # ECEF -> inertial
    vi = rot @ (v + np.cross([0.0, 0.0, EARTH_ROTATION], p))
    ri = rot @ p
    x = _unit(vi)
    z0 = _unit(-ri)
    y0 = _unit(np.cross(z0, x))
    z0 = np.cross(x, y0)
    roll = math.radians(29.9)
    z = math.cos(roll) * z0 + math.sin(roll) * y0
    y = np.cross(z, x)
    m = np.stack([x, y, z], axis=1)
    q0 = 0.5 * math.sqrt(max(1.0 + m[0, 0] + m[1, 1] + m[2, 2], 1e-12))
    q1 = (m[2, 1] - m[1, 2]) / (4 * q0)
    q2 = (m[0, 2] - m[2, 0]) / (4 * q0)
    q3 = (m[1, 0] - m[0, 1]) / (4 * q0)
    w = m.T @ (np.cross(ri, vi) / float(ri @ ri))
    return {
        "q0": q0, "q1": q1, "q2": q2, "q3": q3, "wx": w[0], "wy": w[1], "wz": w[2],
        "roll": math.degrees(math.atan2(m[2, 1], m[2, 2])),
        "pitch": math.degrees(math.asin(max(-1.0, min(1.0, -m[2, 0])))),
        "yaw": math.degrees(math.atan2(m[1, 0], m[0, 0])),
    }


def _annotation_xml(plan: _Plan, luts: _Luts, meta: _Meta, pol: str, image_number: str) -> bytes:
    """The product annotation XML of one polarisation, section by section in the real files' order."""
    frame = plan.frame
    stats = meta.stats
    mean = stats.mean[pol] if stats else 0.0
    std = stats.std[pol] if stats else 0.0
    root = ET.Element("product")
    _ads_header(root, meta, pol, image_number)
    _quality_information(root, frame.t0, mean, std)
    _general_annotation(root, plan, meta, pol)
    _image_annotation(root, frame, meta, mean, std)
    _doppler_centroid(root, frame)
    _antenna_pattern(root, plan, luts)
    _geolocation_grid(root, frame, meta)
    _coordinate_conversion(root, frame)
    _swath_merging(root, frame, luts)
    return _xml_bytes(root)


def _quality_information(root: ET.Element, t0: np.datetime64, mean: float, std: float) -> None:
    """``qualityInformation``: fixed downlink and raw-data figures of a nominal acquisition, the
    image's DN statistics."""
    qi = _el(root, "qualityInformation")
    _el(qi, "productQualityIndex", _e(0.0))
    qd = _el(_el(qi, "qualityDataList", count=1), "qualityData")
    _el(qd, "azimuthTime", _iso(t0))
    dq = _el(qd, "downlinkQuality")
    _leaves(dq, [
        ("iInputDataMean", _e(0.1546)), ("qInputDataMean", _e(0.3982)), ("inputDataMeanOutsideNominalRangeFlag", "false"),
        ("iInputDataStdDev", _e(4.545)), ("qInputDataStdDev", _e(4.4245)), ("inputDataStDevOutsideNominalRangeFlag", "false"),
        ("numDownlinkInputDataGaps", 0), ("downlinkGapsInInputDataSignificantFlag", "false"),
        ("numDownlinkInputMissingLines", 0), ("downlinkMissingLinesSignificantFlag", "false"),
        ("numInstrumentInputDataGaps", 0), ("instrumentGapsInInputDataSignificantFlag", "false"),
        ("numInstrumentInputMissingLines", 0), ("instrumentMissingLinesSignificantFlag", "false"),
        ("numSsbErrorInputDataGaps", 0), ("ssbErrorGapsInInputDataSignificantFlag", "false"),
        ("numSsbErrorInputMissingLines", 0), ("ssbErrorMissingLinesSignificantFlag", "false"),
        ("chirpSourceUsed", "Nominal"), ("pgSourceUsed", "Extracted"), ("rrfSpectrumUsed", "Extended Tapered"),
        ("replicaReconstructionFailedFlag", "false"), ("meanPgProductAmplitude", _e(0.6822)),
        ("stdDevPgProductAmplitude", _e(0.0857)), ("meanPgProductPhase", _e(0.2120)),
        ("stdDevPgProductPhase", _e(0.1446)), ("pgProductDerivationFailedFlag", "false"),
        ("invalidDownlinkParamsFlag", "false"),
    ])
    rq = _el(qd, "rawDataAnalysisQuality")
    _leaves(rq, [
        ("iBias", _e(0.1546)), ("iBiasSignificanceFlag", "true"), ("qBias", _e(0.3982)), ("qBiasSignificanceFlag", "true"),
        ("iqGainImbalance", _e(1.0272)), ("iqGainSignificanceFlag", "true"), ("iqQuadratureDeparture", _e(0.0460)),
        ("iqQuadratureDepartureSignificanceFlag", "true"),
    ])
    _leaves(_el(qd, "dopplerCentroidQuality"), [("dcMethod", "Data Analysis"), ("dopplerCentroidUncertainFlag", "false")])
    iq = _el(qd, "imageQuality")
    _statistics(iq, mean, std)
    _leaves(iq, [("outputDataMeanOutsideNominalRangeFlag", "false"), ("outputDataStDevOutsideNominalRangeFlag", "false")])


def _general_annotation(root: ET.Element, plan: _Plan, meta: _Meta, pol: str) -> None:
    """``generalAnnotation``: product and downlink information, orbit and attitude, raw data analysis,
    replicas, noise, terrain heights and azimuth FM rates."""
    t0 = plan.frame.t0
    ga = _el(root, "generalAnnotation")
    _leaves(_el(ga, "productInformation"), [
        ("pass", "Ascending" if plan.ascending else "Descending"), ("timelinessCategory", "Fast-24h"),
        ("platformHeading", _e(meta.heading)), ("projection", "Ground Range"),
        ("rangeSamplingRate", _e(RANGE_SAMPLING_RATE)), ("radarFrequency", _e(RADAR_FREQUENCY)),
        ("azimuthSteeringRate", _e(_SWATH_CONST["IW1"][3])),
    ])
    _downlink_information(ga, t0, meta, pol)
    _orbit_and_attitude(ga, plan.frame)
    _raw_data_and_replicas(ga, t0)
    _noise_terrain_fm_rates(ga, plan)


def _downlink_information(ga: ET.Element, t0: np.datetime64, meta: _Meta, pol: str) -> None:
    """``downlinkInformationList``: one entry per IW sub-swath (PRF, downlink values, SWL/SWST, pointing)."""
    dl = _el(ga, "downlinkInformationList", count=3)
    for sw, (prf, number, rank, _rate, _scale) in _SWATH_CONST.items():
        d = _el(dl, "downlinkInformation")
        _leaves(d, [("swath", sw), ("azimuthTime", _iso(_plus(t0, -4.7))),
                    ("firstLineSensingTime", _iso(_plus(t0, -103.0))), ("lastLineSensingTime", _iso(_plus(t0, -72.4))),
                    ("prf", _e(prf))])
        be = _el(d, "bitErrorCount")
        for tag in _BIT_ERRORS:
            _el(be, tag, 0)
        dv = _el(d, "downlinkValues")
        _leaves(dv, [("pri", _e(1.0 / prf)), ("rank", rank), ("dataTakeId", meta.datatake % 65536), ("eccNumber", 8),
                     ("rxChannelId", 0 if pol == "VV" else 1), ("instrumentConfigId", 6)])
        _leaves(_el(dv, "dataFormat"), [("baqBlockLength", 256), ("echoFormat", "FDBAQ"), ("noiseFormat", "BAQ 5 Bit"),
                                       ("calibrationFormat", "Decimation"), ("meanBitRate", _e(1.5203))])
        _leaves(_el(dv, "rangeDecimation"), [("decimationFilterBandwidth", _e(5.659e7)),
                                            ("samplingFrequencyAfterDecimation", _e(RANGE_SAMPLING_RATE)),
                                            ("filterLength", 36)])
        _leaves(dv, [("rxGain", _e(-4.0)), ("txPulseLength", _e(5.240481033595628e-05)),
                     ("txPulseStartFrequency", _e(-2.825153419637256e07)), ("txPulseRampRate", _e(1.078230321255894e12)),
                     ("swathNumber", number)])
        swl = _el(_el(dv, "swlList", count=1), "swl")
        _leaves(swl, [("azimuthTime", _iso(_plus(t0, -3.6))), ("value", _e(3.709898240611038e-04))])
        swst_list = _el(dv, "swstList", count=3)
        for k in range(3):
            _leaves(_el(swst_list, "swst"), [("azimuthTime", _iso(_plus(t0, -3.6 + 9.0 * k))),
                                             ("value", _e(1.102978722881845e-04 + 2e-9 * k))])
        ps = _el(dv, "pointingStatusList", count=5)
        for k in range(5):
            _leaves(_el(ps, "pointingStatus"), [("azimuthTime", _iso(_plus(t0, -103.7 + 8.0 * k))),
                                                ("aocsOpMode", "Normal Pointing Mode"), ("rollErrorFlag", "false"),
                                                ("pitchErrorFlag", "false"), ("yawErrorFlag", "false")])


def _orbit_and_attitude(ga: ET.Element, frame: _Frame) -> None:
    """``orbitList`` (the frame's state vectors, Earth fixed) and ``attitudeList`` (every second, GM2000)."""
    t0, duration = frame.t0, (frame.lines - 1) * frame.dt
    orbit = frame.orbit
    ol = _el(ga, "orbitList", count=orbit.times.size)
    for k in range(orbit.times.size):
        o = _el(ol, "orbit")
        _el(o, "time", _iso(orbit.datetime(orbit.times[k])))
        _el(o, "frame", "Earth Fixed")
        _leaves(_el(o, "position"), [(c, _e(orbit.positions[k, i])) for i, c in enumerate("xyz")])
        _leaves(_el(o, "velocity"), [(c, _e(orbit.velocities[k, i])) for i, c in enumerate("xyz")])
    n_att = int(math.ceil(duration)) + 1
    al = _el(ga, "attitudeList", count=n_att)
    for k in range(n_att):
        t_att = _round_us(_plus(t0, 0.075 + k))
        att_q = _attitude(orbit, t_att)
        att = _el(al, "attitude")
        _leaves(att, [("time", _iso(t_att)), ("frame", "GM2000")]
                + [(q, _e6(att_q[q])) for q in ("q0", "q1", "q2", "q3")]
                + [(q, _e(att_q[q])) for q in ("wx", "wy", "wz", "roll", "pitch", "yaw")])


def _raw_data_and_replicas(ga: ET.Element, t0: np.datetime64) -> None:
    """``rawDataAnalysisList`` and ``replicaInformationList``: fixed nominal figures per IW sub-swath."""
    rl = _el(ga, "rawDataAnalysisList", count=3)
    for _sw in _SWATH_CONST:
        r = _el(rl, "rawDataAnalysis")
        _leaves(r, [("azimuthTime", _iso(_plus(t0, -4.7))), ("iBias", _e(0.2456)), ("qBias", _e(0.2912)),
                    ("iqQuadratureDeparture", _e(0.0715)), ("iqGainImbalance", _e(0.9787))])
        _leaves(_el(r, "support"), [
            ("iBiasUpperBound", _e(0.0104)), ("iBiasLowerBound", _e(-0.0104)), ("qBiasUpperBound", _e(0.0106)),
            ("qBiasLowerBound", _e(-0.0106)), ("iqGainUpperBound", _e(1.0011)), ("iqGainLowerBound", _e(0.9989)),
            ("iqQuadratureDepartureUpperBound", _e(0.9163)), ("iqQuadratureDepartureLowerBound", _e(-0.7733)),
            ("iBiasUsedForCorrection", _e(0.2456)), ("qBiasUsedForCorrection", _e(0.2912)),
            ("iqGainImbalanceUsedForCorrection", _e(0.9787)), ("iqQuadratureDepartureUsedForCorrection", _e(0.0715)),
        ])
    ril = _el(ga, "replicaInformationList", count=3)
    for sw in _SWATH_CONST:
        ri = _el(ril, "replicaInformation")
        _el(ri, "swath", sw)
        rr = _el(ri, "referenceReplica")
        _leaves(rr, [("azimuthTime", _iso(_plus(t0, -3.6))), ("chirpSource", "Nominal"), ("pgSource", "Extracted")])
        _el(rr, "amplitudeCoefficients", _join([1.0, 0.0, 0.0, 0.0]), count=4)
        _el(rr, "phaseCoefficients", _join([0.0, 693.5456, 5.391152e11, 0.0]), count=4)
        _el(rr, "timeDelay", _e6(4.449655e-07))
        _leaves(_el(rr, "gain"), [("re", _e6(1.0)), ("im", _e6(0.0))])
        rpl = _el(ri, "replicaList", count=4)
        for k in range(4):
            _leaves(_el(rpl, "replica"), [
                ("azimuthTime", _iso(_plus(t0, 4.6 + 8.0 * k))), ("crossCorrelationBandwidth", _e6(0.985)),
                ("crossCorrelationPslr", _e6(-12.70)), ("crossCorrelationIslr", _e6(-9.55)),
                ("crossCorrelationPeakLocation", _e6(0.0)), ("reconstructedReplicaValidFlag", "true"),
                ("pgProductAmplitude", _e6(9.17e-4)), ("pgProductPhase", _e6(0.1208)),
                ("modelPgProductAmplitude", _e6(0.6531)), ("modelPgProductPhase", _e6(0.0)),
                ("relativePgProductValidFlag", "true"), ("absolutePgProductValidFlag", "true"),
                ("internalTimeDelay", _e6(4.449654e-07)),
            ])


def _noise_terrain_fm_rates(ga: ET.Element, plan: _Plan) -> None:
    """``noiseList``, ``terrainHeightList`` (each polynomial block's height) and ``azimuthFmRateList``."""
    frame = plan.frame
    t0, nl, orbit = frame.t0, frame.lines, frame.orbit
    duration = (nl - 1) * frame.dt
    wavelength = SPEED_OF_LIGHT / RADAR_FREQUENCY
    srt_near = 2.0 * frame.r_near / SPEED_OF_LIGHT
    noise_times = np.arange(-10.0, duration + 10.0, 3.55)
    nlst = _el(ga, "noiseList", count=3 * noise_times.size)
    for sw in _SWATH_CONST:
        for t in noise_times:
            _leaves(_el(nlst, "noise"), [("swath", sw), ("azimuthTime", _iso(_plus(t0, float(t)))),
                                         ("noisePowerCorrectionFactor", _e6(6.03)), ("numberOfNoiseLines", 8)])
    cc_h = frame.cc_height if frame.cc_height is not None else np.full(frame.cc_time.size, plan.h_ref)
    thl = _el(ga, "terrainHeightList", count=frame.cc_time.size)
    for t, hv in zip(frame.cc_time, cc_h, strict=True):
        _leaves(_el(thl, "terrainHeight"), [("azimuthTime", _iso(t)), ("value", _e(float(hv)))])
    fm_times = np.arange(-3.2, duration + 3.0, BURST_PERIOD)
    fml = _el(ga, "azimuthFmRateList", count=fm_times.size)
    p_mid, v_mid, _ = orbit.interpolate(frame.line_seconds((nl - 1) / 2.0))
    v2 = float(v_mid @ v_mid) * 0.89  # effective velocity squared (ground/satellite geometry)
    k0 = 4.0 * v2 / (wavelength * SPEED_OF_LIGHT)
    for t in fm_times:
        f = _el(fml, "azimuthFmRate")
        _leaves(f, [("azimuthTime", _iso(_plus(t0, float(t)))), ("t0", _e(srt_near))])
        _el(f, "azimuthFmRatePolynomial", " ".join(_e(v) for v in (-k0 / srt_near, k0 / srt_near**2, -k0 / srt_near**3)), count=3)


def _image_annotation(root: ET.Element, frame: _Frame, meta: _Meta, mean: float, std: float) -> None:
    """``imageAnnotation``: image size, spacing and timing (a slice of an 8-slice datatake), DN
    statistics, processing information."""
    t0, dt, nl, ns = frame.t0, frame.dt, frame.lines, frame.samples
    srt_near = 2.0 * frame.r_near / SPEED_OF_LIGHT
    ia = _el(root, "imageAnnotation")
    ii = _el(ia, "imageInformation")
    anchor = _plus(t0, -2 * FULL_DURATION - 0.79)
    _leaves(ii, [("productFirstLineUtcTime", _iso(t0)), ("productLastLineUtcTime", _iso(frame.last_time)),
                 ("ascendingNodeTime", _iso(meta.anx)), ("anchorTime", _iso(anchor)), ("productComposition", "Slice"),
                 ("sliceNumber", 3)])
    sl = _el(ii, "sliceList", count=8)
    for k in range(8):
        start = _plus(anchor, 0.79 + k * FULL_DURATION)
        _leaves(_el(sl, "slice"), [("sliceNumber", k + 1), ("sensingStartTime", _iso(start)),
                                   ("sensingStopTime", _iso(_plus(start, 30.33)))])
    _leaves(ii, [("slantRangeTime", _e(srt_near)), ("pixelValue", "Detected"), ("outputPixels", "16 bit Unsigned Integer"),
                 ("rangePixelSpacing", _e6(PIXEL_SPACING)), ("azimuthPixelSpacing", _e6(PIXEL_SPACING)),
                 ("azimuthTimeInterval", _e(dt)), ("azimuthFrequency", _e(1.0 / dt)), ("numberOfSamples", ns),
                 ("numberOfLines", nl), ("zeroDopMinusAcqTime", _e(98.175)),
                 ("incidenceAngleMidSwath", _e(meta.incidence_mid))])
    _statistics(ii, mean, std)
    pi = _el(ia, "processingInformation")
    items: list[tuple[str, Any]] = [
        ("rawDataAnalysisUsed", "true"), ("orbitDataFileUsed", "true"), ("attitudeDataFileUsed", "false"),
        ("rxVariationCorrectionApplied", "true"), ("antennaElevationPatternApplied", "true"),
        ("antennaAzimuthPatternApplied", "true"), ("antennaAzimuthElementPatternApplied", "true"),
        ("dcMethod", "Data Analysis"), ("dcInputData", "Range Compressed"),
        ("rangeSpreadingLossCompensationApplied", "true"), ("srgrConversionApplied", "true"),
        ("detectionPerformed", "true"), ("thermalNoiseCorrectionPerformed", "false"),
    ]
    if meta.rfi:
        items += [("rfiMitigationPerformed", "Never"), ("rfiMitigationDomain", "TimeAndFrequency")]
    items += [("chirpSource", "Nominal"), ("pgSource", "Extracted"), ("rrfSpectrum", "Extended Tapered"),
              ("applicationLutId", "IW_Default")]
    _leaves(pi, items)
    spl = _el(pi, "swathProcParamsList", count=3)
    for sw, (_prf, _n, _rank, _rate, scale) in _SWATH_CONST.items():
        sp = _el(spl, "swathProcParams")
        _el(sp, "swath", sw)
        _leaves(_el(sp, "rangeProcessing"), [
            ("windowType", "Hamming"), ("windowCoefficient", _e(0.75)), ("totalBandwidth", _e(5.650445548389234e7)),
            ("processingBandwidth", _e(5.65e7)), ("lookBandwidth", _e(1.41e7)), ("numberOfLooks", 5),
            ("lookOverlap", _e(3.500262045520706e6))])
        _leaves(_el(sp, "azimuthProcessing"), [
            ("windowType", "Hamming"), ("windowCoefficient", _e(0.7)), ("totalBandwidth", _e(327.0)),
            ("processingBandwidth", _e(327.0)), ("lookBandwidth", _e(327.0)), ("numberOfLooks", 1),
            ("lookOverlap", _e(0.0))])
        _el(sp, "processorScalingFactor", _e6(scale))
    idl = _el(pi, "inputDimensionsList", count=3)
    for sw in _SWATH_CONST:
        _leaves(_el(idl, "inputDimensions"), [("azimuthTime", _iso(_plus(t0, -3.6))), ("swath", sw),
                                              ("numberOfInputSamples", 23816), ("numberOfInputLines", 16423)])
    _leaves(pi, [("referenceRange", _e(8.0e5)), ("ellipsoidName", "WGS84"), ("ellipsoidSemiMajorAxis", _e(WGS84_A)),
                 ("ellipsoidSemiMinorAxis", _e(WGS84_B)), ("bistaticDelayCorrectionApplied", "true"),
                 ("topsFilterConvention", "Only Echo Lines"), ("orbitSource", "Auxiliary"), ("attitudeSource", "Downlink")])


def _doppler_centroid(root: ET.Element, frame: _Frame) -> None:
    """``dopplerCentroid``: geometric Doppler ~0 (zero-Doppler steering), small data estimates every
    second."""
    t0, nl, ns = frame.t0, frame.lines, frame.samples
    duration = (nl - 1) * frame.dt
    srt_near = 2.0 * frame.r_near / SPEED_OF_LIGHT
    dcl_times = np.arange(0.5, duration + 1.5, 1.0)
    dcl = _el(_el(root, "dopplerCentroid"), "dcEstimateList", count=dcl_times.size)
    srt_far = 2.0 * float(frame.slant_range((nl - 1) / 2.0, ns - 1)) / SPEED_OF_LIGHT
    for k, t in enumerate(dcl_times):
        dc = _el(dcl, "dcEstimate")
        _leaves(dc, [("azimuthTime", _iso(_plus(t0, float(t)))), ("t0", _e(srt_near + 9e-6))])
        _el(dc, "geometryDcPolynomial", _join([-1.86, -541.08, 1.6827e5]), count=3)
        _el(dc, "dataDcPolynomial", _join([14.74 + 0.1 * math.sin(k), -1.556e4, 6.204e6]), count=3)
        _leaves(dc, [("dataDcRmsError", _e(2.52)), ("dataDcRmsErrorAboveThreshold", "false"),
                     ("fineDceAzimuthStartTime", _iso(_plus(t0, float(t) - 1.39))),
                     ("fineDceAzimuthStopTime", _iso(_plus(t0, float(t) + 1.39)))])
        fl = _el(dc, "fineDceList", count=20)
        for j in range(20):
            _leaves(_el(fl, "fineDce"), [("slantRangeTime", _e(srt_near + (srt_far - srt_near) * (j + 0.5) / 20)),
                                         ("frequency", _e(12.0 - 0.4 * j))])


def _antenna_pattern(root: ET.Element, plan: _Plan, luts: _Luts) -> None:
    """``antennaPattern`` (one per sub-swath and burst, angles from the geometry) and an empty
    ``swathTiming``."""
    frame = plan.frame
    t0, dt, nl = frame.t0, frame.dt, frame.lines
    duration = (nl - 1) * dt
    apl_times = np.arange(0.78, duration + 1e-9, BURST_PERIOD)
    ap_items = []
    for t in apl_times:
        for i, (sw, a, b) in enumerate(luts.swaths):
            ap_items.append((float(t) + 0.95 * i, sw, a, b))
    apl = _el(_el(root, "antennaPattern"), "antennaPatternList", count=len(ap_items))
    for t, sw, a, b in ap_items:
        line = min(t / dt, nl - 1.0)
        px = np.linspace(a, b, 60)
        geo = _forward_geocode(frame, np.full(px.size, line), px, None)
        srt = 2.0 * frame.slant_range(np.full(px.size, line), px) / SPEED_OF_LIGHT
        x = (px - a) / max(b - a, 1) - 0.5
        gain = 1.25e14 * np.sinc(1.1 * x) ** 2
        pattern = np.stack([gain * np.cos(0.3 * x), gain * np.sin(0.3 * x)], axis=1).ravel()
        ap = _el(apl, "antennaPattern")
        _leaves(ap, [("swath", sw), ("azimuthTime", _iso(_plus(t0, t)))])
        _el(ap, "slantRangeTime", _join(srt, _e), count=px.size)
        _el(ap, "elevationAngle", _join(geo["elevation"]), count=px.size)
        _el(ap, "elevationPattern", _join(pattern), count=px.size)
        _el(ap, "incidenceAngle", _join(geo["incidence"]), count=px.size)
        _leaves(ap, [("terrainHeight", _e(plan.h_ref)), ("roll", _e(29.9))])

    st = _el(root, "swathTiming")
    _leaves(st, [("linesPerBurst", 0), ("samplesPerBurst", 0)])
    _el(st, "burstList", count=0)


def _geolocation_grid(root: ET.Element, frame: _Frame, meta: _Meta) -> None:
    """``geolocationGrid``: the GCPs, azimuth times with their bistatic residual."""
    t0, dt = frame.t0, frame.dt
    g = meta.gcp
    gl = _el(_el(root, "geolocationGrid"), "geolocationGridPointList", count=g["line"].size)
    for k in range(g["line"].size):
        gp = _el(gl, "geolocationGridPoint")
        _leaves(gp, [
            ("azimuthTime", _iso(_plus(t0, float(g["line"][k]) * dt + float(g["bistatic_s"][k])))),
            ("slantRangeTime", _e(g["slant_range_time"][k])), ("line", int(g["line"][k])), ("pixel", int(g["pixel"][k])),
            ("latitude", _e(g["lat"][k])), ("longitude", _e(g["lon"][k])), ("height", _e(g["height"][k])),
            ("incidenceAngle", _e(g["incidence"][k])), ("elevationAngle", _e(g["elevation"][k])),
        ])


def _coordinate_conversion(root: ET.Element, frame: _Frame) -> None:
    """``coordinateConversion``: the slant-to-ground and ground-to-slant polynomials of every 1 s block."""
    srt_near = 2.0 * frame.r_near / SPEED_OF_LIGHT
    ccl = _el(_el(root, "coordinateConversion"), "coordinateConversionList", count=frame.cc_time.size)
    for k in range(frame.cc_time.size):
        cc = _el(ccl, "coordinateConversion")
        _leaves(cc, [("azimuthTime", _iso(frame.cc_time[k])), ("slantRangeTime", _e(srt_near)), ("sr0", _e(frame.r_near))])
        _el(cc, "srgrCoefficients", _join(frame.srgr[k], _e), count=frame.srgr.shape[1])
        _el(cc, "gr0", _e(0.0))
        _el(cc, "grsrCoefficients", _join(frame.grsr[k], _e), count=frame.grsr.shape[1])


def _swath_merging(root: ET.Element, frame: _Frame, luts: _Luts) -> None:
    """``swathMerging``: the range samples of each IW sub-swath over the whole image."""
    t0, nl = frame.t0, frame.lines
    sml = _el(_el(root, "swathMerging"), "swathMergeList", count=len(luts.swaths))
    for sw, a, b in luts.swaths:
        sm = _el(sml, "swathMerge")
        _el(sm, "swath", sw)
        sb = _el(_el(sm, "swathBoundsList", count=1), "swathBounds")
        _leaves(sb, [("azimuthTime", _iso(t0)), ("firstAzimuthLine", 0), ("firstRangeSample", a),
                     ("lastAzimuthLine", nl - 1), ("lastRangeSample", b)])


def _calibration_xml(luts: _Luts, meta: _Meta, pol: str, image_number: str) -> bytes:
    root = ET.Element("calibration")
    _ads_header(root, meta, pol, image_number)
    _el(_el(root, "calibrationInformation"), "absoluteCalibrationConstant", _e6(1.0))
    vl = _el(root, "calibrationVectorList", count=luts.cal_lines.size)
    m = luts.cal_pixels.size
    for k in range(luts.cal_lines.size):
        v = _el(vl, "calibrationVector")
        _leaves(v, [("azimuthTime", _iso(luts.cal_times[k])), ("line", int(luts.cal_lines[k]))])
        _el(v, "pixel", _join_int(luts.cal_pixels), count=m)
        _el(v, "sigmaNought", _join(luts.sigma[k]), count=m)
        _el(v, "betaNought", _join(luts.beta[k]), count=m)
        _el(v, "gamma", _join(luts.gamma[k]), count=m)
        _el(v, "dn", _join(luts.dn[k]), count=m)
    return _xml_bytes(root)


def _noise_xml(luts: _Luts, meta: _Meta, pol: str, image_number: str, lines: int) -> bytes:
    root = ET.Element("noise")
    _ads_header(root, meta, pol, image_number)
    m = luts.noise_pixels.size
    prefix, lut_tag = ("noiseRange", "noiseRangeLut") if meta.new_noise else ("noise", "noiseLut")
    vl = _el(root, f"{prefix}VectorList", count=luts.noise_lines.size)
    for k in range(luts.noise_lines.size):
        v = _el(vl, f"{prefix}Vector")
        _leaves(v, [("azimuthTime", _iso(luts.noise_times[k])), ("line", int(luts.noise_lines[k]))])
        _el(v, "pixel", _join_int(luts.noise_pixels), count=m)
        _el(v, lut_tag, _join(luts.noise[pol][k]), count=m)
    if meta.new_noise:
        al = _el(root, "noiseAzimuthVectorList", count=len(luts.swaths))
        names = ["IW1", "IW2", "IW3"]
        for sw, a, b in luts.swaths:
            v = _el(al, "noiseAzimuthVector")
            _leaves(v, [("swath", sw), ("firstAzimuthLine", 0), ("firstRangeSample", a), ("lastAzimuthLine", lines - 1),
                        ("lastRangeSample", b)])
            _el(v, "line", _join_int(luts.az_lines), count=luts.az_lines.size)
            _el(v, "noiseAzimuthLut", _join(luts.az[pol][names.index(sw)]), count=luts.az_lines.size)
    return _xml_bytes(root)


def _rfi_xml(plan: _Plan, meta: _Meta, pol: str, image_number: str) -> bytes:
    frame = plan.frame
    duration = (frame.lines - 1) * frame.dt
    root = ET.Element("rfi")
    _ads_header(root, meta, pol, image_number)
    _el(root, "rfiMitigationApplied", "None")
    times = np.arange(-1.5, duration + 1.5, 8.0)
    nr = _el(root, "rfiDetectionFromNoiseReportList", count=3 * times.size)
    for sw in _SWATH_CONST:
        for t in times:
            _leaves(_el(nr, "rfiDetectionFromNoiseReport"), [
                ("swath", sw), ("noiseSensingTime", _iso(_plus(frame.t0, float(t)))), ("rfiDetected", "false"),
                ("maxKLDivergence", _e6(3.23)), ("maxFisherZ", _e6(3.56)), ("maxRfiPsd", _e6(0.0))])
    bt = np.arange(-2.7, duration + 1.0, BURST_PERIOD)
    br = _el(root, "rfiBurstReportList", count=3 * bt.size)
    for sw in _SWATH_CONST:
        for t in bt:
            _leaves(_el(br, "rfiBurstReport"), [("swath", sw), ("azimuthTime", _iso(_plus(frame.t0, float(t)))),
                                                ("inBandOutBandPowerRatio", _e6(4.49))])
    return _xml_bytes(root)
