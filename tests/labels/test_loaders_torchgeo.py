"""The archive opens in torchgeo's ``BigEarthNet`` and ``BigEarthNetV2`` unchanged.

torchgeo needs a newer Python than this project's 3.11 venv, so these tests state the contract
its loaders rely on, as read in torchgeo's ``torchgeo/datasets/bigearthnet.py`` (main, 2025-08),
and exercise it on archives built here; the access steps below are written for these tests:

``BigEarthNet(root, split, bands="s1", num_classes=43|19)``
  * ``_verify``: ``root/bigearthnet-{train,val,test}.csv`` all exist, and ``root/BigEarthNet-S1-v1.0``;
  * ``_load_folders``: each split file's text ``.strip().splitlines()``, a line ``split(",")``
    into ``(s2_name, s1_name)``; the S1 patch folder is ``root/BigEarthNet-S1-v1.0/<s1_name>``;
  * ``_load_paths``: ``sorted(glob(folder/"*.tif"))`` (VH before VV), each read with rasterio,
    band 1, ``out_shape=(120, 120)``;
  * ``_load_target``: ``json.load(glob(folder/"*.json")[0])["labels"]``, each name looked up in
    the 43-class list (a 19-class-only name is a KeyError), mapped to 19 classes by index.

``BigEarthNetV2(root, split, bands="s1")``
  * ``_verify``: ``root/BigEarthNet-S1``, ``root/BigEarthNet-S2``, ``root/Reference_Maps`` and
    ``root/metadata.parquet`` exist (the S2 folder and reference maps come from reBEN itself);
  * ``pd.read_parquet(root/"metadata.parquet")``, rows with ``split`` == "train" /
    "validation" / "test" (torchgeo's "val" is "validation");
  * S1: ``sorted(glob(root/"BigEarthNet-S1"/"_".join(s1_name.split("_")[:-3])/s1_name/"*.tif"))``;
  * S2 and reference map: ``"_".join(patch_id.split("_")[:-2])/patch_id/`` under
    ``BigEarthNet-S2`` / ``Reference_Maps`` (``<patch_id>_reference_map.tif``);
  * labels: ``row["labels"]``, each a 19-class name (looked up in the 19-class list).
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from bigearthnet_s1 import archive, labels, reben, splits


def _read_bands(paths: list[str]) -> np.ndarray:
    out = []
    for p in paths:
        with rasterio.open(p) as ds:
            out.append(ds.read(indexes=1, out_shape=(120, 120)))
    return np.stack(out)


def _torchgeo_v1_samples(root: Path, split: str, num_classes: int = 43) -> list[dict]:
    files = [root / f"bigearthnet-{s}.csv" for s in ("train", "val", "test")]
    assert all(f.exists() for f in files) and (root / "BigEarthNet-S1-v1.0").is_dir()  # _verify
    pairs = [line.split(",") for line in (root / f"bigearthnet-{split}.csv").read_text().strip().splitlines()]
    class2idx = {c: i for i, c in enumerate(labels.CLASSES_43)}
    to19 = {i: labels.CLASSES_19.index(labels.TO_19[c]) for c, i in class2idx.items() if labels.TO_19[c]}
    out = []
    for pair in pairs:
        folder = os.path.join(root, "BigEarthNet-S1-v1.0", pair[1])
        paths = sorted(glob.glob(os.path.join(folder, "*.tif")))
        with open(glob.glob(os.path.join(folder, "*.json"))[0]) as fh:
            names = json.load(fh)["labels"]
        idx = [class2idx[n] for n in names]  # KeyError for a name outside the 43 classes
        if num_classes == 19:
            idx = [to19[i] for i in idx if i in to19]
        target = np.zeros(num_classes, dtype=int)
        target[idx] = 1
        out.append({"s2": pair[0], "s1": pair[1], "paths": paths, "image": _read_bands(paths), "label": target})
    return out


def test_torchgeo_bigearthnet_v1(build, reben_metadata: Path, s2_example: Path, example_s1: dict, names) -> None:
    """A v1 build named BigEarthNet-S1-v1.0, splits from reBEN, 43-class labels from the S2
    examples: torchgeo's root is the archive's parent, where the split files are."""
    arch, _ = build("tg/BigEarthNet-S1-v1.0", reben_metadata, layout="v1", labels_from=str(s2_example))
    root = arch.parent
    assert splits.split_dir(arch) == root
    a, b = f"{names.REAL_S1}_33UUP_87_48", f"{names.REAL_S1}_33UUP_86_48"
    assert (root / "bigearthnet-train.csv").read_text() == f"S2A_MSIL2A_20170613T101031_87_48,{a}\n"
    assert (root / "bigearthnet-test.csv").read_text() == f"{names.NEIGHBOUR_S2},{b}\n"
    assert (root / "bigearthnet-val.csv").read_text() == ""
    (train,) = _torchgeo_v1_samples(root, "train")
    assert [Path(p).name for p in train["paths"]] == [f"{a}_VH.tif", f"{a}_VV.tif"]
    arrays = archive.read_patch_arrays(arch / a)
    np.testing.assert_array_equal(train["image"], np.stack([arrays["VH"], arrays["VV"]]))
    real = example_s1["S2A_MSIL2A_20170613T101031_87_48"]
    real_labels = json.loads((real / f"{real.name}_labels_metadata.json").read_text())["labels"]
    assert [labels.CLASSES_43[i] for i in np.flatnonzero(train["label"])] == real_labels
    (train19,) = _torchgeo_v1_samples(root, "train", num_classes=19)
    assert [labels.CLASSES_19[i] for i in np.flatnonzero(train19["label"])] == list(labels.to_19(real_labels))
    (test,) = _torchgeo_v1_samples(root, "test")  # not in the S2 examples: keeps reBEN's labels
    assert [labels.CLASSES_43[i] for i in np.flatnonzero(test["label"])] == ["Pastures", "Broad-leaved forest"]
    assert archive.validate_archive(arch).bad == []


def _torchgeo_v2_samples(root: Path, split: str) -> list[dict]:
    for d in ("BigEarthNet-S1", "BigEarthNet-S2", "Reference_Maps", "metadata.parquet"):
        assert (root / d).exists(), d  # _verify
    df = pd.read_parquet(os.path.join(root, "metadata.parquet"))
    df = df[df["split"] == {"train": "train", "val": "validation", "test": "test"}[split]].reset_index(drop=True)
    class2idx = {c: i for i, c in enumerate(labels.CLASSES_19)}
    out = []
    for i in range(len(df)):
        row = df.loc[i]
        s1_name, patch_id = row["s1_name"], row["patch_id"]
        paths = sorted(glob.glob(os.path.join(root, "BigEarthNet-S1", "_".join(s1_name.split("_")[0:-3]),
                                              s1_name, "*.tif")))
        target = np.zeros(19, dtype=int)
        target[[class2idx[n] for n in df.iloc[i]["labels"]]] = 1
        s2_dir = os.path.join(root, "BigEarthNet-S2", "_".join(patch_id.split("_")[0:-2]), patch_id)
        ref_map = os.path.join(root, "Reference_Maps", "_".join(patch_id.split("_")[0:-2]), patch_id,
                               patch_id + "_reference_map.tif")
        out.append({"s1": s1_name, "paths": paths, "image": _read_bands(paths), "label": target,
                    "s2_dir": s2_dir, "reference_map": ref_map})
    return out


def test_torchgeo_bigearthnet_v2(build, reben_metadata: Path, names, tmp_path: Path) -> None:
    """A v2 build is torchgeo's root once reBEN's own S2 folder and reference maps sit beside it
    (links here; torchgeo loads them with every sample)."""
    arch, _ = build("v2-reben", reben_metadata, catalog="both", layout="v2", pairing="reben")
    for d in ("BigEarthNet-S2", "Reference_Maps"):  # stand-ins for reBEN's folders
        (tmp_path / d).mkdir()
        os.symlink(tmp_path / d, arch / d)
    try:
        (train,) = _torchgeo_v2_samples(arch, "train")
        (test,) = _torchgeo_v2_samples(arch, "test")
        assert _torchgeo_v2_samples(arch, "val") == []
    finally:
        for d in ("BigEarthNet-S2", "Reference_Maps"):
            os.unlink(arch / d)
    a = f"{names.REAL_S1}_33UUP_87_48"
    assert train["s1"] == a
    assert [Path(p).name for p in train["paths"]] == [f"{a}_VH.tif", f"{a}_VV.tif"]
    arrays = archive.read_patch_arrays(arch / "BigEarthNet-S1" / names.REAL_S1 / a)
    np.testing.assert_array_equal(train["image"], np.stack([arrays["VH"], arrays["VV"]]))
    assert [labels.CLASSES_19[i] for i in np.flatnonzero(train["label"])] == names.REBEN_ROWS[
        "S2A_MSIL2A_20170613T101031_87_48"][0]
    # the S2 side resolves into reBEN's layout (the one reben.read_reben reads)
    pid = "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"
    assert train["s2_dir"] == os.path.join(arch, reben.S2_DIR, reben.s2_product(pid), pid)
    assert test["s1"].endswith("_86_48")


def test_v2_from_the_table_names_patches_like_reben(build, example_table: Path, s2_example: Path, names) -> None:
    """Without reBEN metadata the v2 columns are derived: patch_id with the S2 relative orbit,
    43-class labels mapped to 19, no split, flags unknown."""
    arch, _ = build("labelled-v2", example_table, layout="v2", labels_from=str(s2_example))
    df = pd.read_parquet(arch / "metadata.parquet").set_index("s2v1_name")
    row = df.loc["S2A_MSIL2A_20170613T101031_87_48"]
    assert row["patch_id"] == "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"
    assert list(row["labels"]) == ["Arable land", "Land principally occupied by agriculture, with significant "
                                   "areas of natural vegetation"]
    assert pd.isna(row["split"]) and pd.isna(row["contains_seasonal_snow"])
    assert bool(df.loc[names.NEIGHBOUR_S2, "labels_known"]) is False
