"""Real BigEarthNet example patches shipped inside the ``bigearthnet-common`` wheel.

Six S2 patches (five tiles) and their six S1 counterparts, used by the offline demo and
the tests. Extraction is idempotent and atomic: a sample folder appears whole or not at all.
"""

from __future__ import annotations

import os
import tarfile
from importlib import resources
from pathlib import Path

from bigearthnet_s1.atomic import sweep, temporary_dir
from bigearthnet_s1.errors import InputError

S1_EXAMPLE = "BigEarthNet-S1-Example"
S2_EXAMPLE = "BigEarthNet-S2-Example"


def _extract(name: str, dest: Path) -> Path:
    target = dest / name
    if target.is_dir():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    try:
        ref = resources.files("bigearthnet_common").joinpath(f"{name}.tar.bz2")
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise InputError("the example patches need the package bigearthnet-common==2.8.0") from exc
    sweep(dest)  # extractions of killed runs
    with temporary_dir(target) as tmp:
        with resources.as_file(ref) as tar_path, tarfile.open(tar_path) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp / name, target)
    return target


def s2_example(dest: str | os.PathLike[str]) -> Path:
    """Extract the BigEarthNet-S2 example patches into ``dest``; return the archive folder."""
    return _extract(S2_EXAMPLE, Path(dest))


def s1_example(dest: str | os.PathLike[str]) -> Path:
    """Extract the BigEarthNet-S1 example patches into ``dest``; return the archive folder."""
    return _extract(S1_EXAMPLE, Path(dest))


def patch_name_table() -> Path:
    """Path of the full S1/S2 patch-name table (``s1_s2_name_country_season.csv.bz2``)."""
    ref = resources.files("bigearthnet_common").joinpath("s1_s2_name_country_season.csv.bz2")
    with resources.as_file(ref) as path:
        return Path(path)
