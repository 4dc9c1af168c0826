"""Split files of the v1 layout, where torchgeo's ``datasets.BigEarthNet`` reads them.

torchgeo's ``BigEarthNet(root, split=...)`` opens ``<root>/bigearthnet-{train,val,test}.csv``
(all three must exist), each line ``<S2 patch name>,<S1 patch name>`` without a header, and
the S1 patches in ``<root>/BigEarthNet-S1-v1.0/<S1 patch name>/`` (labels from the ``labels``
of the single ``*.json`` there, 43-class names; bands: the sorted ``*.tif``, i.e. VH, VV).

So the split files belong beside the archive folder when that folder is named
``BigEarthNet-S1-v1.0`` (``--archive data/BigEarthNet-S1-v1.0``, then
``BigEarthNet(root="data", bands="s1")``); for any other archive folder name they are
written inside it. They are written only when some patch has a split (reBEN gives one:
"train", "validation" -> ``val``, "test"); patches without a split are in none of them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bigearthnet_s1.atomic import atomic_write_text
from bigearthnet_s1.errors import ArchiveError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: The folder name torchgeo's BigEarthNet expects for the S1 archive.
TORCHGEO_V1_DIR = "BigEarthNet-S1-v1.0"
#: reBEN split -> torchgeo's split file name.
SPLIT_FILES = {"train": "bigearthnet-train.csv", "validation": "bigearthnet-val.csv",
               "test": "bigearthnet-test.csv"}


def split_dir(root: str | os.PathLike[str]) -> Path:
    """Where the split files go: the parent of an archive named ``BigEarthNet-S1-v1.0`` (the
    torchgeo root), else the archive folder itself."""
    root = Path(root).absolute()
    return root.parent if root.name == TORCHGEO_V1_DIR else root


def write_split_files(root: str | os.PathLike[str], index: pd.DataFrame) -> list[Path]:
    """Write the three split files from v1 index rows (``s2_name``, ``s1_name``, ``split``,
    in index order) when at least one row has a split; return the files written ([] if none)."""
    if index.empty or "split" not in index or index["split"].isna().all():
        return []
    lines: dict[str, list[str]] = {s: [] for s in SPLIT_FILES}
    for s2, s1, split in zip(index["s2_name"], index["s1_name"], index["split"], strict=True):
        if isinstance(split, str):
            if split not in lines:
                raise ArchiveError(f"patch {s1}: split {split!r} is not one of {', '.join(SPLIT_FILES)}")
            lines[split].append(f"{s2},{s1}\n")
    folder = split_dir(root)
    out = []
    try:
        for split, fname in SPLIT_FILES.items():
            out.append(atomic_write_text(folder / fname, "".join(lines[split])))
    except OSError as exc:
        raise ArchiveError(f"cannot write the split files in {folder}: {exc}") from exc
    log.info("split files in %s: %s", folder, ", ".join(f"{s} {len(v)}" for s, v in lines.items()))
    return out
