"""Fill or replace the labels of an existing archive, rasters untouched (``bigearthnet-s1 relabel``).

For every v1 patch the JSON is rewritten with the labels the source gives its
``corresponding_s2_patch``: the same bytes a fresh build with that label source writes
(``archive.encode_metadata`` of the JSON with only ``labels`` changed), each file replaced
atomically (a hidden temporary beside it, then a rename). The index parts get the same labels,
``labels_known`` and, when the source has splits (reBEN), ``split``; then ``merge_index``
rebuilds ``index.parquet``, ``patches.geojson`` and what the loaders read (v2
``metadata.parquet``, split files). Patches the source does not know keep what they have and
are reported. Run it when no build is writing to the archive.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bigearthnet_s1.archive import encode_metadata, iter_patch_dirs, merge_index
from bigearthnet_s1.archive_index import INDEX_DIR, index_schema, write_index_part
from bigearthnet_s1.atomic import atomic_path
from bigearthnet_s1.errors import ArchiveError
from bigearthnet_s1.labels import LabelSource, open_label_source

log = logging.getLogger(__name__)

_TMP_SUFFIX = ".relabel"


@dataclass
class RelabelReport:
    """What :func:`relabel_archive` did: patches seen, JSONs rewritten (``changed``), index
    rows updated, and the S1 patches the source could not label (``missing``)."""

    root: Path
    source: str
    patches: int = 0
    changed: int = 0
    index_rows: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        return self.patches - len(self.missing)

    def to_json(self) -> dict[str, Any]:
        return {"archive": str(self.root), "source": self.source, "patches": self.patches,
                "labelled": self.labelled, "json_rewritten": self.changed, "index_rows": self.index_rows,
                "unlabeled": len(self.missing), "missing": list(self.missing)}


def relabel_archive(root: str | os.PathLike[str], source: LabelSource | str | os.PathLike[str]) -> RelabelReport:
    """Give the patches of the archive ``root`` (v1 and/or v2 layout) the labels ``source`` knows."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"archive folder not found: {root}")
    src = source if isinstance(source, LabelSource) else open_label_source(source)
    report = RelabelReport(root, src.describe())
    for d in iter_patch_dirs(root):
        report.patches += 1
        if _relabel_json(d, src, report):
            report.changed += 1
    parts = sorted((root / INDEX_DIR).glob("*.parquet"))
    for part in parts:
        report.index_rows += _relabel_index_part(root, part, src, report)
    if parts:
        merge_index(root)
    log.info("relabel %s: %d patches, %d labelled from %s, %d JSON rewritten, %d index rows; %d unlabeled",
             root, report.patches, report.labelled, src.describe(), report.changed, report.index_rows,
             len(report.missing))
    return report


def _sweep(folder: Path, json_name: str) -> None:
    """Remove temporaries a killed relabel left beside ``json_name``."""
    for entry in os.scandir(folder):
        if entry.name.startswith(f".{json_name}.") and entry.name.endswith(_TMP_SUFFIX):
            Path(entry.path).unlink(missing_ok=True)


def _relabel_json(d: Path, src: LabelSource, report: RelabelReport) -> bool:
    js = d / f"{d.name}_labels_metadata.json"
    _sweep(d, js.name)
    try:
        old = js.read_bytes()
        meta = json.loads(old)
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{js}: cannot read the patch JSON ({exc})") from exc
    if not isinstance(meta, dict) or "labels" not in meta or not isinstance(meta.get("corresponding_s2_patch"), str):
        raise ArchiveError(f"{js}: not a BigEarthNet-S1 patch JSON (no labels / corresponding_s2_patch)")
    labels = src.lookup(meta["corresponding_s2_patch"])
    if labels is None:
        report.missing.append(d.name)
        return False
    new = encode_metadata({k: (list(labels) if k == "labels" else v) for k, v in meta.items()})
    if new == old:
        return False
    try:
        with atomic_path(js, suffix=_TMP_SUFFIX) as tmp:
            tmp.write_bytes(new)
    except OSError as exc:
        raise ArchiveError(f"{js}: cannot rewrite ({exc})") from exc
    return True


def _rows(part: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    yield from pq.read_table(part, schema=index_schema()).to_pylist()


def _relabel_index_part(root: Path, part: Path, src: LabelSource, report: RelabelReport) -> int:
    """Update one index part; v2 rows (no JSON) also count as patches of the report."""
    rows = list(_rows(part))
    changed = 0
    for r in rows:
        v2 = str(r.get("path") or r["s1_name"]) != r["s1_name"]
        if v2:
            report.patches += 1
        labels = src.lookup(r["s2_name"])
        if labels is None:
            if v2:
                report.missing.append(r["s1_name"])
            continue
        split = src.split_of(r["s2_name"]) if src.splits else r["split"]
        new = {"labels": list(labels), "labels_known": True, "split": split}
        if any(r[k] != v for k, v in new.items()):
            r.update(new)
            changed += 1
    if changed:
        write_index_part(root, part.stem, rows)
    return changed
