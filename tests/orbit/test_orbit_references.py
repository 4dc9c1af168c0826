"""Our orbit interpolation against the references' on the real S1B product's state vectors.

``Orbit`` is a cubic Hermite spline through positions and velocities; sarsen (the pinned
release, installed with the test extra) fits one degree-5 polynomial to all the positions;
SNAP evaluates a Lagrange polynomial through the 8 nearest vectors (written out here, as
SNAP's ``OrbitStateVectors`` does it). ``Orbit``'s docstring states how far they differ over
the scene: these tests hold it to that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from defusedxml import ElementTree as ET

from bigearthnet_s1.orbit import Orbit


def _scene(safe: Path) -> tuple[Orbit, np.ndarray]:
    """The orbit of the product's VV annotation and 2,001 times (s) across its first to last line."""
    (xml,) = sorted((safe / "annotation").glob("s1b-iw-grd-vv-*.xml"))
    tree = ET.parse(xml)
    osv = tree.findall(".//orbitList/orbit")
    times = np.array([np.datetime64(o.findtext("time")) for o in osv])
    pos = np.array([[float(o.findtext(f"position/{a}")) for a in "xyz"] for o in osv])
    vel = np.array([[float(o.findtext(f"velocity/{a}")) for a in "xyz"] for o in osv])
    orbit = Orbit.from_state_vectors(times, pos, vel)
    first = orbit.seconds(np.datetime64(tree.findtext(".//imageInformation/productFirstLineUtcTime")))
    last = orbit.seconds(np.datetime64(tree.findtext(".//imageInformation/productLastLineUtcTime")))
    assert orbit.times.size == 16 and 20.0 < last - first < 30.0
    return orbit, np.linspace(first, last, 2001)


def test_within_0_3_mm_of_sarsens_degree_5_polynomial(s1b_rome_safe: Path) -> None:
    from sarsen.orbit import OrbitPolyfitInterpolator

    orbit, t = _scene(s1b_rome_safe)
    position = xr.DataArray(orbit.positions, dims=("azimuth_time", "axis"),
                            coords={"azimuth_time": orbit.datetime(orbit.times), "axis": [0, 1, 2]})
    ref = OrbitPolyfitInterpolator.from_position(position)
    when = xr.DataArray(orbit.datetime(t), dims="azimuth_time", name="azimuth_time")
    p_ref = ref.position(when).transpose("azimuth_time", "axis").values
    v_ref = ref.velocity(when).transpose("azimuth_time", "axis").values
    p, v, _ = orbit.interpolate(t)
    dp = np.linalg.norm(p - p_ref, axis=-1)
    dv = np.linalg.norm(v - v_ref, axis=-1)
    assert dp.max() < 3e-4 and dv.max() < 1e-4
    # not the same method: a degree-5 fit does not pass through the vectors exactly
    p_at, _, _ = orbit.interpolate(orbit.times)
    p_ref_at = ref.position(xr.DataArray(orbit.datetime(orbit.times), dims="azimuth_time", name="azimuth_time"))
    assert np.linalg.norm(p_at - p_ref_at.transpose("azimuth_time", "axis").values, axis=-1).max() > 1e-5


def _lagrange8(orbit: Orbit, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """SNAP's orbit interpolation: the Lagrange polynomial through the 8 vectors around each time."""
    n = orbit.times.size
    step = (orbit.times[-1] - orbit.times[0]) / (n - 1)
    out = np.zeros((t.size, 3))
    for k, tt in enumerate(t):
        i0 = max(int((tt - orbit.times[0]) / step) - 3, 0)
        i_n = min(i0 + 7, n - 1)
        i0 = i0 if i_n < n - 1 else i_n - 7
        idx = np.arange(i0, i_n + 1)
        for i in idx:
            others = orbit.times[idx[idx != i]]
            out[k] += np.prod((tt - others) / (orbit.times[i] - others)) * values[i]
    return out


@pytest.mark.parametrize("what", ["position", "velocity"])
def test_within_0_3_mm_of_snaps_8_point_lagrange(s1b_rome_safe: Path, what: str) -> None:
    orbit, t = _scene(s1b_rome_safe)
    p, v, _ = orbit.interpolate(t)
    if what == "position":
        assert np.linalg.norm(p - _lagrange8(orbit, orbit.positions, t), axis=-1).max() < 3e-4
    else:
        assert np.linalg.norm(v - _lagrange8(orbit, orbit.velocities, t), axis=-1).max() < 1e-4
