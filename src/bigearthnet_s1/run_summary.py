"""What a run did: counts, coverage and failures of its tiles, and why a tile stopped.

Read off the work folder (:mod:`bigearthnet_s1.workdir`) and the archive's index parts, after
the steps ran; :func:`summarise` also merges the archive's index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bigearthnet_s1.redact import redact_obj
from bigearthnet_s1.workdir import WorkDir, read_json, write_json

log = logging.getLogger(__name__)

__all__ = ["summarise"]


def _failure_reason(work: WorkDir, key: str) -> str:
    """Which step stopped a tile, read off the work dir (the last output present)."""
    if not work.tile_file(key).exists():
        return "not discovered in this work folder"
    if not work.selection_file(key).exists():
        if not work.candidates_file(key).exists():
            return "footprint lookup (catalogue search) did not finish"
        return "orbit selection did not finish"
    sel = read_json(work.selection_file(key), f"selection of {key}")
    names = [p["name"] for p in sel.get("products", [])]
    if not names:
        return "no Sentinel-1 product covers the tile's patches in the search window"
    missing = [n for n in names if not work.processed_file(key, n).exists()]
    if missing:
        return "preprocessing did not finish for " + ", ".join(missing)
    return "mosaic/clip/write did not finish"


def summarise(work: WorkDir, keys: Sequence[str], *, run_id: str = "manual",
              results: Iterable[Mapping[str, Any] | None] = ()) -> dict[str, Any]:
    """Counts, coverage and failures of a run's tiles; merges the archive's index.

    Returns (and saves as ``<work>/summaries/<run_id>.json``) a small JSON dict: ``tiles``,
    ``ok``, ``failed`` ({key: reason}), ``patches`` (in the archive for these tiles),
    ``written`` (by this run: the sum over ``results``, the :func:`assemble_tile` returns of
    this run), ``products``, ``coverage`` ({key: fraction of the target}),
    ``uncovered_patches``, ``unlabeled_patches`` (patches of these tiles in the archive whose
    labels no source knew), ``index`` (path of the merged index or None).
    """
    ok: list[str] = []
    failed: dict[str, str] = {}
    coverage: dict[str, float] = {}
    patches = written = uncovered = 0
    products: set[str] = set()
    for key in keys:
        res_path = work.result_file(key)
        selected: set[str] | None = None
        if work.selection_file(key).exists():
            sel = read_json(work.selection_file(key), f"selection of {key}")
            coverage[key] = round(float(sel.get("coverage", 0.0)), 6)
            selected = {p["name"] for p in sel.get("products", [])}
            products.update(selected)
        res = read_json(res_path, f"result of {key}") if res_path.exists() else None
        if res is not None and selected is not None and set(res.get("scenes", ())) != selected:
            res = None  # assembled from an earlier selection: not this selection's result
        if res is not None:
            ok.append(key)
            patches += int(res["patches"])
            uncovered += int(res.get("uncovered", 0))
        else:
            failed[key] = _failure_reason(work, key)
    wanted = set(keys)
    written = sum(int(r.get("written", 0)) for r in results if r and r.get("key") in wanted)
    index = None
    if ok:
        from bigearthnet_s1.archive import merge_index

        index = str(merge_index(work.archive))
    unlabeled = _unlabeled_in_index(work, ok)
    report = redact_obj({"run_id": run_id, "tiles": len(keys), "ok": len(ok), "failed": failed, "patches": patches,
                         "written": written, "uncovered_patches": uncovered, "unlabeled_patches": unlabeled,
                         "products": len(products), "coverage": coverage, "archive": str(work.archive),
                         "index": index})
    write_json(work.summary_file(run_id), report)
    log.info("summary: %d/%d tiles ok, %d patches (%d written now), %d products, %d failed",
             len(ok), len(keys), patches, written, len(products), len(failed))
    if unlabeled:
        log.warning("summary: %d of %d patches have no labels (labels_known false in the index); "
                    "run 'bigearthnet-s1 relabel %s --labels-from SOURCE' to add them", unlabeled, patches,
                    work.archive)
    return report


def _unlabeled_in_index(work: WorkDir, keys: Sequence[str]) -> int:
    """Patches of the tiles ``keys`` whose labels no source knew, from their index parts (a part
    written before ``labels_known`` existed counts a patch without labels as unlabeled)."""
    import pyarrow.parquet as pq

    n = 0
    for key in keys:
        part = work.archive / "index" / f"{key}.parquet"
        if not part.exists():
            continue
        t = pq.read_table(part)
        known = t["labels_known"].to_pylist() if "labels_known" in t.column_names else [None] * t.num_rows
        n += sum(1 for k, labs in zip(known, t["labels"].to_pylist(), strict=True)
                 if k is False or (k is None and not labs))
    return n
