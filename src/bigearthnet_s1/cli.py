"""Command-line entry point ``bigearthnet-s1``.

Each sub-command lives in ``bigearthnet_s1.commands.<name>`` and defines
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their command runs, so ``bigearthnet-s1 --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from bigearthnet_s1 import redact
from bigearthnet_s1.errors import BigEarthNetS1Error

#: command name -> one-line help. The module is ``bigearthnet_s1.commands.<name>``.
COMMANDS: dict[str, str] = {
    "tiles": "print the S2 tile acquisitions of a BigEarthNet-S2 archive or table as JSON lines",
    "validate": "check every patch of a BigEarthNet-S1 archive (v1.0 or v2 layout)",
    "select": "search Sentinel-1 IW GRD products and select one per relative orbit per tile",
    "download": "download selected products into the product store (resumable, verified)",
    "simulate": "write a synthetic Sentinel-1 IW GRDH product in SAFE format",
    "preprocess": "run the preprocessing graph on a product for one S2 tile",
    "build": "run the whole pipeline for some tiles without Airflow",
    "relabel": "fill or replace the labels of an existing archive from a label source",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigearthnet-s1", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse global options and the command name first; the command's own parser takes the rest.
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # every log line and error message leaves redacted (credentials from the environment too)
    redact.register_environment()
    redact.install()
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"bigearthnet_s1.commands.{args.command}")
    cmd_parser = argparse.ArgumentParser(
        prog=f"bigearthnet-s1 {args.command}", description=COMMANDS[args.command]
    )
    module.add_arguments(cmd_parser)
    cmd_args = cmd_parser.parse_args(rest)
    for key, value in vars(cmd_args).items():  # --password, --token, user info in URLs
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and redact.is_secret_key(key):
                redact.register_secret(v)
            elif isinstance(v, str) and "://" in v:
                redact.register_url(v)
    try:
        return int(module.run(cmd_args) or 0)
    except BigEarthNetS1Error as exc:
        print(f"bigearthnet-s1 {args.command}: error: {redact.redact(str(exc))}", file=sys.stderr)
        return 1
    except Exception:  # a bug or an unforeseen failure: the traceback, redacted
        print(redact.redact(traceback.format_exc()), file=sys.stderr, end="")
        print(f"bigearthnet-s1 {args.command}: internal error (traceback above)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
