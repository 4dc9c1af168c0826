"""``bigearthnet-s1 relabel ARCHIVE --labels-from SOURCE``: fill or replace an archive's labels.

Rasters are not touched. v1 JSONs are rewritten atomically, byte-identical to what a build
with that label source writes; the index, ``metadata.parquet`` (v2) and the split files are
updated. Prints a JSON report listing the patches the source could not label (exit 0: an
incomplete source is not an error; `validate` counts unlabeled patches as a warning).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a BigEarthNet-S1 archive built by this project (v1 or v2 layout)")
    parser.add_argument("--labels-from", required=True, metavar="SOURCE",
                        help="a BigEarthNet-S2 v1.0 folder, a reBEN metadata.parquet (or its folder), or a "
                             "BigEarthNet-S1 v1.0 archive")
    parser.add_argument("--show", type=int, default=20, metavar="N",
                        help="list at most N patches that could not be labelled (default 20; all with --json)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")


def run(args: argparse.Namespace) -> int:
    from bigearthnet_s1.relabel import relabel_archive

    report = relabel_archive(args.archive, args.labels_from)
    out = report.to_json()
    if not args.json and len(report.missing) > args.show:
        out["missing"] = report.missing[: args.show] + [f"... and {len(report.missing) - args.show} more"]
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0
