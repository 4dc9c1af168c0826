"""``bigearthnet-s1 tiles S2_ROOT_OR_TABLE [--tile 33UUP ...]``: one JSON object per line per
S2 tile acquisition (tile id, EPSG, sensing time in ISO UTC, grid corner, patch count,
footprints in WGS84 as GeoJSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        help="a BigEarthNet-S2 archive folder, the patch-name table "
        "(s1_s2_name_country_season.csv[.bz2]) or a reBEN metadata.parquet / v2 folder; default: the "
        "table bundled with bigearthnet-common",
    )
    parser.add_argument(
        "--tile", action="append", metavar="MGRS", help="keep only this MGRS tile (repeatable), e.g. 33UUP"
    )
    parser.add_argument(
        "--patches", action="store_true", help="include the full patch list (TileAcquisition.to_json())"
    )


def run(args: argparse.Namespace) -> int:
    from bigearthnet_s1.params import check_existing, check_tile_ids, require_tiles
    from bigearthnet_s1.tiles import read_patch_table, read_tiles

    wanted = check_tile_ids(args.tile, "--tile") if args.tile else None
    if args.tile and not wanted:
        from bigearthnet_s1.errors import ParameterError

        raise ParameterError("--tile: empty tile id")
    if args.source is not None:
        check_existing(args.source, "S2 source")
    acqs = read_patch_table(tiles=wanted) if args.source is None else read_tiles(args.source, tiles=wanted)
    # a tile asked for by name that the source lacks is an error, not an empty output
    require_tiles(wanted or (), acqs, str(args.source or "the bundled patch-name table"), "--tile")
    out = sys.stdout
    for acq in acqs:
        record = acq.summary()
        if args.patches:
            record["patches"] = [p.to_json() for p in acq.patches]
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
    out.flush()
    return 0
