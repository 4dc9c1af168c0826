"""The public functions: :func:`simulate_product` writes a product and its ground truth,
:func:`describe_product` says what it would write."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.atomic import make_temporary_dir, sweep, temporary_dir
from bigearthnet_s1.checksum import file_checksum
from bigearthnet_s1.orbit import SPEED_OF_LIGHT
from bigearthnet_s1.simulate.annotation import _annotation_xml, _calibration_xml, _Meta, _noise_xml, _rfi_xml
from bigearthnet_s1.simulate.ellipsoid import _heading_deg
from bigearthnet_s1.simulate.frame import _forward_geocode, _Frame
from bigearthnet_s1.simulate.luts import _Borders, _Luts, _make_borders, _make_luts
from bigearthnet_s1.simulate.manifest import (
    _REP,
    _DataObject,
    _file_stem,
    _files_of,
    _manifest_xml,
    _write_preview,
    _write_support,
)
from bigearthnet_s1.simulate.mission import (
    BETA_NOUGHT,
    DEFAULT_MARGIN_M,
    ENL,
    crc16_ccitt,
    product_name,
)
from bigearthnet_s1.simulate.planning import _prepare, _Prepared, _Request
from bigearthnet_s1.simulate.render import _mapping_grid, _point_splats, _render_inputs, _render_measurements, _write_truth
from bigearthnet_s1.simulate.scene import (
    LAND_CLASSES,
    PARCEL_JITTER_DB,
    PARCEL_M,
    POINT_TARGET_SIGMA0,
    RIVER_HALF_WIDTH_M,
    _map_params,
    _point_targets,
)
from bigearthnet_s1.simulate.timeline import _iso, _plus, _round_us, _to_datetime

if TYPE_CHECKING:  # pragma: no cover
    from bigearthnet_s1.tiles import TileAcquisition

log = logging.getLogger(__name__)


def _gcp_grid(frame: _Frame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Geolocation grid lines x pixels: 21 columns, rows every 2023 lines (as real full
    scenes, denser for small products), last line / pixel included."""
    step_l = max(1, min(2023, (frame.lines - 1) // 8))
    lines = np.append(np.arange(0, frame.lines - 1, step_l), frame.lines - 1)
    step_p = int(math.ceil((frame.samples - 1) / 20))
    pixels = np.append(np.arange(0, frame.samples - 1, step_p), frame.samples - 1)
    ll, pp = np.meshgrid(lines.astype(np.float64), pixels.astype(np.float64), indexing="ij")
    return ll.ravel(), pp.ravel()


def describe_product(
    *,
    tile: TileAcquisition | None = None,
    bounds_wgs84: Sequence[float] | None = None,
    time: datetime | str,
    size: str = "small",
    pass_direction: str | None = "descending",
    dem: str | os.PathLike[str] | None = None,
    mission: str | None = None,
    ipf_version: str | float | None = None,
    swath_position: float = 0.5,
    azimuth_position: float = 0.5,
    margin_m: float = DEFAULT_MARGIN_M,
) -> dict[str, Any]:
    """What :func:`simulate_product` would make with these arguments, without writing it:
    name without the CRC suffix, mission, orbit numbers, datatake, pass, IPF, times (UTC ISO),
    image size, incidence and swath position of the target centre (the nearest feasible one if
    the requested position has no orbit of that pass), and ``footprint_wgs84``: the image
    corners on the ellipsoid (or the DEM) as (lon, lat) degrees, in the manifest's order
    (last line near, last far, first far, first near). Fast (no image)."""
    pr = _prepare(_Request(tile=tile, bounds_wgs84=bounds_wgs84, time=time, size=size, pass_direction=pass_direction,
                           dem=dem, seed=0, mission=mission, ipf_version=ipf_version, swath_position=swath_position,
                           azimuth_position=azimuth_position, margin_m=margin_m))
    f = pr.plan.frame
    corners = _forward_geocode(f, np.array([f.lines - 1.0, f.lines - 1.0, 0.0, 0.0]),
                               np.array([0.0, f.samples - 1.0, f.samples - 1.0, 0.0]), pr.heights)
    return {
        "name_prefix": pr.prefix, "mission": pr.mission, "absolute_orbit": pr.numbers["absolute"],
        "relative_orbit": pr.numbers["relative"], "cycle": pr.numbers["cycle"], "datatake_id": f"{pr.datatake:06X}",
        "pass": "ASCENDING" if pr.ascending else "DESCENDING", "ipf_version": pr.ipf,
        "start_time": _iso(pr.t_start) + "Z", "stop_time": _iso(f.last_time) + "Z",
        "ascending_node_time": _iso(pr.anx) + "Z", "lines": f.lines, "samples": f.samples,
        "azimuth_time_interval": f.dt, "target_incidence_deg": pr.plan.incidence_c,
        "swath_position": pr.plan.swath_position,
        "footprint_wgs84": [(float(x), float(y)) for x, y in zip(corners["lon"], corners["lat"], strict=True)],
    }


def simulate_product(
    out_dir: str | os.PathLike[str],
    *,
    tile: TileAcquisition | None = None,
    bounds_wgs84: Sequence[float] | None = None,
    time: datetime | str,
    size: str = "small",
    pass_direction: str | None = "descending",
    dem: str | os.PathLike[str] | None = None,
    seed: int = 0,
    zip: bool = False,
    mission: str | None = None,
    ipf_version: str | float | None = None,
    swath_position: float = 0.5,
    azimuth_position: float = 0.5,
    margin_m: float = DEFAULT_MARGIN_M,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic Sentinel-1 IW GRDH product (VV+VH) and its ground truth; return the .SAFE path.

    * ``tile`` (a BigEarthNet-S2 tile acquisition) or ``bounds_wgs84`` (lon_min, lat_min,
      lon_max, lat_max) say what the product must show: the tile's patches (the whole tile if
      it has none) or the box. The ground map hangs from the tile's grid (parcel edges on the
      patch grid).
    * ``time``: azimuth time of the first line (UTC; naive datetimes are UTC); it is the start
      time in the product name.
    * ``size``: "small" covers the target area plus ``margin_m`` (a few thousand pixels for a
      few patches); "full" is a whole IW slice (25 s, ~16,800 lines x ~26,000 samples, 260 km
      swath) with the target's centre at (``azimuth_position``, ``swath_position``) of it.
    * ``pass_direction``: "ascending", "descending" or "auto" (from local solar time, as
      Sentinel-1's dawn-dusk orbit). The target centre is seen at incidence
      30.4 + 15.5 * ``swath_position`` degrees; where no right-looking orbit of that pass sees
      it there (only near the poles: everywhere in 37-70 N any position works), the nearest
      swath position that has one is used and logged (``target_swath_position`` in the
      truth JSON); GeometryError (naming tile, time and pass) if no position works.
    * ``dem``: GeoTIFF/VRT of heights (treated as ellipsoidal) or None (ellipsoid, h = 0).
    * ``mission`` (S1A/S1B; default: the satellite whose real orbit timeline matches this
      pass best) and ``ipf_version`` (default: the version in use at ``time``: "002.84" before
      2018-03-13, then "002.91", "003.31", "003.40"); IPF < 2.9 writes the old noise format
      (range vectors only) and border noise; IPF >= 3.4 adds the RFI annotation.
    * ``zip``: also write ``<name>.zip`` (holding ``<name>.SAFE/``) beside the folder.

    Also writes ``<name>.truth.json`` and ``<name>.truth.tif`` (sigma0 VV, VH, linear, float32,
    on a 10 m grid of the tile's CRS aligned with the tile grid) beside the .SAFE. Outputs
    appear atomically; an existing product made with the same parameters is returned as is
    unless ``overwrite``. Deterministic for given inputs (the name's CRC-16 of manifest.safe too).
    """
    out = Path(out_dir)
    pr = _prepare(_Request(tile=tile, bounds_wgs84=bounds_wgs84, time=time, size=size, pass_direction=pass_direction,
                           dem=dem, seed=seed, mission=mission, ipf_version=ipf_version, swath_position=swath_position,
                           azimuth_position=azimuth_position, margin_m=margin_m))
    out.mkdir(parents=True, exist_ok=True)
    sweep(out)  # scratch folders of killed runs
    found = _existing(out, pr.prefix, pr.params)
    if found is not None and not overwrite:
        log.info("simulate: %s exists with the same parameters, kept", found.name)
        if zip and not found.with_suffix(".zip").is_file():
            with temporary_dir(out / pr.prefix) as tmp:
                _zip_safe(found, found.with_suffix(".zip"), tmp)
        return found
    scratch = make_temporary_dir(out / pr.prefix)
    try:
        name = _write_product(scratch.path, pr)
        final = _publish(scratch.path, out, pr.prefix, name, found, zip)
    finally:
        scratch.cleanup()
    frame = pr.plan.frame
    log.info("simulate: wrote %s (%d x %d px, %s, IPF %s)", final.name, frame.samples, frame.lines,
             "ascending" if pr.ascending else "descending", pr.ipf)
    return final


def _write_product(tmp: Path, pr: _Prepared) -> str:
    """Write ``<prefix>.SAFE/`` and ``<name>.truth.tif|json`` of the product into ``tmp``;
    returns the product name (the CRC of its manifest completes it)."""
    frame, seed, size = pr.plan.frame, pr.request.seed, pr.request.size
    border_noise = pr.ipf_value < 2.9
    borders = _make_borders(frame.lines, frame.samples, border_noise, np.random.default_rng([seed, 1]),
                            1.0 if size == "full" else 0.5)
    luts = _make_luts(pr.plan, pr.ipf_value >= 2.9, int(borders.zero_far.min()))
    meta, footprint = _make_meta(pr)
    files = _files_of(meta)
    safe_tmp = tmp / f"{pr.prefix}.SAFE"
    for sub in ("annotation/calibration", "measurement", "preview", "support") + (("annotation/rfi",) if meta.rfi else ()):
        (safe_tmp / sub).mkdir(parents=True, exist_ok=True)
    ground = _map_params(pr.target, seed)
    points = _point_targets(pr.target, pr.plan, pr.heights, borders)
    step = 64 if pr.heights is None else (4 if size == "small" else 16)
    geo_stats: dict[str, Any] = {"mapping_grid_step_px": step}
    grid = _mapping_grid(frame, pr.target, pr.heights, step, geo_stats)
    inputs = _render_inputs(luts, borders, ground, grid, _point_splats(points, frame.lines), seed, border_noise)
    paths = {pol: safe_tmp / files[pol]["measurement"] for pol in ("VV", "VH")}
    gcps, tags = _georeferencing(meta)
    meta.stats = _render_measurements(paths, inputs, (frame.lines, frame.samples), gcps, tags)
    for pol, number in (("VV", "001"), ("VH", "002")):
        (safe_tmp / files[pol]["product"]).write_bytes(_annotation_xml(pr.plan, luts, meta, pol, number))
        (safe_tmp / files[pol]["calibration"]).write_bytes(_calibration_xml(luts, meta, pol, number))
        (safe_tmp / files[pol]["noise"]).write_bytes(_noise_xml(luts, meta, pol, number, frame.lines))
        if meta.rfi:
            (safe_tmp / files[pol]["rfi"]).write_bytes(_rfi_xml(pr.plan, meta, pol, number))
    _write_preview(safe_tmp / "preview", pr.prefix, files, footprint, meta.stats.quicklook)
    _write_support(safe_tmp / "support", meta.rfi)
    manifest = _manifest_xml(meta, pr.plan, _data_objects(safe_tmp, meta, files), footprint)
    (safe_tmp / "manifest.safe").write_bytes(manifest)
    name = product_name(pr.mission, pr.t_start, meta.stop, pr.numbers["absolute"], pr.datatake, crc16_ccitt(manifest))

    truth_stats = _write_truth(tmp / f"{name}.truth.tif", pr.target, ground, points,
                               {"PRODUCT": name, "UNITS": "sigma0 linear"})
    truth = _truth_json(name, pr, meta, luts, borders, points, truth_stats)
    truth["geocoding"] = geo_stats
    (tmp / f"{name}.truth.json").write_text(json.dumps(truth, indent=1))
    return name


def _make_meta(pr: _Prepared) -> tuple[_Meta, list[tuple[float, float]]]:
    """What the XML files need besides the plan and the LUTs (the GCPs forward-geocoded over
    the DEM, heading and incidence at mid scene, processing time), and the footprint: the
    image corners (lon, lat) in the manifest's order."""
    frame = pr.plan.frame
    gl, gpx = _gcp_grid(frame)
    g = _forward_geocode(frame, gl, gpx, pr.heights)
    gcp = {"line": gl, "pixel": gpx, "lon": g["lon"], "lat": g["lat"], "height": g["height"],
           "incidence": g["incidence"], "elevation": g["elevation"],
           "slant_range_time": 2.0 * frame.slant_range(gl, gpx) / SPEED_OF_LIGHT,
           "bistatic_s": frame.bistatic_seconds(frame.slant_range(gl, gpx))}
    p_mid, v_mid, _ = frame.orbit.interpolate(frame.line_seconds((frame.lines - 1) / 2.0))
    mid = _forward_geocode(frame, np.array([(frame.lines - 1) / 2.0]), np.array([(frame.samples - 1) / 2.0]), None)
    numbers = pr.numbers
    meta = _Meta(
        mission=pr.mission, ipf=pr.ipf, ipf_value=pr.ipf_value, absolute_orbit=numbers["absolute"],
        relative_orbit=numbers["relative"], cycle=numbers["cycle"], datatake=pr.datatake, anx=pr.anx, start=pr.t_start,
        stop=frame.last_time, heading=_heading_deg(p_mid, v_mid), incidence_mid=float(mid["incidence"][0]), gcp=gcp,
        processing_start=_round_us(_plus(pr.t_start, 3 * 3600.0 + 17.444)),
    )
    corners_idx = [(-1, 0), (-1, -1), (0, -1), (0, 0)]  # (last line, near) (last, far) (first, far) (first, near)
    shape = (np.unique(gl).size, np.unique(gpx).size)
    footprint = [(float(g["lon"].reshape(shape)[i, j]), float(g["lat"].reshape(shape)[i, j])) for i, j in corners_idx]
    return meta, footprint


def _georeferencing(meta: _Meta) -> tuple[list[Any], dict[str, dict[str, str]]]:
    """GCPs (lon/lat/height at pixel centres) and TIFF tags of the measurement GeoTIFFs, per polarisation."""
    from rasterio.control import GroundControlPoint

    gcp = meta.gcp
    gcps = [GroundControlPoint(row=float(gcp["line"][k]), col=float(gcp["pixel"][k]), x=float(gcp["lon"][k]),
                               y=float(gcp["lat"][k]), z=float(gcp["height"][k]), id=str(k + 1))
            for k in range(gcp["line"].size)]
    sw = f"Sentinel-1 IPF {meta.ipf}"
    tags = {pol: {"TIFFTAG_IMAGEDESCRIPTION": f"Sentinel-1{meta.mission[-1]} IW GRD HR L1", "TIFFTAG_SOFTWARE": sw,
                  "TIFFTAG_DATETIME": _to_datetime(meta.processing_start).strftime("%Y:%m:%d %H:%M:%S")}
            for pol in ("VV", "VH")}
    return gcps, tags


def _data_objects(safe: Path, meta: _Meta, files: dict[str, dict[str, str]]) -> dict[str, _DataObject]:
    """Every file the manifest lists, with its size and MD5 (read from ``safe``)."""
    objects: dict[str, _DataObject] = {}
    for pol in ("VH", "VV"):
        for kind, rel in files[pol].items():
            oid = (kind if kind != "measurement" else "") + _file_stem(meta, pol, "001" if pol == "VV" else "002").replace("-", "")
            mime = "application/octet-stream" if kind == "measurement" else "text/xml"
            objects[f"{kind}-{pol}"] = _DataObject(oid, _REP[kind], f"./{rel}", mime)
    objects["mapoverlay"] = _DataObject("mapoverlay", "s1Level1MapOverlaySchema", "./preview/map-overlay.kml", "text/xml")
    objects["productpreview"] = _DataObject("productpreview", "s1Level1ProductPreviewSchema",
                                            "./preview/product-preview.html", "text/xml")
    objects["quicklook"] = _DataObject("quicklook", "s1Level1QuickLookSchema", "./preview/quick-look.png",
                                       "application/octet-stream")
    for o in objects.values():
        f = safe / o.href[2:]
        o.size = f.stat().st_size
        o.md5 = file_checksum(f, "md5")
    return objects


def _publish(tmp: Path, out: Path, prefix: str, name: str, found: Path | None, zip: bool) -> Path:
    """Move the product written in ``tmp`` (``<prefix>.SAFE``, truth files) to ``out`` as
    ``<name>.*`` (replacing ``found``, the same product made earlier, when given), and zip it
    if asked; returns the .SAFE path."""
    final = out / f"{name}.SAFE"
    if found is not None:  # overwrite: the product made earlier goes (truth and zip too)
        _remove_product(found)
    if (final / "manifest.safe").is_file():
        # another process finished the same product meanwhile: the same name is the same
        # manifest, hence the same files; keep theirs
        log.info("simulate: %s appeared meanwhile, kept", final.name)
    else:
        os.replace(tmp / f"{name}.truth.tif", out / f"{name}.truth.tif")
        os.replace(tmp / f"{name}.truth.json", out / f"{name}.truth.json")
        if final.exists():  # a leftover without manifest
            shutil.rmtree(final)
        os.replace(tmp / f"{prefix}.SAFE", final)
    if zip and not (out / f"{name}.zip").is_file():
        _zip_safe(final, out / f"{name}.zip", tmp)
    return final


def _existing(out_dir: Path, prefix: str, params: dict[str, Any]) -> Path | None:
    for safe in sorted(out_dir.glob(f"{prefix}_????.SAFE")):
        js = out_dir / (safe.name[: -len(".SAFE")] + ".truth.json")
        if not (safe / "manifest.safe").is_file() or not js.is_file():
            continue
        try:
            if json.loads(js.read_text()).get("parameters") == params:
                return safe
        except (OSError, ValueError):
            continue
    return None


def _remove_product(safe: Path) -> None:
    stem = safe.name[: -len(".SAFE")]
    shutil.rmtree(safe, ignore_errors=True)
    for suffix in (".zip", ".truth.json", ".truth.tif"):
        (safe.parent / f"{stem}{suffix}").unlink(missing_ok=True)


def _zip_safe(safe: Path, dest: Path, tmp_dir: Path) -> None:
    """``<name>.zip`` holding ``<name>.SAFE/...`` (XML deflated; TIFFs stored, which keeps
    window reads through /vsizip/ cheap and the zip fast to write)."""
    part = tmp_dir / (dest.name + ".part")
    with zipfile.ZipFile(part, "w") as zf:
        for f in sorted(p for p in safe.rglob("*") if p.is_file()):
            arc = f"{safe.name}/{f.relative_to(safe).as_posix()}"
            method = zipfile.ZIP_STORED if f.suffix in (".tiff", ".png") else zipfile.ZIP_DEFLATED
            zf.write(f, arc, compress_type=method)
    os.replace(part, dest)


def _truth_json(
    name: str, pr: _Prepared, meta: _Meta, luts: _Luts, borders: _Borders, points: dict[str, NDArray[Any]],
    truth_stats: dict[str, Any],
) -> dict[str, Any]:
    """The ``<name>.truth.json`` beside the SAFE: what the product was made from and of."""
    plan, target, heights = pr.plan, pr.target, pr.heights
    frame = plan.frame
    (x0, y0), (ny, nx) = target.truth_origin, target.truth_shape
    pts = [
        {"x": float(points["x"][k]), "y": float(points["y"][k]), "lon": float(points["lon"][k]),
         "lat": float(points["lat"][k]), "height": float(points["height"][k]), "line": float(points["line"][k]),
         "pixel": float(points["pixel"][k])}
        for k in range(points["x"].size)
    ]
    return {
        "product": name,
        "safe": f"{name}.SAFE",
        "truth_tif": f"{name}.truth.tif",
        "parameters": pr.params,
        "mission": meta.mission,
        "ipf_version": meta.ipf,
        "absolute_orbit": meta.absolute_orbit,
        "relative_orbit": meta.relative_orbit,
        "cycle": meta.cycle,
        "datatake_id": f"{meta.datatake:06X}",
        "pass": "ASCENDING" if plan.ascending else "DESCENDING",
        "ascending_node_time": _iso(meta.anx) + "Z",
        "start_time": _iso(meta.start) + "Z",
        "stop_time": _iso(meta.stop) + "Z",
        "size": pr.request.size,
        "lines": frame.lines,
        "samples": frame.samples,
        "azimuth_time_interval": frame.dt,
        "near_slant_range_m": frame.r_near,
        "target_zero_doppler_time": _iso(plan.t_c) + "Z",
        "target_incidence_deg": plan.incidence_c,
        "target_swath_position": plan.swath_position,
        "incidence_range_deg": [float(np.min(luts.incidence_rows)), float(np.max(luts.incidence_rows))],
        "grsr_fit_residual_m": frame.fit_residual,
        "terrain_height_m": float(np.mean(plan.frame.cc_height)) if plan.frame.cc_height is not None else plan.h_ref,
        "bistatic_reference_range_time_s": plan.frame.tau_ref,
        "dem": None if heights is None else {"path": str(heights.path), "points_outside": heights.outside,
                                             "points_inside": heights.inside, "nodata_fraction": heights.nodata_fraction,
                                             "beyond_the_dem": "edge heights extended", "nodata": "nearest valid post"},
        "heights": "ellipsoidal",
        "tile_id": target.tile_id,
        "tile_key": target.tile_key,
        "crs": f"EPSG:{target.epsg}",
        "grid": {"x0": x0, "y0": y0, "width": nx, "height": ny, "resolution": 10.0,
                 "transform": truth_stats["transform"], "convention": "pixel corners, tile CRS metres"},
        "area_bounds": list(target.area.bounds),
        "ground_map": {
            "units": "sigma0, linear (dB in classes), ellipsoid-referenced, independent of geometry",
            "parcel_m": PARCEL_M,
            "parcel_anchor": list(target.anchor),
            "parcel_jitter_db": PARCEL_JITTER_DB,
            "classes": [{"name": c[0], "vv_db": c[1], "vh_db": c[2], "frequency": c[3]} for c in LAND_CLASSES],
            "class_pixels": truth_stats["class_pixels"],
            "river_half_width_m": RIVER_HALF_WIDTH_M,
        },
        "point_targets": {"sigma0_vv": POINT_TARGET_SIGMA0[0], "sigma0_vh": POINT_TARGET_SIGMA0[1],
                          "convention": "line/pixel are fractional pixel centres; energy split bilinearly over 4 pixels",
                          "targets": pts},
        "radiometry": {
            "dn": "DN^2 = (sigma0 * A_sigma^2 + noise) * speckle (+ point targets * A_sigma^2)",
            "speckle": {"distribution": "gamma", "enl": ENL, "mean": 1.0},
            "calibration_constant_beta": BETA_NOUGHT,
            "noise_in_lut": True,
            "border_noise": meta.ipf_value < 2.9,
        },
        "borders": {
            "convention": "per line: DN = 0 for pixel < zero_near or > zero_far; border noise outside "
                          "[valid_first, valid_last]; valid data inside",
            "zero_near": borders.zero_near.tolist(),
            "valid_first": borders.valid_first.tolist(),
            "valid_last": borders.valid_last.tolist(),
            "zero_far": borders.zero_far.tolist(),
        },
        "swaths": [{"swath": s, "first_sample": a, "last_sample": b} for s, a, b in luts.swaths],
        "image_statistics": {"mean_dn": meta.stats.mean if meta.stats else None,
                             "std_dn": meta.stats.std if meta.stats else None},
    }
