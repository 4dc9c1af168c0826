"""Rewrite requirements.txt from ``pip freeze`` (read on stdin, in its order), leaving out the
test-only packages (pinned in requirements-test.txt and not in requirements.txt), and keeping
requirements.txt's header and the comment lines above a pin. Used by ``make freeze``."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    return {canonical(line.split("==")[0]): line for line in lines if "==" in line and not line.startswith("#")}


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    old = (root / "requirements.txt").read_text().splitlines()
    test_only = set(pins((root / "requirements-test.txt").read_text().splitlines())) - set(pins(old))
    frozen = pins([line.strip() for line in sys.stdin if line.strip() and not line.startswith("-e")])
    header: list[str] = []
    comments: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in old:
        if "==" in line and not line.startswith("#"):
            comments[canonical(line.split("==")[0])] = pending
            pending = []
        elif not comments and line.startswith("#"):
            header.append(line)
        else:
            pending.append(line)
    out = list(header)
    for name in frozen:
        if name not in test_only:
            out += comments.get(name, []) + [frozen[name]]
    (root / "requirements.txt").write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
