"""Fixtures for the radiometry tests: real SAFE metadata (the S1B product of the pinned sarsen
release, and its dual-polarisation copy) copied to tmp, with measurement TIFFs whose DN the
tests choose (from a known sigma0 field taken back through the real LUTs, plus the real noise
power and dark no-value margins at the image edges).

The LUT "truth" here is an independent dense evaluation (scipy's RegularGridInterpolator on
the annotated grids and per-vector np.interp), not the library's own interpolation.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.errors
from rasterio.windows import Window
from scipy.interpolate import RegularGridInterpolator

from bigearthnet_s1.safe import SafeProduct, open_safe

# Windows of the test scenes (radar geometry): near-range edge, far-range edge, interior
# across the IW1/IW2 boundary, first lines, last lines.
LEFT = "left"
RIGHT = "right"
MIDDLE = "middle"
TOP = "top"
BOTTOM = "bottom"


def scene_windows(lines: int, samples: int) -> dict[str, Window]:
    return {
        LEFT: Window(0, 3000, 768, 384),
        RIGHT: Window(samples - 768, 12000, 768, 384),
        MIDDLE: Window(8500, 7000, 768, 640),
        TOP: Window(15000, 0, 384, 600),
        BOTTOM: Window(20000, lines - 600, 384, 600),
    }


def margin_mask(window: Window, lines: int, samples: int) -> np.ndarray:
    """The no-value margins the tests write (True = no-value), image-edge runs whose width
    varies along the edge like real GRD borders."""
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    rows = np.arange(r0, r0 + h)[:, None]
    cols = np.arange(c0, c0 + w)[None, :]
    left = 40 + (rows * 7) % 53
    right = 30 + (rows * 5) % 41
    top = 10 + (cols * 3) % 17
    bottom = 8 + cols % 13
    return (cols < left) | (cols >= samples - right) | (rows < top) | (rows >= lines - bottom)


# --------------------------------------------------------------------------------------
# independent dense LUT evaluation
# --------------------------------------------------------------------------------------
def dense_calibration(product: SafeProduct, pol: str, window: Window, kind: str = "sigma0") -> np.ndarray:
    cal = product.calibration(pol)
    values = {"sigma0": cal.sigma_nought, "beta0": cal.beta_nought, "gamma0": cal.gamma, "dn": cal.dn}[kind]
    assert (cal.pixel == cal.pixel[0]).all()
    f = RegularGridInterpolator((cal.line.astype(float), cal.pixel[0].astype(float)), values, method="linear")
    r0, c0 = int(window.row_off), int(window.col_off)
    rr, cc = np.meshgrid(np.arange(r0, r0 + int(window.height)), np.arange(c0, c0 + int(window.width)), indexing="ij")
    return f(np.stack([rr.ravel(), cc.ravel()], axis=-1)).reshape(rr.shape)


def dense_noise(product: SafeProduct, pol: str, window: Window) -> np.ndarray:
    """Range LUT (RegularGridInterpolator over all range vectors) times the azimuth LUT of the
    block each pixel is in (per-block np.interp); range only when there is no azimuth LUT."""
    n = product.noise(pol)
    px = np.stack(n.range_pixel)
    assert (px == px[0]).all()
    f = RegularGridInterpolator((n.range_line.astype(float), px[0].astype(float)), np.stack(n.range_values))
    r0, c0 = int(window.row_off), int(window.col_off)
    rows = np.arange(r0, r0 + int(window.height))
    cols = np.arange(c0, c0 + int(window.width))
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rng = f(np.stack([rr.ravel(), cc.ravel()], axis=-1)).reshape(rr.shape)
    if not n.azimuth_blocks:
        return rng
    az = np.zeros_like(rng)
    for b in n.azimuth_blocks:
        inside = (rr >= b.first_line) & (rr <= b.last_line) & (cc >= b.first_sample) & (cc <= b.last_sample)
        az[inside] = np.interp(rr[inside], b.line, b.values)
    return rng * az


# --------------------------------------------------------------------------------------
# known sigma0 fields from the real BigEarthNet-S1 example patches
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sigma0_mosaic(s1_example: Path) -> dict[str, np.ndarray]:
    """Linear sigma0 (VV, VH) of the six real example patches as a 240 x 360 mosaic."""
    out = {}
    dirs = sorted(p for p in s1_example.iterdir() if p.is_dir())
    assert len(dirs) == 6
    for pol in ("VV", "VH"):
        tiles = []
        for d in dirs:
            with rasterio.open(next(d.glob(f"*_{pol}.tif"))) as ds:
                tiles.append(10 ** (ds.read(1).astype(np.float64) / 10))
        out[pol] = np.block([[tiles[0], tiles[1], tiles[2]], [tiles[3], tiles[4], tiles[5]]])
    return out


def tile_field(mosaic: np.ndarray, window: Window) -> np.ndarray:
    """The mosaic repeated over the image, sampled at ``window`` (so overlapping windows agree)."""
    r0, c0 = int(window.row_off), int(window.col_off)
    rows = np.arange(r0, r0 + int(window.height)) % mosaic.shape[0]
    cols = np.arange(c0, c0 + int(window.width)) % mosaic.shape[1]
    return mosaic[np.ix_(rows, cols)]


# --------------------------------------------------------------------------------------
# writable SAFE copies
# --------------------------------------------------------------------------------------
def _old_noise_format(xml: str) -> str:
    """IPF < 2.9 layout: noiseVectorList/noiseVector/noiseLut, no azimuth vectors."""
    xml = re.sub(r"<noiseAzimuthVectorList.*?</noiseAzimuthVectorList>", "", xml, flags=re.S)
    xml = xml.replace("noiseRangeVectorList", "noiseVectorList").replace("noiseRangeVector>", "noiseVector>")
    return xml.replace("noiseRangeLut", "noiseLut")


@dataclass
class Scene:
    """A writable copy of a real product with test DN; ``truth[pol][name]`` is the sigma0
    field written in window ``name``."""

    path: Path
    windows: dict[str, Window]
    lines: int
    samples: int
    truth: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    dn: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def open(self) -> SafeProduct:
        return open_safe(self.path)


def _make_writable(root: Path) -> None:
    for d in [root, *root.rglob("*")]:
        d.chmod(d.stat().st_mode | 0o200)


def copy_safe(src: Path, dst_root: Path, *, ipf: str | None = None, old_noise: bool = False) -> Path:
    dst = dst_root / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tiff", "*.pdf"))
    _make_writable(dst)  # the cache is read-only; so would be the copy's files
    (dst / "measurement").mkdir(exist_ok=True)
    if ipf is not None:
        m = dst / "manifest.safe"
        m.write_text(re.sub(r'(name="Sentinel-1 IPF" version=")[0-9.]+(")', rf"\g<1>{ipf}\g<2>", m.read_text()))
    if old_noise:
        for f in (dst / "annotation" / "calibration").glob("noise-*.xml"):
            f.write_text(_old_noise_format(f.read_text()))
    return dst


def write_scene(
    src: Path,
    dst_root: Path,
    mosaic: dict[str, np.ndarray],
    *,
    pols: tuple[str, ...],
    ipf: str | None = None,
    old_noise: bool = False,
    noisy_margins: bool = False,
    seed: int = 0,
) -> Scene:
    """Copy ``src``, and write a full-size sparse measurement TIFF per polarisation holding
    DN = round(sqrt(sigma0 A^2 + N)) in the test windows (A, N: dense evaluation of the real
    LUTs) with the no-value margins of ``margin_mask`` (0, or 1..25 when ``noisy_margins``)."""
    path = copy_safe(src, dst_root, ipf=ipf, old_noise=old_noise)
    product = open_safe(path)
    ann = product.annotation(pols[0])
    scene = Scene(path, scene_windows(ann.lines, ann.samples), ann.lines, ann.samples)
    rng = np.random.default_rng(seed)
    for pol in pols:
        rel = product.file("measurement", pol)
        profile = dict(driver="GTiff", width=ann.samples, height=ann.lines, count=1, dtype="uint16",
                       tiled=True, blockxsize=256, blockysize=256, compress="deflate", sparse_ok=True)
        scene.truth[pol], scene.dn[pol] = {}, {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            ds = rasterio.open(path / rel, "w", **profile)
        with ds:
            for name, win in scene.windows.items():
                s0 = tile_field(mosaic[pol], win)
                if pol == "VV":
                    s0 = np.maximum(s0, 10 ** (-1.8))  # no dark valid pixels next to the margins
                a = dense_calibration(product, pol, win)
                n = dense_noise(product, pol, win)
                dn = np.clip(np.rint(np.sqrt(s0 * a * a + n)), 1, 65535).astype(np.uint16)
                margins = margin_mask(win, ann.lines, ann.samples)
                dn[margins] = rng.integers(1, 26, int(margins.sum())) if noisy_margins else 0
                ds.write(dn, 1, window=win)
                scene.truth[pol][name] = s0
                scene.dn[pol][name] = dn
    return scene


@pytest.fixture(scope="session")
def s1b_scene(s1b_rome_safe: Path, sigma0_mosaic, tmp_path_factory) -> Scene:
    """S1B Rome (IPF 3.40, VV only) with test DN and zero no-value margins."""
    return write_scene(s1b_rome_safe, tmp_path_factory.mktemp("s1b"), sigma0_mosaic, pols=("VV",))


@pytest.fixture(scope="session")
def dual_scene(s1b_dual_pol_safe: Path, sigma0_mosaic, tmp_path_factory) -> Scene:
    """The S1B metadata as a dual-pol product (IPF 3.40, VV + VH with its own noise LUT) with
    test DN and zero no-value margins."""
    return write_scene(s1b_dual_pol_safe, tmp_path_factory.mktemp("dual"), sigma0_mosaic, pols=("VV", "VH"), seed=1)


@pytest.fixture(scope="session")
def old_ipf_scene(s1b_dual_pol_safe: Path, sigma0_mosaic, tmp_path_factory) -> Scene:
    """The dual-pol metadata presented as an IPF 2.84 product: old noise layout (range vectors
    only) and non-zero low DN in the no-value margins, as ESA describes for IPF < 2.90."""
    return write_scene(s1b_dual_pol_safe, tmp_path_factory.mktemp("old_ipf"), sigma0_mosaic, pols=("VV", "VH"),
                       ipf="002.84", old_noise=True, noisy_margins=True, seed=2)


@pytest.fixture(scope="session")
def dense() -> dict[str, Callable]:
    return {"calibration": dense_calibration, "noise": dense_noise, "margins": margin_mask, "field": tile_field}
