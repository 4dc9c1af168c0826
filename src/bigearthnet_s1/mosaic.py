"""Mosaic a tile's preprocessed scenes on the S2 tile grid, with per-pixel provenance.

Input: one :class:`SceneOnGrid` per Sentinel-1 scene, i.e. backscatter in dB (VV, VH; NaN
no-data) on a window of the tile's 10 m grid, as the preprocess step writes it (a 2-band
float32 GeoTIFF, band descriptions VV/VH, tags SCENE_ID and START_TIME).

Rule (each BigEarthNet-S1 patch names exactly one scene): scenes are ranked by
``|start_time - S2 sensing time|`` (ties: scene id). A patch takes the best-ranked scene that
covers it fully with valid data (VV and VH finite on all 120 x 120 px). Where no scene does,
the patch is composed per pixel in the same order (the first scene with valid data at that
pixel), it names the scene that supplied most of its pixels, and it is recorded as
``composed``. The provenance raster holds, per pixel, the index of the scene it came from
(-1: no data). Patches whose valid fraction after composition is below
``min_valid_fraction`` (default 1.0: complete patches only) are not handed to the writer.

Memory: the scenes are read and composed in strips of patch rows, so only one strip of every
scene is in memory at a time besides the output (2 x float32 + int8 over the patches'
bounding window: about 1.1 GB for a full tile).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.windows import Window

from bigearthnet_s1._time import format_iso, parse_iso
from bigearthnet_s1.acquisition import TileAcquisition
from bigearthnet_s1.archive import SceneRef, write_tile_patches
from bigearthnet_s1.atomic import atomic_path, atomic_write_bytes
from bigearthnet_s1.errors import MosaicError
from bigearthnet_s1.grid import PATCH_PX
from bigearthnet_s1.names import product_prefix

log = logging.getLogger(__name__)

__all__ = ["MosaicError", "SceneOnGrid", "PatchChoice", "Mosaic", "mosaic_tile", "scene_order"]

#: patch rows per strip when composing (480 px of every scene in memory at once)
STRIP_PATCH_ROWS = 4


@dataclass(frozen=True)
class SceneOnGrid:
    """One scene's backscatter (dB, float32, NaN no-data) on ``window`` of the tile grid:
    either a GeoTIFF ``path`` (read lazily, by window) or in-memory ``data`` (2, h, w) =
    (VV, VH)."""

    scene: SceneRef
    window: Window
    path: Path | None = None
    data: NDArray[np.float32] | None = None
    bands: tuple[int, int] = (1, 2)  # band indexes of VV, VH in ``path``
    #: layover/shadow flags (bit 1 layover, bit 2 shadow): the band index in ``path``
    #: (description LAYOVER_SHADOW, as preprocess writes it) or an in-memory (h, w) uint8 array
    mask_band: int | None = None
    mask: NDArray[np.uint8] | None = None

    @property
    def has_mask(self) -> bool:
        return self.mask is not None or (self.path is not None and self.mask_band is not None)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise MosaicError(f"scene {self.scene.scene_id}: give exactly one of path and data")
        w = self.window
        if any(float(v) != int(v) for v in (w.col_off, w.row_off, w.width, w.height)):
            raise MosaicError(f"scene {self.scene.scene_id}: window {w} is not on whole pixels")
        if self.data is not None and self.data.shape != (2, int(w.height), int(w.width)):
            raise MosaicError(f"scene {self.scene.scene_id}: data shape {self.data.shape} does not match window {w}")
        if self.mask is not None and self.mask.shape != (int(w.height), int(w.width)):
            raise MosaicError(f"scene {self.scene.scene_id}: mask shape {self.mask.shape} does not match window {w}")

    @classmethod
    def from_geotiff(cls, path: str | os.PathLike[str], tile: TileAcquisition) -> SceneOnGrid:
        """Open a preprocessed scene GeoTIFF and place it on ``tile``'s grid (checked: same CRS,
        same pixel size, origin on the grid's pixel corners)."""
        p = Path(path)
        try:
            with rasterio.open(p) as ds:
                tags = ds.tags()
                crs, t, width, height = ds.crs, ds.transform, ds.width, ds.height
                descr = [(d or "").upper() for d in ds.descriptions]
                count = ds.count
        except rasterio.errors.RasterioIOError as exc:
            raise MosaicError(f"preprocessed scene {p}: cannot be read: {exc}") from exc
        if "SCENE_ID" not in tags:
            raise MosaicError(f"preprocessed scene {p}: no SCENE_ID tag")
        scene_id = tags["SCENE_ID"]
        if "START_TIME" not in tags:
            start = SceneRef.from_scene_id(scene_id).start_time
        else:
            try:
                start = parse_iso(tags["START_TIME"])
            except ValueError as exc:
                raise MosaicError(f"{p}: START_TIME {tags['START_TIME']!r} is not an ISO 8601 time") from exc
        scene = SceneRef(scene_id, start)
        if crs is None or crs.to_epsg() != tile.epsg:
            raise MosaicError(f"preprocessed scene {p}: CRS {crs} is not the tile's EPSG:{tile.epsg} ({tile.key})")
        g = tile.grid
        if t.b != 0 or t.d != 0 or not math.isclose(t.a, g.resolution) or not math.isclose(-t.e, g.resolution):
            raise MosaicError(f"preprocessed scene {p}: pixel size {t.a} x {-t.e} m is not the tile grid's {g.resolution} m")
        col = (t.c - g.ulx) / g.resolution
        row = (g.uly - t.f) / g.resolution
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            raise MosaicError(
                f"preprocessed scene {p}: origin ({t.c}, {t.f}) is not on the grid of tile {tile.key} "
                f"(offset {col:.4f}, {row:.4f} px): it would shift every patch"
            )
        if count < 2:
            raise MosaicError(f"preprocessed scene {p}: {count} band(s), expected VV and VH")
        bands = (descr.index("VV") + 1, descr.index("VH") + 1) if {"VV", "VH"} <= set(descr) else (1, 2)
        mask_band = descr.index("LAYOVER_SHADOW") + 1 if "LAYOVER_SHADOW" in descr else None
        return cls(scene=scene, window=Window(int(round(col)), int(round(row)), width, height), path=p, bands=bands,
                   mask_band=mask_band)

    def _overlap(self, window: Window) -> tuple[tuple[slice, slice], Window] | None:
        """(destination slices in ``window``, source window in the scene) of their overlap."""
        h, w = int(window.height), int(window.width)
        r0 = max(int(window.row_off), int(self.window.row_off))
        c0 = max(int(window.col_off), int(self.window.col_off))
        r1 = min(int(window.row_off) + h, int(self.window.row_off + self.window.height))
        c1 = min(int(window.col_off) + w, int(self.window.col_off + self.window.width))
        if r1 <= r0 or c1 <= c0:
            return None
        dst = (slice(r0 - int(window.row_off), r1 - int(window.row_off)), slice(c0 - int(window.col_off), c1 - int(window.col_off)))
        return dst, Window(c0 - int(self.window.col_off), r0 - int(self.window.row_off), c1 - c0, r1 - r0)

    def read_mask(self, window: Window) -> NDArray[np.uint8]:
        """(h, w) layover/shadow flags for a window of the tile grid (0 where the scene has no
        pixels or carries no flags)."""
        out = np.zeros((int(window.height), int(window.width)), dtype=np.uint8)
        ov = self._overlap(window)
        if ov is None or not self.has_mask:
            return out
        dst, src = ov
        if self.mask is not None:
            r, c = int(src.row_off), int(src.col_off)
            out[dst] = self.mask[r:r + int(src.height), c:c + int(src.width)]
            return out
        assert self.path is not None and self.mask_band is not None
        try:
            with rasterio.open(self.path) as ds:
                v = ds.read(self.mask_band, window=src, out_dtype=np.float32)
        except rasterio.errors.RasterioIOError as exc:
            raise MosaicError(f"preprocessed scene {self.path}: read failed: {exc}") from exc
        out[dst] = np.where(np.isfinite(v), v, 0.0).astype(np.uint8)
        return out

    def read(self, window: Window) -> NDArray[np.float32]:
        """(2, h, w) dB for a window of the tile grid; NaN where the scene has no pixels."""
        h, w = int(window.height), int(window.width)
        out = np.full((2, h, w), np.nan, dtype=np.float32)
        r0 = max(int(window.row_off), int(self.window.row_off))
        c0 = max(int(window.col_off), int(self.window.col_off))
        r1 = min(int(window.row_off) + h, int(self.window.row_off + self.window.height))
        c1 = min(int(window.col_off) + w, int(self.window.col_off + self.window.width))
        if r1 <= r0 or c1 <= c0:
            return out
        dst = (slice(None), slice(r0 - int(window.row_off), r1 - int(window.row_off)),
               slice(c0 - int(window.col_off), c1 - int(window.col_off)))
        sr, sc = r0 - int(self.window.row_off), c0 - int(self.window.col_off)
        if self.data is not None:
            out[dst] = self.data[:, sr:sr + (r1 - r0), sc:sc + (c1 - c0)]
        else:
            assert self.path is not None
            try:
                with rasterio.open(self.path) as ds:
                    out[dst] = ds.read(list(self.bands), window=Window(sc, sr, c1 - c0, r1 - r0), out_dtype=np.float32)
            except rasterio.errors.RasterioIOError as exc:
                raise MosaicError(f"preprocessed scene {self.path}: read failed: {exc}") from exc
        return out


@dataclass
class PatchChoice:
    """What a patch got: the scene it names (index into ``Mosaic.scenes``; None: no data),
    its valid fraction (VV and VH finite), whether it was composed from several scenes
    (or from a partial one), and the pixel count each scene supplied."""

    scene: int | None
    valid_fraction: float
    composed: bool
    contributions: dict[int, int] = field(default_factory=dict)


def scene_order(scenes: Sequence[SceneOnGrid], sensing_time: datetime) -> list[int]:
    """Scene indexes ranked by |start - sensing time|, then scene id."""
    return sorted(range(len(scenes)), key=lambda i: (abs((scenes[i].scene.start_time - sensing_time).total_seconds()),
                                                     scenes[i].scene.scene_id))


@dataclass
class Mosaic:
    """The composed tile over the patches' bounding ``window`` of the tile grid."""

    tile: TileAcquisition
    window: Window
    vv_db: NDArray[np.float32]
    vh_db: NDArray[np.float32]
    provenance: NDArray[np.int8]  # index into ``scenes`` per pixel, -1 = no data
    scenes: tuple[SceneRef, ...]
    order: tuple[int, ...]
    patches: dict[str, PatchChoice]
    min_valid_fraction: float = 1.0
    #: per pixel layover (bit 1) / shadow (bit 2) of the scene it came from; None unless every
    #: scene carries flags
    layover_shadow: NDArray[np.uint8] | None = None

    def patch_scenes(self, min_valid_fraction: float | None = None) -> dict[str, SceneRef]:
        """S2 patch name -> the scene it names, for patches complete enough to write."""
        m = self.min_valid_fraction if min_valid_fraction is None else min_valid_fraction
        return {name: self.scenes[c.scene] for name, c in self.patches.items()
                if c.scene is not None and c.valid_fraction >= m and c.valid_fraction > 0}

    def valid_fractions(self) -> dict[str, float]:
        return {name: c.valid_fraction for name, c in self.patches.items()}

    def write(self, root: str | os.PathLike[str], *, min_valid_fraction: float | None = None,
              overwrite: bool = False, layout: str = "v1") -> list[dict[str, Any]]:
        """Clip and write the patches through ``archive.write_tile_patches`` (``layout`` "v1"
        or "v2"); returns its rows."""
        return write_tile_patches(root, self.tile, self.vv_db, self.vh_db, window=self.window,
                                  patch_scenes=self.patch_scenes(min_valid_fraction),
                                  valid_fraction=self.valid_fractions(), overwrite=overwrite, layout=layout,
                                  layover_shadow=self.layover_shadow)

    def summary(self) -> dict[str, Any]:
        """JSON-safe account: per scene (id, start, hours from S2, patches named, pixels),
        patch counts (single-scene, composed, incomplete, empty) and the composed patches."""
        named = {i: 0 for i in range(len(self.scenes))}
        for c in self.patches.values():
            if c.scene is not None:
                named[c.scene] += 1
        pix = np.bincount(self.provenance[self.provenance >= 0].ravel(), minlength=len(self.scenes))
        m = self.min_valid_fraction
        return {
            "tile": self.tile.key,
            "window": [int(self.window.col_off), int(self.window.row_off), int(self.window.width), int(self.window.height)],
            "scenes": [
                {"index": i, "scene_id": s.scene_id, "start_time": format_iso(s.start_time, zone="+00:00"),
                 "hours_from_s2": round((s.start_time - self.tile.sensing_time).total_seconds() / 3600.0, 3),
                 "rank": self.order.index(i), "patches": named[i], "pixels": int(pix[i])}
                for i, s in enumerate(self.scenes)
            ],
            "patches": len(self.patches),
            "single_scene": sum(1 for c in self.patches.values() if not c.composed and c.valid_fraction >= m),
            "composed": sum(1 for c in self.patches.values() if c.composed and c.valid_fraction >= m),
            "incomplete": sum(1 for c in self.patches.values() if 0 < c.valid_fraction < m),
            "empty": sum(1 for c in self.patches.values() if c.valid_fraction == 0),
            "to_write": len(self.patch_scenes()),
            "composed_patches": {
                name: {"scene": c.scene, "valid_fraction": round(c.valid_fraction, 6),
                       "contributions": {str(k): v for k, v in c.contributions.items()}}
                for name, c in sorted(self.patches.items()) if c.composed
            },
        }

    def write_summary(self, path: str | os.PathLike[str]) -> Path:
        """The :meth:`summary` as JSON (atomic write)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(path, json.dumps(self.summary(), indent=1).encode())

    def write_provenance(self, path: str | os.PathLike[str]) -> Path:
        """Provenance raster as an int8 GeoTIFF on the mosaic window (nodata -1), scene ids in
        the tags ``SCENE_<index>``; with layover/shadow flags, a second band LAYOVER_SHADOW
        (bit 1 layover, bit 2 shadow; -1 where the first is). Atomic write."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        h, w = self.provenance.shape
        count = 1 if self.layover_shadow is None else 2
        with atomic_path(path, suffix=".part.tif") as tmp:
            with rasterio.open(tmp, "w", driver="GTiff", width=w, height=h, count=count, dtype="int8", nodata=-1,
                               crs=self.tile.grid.crs, transform=self.tile.grid.window_transform(self.window),
                               compress="deflate", tiled=w >= 256 and h >= 256) as ds:
                ds.write(self.provenance, 1)
                ds.set_band_description(1, "PROVENANCE")
                if self.layover_shadow is not None:
                    ds.write(np.where(self.provenance >= 0, self.layover_shadow.astype(np.int8), np.int8(-1)), 2)
                    ds.set_band_description(2, "LAYOVER_SHADOW")
                ds.update_tags(TILE=self.tile.key, **{f"SCENE_{i}": s.scene_id for i, s in enumerate(self.scenes)})
        return path


def _preferred_cells(tile: TileAcquisition, scenes: Sequence[SceneOnGrid], preferred: Mapping[str, str],
                     c0: int, r0: int, nR: int, nC: int) -> NDArray[np.int16]:
    """(patch rows, patch cols) of the mosaic window: index of the scene each patch prefers
    (-1: none, or its scene is not among ``scenes``)."""

    by_prefix = {product_prefix(s.scene.scene_id): i for i, s in enumerate(scenes)}
    out = np.full((nR, nC), -1, dtype=np.int16)
    for p in tile.patches:
        i = by_prefix.get(preferred.get(p.s2_name, ""))
        if i is not None:
            out[p.row - r0 // PATCH_PX, p.col - c0 // PATCH_PX] = i
    return out


def mosaic_tile(tile: TileAcquisition, scenes: Sequence[SceneOnGrid], *, min_valid_fraction: float = 1.0,
                strip_patch_rows: int = STRIP_PATCH_ROWS, preferred: Mapping[str, str] | None = None) -> Mosaic:
    """Compose ``scenes`` over the bounding window of ``tile``'s patches (see the module doc).

    ``preferred``: S2 patch name -> ``<mission>_<mode>_<type>_<level+pol>_<start>`` of the scene
    the patch should name (reBEN's pairing); such a patch takes that scene when it covers the
    patch fully, before the ranking applies.
    """
    if not tile.patches:
        raise MosaicError(f"tile {tile.key}: no patches to mosaic")
    if not scenes:
        raise MosaicError(f"tile {tile.key}: no scenes to mosaic")
    if len(scenes) > 127:
        raise MosaicError(f"tile {tile.key}: {len(scenes)} scenes (at most 127 fit the int8 provenance)")
    ids = [s.scene.scene_id for s in scenes]
    if len(set(ids)) != len(ids):
        raise MosaicError(f"tile {tile.key}: a scene is given twice ({', '.join(sorted(ids))})")
    win = tile.grid.window_for_patches(tile.patches)
    c0, r0 = int(win.col_off), int(win.row_off)
    H, W = int(win.height), int(win.width)
    if c0 % PATCH_PX or r0 % PATCH_PX or H % PATCH_PX or W % PATCH_PX:
        raise MosaicError(f"tile {tile.key}: patch window {win} is not on the 120 px patch lattice")
    order = scene_order(scenes, tile.sensing_time)
    nR, nC = H // PATCH_PX, W // PATCH_PX
    vv = np.full((H, W), np.nan, dtype=np.float32)
    vh = np.full((H, W), np.nan, dtype=np.float32)
    prov = np.full((H, W), -1, dtype=np.int8)
    flags = np.zeros((H, W), dtype=np.uint8) if all(s.has_mask for s in scenes) else None
    chosen = np.full((nR, nC), -1, dtype=np.int16)  # scene index of fully covered cells
    pref = _preferred_cells(tile, scenes, preferred, c0, r0, nR, nC) if preferred else None
    cell_counts = np.zeros((len(scenes), nR, nC), dtype=np.int32)  # pixels each scene supplied
    full = PATCH_PX * PATCH_PX
    for R0 in range(0, nR, strip_patch_rows):
        R1 = min(nR, R0 + strip_patch_rows)
        rs = slice(R0 * PATCH_PX, R1 * PATCH_PX)
        strip_win = Window(c0, r0 + R0 * PATCH_PX, W, (R1 - R0) * PATCH_PX)
        data = {i: scenes[i].read(strip_win) for i in order}
        valid = {i: np.isfinite(d[0]) & np.isfinite(d[1]) for i, d in data.items()}
        sv, sh, sp = vv[rs], vh[rs], prov[rs]  # views into the outputs
        nr = R1 - R0
        # 1. cells fully covered: the preferred scene if it covers them, else the best-ranked one
        ch = chosen[R0:R1]
        complete = {i: valid[i].reshape(nr, PATCH_PX, nC, PATCH_PX).sum(axis=(1, 3)) == full for i in order}
        for pass_pref in ((True, False) if pref is not None else (False,)):
            for i in order:
                take = complete[i] & (ch < 0)
                if pass_pref:
                    assert pref is not None
                    take &= pref[R0:R1] == i
                ch[take] = i
                if take.any():
                    m = np.repeat(np.repeat(take, PATCH_PX, axis=0), PATCH_PX, axis=1)
                    sv[m] = data[i][0][m]
                    sh[m] = data[i][1][m]
                    sp[m] = i
        # 2. the rest: per pixel, first valid scene in the same order
        open_cells = np.repeat(np.repeat(ch < 0, PATCH_PX, axis=0), PATCH_PX, axis=1)
        if open_cells.any():
            for i in order:
                m = open_cells & (sp < 0) & valid[i]
                sv[m] = data[i][0][m]
                sh[m] = data[i][1][m]
                sp[m] = i
        for i in range(len(scenes)):
            cell_counts[i, R0:R1] = (sp == i).reshape(nr, PATCH_PX, nC, PATCH_PX).sum(axis=(1, 3))
        if flags is not None:  # each pixel's flags come from the scene it came from
            sf = flags[rs]
            for i in order:
                m = sp == i
                if m.any():
                    sf[m] = scenes[i].read_mask(strip_win)[m]
        del data, valid
    rank = {i: k for k, i in enumerate(order)}
    patches: dict[str, PatchChoice] = {}
    for p in tile.patches:
        R, C = p.row - r0 // PATCH_PX, p.col - c0 // PATCH_PX
        contrib = {i: int(cell_counts[i, R, C]) for i in order if cell_counts[i, R, C] > 0}
        vf = sum(contrib.values()) / full
        if chosen[R, C] >= 0:
            patches[p.s2_name] = PatchChoice(int(chosen[R, C]), 1.0, False, contrib)
        elif contrib:
            best = max(contrib, key=lambda i: (contrib[i], -rank[i]))
            patches[p.s2_name] = PatchChoice(best, vf, True, contrib)
        else:
            patches[p.s2_name] = PatchChoice(None, 0.0, False, {})
    mosaic = Mosaic(tile=tile, window=win, vv_db=vv, vh_db=vh, provenance=prov,
                    scenes=tuple(s.scene for s in scenes), order=tuple(order), patches=patches,
                    min_valid_fraction=min_valid_fraction, layover_shadow=flags)
    if pref is not None:
        honoured = sum(1 for p in tile.patches if preferred and p.s2_name in preferred
                       and patches[p.s2_name].scene is not None
                       and pref[p.row - r0 // PATCH_PX, p.col - c0 // PATCH_PX] == patches[p.s2_name].scene)
        log.info("tile %s: %d of %d patches take the scene they are paired with", tile.key, honoured,
                 sum(1 for p in tile.patches if preferred and p.s2_name in preferred))
    s = mosaic.summary()
    log.info("tile %s: %d patches, %d from one scene, %d composed, %d incomplete, %d empty (%d scenes)",
             tile.key, s["patches"], s["single_scene"], s["composed"], s["incomplete"], s["empty"], len(scenes))
    return mosaic
