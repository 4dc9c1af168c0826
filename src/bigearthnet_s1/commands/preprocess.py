"""``bigearthnet-s1 preprocess PRODUCT --tile T [--time T | --s2-root DIR | --tile-json F] --out FILE``

Run the preprocessing graph (border noise, thermal noise, calibration, Refined Lee, terrain
correction onto the S2 tile's 10 m grid, dB) on one Sentinel-1 GRD product for one S2 tile,
with the ``native`` engine (pure Python) or ``snap`` (ESA SNAP's gpt). Writes a float32
GeoTIFF, one band per polarisation, dB, NaN no-data, on a window of the tile grid, and a last
band LAYOVER_SHADOW (bit 1 layover, bit 2 shadow).

Which part of the tile: the patches of the S2 acquisition when ``--s2-root`` (a
BigEarthNet-S2 folder) or ``--time`` (looked up in the patch-name table) names one, or
``--tile-json`` gives one (``TileAcquisition.to_json()``); otherwise the whole tile.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("product", type=Path, help="Sentinel-1 IW GRD product (.SAFE folder or .zip)")
    parser.add_argument("--tile", required=True, metavar="MGRS", help="S2 tile id, e.g. 33UUP")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--s2-root", type=Path, help="BigEarthNet-S2 archive folder holding the tile's patches")
    which.add_argument(
        "--tile-json", type=Path, help="a TileAcquisition as JSON (as the pipeline stores it)"
    )
    parser.add_argument(
        "--time",
        help="S2 sensing time (ISO 8601, UTC) choosing the acquisition; without --s2-root it is "
        "looked up in the patch-name table bundled with bigearthnet-common",
    )
    parser.add_argument("--engine", choices=("native", "snap"), default="native", help="default: native")
    parser.add_argument("--out", type=Path, required=True, help="output GeoTIFF")
    parser.add_argument(
        "--dem",
        default="flat",
        help="flat (ellipsoid height 0; default), auto (SRTM 1Sec up to 60 N, Copernicus 30 m beyond), "
        "srtm1, glo30, or a DEM raster path",
    )
    parser.add_argument(
        "--graph",
        help="full | nocal (no calibration, the recipe's high-latitude fallback) | a graph XML path; "
        "default: full, or nocal when the product's calibration is flagged",
    )
    parser.add_argument(
        "--polarisations", default="VV,VH", help="comma separated, in output band order (default VV,VH)"
    )
    parser.add_argument(
        "--geometry", choices=("esa", "snap", "sarsen"),
        help="geometry convention of the terrain correction: esa (the product's own: bistatic residual, "
        "nearest coordinate-conversion polynomial; default with --engine native), snap (SNAP's, as "
        "BigEarthNet-S1 v1.0; the only one --engine snap can do), sarsen",
    )
    parser.add_argument("--flagged", type=Path, help="file listing products (one name a line) that need the fallback graph")
    parser.add_argument("--threads", type=int, help="snap engine: gpt -q")
    parser.add_argument("--memory", help="snap engine: JVM heap, e.g. 6G (gpt -J-Xmx)")
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="snap engine: seconds (default 21600)")


def resolve_tile(tile_id: str, *, s2_root: Path | None, tile_json: Path | None, time: str | None,
                 product_start: datetime) -> object:
    """The TileAcquisition the arguments name (see the module doc)."""
    from bigearthnet_s1.acquisition import TileAcquisition
    from bigearthnet_s1.errors import TileError
    from bigearthnet_s1.grid import MapGrid
    from bigearthnet_s1.mgrs import mgrs_tile_origin
    from bigearthnet_s1.params import check_time
    from bigearthnet_s1.tiles import read_patch_table, read_tiles

    tid = tile_id.upper().removeprefix("T")
    if tile_json is not None:
        try:
            acq = TileAcquisition.from_json(json.loads(tile_json.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise TileError(f"--tile-json {tile_json}: not a TileAcquisition ({exc})") from None
        if acq.tile_id != tid:
            raise TileError(f"--tile-json {tile_json} holds tile {acq.tile_id}, not {tid}")
        return acq
    if s2_root is None and time is None:
        epsg, ulx, uly = mgrs_tile_origin(tid)
        return TileAcquisition(tid, product_start, None, MapGrid.tile(epsg, ulx, uly), ())
    acqs = read_tiles(s2_root, tiles=[tid]) if s2_root is not None else read_patch_table(tiles=[tid])
    if time is not None:
        t = check_time(time, "--time")
        assert t is not None
        acqs = [a for a in acqs if abs((a.sensing_time - t).total_seconds()) <= 60]
    if len(acqs) != 1:
        keys = ", ".join(a.key for a in acqs) or "none"
        raise TileError(
            f"tile {tid}: {len(acqs)} acquisitions match ({keys}); "
            + ("give --time to choose one" if len(acqs) > 1 else "check --tile/--time/--s2-root")
        )
    return acqs[0]


def check_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """Every option's value, range and path, before anything is read or written; returns the
    polarisations."""
    from bigearthnet_s1.errors import ParameterError
    from bigearthnet_s1.params import (
        check_dem,
        check_existing,
        check_int,
        check_number,
        check_polarisations,
        check_tile_id,
        check_time,
        check_writable,
    )

    check_existing(args.product, "product")
    check_tile_id(args.tile, "--tile")
    pols = check_polarisations(args.polarisations, "--polarisations")
    check_dem(args.dem)
    if args.graph is not None and args.graph not in ("full", "nocal", "fallback"):
        check_existing(args.graph, "--graph", kind="file")
    for opt in ("s2_root", "tile_json", "flagged"):
        if getattr(args, opt) is not None:
            check_existing(getattr(args, opt), "--" + opt.replace("_", "-"), kind="dir" if opt == "s2_root" else "file")
    if args.time is not None:
        check_time(args.time, "--time")
    if args.threads is not None:
        check_int(args.threads, "--threads", minimum=1)
    check_number(args.timeout, "--timeout (s)", minimum=0.0, exclusive_minimum=True)
    if args.out.suffix.lower() not in (".tif", ".tiff"):
        raise ParameterError(f"--out {str(args.out)!r}: the output is a GeoTIFF, give it a .tif name")
    if args.out.is_dir():
        raise ParameterError(f"--out {str(args.out)!r} is a folder")
    check_writable(args.out.parent, "--out folder")
    return pols


def run(args: argparse.Namespace) -> int:
    from bigearthnet_s1.preprocess import preprocess
    from bigearthnet_s1.safe import open_safe

    pols = check_arguments(args)
    if args.engine == "snap":
        from bigearthnet_s1 import gpt

        gpt.find_gpt()  # stop at once, with the install hint, where SNAP is missing
        options = gpt.GptOptions(threads=args.threads, memory=args.memory, timeout=args.timeout)
    else:
        options = None
    with open_safe(args.product) as safe:
        start = safe.start_time
    tile = resolve_tile(args.tile, s2_root=args.s2_root, tile_json=args.tile_json, time=args.time, product_start=start)
    flagged: list[str] = []
    if args.flagged is not None:
        flagged = [ln.strip() for ln in args.flagged.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    out = preprocess(
        args.product, tile, args.out, engine=args.engine, graph=args.graph, dem=args.dem,
        polarisations=pols, flagged=flagged, gpt_options=options, geometry=args.geometry,
    )
    print(out)
    return 0
