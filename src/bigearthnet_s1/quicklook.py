"""A PNG per tile for a person to see at a glance what was built.

Left panel: false colour (R = VV, G = VH, B = VV/VH ratio, each in dB over a fixed range:
VV -25..0, VH -30..-5, VV-VH 0..15 dB), block-averaged in linear power. Right panel:
provenance (one colour per scene, black = no data). Both carry the patch grid: faint yellow
outlines for patches written from one scene, white for composed ones, red for patches left
out (incomplete or empty). Below: one legend line per scene (colour, id, hours from the S2
sensing time, patches named) and the counts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from bigearthnet_s1.atomic import atomic_path
from bigearthnet_s1.grid import PATCH_PX
from bigearthnet_s1.mosaic import Mosaic

__all__ = ["write_quicklook", "false_colour", "SCENE_COLOURS"]

#: distinct colours for scene indexes 0.. (cycled)
SCENE_COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127),
]
NODATA_RGB = (40, 40, 40)
#: patch outlines (RGBA): one scene (faint yellow), composed (white), not written (red)
OUTLINE_SINGLE = (255, 255, 0, 70)
OUTLINE_COMPOSED = (255, 255, 255, 255)
OUTLINE_LEFT_OUT = (230, 30, 30, 255)
RANGES_DB = {"vv": (-25.0, 0.0), "vh": (-30.0, -5.0), "ratio": (0.0, 15.0)}


def _block_mean_linear(db: NDArray[np.float32], f: int) -> NDArray[np.float64]:
    """dB image -> block means (f x f) of linear power, back in dB; NaN where a block has no data."""
    h, w = db.shape
    hh, ww = math.ceil(h / f) * f, math.ceil(w / f) * f
    lin = np.full((hh, ww), np.nan)
    lin[:h, :w] = np.power(10.0, db.astype(np.float64) / 10.0)
    blocks = lin.reshape(hh // f, f, ww // f, f)
    cnt = np.isfinite(blocks).sum(axis=(1, 3))
    s = np.nansum(blocks, axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, 10.0 * np.log10(s / np.maximum(cnt, 1)), np.nan)


def _scale(db: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.uint8]:
    v = np.clip((db - lo) / (hi - lo), 0.0, 1.0)
    return (np.where(np.isfinite(v), v, 0.0) * 255.0 + 0.5).astype(np.uint8)


def false_colour(vv_db: NDArray[np.float32], vh_db: NDArray[np.float32], factor: int = 1) -> NDArray[np.uint8]:
    """(h/f, w/f, 3) uint8 RGB: R = VV, G = VH, B = VV - VH (dB ranges in ``RANGES_DB``)."""
    vv = _block_mean_linear(vv_db, factor)
    vh = _block_mean_linear(vh_db, factor)
    rgb = np.stack([_scale(vv, *RANGES_DB["vv"]), _scale(vh, *RANGES_DB["vh"]), _scale(vv - vh, *RANGES_DB["ratio"])],
                   axis=-1)
    rgb[~(np.isfinite(vv) & np.isfinite(vh))] = NODATA_RGB
    return rgb


def _provenance_rgb(prov: NDArray[np.int8], factor: int) -> NDArray[np.uint8]:
    """Block mode would be costly; take the block's centre pixel (provenance is piecewise constant)."""
    h, w = prov.shape
    rows = np.minimum(np.arange(math.ceil(h / factor)) * factor + factor // 2, h - 1)
    cols = np.minimum(np.arange(math.ceil(w / factor)) * factor + factor // 2, w - 1)
    sub = prov[rows[:, None], cols[None, :]].astype(np.int64)
    pal = np.array(SCENE_COLOURS, dtype=np.uint8)
    rgb = pal[np.where(sub >= 0, sub, 0) % len(pal)]
    rgb[sub < 0] = (0, 0, 0)
    return rgb


def write_quicklook(path: str | os.PathLike[str], mosaic: Mosaic, *, max_size: int = 1098) -> Path:
    """Write the tile's quicklook PNG (see the module doc) atomically; returns the path.

    ``max_size``: largest panel side in pixels (the mosaic is block-averaged by an integer factor).
    """
    path = Path(path)
    H, W = mosaic.vv_db.shape
    f = max(1, math.ceil(max(H, W) / max_size))
    left = Image.fromarray(false_colour(mosaic.vv_db, mosaic.vh_db, f), "RGB")
    right = Image.fromarray(_provenance_rgb(mosaic.provenance, f), "RGB")
    pw, ph = left.size
    font = ImageFont.load_default(size=max(11, min(16, pw // 60)))
    line_h = int(font.size) + 6 if hasattr(font, "size") else 18
    n_lines = len(mosaic.scenes) + 2
    gap = 8
    canvas = Image.new("RGB", (2 * pw + 3 * gap, ph + 2 * gap + n_lines * line_h + gap), (255, 255, 255))
    canvas.paste(left, (gap, gap))
    canvas.paste(right, (2 * gap + pw, gap))
    # patch grid on both panels, on a translucent overlay
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    odraw = ImageDraw.Draw(overlay)
    m = mosaic.min_valid_fraction
    c0, r0 = int(mosaic.window.col_off), int(mosaic.window.row_off)
    for p in mosaic.tile.patches:
        ch = mosaic.patches.get(p.s2_name)
        x0 = (p.col * PATCH_PX - c0) / f
        y0 = (p.row * PATCH_PX - r0) / f
        s = PATCH_PX / f
        if ch is None or ch.valid_fraction < m or ch.valid_fraction == 0:
            colour = OUTLINE_LEFT_OUT
        elif ch.composed:
            colour = OUTLINE_COMPOSED
        else:
            colour = OUTLINE_SINGLE
        for ox in (gap, 2 * gap + pw):
            odraw.rectangle([ox + x0, gap + y0, ox + x0 + s - 1, gap + y0 + s - 1], outline=colour, width=1)
    canvas = Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    # legend
    y = ph + 2 * gap
    summ = mosaic.summary()
    draw.text((gap, y), f"{mosaic.tile.key}  S2 {mosaic.tile.sensing_time:%Y-%m-%d %H:%M:%S} UTC  "
                        f"patches {summ['patches']}: {summ['single_scene']} one scene, {summ['composed']} composed, "
                        f"{summ['incomplete']} incomplete, {summ['empty']} empty", fill=(0, 0, 0), font=font)
    y += line_h
    draw.text((gap, y), "left: R=VV G=VH B=VV/VH (dB)   right: provenance   outlines: yellow one scene, white composed, "
                        "red not written", fill=(0, 0, 0), font=font)
    for sc in summ["scenes"]:
        y += line_h
        colour = SCENE_COLOURS[sc["index"] % len(SCENE_COLOURS)]
        draw.rectangle([gap, y + 2, gap + line_h - 6, y + line_h - 4], fill=colour)
        draw.text((gap + line_h, y), f"{sc['index']}: {sc['scene_id']}  {sc['hours_from_s2']:+.1f} h  "
                                     f"{sc['patches']} patches", fill=(0, 0, 0), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".part.png") as tmp:
        canvas.save(tmp, format="PNG", optimize=False)
    return path
