"""``bigearthnet-s1 validate ARCHIVE``: check every patch folder against the BigEarthNet-S1
v1.0 format (and a ``BigEarthNet-S1/`` tree against the v2 / reBEN layout); print a summary
(ok count, bad count with reasons, warnings with counts, e.g. unlabeled patches); exit 1 if
any is bad (warnings alone do not fail)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="a BigEarthNet-S1 archive folder")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("--workers", type=int, default=4, help="reader threads (default 4)")
    parser.add_argument(
        "--show", type=int, default=20, metavar="N", help="list at most N bad patches (default 20)"
    )


def run(args: argparse.Namespace) -> int:
    from bigearthnet_s1.archive import validate_archive
    from bigearthnet_s1.params import check_existing, check_int

    check_existing(args.archive, "ARCHIVE", kind="dir")
    check_int(args.workers, "--workers", minimum=1, maximum=256)
    check_int(args.show, "--show", minimum=0)
    report = validate_archive(args.archive, workers=args.workers)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(report.to_json(), indent=1) + "\n")
        return 1 if report.bad else 0
    out.write(f"archive: {report.root}\n")
    out.write(f"layout: {' + '.join(report.layouts)}\n")
    out.write(f"ok: {report.ok}\n")
    out.write(f"bad: {len(report.bad)}\n")
    warnings = report.warning_counts()
    out.write(f"warnings: {sum(warnings.values())}\n")
    for warning, n in warnings.items():
        out.write(f"  {n:8d}  {warning}\n")
    if report.bad:
        out.write("reasons (patches per reason):\n")
        for reason, n in report.reason_counts().items():
            out.write(f"  {n:8d}  {reason}\n")
        out.write("bad patches:\n")
        for path, reasons in report.bad[: args.show]:
            out.write(f"  {path.name}\n")
            for r in reasons:
                out.write(f"      {r}\n")
        if len(report.bad) > args.show:
            out.write(f"  ... and {len(report.bad) - args.show} more (--show N or --json)\n")
    return 1 if report.bad else 0
