"""What validating an archive finds: the report, and the warnings both layouts share.

:func:`bigearthnet_s1.archive.validate_archive` checks an archive (v1.0 patch folders with
:mod:`bigearthnet_s1.archive`'s rules, a ``BigEarthNet-S1/`` v2 tree with
:mod:`bigearthnet_s1.archive_v2`'s) and fills one :class:`ValidationReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bigearthnet_s1.labels import nomenclature

__all__ = ["ValidationReport", "label_warnings", "WARN_UNLABELED", "WARN_UNKNOWN_CLASS", "WARN_19_IN_V1"]


@dataclass
class ValidationReport:
    """Result of ``archive.validate_archive``: count of good patches and the bad ones with reasons."""

    root: Path
    ok: int = 0
    bad: list[tuple[Path, list[str]]] = field(default_factory=list)
    #: warning -> patches it concerns (valid patches can have warnings, e.g. no labels)
    warnings: dict[str, list[Path]] = field(default_factory=dict)
    layouts: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + len(self.bad)

    def warn(self, warning: str, patch: Path) -> None:
        self.warnings.setdefault(warning, []).append(patch)

    def check_all(self, dirs: Sequence[Path], check: Callable[[Path], tuple[list[str], list[str]]],
                  workers: int) -> None:
        """Run ``check`` (a patch folder -> its reasons, its warnings) over ``dirs`` on
        ``workers`` threads and record each patch as ok or bad, with its warnings."""
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(check, dirs))
        for d, (reasons, warnings) in zip(dirs, results, strict=True):
            if reasons:
                self.bad.append((d, reasons))
            else:
                self.ok += 1
            for w in warnings:
                self.warn(w, d)

    def warning_counts(self) -> dict[str, int]:
        """How many patches each warning concerns (most frequent first)."""
        return dict(sorted(((w, len(p)) for w, p in self.warnings.items()), key=lambda kv: (-kv[1], kv[0])))

    def reason_counts(self) -> dict[str, int]:
        """How many patches fail for each reason (reasons without their numbers)."""
        counts: dict[str, int] = {}
        for _, reasons in self.bad:
            for r in {r.split(":")[0] for r in reasons}:
                counts[r] = counts.get(r, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "layouts": list(self.layouts),
            "ok": self.ok,
            "bad": [{"patch": str(p), "reasons": r} for p, r in self.bad],
            "warnings": {w: {"count": len(p), "patches": [str(x) for x in p[:100]]}
                         for w, p in self.warnings.items()},
        }


#: Warning texts of the validators of both layouts.
WARN_UNLABELED = "no labels: no label source knew the patch (see --labels-from and relabel)"
WARN_UNKNOWN_CLASS = "labels outside the BigEarthNet nomenclatures"
WARN_19_IN_V1 = "19-class labels in a v1 JSON (torchgeo's BigEarthNet reads 43-class names)"


def label_warnings(labels: Any, *, layout: str = "v1") -> list[str]:
    """Warnings about a patch's label list (see ``archive.validate_archive``)."""
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        return []  # a format error, reported as such
    if not labels:
        return [WARN_UNLABELED]
    n = nomenclature(labels)
    if n is None:
        return [WARN_UNKNOWN_CLASS]
    if n == 19 and layout == "v1":
        return [WARN_19_IN_V1]
    return []
