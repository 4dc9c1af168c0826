"""``bigearthnet-s1 build``: the whole pipeline for some tiles, in this process, without Airflow.

Same steps and work-dir layout as the DAG (``bigearthnet_s1.pipeline``), so a build can be
resumed by the DAG and the other way round. Hub credentials come from the environment:
``BIGEARTHNET_S1_HUB_USER`` / ``BIGEARTHNET_S1_HUB_PASSWORD``, or the catalogue's own variables
(``CDSE_USER``/``CDSE_PASSWORD``, ``BIGEARTHNET_S1_DHUS_USER``/``..._PASSWORD``, for ASF
``BIGEARTHNET_S1_ASF_TOKEN``/``EARTHDATA_TOKEN`` or ``EARTHDATA_USERNAME``/``..._PASSWORD``, see
``bigearthnet_s1.catalog.open_catalog``); never from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from bigearthnet_s1 import pipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="'table', a BigEarthNet-S2 folder, a patch-name table file, or a reBEN "
                                       "metadata.parquet / v2 folder (BigEarthNet-S2/ and/or metadata.parquet)")
    parser.add_argument("--tiles", nargs="*", default=[], metavar="TILE",
                        help="MGRS tile ids (33UUP) or tile keys (33UUP_20170613T101031); default: all")
    parser.add_argument("--start", help="S2 sensing time from (ISO date/date-time, UTC, inclusive)")
    parser.add_argument("--end", help="S2 sensing time until (ISO date/date-time, UTC, exclusive)")
    parser.add_argument("--catalog", choices=pipeline.CATALOG_KINDS, default="local")
    parser.add_argument("--catalog-root", default="", help="folder of .SAFE/.zip products (local)")
    parser.add_argument("--catalog-url", default=None, help="hub URL (dhus, cdse, asf)")
    parser.add_argument("--work", required=True, type=Path, help="work folder (products/, processed/, ...)")
    parser.add_argument("--archive", type=Path, default=None, help="output archive (default WORK/archive)")
    parser.add_argument("--engine", choices=pipeline.ENGINES, default="native")
    parser.add_argument("--dem", default="flat", help="flat, auto, srtm1, glo30 or a raster path")
    parser.add_argument("--tolerance", type=float, default=0.999, help="coverage tolerance (0..1)")
    parser.add_argument("--target", choices=("patches", "tile"), default="patches")
    parser.add_argument("--window-days", type=float, default=3.0, help="search window, +- days")
    parser.add_argument("--max-window-days", type=float, default=9.0, help="widest search window, +- days")
    parser.add_argument("--labels-from", default="", metavar="SOURCE",
                        help="take the patch labels from a BigEarthNet-S2 v1.0 folder (43 classes), a reBEN "
                             "metadata.parquet (19 classes, with splits) or a BigEarthNet-S1 v1.0 archive")
    parser.add_argument("--layout", choices=pipeline.LAYOUTS, default="v1",
                        help="v1: BigEarthNet-S1 v1.0 folders with JSON (default); v2: reBEN's "
                             "BigEarthNet-S1/<prefix>/<s1_name>/ and metadata.parquet")
    parser.add_argument("--pairing", choices=pipeline.PAIRINGS, default="select",
                        help="select: choose S1 products by the selection rule (default); reben: the "
                             "acquisitions reBEN's s1_name names (needs a reBEN source)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    options: dict[str, str] = {}
    if args.catalog_url:
        options["url"] = args.catalog_url
    # the same account serves the search and the downloads (the catalogue's own variables too)
    pairs = [("BIGEARTHNET_S1_HUB_USER", "BIGEARTHNET_S1_HUB_PASSWORD")] + {
        "cdse": [("BIGEARTHNET_S1_CDSE_USER", "BIGEARTHNET_S1_CDSE_PASSWORD"), ("CDSE_USER", "CDSE_PASSWORD")],
        "dhus": [("BIGEARTHNET_S1_DHUS_USER", "BIGEARTHNET_S1_DHUS_PASSWORD")],
    }.get(args.catalog, [])
    for user_var, password_var in pairs:
        if os.environ.get(user_var):
            options["user"] = os.environ[user_var]
            options["password"] = os.environ.get(password_var, "")
            break
    # prepare_run checks every parameter before anything runs; these are checked here already
    # because a NaN or huge number of days would break the timedelta below with a raw error
    from bigearthnet_s1.params import check_selection, check_time

    check_selection(tolerance=args.tolerance, target=args.target, window_days=args.window_days,
                    max_window_days=args.max_window_days)
    work = pipeline.WorkDir(args.work, args.archive)
    report = pipeline.build(
        work, args.source, tiles=args.tiles,
        start=check_time(args.start, "--start"), end=check_time(args.end, "--end"),
        catalog=args.catalog, catalog_root=args.catalog_root, catalog_options=options, dem=args.dem,
        engine=args.engine, tolerance=args.tolerance, target=args.target,
        window=timedelta(days=args.window_days), max_window=timedelta(days=args.max_window_days),
        progress=not args.no_progress and sys.stderr.isatty(), labels_from=args.labels_from,
        layout=args.layout, pairing=args.pairing)
    print(json.dumps(report, indent=1, sort_keys=True))
    return 1 if report["failed"] else 0
