"""``bigearthnet-s1 select S2_ROOT --catalog {dhus,cdse,asf,local} ...``

Reads the S2 tile acquisitions (a BigEarthNet-S2 archive folder or the patch-name table),
searches the catalogue around each sensing time, selects one product per relative orbit until
the tile's patches are covered, and prints one JSON object per tile (JSON lines): the chosen
products, the coverage, the time gaps and, unless ``--brief``, every candidate's decision.

Credentials: ``--user`` and the environment (``BIGEARTHNET_S1_DHUS_PASSWORD``,
``CDSE_PASSWORD``); ``--password`` exists but shows the password to other local users
through the process list. ASF's search needs no login (its downloads do: see ``download``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("s2_root", metavar="S2_ROOT",
                        help="BigEarthNet-S2 archive folder or patch-name table (.csv/.csv.bz2)")
    parser.add_argument("--catalog", choices=("dhus", "cdse", "asf", "local"), required=True, help="catalogue backend")
    parser.add_argument("--root", help="local: folder of .SAFE folders / .zip files")
    parser.add_argument("--url", help="dhus: API root (env BIGEARTHNET_S1_DHUS_URL); cdse: OData root; "
                        "asf: Search API endpoint (env BIGEARTHNET_S1_ASF_URL)")
    parser.add_argument("--user", help="hub user (else env BIGEARTHNET_S1_DHUS_USER / CDSE_USER)")
    parser.add_argument("--password", help="hub password (prefer the environment: BIGEARTHNET_S1_DHUS_PASSWORD / CDSE_PASSWORD)")
    parser.add_argument("--tiles", help="comma-separated MGRS tiles to keep, e.g. 33UUP,35VPK")
    parser.add_argument("--window-days", type=float, default=3.0, help="initial search half-window (days, default 3)")
    parser.add_argument("--step-days", type=float, default=3.0, help="widening step (days, default 3)")
    parser.add_argument("--max-window-days", type=float, default=12.0, help="widest half-window (days, default 12)")
    parser.add_argument("--tolerance", type=float, default=0.999, help="fraction of the target to cover (default 0.999)")
    parser.add_argument("--target", choices=("patches", "tile"), default="patches",
                        help="cover the union of the patch squares (default) or the whole tile")
    parser.add_argument("--brief", action="store_true", help="only the chosen products and figures, no decisions")
    parser.add_argument("--output", type=Path, help="write the JSON lines to this file (atomically) instead of stdout")
    parser.add_argument("--fail-uncovered", action="store_true", help="exit 1 when a tile stays uncovered")


def brief(sel: Any) -> dict[str, Any]:
    """A short JSON-safe summary of a Selection."""
    return {
        "tile_key": sel.tile_key,
        "covered": sel.covered,
        "coverage": round(sel.coverage, 6),
        "uncovered_fraction": round(sel.uncovered_fraction, 6),
        "window_days": sel.window_days,
        "products": [
            {
                "name": p.name,
                "relative_orbit": p.relative_orbit,
                "orbit_direction": p.orbit_direction,
                "time_gap_s": gap,
                "time_gap_days": round(gap / 86400.0, 3),
                "added_fraction": round(added, 6),
                "url": p.url,
            }
            for p, gap, added in zip(sel.products, sel.time_gaps, sel.added_fraction, strict=True)
        ],
        "candidates": len(sel.decisions),
    }


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bigearthnet_s1.atomic import atomic_write_text
    from bigearthnet_s1.catalog import open_catalog
    from bigearthnet_s1.errors import ParameterError
    from bigearthnet_s1.params import (
        check_existing,
        check_selection,
        check_tile_ids,
        check_writable,
        require_tiles,
    )
    from bigearthnet_s1.selection import search_and_select
    from bigearthnet_s1.tiles import read_tiles

    # every parameter first: nothing is searched or written on bad input
    tiles_wanted = check_tile_ids(args.tiles.split(","), "--tiles") if args.tiles is not None else None
    if args.tiles is not None and not tiles_wanted:
        raise ParameterError(f"--tiles {args.tiles!r}: no tile id given")
    check_selection(tolerance=args.tolerance, target=args.target, window_days=args.window_days,
                    max_window_days=args.max_window_days, step_days=args.step_days)
    check_existing(args.s2_root, "S2_ROOT")
    if args.catalog == "local":
        if not args.root:
            raise ParameterError("--root: the local catalogue needs its folder of .SAFE/.zip products")
        check_existing(args.root, "--root (local catalogue folder)", kind="dir")
    if args.output is not None:
        check_writable(Path(args.output).parent, "--output folder")
    tiles = read_tiles(args.s2_root, tiles=tiles_wanted)
    require_tiles(tiles_wanted or (), tiles, str(args.s2_root), "--tiles")
    options: dict[str, Any] = {"url": args.url, "user": args.user, "password": args.password}
    if args.catalog == "local":
        options = {"root": args.root}
    catalog = open_catalog(args.catalog, **options)
    lines: list[str] = []
    uncovered = 0
    for tile in tqdm(tiles, desc="select", unit="tile", disable=len(tiles) < 2 or not sys.stderr.isatty()):
        sel = search_and_select(
            catalog,
            tile,
            window=timedelta(days=args.window_days),
            step=timedelta(days=args.step_days),
            max_window=timedelta(days=args.max_window_days),
            tolerance=args.tolerance,
            target=args.target,
        )
        uncovered += not sel.covered
        line = json.dumps(brief(sel) if args.brief else sel.to_json(), separators=(",", ":"))
        if args.output is None:
            print(line, flush=True)
        else:
            lines.append(line)
    if args.output is not None:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, "".join(line + "\n" for line in lines))
    log.info("selected products for %d tile acquisitions (%d not covered)", len(tiles), uncovered)
    return 1 if (uncovered and args.fail_uncovered) else 0
