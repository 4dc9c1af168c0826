"""Patch labels: the two BigEarthNet nomenclatures and the sources that know a patch's labels.

Nomenclatures (CORINE Land Cover 2018 class names, as the archives spell them):

* 43 classes: BigEarthNet v1.0 (the S2 and S1 patch JSONs, ``labels``);
* 19 classes: BigEarthNet v2 / reBEN (``metadata.parquet``, ``labels``) and the 19-class
  variant of v1 (Sumbul et al. 2021). :data:`TO_19` maps 43 names to 19 names (``None``: the
  class has no 19-class counterpart and is dropped, as in the 19-class nomenclature).

Label sources (:func:`open_label_source`):

* a BigEarthNet-S2 v1.0 folder (patch folders with ``<name>_labels_metadata.json``): 43 names;
* a reBEN ``metadata.parquet`` (or a folder holding one): 19 names, plus the official split;
* a BigEarthNet-S1 v1.0 archive (S1 patch JSONs name their S2 patch and carry its labels).

In the v1 folders an empty ``labels`` list means "not known" (every v1.0 patch has at least
one label; an archive built here without a label source writes ``[]``).

A source answers by S2 patch: lookups use a key that is the same for a v1 S2 name, the same
patch in a reBEN ``patch_id`` and a v1 name with the archive's dropped-zero hour quirk
(``S2B_MSIL2A_20170924T93020_69_24``): mission, sensing time (UTC, to the second), col, row.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bigearthnet_s1._time import format_compact
from bigearthnet_s1.acquisition import TileAcquisition
from bigearthnet_s1.errors import LabelError, TileError
from bigearthnet_s1.names import S1_PATCH_NAME_RE, S2_PATCH_NAME_RE, s2_product_time

log = logging.getLogger(__name__)

#: BigEarthNet v1.0's 43 classes, in the order of its label index.
CLASSES_43: tuple[str, ...] = (
    "Continuous urban fabric",
    "Discontinuous urban fabric",
    "Industrial or commercial units",
    "Road and rail networks and associated land",
    "Port areas",
    "Airports",
    "Mineral extraction sites",
    "Dump sites",
    "Construction sites",
    "Green urban areas",
    "Sport and leisure facilities",
    "Non-irrigated arable land",
    "Permanently irrigated land",
    "Rice fields",
    "Vineyards",
    "Fruit trees and berry plantations",
    "Olive groves",
    "Pastures",
    "Annual crops associated with permanent crops",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland",
    "Moors and heathland",
    "Sclerophyllous vegetation",
    "Transitional woodland/shrub",
    "Beaches, dunes, sands",
    "Bare rock",
    "Sparsely vegetated areas",
    "Burnt areas",
    "Inland marshes",
    "Peatbogs",
    "Salt marshes",
    "Salines",
    "Intertidal flats",
    "Water courses",
    "Water bodies",
    "Coastal lagoons",
    "Estuaries",
    "Sea and ocean",
)

#: The 19 classes of BigEarthNet v2 (reBEN), in the order of its label index.
CLASSES_19: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

_GROUPS_19: dict[str, tuple[str, ...]] = {
    "Urban fabric": ("Continuous urban fabric", "Discontinuous urban fabric"),
    "Arable land": ("Non-irrigated arable land", "Permanently irrigated land", "Rice fields"),
    "Permanent crops": ("Vineyards", "Fruit trees and berry plantations", "Olive groves",
                        "Annual crops associated with permanent crops"),
    "Natural grassland and sparsely vegetated areas": ("Natural grassland", "Sparsely vegetated areas"),
    "Moors, heathland and sclerophyllous vegetation": ("Moors and heathland", "Sclerophyllous vegetation"),
    "Transitional woodland, shrub": ("Transitional woodland/shrub",),
    "Inland wetlands": ("Inland marshes", "Peatbogs"),
    "Coastal wetlands": ("Salt marshes", "Salines"),
    "Inland waters": ("Water courses", "Water bodies"),
    "Marine waters": ("Coastal lagoons", "Estuaries", "Sea and ocean"),
}


def _build_to_19() -> dict[str, str | None]:
    out: dict[str, str | None] = {c: None for c in CLASSES_43}
    for c19, members in _GROUPS_19.items():
        for c43 in members:
            out[c43] = c19
    for c in CLASSES_19:  # classes spelled the same in both nomenclatures
        if c in out and c not in _GROUPS_19:
            out[c] = c
    return out


#: 43-class name -> 19-class name (None: dropped in the 19-class nomenclature: road and rail,
#: ports, airports, mines, dumps, construction sites, green urban areas, sport and leisure,
#: bare rock, burnt areas, intertidal flats).
TO_19: dict[str, str | None] = _build_to_19()
_INDEX_19 = {c: i for i, c in enumerate(CLASSES_19)}
_SET_43 = frozenset(CLASSES_43)
_SET_19 = frozenset(CLASSES_19)


def nomenclature(labels: Iterable[str]) -> int | None:
    """43 or 19: the nomenclature every name of ``labels`` belongs to (43 when both fit, as
    for "Pastures"); None when some name is in neither (or the names mix the two)."""
    names = set(labels)
    if names <= _SET_43:
        return 43
    if names <= _SET_19:
        return 19
    return None


def to_19(labels: Sequence[str]) -> tuple[str, ...]:
    """The 19-class labels of a 43-class (or already 19-class) label list, in the 19-class
    index order, without duplicates. Raises :class:`LabelError` for a name in neither."""
    out: set[str] = set()
    for name in labels:
        if name in _SET_19 and name not in TO_19:
            out.add(name)
        elif name in TO_19:
            c19 = TO_19[name]
            if c19 is not None:
                out.add(c19)
        else:
            raise LabelError(f"label {name!r} is not a BigEarthNet class name (43- or 19-class nomenclature)")
    return tuple(sorted(out, key=_INDEX_19.__getitem__))


# --------------------------------------------------------------------------- patch keys


def _key(mission: str, sensing: str, col: int, row: int) -> str:
    return f"{mission}_{sensing}_{col}_{row}"


@functools.lru_cache(maxsize=4096)
def _time_key(product: str) -> str:
    # "S2B_MSIL2A_20170924T93020" -> "20170924T093020" (once per product: 500,000 patch keys)
    return format_compact(s2_product_time(product))


def patch_key(s2_name: str) -> str:
    """Lookup key of an S2 patch: ``<mission>_<YYYYmmddTHHMMSS>_<col>_<row>``.

    Accepts a v1 name (``S2A_MSIL2A_20170613T101031_87_48``, also with v1's quirky times) and
    a reBEN ``patch_id`` (``S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48``).
    """
    parts = s2_name.split("_")
    if len(parts) == 8:  # reBEN patch_id: drop baseline, relative orbit and tile
        parts = parts[:3] + parts[6:]
    name = "_".join(parts)
    if len(parts) != 5 or not S2_PATCH_NAME_RE.match(name):
        raise TileError(f"not a BigEarthNet-S2 patch name or reBEN patch_id: {s2_name!r}")
    return _key(parts[0], _time_key("_".join(parts[:3])), int(parts[3]), int(parts[4]))


# --------------------------------------------------------------------------- sources


@dataclass
class LabelSource:
    """Labels (and, for reBEN, splits) of S2 patches, keyed by :func:`patch_key`.

    ``kind``: "s2-v1" (BigEarthNet-S2 v1.0 folder), "s1-v1" (BigEarthNet-S1 v1.0 archive) or
    "reben" (metadata.parquet). ``nomenclature``: 43 or 19.
    """

    path: Path
    kind: str
    nomenclature: int
    labels: dict[str, tuple[str, ...]]
    splits: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        what = {"s2-v1": "BigEarthNet-S2 v1.0 folder", "s1-v1": "BigEarthNet-S1 v1.0 archive",
                "reben": "reBEN metadata"}[self.kind]
        return f"{what} {self.path} ({len(self.labels)} patches, {self.nomenclature}-class labels)"

    def lookup(self, s2_name: str) -> tuple[str, ...] | None:
        """Labels of the S2 patch ``s2_name`` (v1 name or reBEN patch_id); None if unknown."""
        try:
            return self.labels.get(patch_key(s2_name))
        except TileError:
            return None

    def split_of(self, s2_name: str) -> str | None:
        """reBEN split ("train", "validation", "test") of the patch; None if unknown."""
        try:
            return self.splits.get(patch_key(s2_name))
        except TileError:
            return None


def open_label_source(path: str | os.PathLike[str]) -> LabelSource:
    """Read a label source: a BigEarthNet-S2 v1.0 folder, a BigEarthNet-S1 v1.0 archive, or a
    reBEN ``metadata.parquet`` (a .parquet file, or a folder holding ``metadata.parquet``).

    Raises :class:`LabelError` naming the path when it is none of these or cannot be read.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".parquet":
        return _reben_source(p)
    if p.is_dir():
        if (p / "metadata.parquet").is_file():
            return _reben_source(p / "metadata.parquet")
        return _folder_source(p)
    if p.exists():
        raise LabelError(f"label source {p}: not a .parquet file nor a BigEarthNet folder")
    raise LabelError(f"label source not found: {p}")


def _reben_source(path: Path) -> LabelSource:
    from bigearthnet_s1.reben import read_metadata

    table = read_metadata(path, columns=("patch_id", "labels", "split"))
    labels: dict[str, tuple[str, ...]] = {}
    splits: dict[str, str] = {}
    for pid, labs, split in zip(table["patch_id"].to_pylist(), table["labels"].to_pylist(),
                                table["split"].to_pylist(), strict=True):
        try:
            k = patch_key(pid)
        except TileError as exc:
            raise LabelError(f"{path}: {exc}") from exc
        labels[k] = tuple(labs or ())
        if split:
            splits[k] = split
    bad = sorted({c for labs in labels.values() for c in labs} - _SET_19)
    if bad:
        raise LabelError(f"{path}: labels outside the 19-class nomenclature: {', '.join(map(repr, bad[:5]))}")
    return LabelSource(path, "reben", 19, labels, splits)


def _folder_source(root: Path) -> LabelSource:
    """A BigEarthNet-S2 or -S1 v1.0 folder: one JSON per patch folder (flat, or one level of
    tile folders for S2)."""
    entries = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    s1 = [e for e in entries if S1_PATCH_NAME_RE.match(e.name)]
    if s1 and not any(S2_PATCH_NAME_RE.match(e.name) for e in entries):  # (index/ etc. beside: ignored)
        return _s1_source(root, sorted(Path(e.path) for e in s1))
    from bigearthnet_s1.tiles import patch_dirs

    try:
        dirs = patch_dirs(root)
    except TileError as exc:
        raise LabelError(f"label source {root}: not a BigEarthNet-S2/S1 v1.0 folder ({exc})") from exc
    if not dirs:
        raise LabelError(f"label source {root}: no BigEarthNet-S2 or -S1 patch folders")
    labels: dict[str, tuple[str, ...]] = {}
    for d in dirs:
        labs = _json_labels(d / f"{d.name}_labels_metadata.json")
        if labs:  # every v1.0 patch has labels: an empty list says "not known"
            labels[patch_key(d.name)] = labs
    _check_43(root, labels)
    return LabelSource(root, "s2-v1", 43, labels)


def _s1_source(root: Path, dirs: list[Path]) -> LabelSource:
    labels: dict[str, tuple[str, ...]] = {}
    for d in dirs:
        js = d / f"{d.name}_labels_metadata.json"
        meta = _json(js)
        s2 = meta.get("corresponding_s2_patch")
        if not isinstance(s2, str):
            raise LabelError(f"{js}: no corresponding_s2_patch")
        try:
            labs = _labels_of(meta, js)
            if labs:  # [] in an S1 JSON: a patch built without labels (v1.0 has none empty)
                labels[patch_key(s2)] = labs
        except TileError as exc:
            raise LabelError(f"{js}: {exc}") from exc
    _check_43(root, labels)
    return LabelSource(root, "s1-v1", 43, labels)


def _check_43(root: Path, labels: Mapping[str, tuple[str, ...]]) -> None:
    bad = sorted({c for labs in labels.values() for c in labs} - _SET_43)
    if bad:
        raise LabelError(f"{root}: labels outside the 43-class nomenclature: {', '.join(map(repr, bad[:5]))}")


def _json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise LabelError(f"{path}: missing (a patch folder without its JSON)") from None
    except (OSError, ValueError) as exc:
        raise LabelError(f"{path}: cannot read JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise LabelError(f"{path}: JSON is not an object")
    return meta


def _labels_of(meta: Mapping, path: Path) -> tuple[str, ...]:
    labs = meta.get("labels")
    if not isinstance(labs, list) or not all(isinstance(x, str) for x in labs):
        raise LabelError(f"{path}: 'labels' is not a list of strings")
    return tuple(labs)


def _json_labels(path: Path) -> tuple[str, ...]:
    return _labels_of(_json(path), path)


# --------------------------------------------------------------------------- applying


@dataclass
class LabelStats:
    """How many patches a source labelled (``labelled``) and which it could not (``missing``,
    S2 names)."""

    patches: int = 0
    labelled: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def unlabeled(self) -> int:
        return len(self.missing)


def apply_labels(acquisitions: Sequence[TileAcquisition], source: LabelSource) -> tuple[list[TileAcquisition], LabelStats]:
    """Give every patch the labels (and the split, when the source has splits) ``source``
    knows for it. A patch the source does not know keeps what it had (labels and
    ``labels_known``) and is listed in the stats' ``missing``."""
    stats = LabelStats()
    out: list[TileAcquisition] = []
    for a in acquisitions:
        patches = []
        for p in a.patches:
            stats.patches += 1
            labs = source.lookup(p.s2_name)
            if labs is None:
                stats.missing.append(p.s2_name)
                patches.append(p)
                continue
            stats.labelled += 1
            split = source.split_of(p.s2_name) if source.splits else p.split
            patches.append(replace(p, labels=labs, labels_known=True, split=split))
        out.append(replace(a, patches=tuple(patches)))
    return out, stats


def unlabeled_count(acquisitions: Iterable[TileAcquisition]) -> int:
    """Patches whose labels no source knew (``labels_known`` False)."""
    return sum(1 for a in acquisitions for p in a.patches if not p.labels_known)
