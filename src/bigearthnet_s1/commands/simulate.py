"""``bigearthnet-s1 simulate --tile 33UUP --time 2017-06-13T16:50:43 --out DIR [--size small|full] ...``

Write a synthetic Sentinel-1 IW GRDH product (VV+VH, real SAFE layout) over an S2 tile, plus
its ground truth (``<name>.truth.json``, ``<name>.truth.tif``) beside it. What it covers:

* ``--size full``: a whole IW slice (~26,000 x 16,800 px) centred on the tile;
* ``--size small`` (default): patches plus ``--margin`` metres: the patches of the tile's
  acquisition in a BigEarthNet-S2 folder (``--s2-root``), the ``--patch COL_ROW`` given, or
  else the tile's central patch (45_45);
* ``--bounds LON0,LAT0,LON1,LAT1`` instead of ``--tile``: that box.

Prints one JSON line: {"name", "safe", "zip", "truth_json", "truth_tif"}.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tile", metavar="MGRS", help="S2 tile id, e.g. 33UUP")
    where.add_argument("--bounds", metavar="LON0,LAT0,LON1,LAT1", help="WGS84 box to cover instead of a tile")
    parser.add_argument("--time", required=True, help="azimuth time of the first line, ISO 8601 UTC (2017-06-13T16:50:43)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", choices=("small", "full"), default="small", help="default: small")
    parser.add_argument("--pass", dest="pass_direction", choices=("ascending", "descending", "auto"), default="auto",
                        help="orbit direction; auto (default) picks it from the local solar time as Sentinel-1's "
                        "dawn-dusk orbit does (ascending in the evening, descending in the morning)")
    parser.add_argument("--dem", type=Path, help="DEM GeoTIFF/VRT (heights treated as ellipsoidal); default: ellipsoid")
    parser.add_argument("--zip", action="store_true", help="also write <name>.zip")
    parser.add_argument("--s2-root", type=Path, help="BigEarthNet-S2 folder: cover the tile's patches of the "
                        "acquisition nearest --time")
    parser.add_argument("--patch", action="append", default=[], metavar="COL_ROW",
                        help="patch of the tile to cover, e.g. 87_48 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="ground map, speckle and border seed (default 0)")
    parser.add_argument("--mission", choices=("S1A", "S1B"), help="default: the satellite whose orbit timeline fits")
    parser.add_argument("--ipf", help="IPF version, e.g. 002.84 or 003.40 (default: the one in use at --time)")
    parser.add_argument("--swath-position", type=float, default=0.5,
                        help="where the target's centre lies across the swath, 0 near .. 1 far (default 0.5); "
                        "where no orbit of the pass sees it there (polar targets), the nearest position that "
                        "has one is used and logged")
    parser.add_argument("--azimuth-position", type=float, default=0.5,
                        help="full size: where the target's centre lies along the scene, 0..1 (default 0.5)")
    parser.add_argument("--margin", type=float, default=5000.0, help="small size: margin around the patches, m")
    parser.add_argument("--overwrite", action="store_true", help="replace a product made with the same parameters")


def _parse_bounds(text: str) -> tuple[float, float, float, float]:
    from bigearthnet_s1.errors import InputError

    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 4:
        raise InputError(f"--bounds {text!r}: expected LON0,LAT0,LON1,LAT1")
    return v


def _tile(args: argparse.Namespace, t: datetime) -> Any:
    """The TileAcquisition to simulate for (see the module doc)."""
    from bigearthnet_s1.errors import TileError
    from bigearthnet_s1.grid import MapGrid
    from bigearthnet_s1.tiles import Patch, TileAcquisition, mgrs_tile_origin, read_s2_archive

    tid = args.tile.upper().removeprefix("T")
    if args.s2_root is not None:
        acqs = [a for a in read_s2_archive(args.s2_root) if a.tile_id == tid]
        if not acqs:
            raise TileError(f"--s2-root {args.s2_root}: no patches of tile {tid}")
        return min(acqs, key=lambda a: abs((a.sensing_time - t).total_seconds()))
    epsg, ulx, uly = mgrs_tile_origin(tid)
    grid = MapGrid.tile(epsg, ulx, uly)
    specs = list(args.patch)
    if not specs and args.size == "small":
        specs = ["45_45"]
    patches = []
    for spec in specs:
        try:
            col, row = (int(v) for v in spec.split("_"))
        except ValueError:
            raise TileError(f"--patch {spec!r}: expected COL_ROW, e.g. 87_48") from None
        if not (0 <= col <= 90 and 0 <= row <= 90):
            raise TileError(f"--patch {spec!r}: col and row run 0..90")
        x0, y0, x1, y1 = grid.patch_bounds(col, row)
        patches.append(Patch(f"{tid}_{col}_{row}", col, row, (), x0, y0, x1, y1))
    return TileAcquisition(tid, t, None, grid, tuple(patches))


def check_arguments(args: argparse.Namespace) -> None:
    """Every option's value, range and path, before anything is computed or written."""
    from bigearthnet_s1.params import check_existing, check_number, check_tile_id, check_writable

    if args.tile is not None:
        check_tile_id(args.tile, "--tile")
    for opt in ("swath_position", "azimuth_position"):
        check_number(getattr(args, opt), "--" + opt.replace("_", "-"), minimum=0.0, maximum=1.0)
    check_number(args.margin, "--margin (m)", minimum=0.0, maximum=300_000.0)
    if args.dem is not None:
        check_existing(args.dem, "--dem", kind="file")
    if args.s2_root is not None:
        check_existing(args.s2_root, "--s2-root", kind="dir")
    check_writable(args.out, "--out")


def run(args: argparse.Namespace) -> int:
    from bigearthnet_s1.errors import ParameterError
    from bigearthnet_s1.params import check_time
    from bigearthnet_s1.simulate import simulate_product

    check_arguments(args)
    t = check_time(args.time, "--time")
    if t is None:
        raise ParameterError("--time: a time is required (ISO 8601, e.g. 2017-06-13T16:50:43)")
    kwargs: dict[str, Any] = {}
    if args.tile is not None:
        kwargs["tile"] = _tile(args, t)
    else:
        kwargs["bounds_wgs84"] = _parse_bounds(args.bounds)
    safe = simulate_product(
        args.out, time=t, size=args.size, pass_direction=args.pass_direction, dem=args.dem, seed=args.seed,
        zip=args.zip, mission=args.mission, ipf_version=args.ipf, swath_position=args.swath_position,
        azimuth_position=args.azimuth_position, margin_m=args.margin, overwrite=args.overwrite, **kwargs,
    )
    name = safe.name.removesuffix(".SAFE")
    z = safe.parent / f"{name}.zip"
    print(json.dumps({
        "name": name, "safe": str(safe), "zip": str(z) if z.exists() else None,
        "truth_json": str(safe.parent / f"{name}.truth.json"), "truth_tif": str(safe.parent / f"{name}.truth.tif"),
    }))
    return 0
