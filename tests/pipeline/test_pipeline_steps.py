"""The pipeline's steps one by one: parameters, discovery, planning, fault hook, failures, summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bigearthnet_s1 import pipeline
from bigearthnet_s1.errors import SelectionError

UTC = UTC


def test_run_window_explicit_scheduled_manual_and_empty() -> None:
    d0, d1 = datetime(2017, 6, 13, tzinfo=UTC), datetime(2017, 6, 14, tzinfo=UTC)
    assert pipeline.run_window(None, None, run_type="scheduled", interval_start=d0, interval_end=d1) == (d0, d1)
    assert pipeline.run_window(None, None, run_type="backfill", interval_start=d0, interval_end=d1) == (d0, d1)
    assert pipeline.run_window(None, None, run_type="manual", interval_start=d0, interval_end=d1) == (None, None)
    # explicit values win; naive means UTC; a date alone is midnight
    assert pipeline.run_window("2017-06-01", "2017-07-01T12:00:00", run_type="scheduled",
                               interval_start=d0, interval_end=d1) == (
        datetime(2017, 6, 1, tzinfo=UTC), datetime(2017, 7, 1, 12, tzinfo=UTC))
    with pytest.raises(pipeline.ParameterError, match="empty time window"):
        pipeline.run_window("2017-06-14", "2017-06-13")
    with pytest.raises(pipeline.ParameterError, match="not an ISO date"):
        pipeline.run_window("yesterday", None)


def test_filter_tiles_by_id_key_and_half_open_window(s2_example: Path) -> None:
    acqs = pipeline.read_tiles(s2_example)
    assert [a.key for a in pipeline.filter_tiles(acqs, ["35VPK"])] == [
        "35VPK_20170924T093019", "35VPK_20180204T094200"]
    assert [a.key for a in pipeline.filter_tiles(acqs, ["35vpk_20180204t094200"])] == ["35VPK_20180204T094200"]
    t = datetime(2017, 6, 13, 10, 10, 31, tzinfo=UTC)  # 33UUP's sensing time
    assert [a.tile_id for a in pipeline.filter_tiles(acqs, start=t, end=t + timedelta(seconds=1))] == ["33UUP"]
    assert pipeline.filter_tiles(acqs, start=t - timedelta(seconds=1), end=t) == []  # end is exclusive
    with pytest.raises(pipeline.ParameterError, match=r"unknown tile\(s\) 99XXX, 61UUP in tiles: not MGRS"):
        pipeline.filter_tiles(acqs, ["33UUP", "99XXX", "61UUP", "33UUQ"])  # the grammar first
    with pytest.raises(pipeline.ParameterError, match=r"unknown tile\(s\) 33UUQ, 34UUP: not in"):
        pipeline.filter_tiles(acqs, ["33UUP", "33UUQ", "34UUP"])  # then the source's tiles


def test_check_writable_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "archive"
    pipeline.check_writable(target, "output archive")
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(pipeline.ParameterError, match="is not a folder"):
        pipeline.check_writable(blocker / "archive", "output archive")


def test_prepare_run_checks_before_writing(s2_example: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    work = pipeline.WorkDir(tmp_path / "work")
    bad = [
        (dict(catalog="local", catalog_root=str(tmp_path / "nope")), "local catalogue folder"),
        (dict(catalog="cdse", catalog_root=""), "needs credentials"),
        (dict(catalog="ftp", catalog_root=str(catalog)), "catalog must be one of"),
        (dict(catalog="local", catalog_root=str(catalog), dem="/no/such/dem.tif"), "DEM '/no/such/dem.tif'"),
        (dict(catalog="local", catalog_root=str(catalog), engine="gdal"), "engine must be one of"),
        (dict(catalog="local", catalog_root=str(catalog), tiles=["31UFS"]), "unknown tile"),
    ]
    env = {k: os.environ.pop(k) for k in ("CDSE_USER", "CDSE_TOKEN", "BIGEARTHNET_S1_CDSE_USER") if k in os.environ}
    try:
        for kwargs, message in bad:
            with pytest.raises(pipeline.ParameterError, match=message):
                pipeline.prepare_run(work, str(s2_example), **kwargs)
            assert not work.root.exists(), kwargs
    finally:
        os.environ.update(env)
    refs = pipeline.prepare_run(work, str(s2_example), tiles=["29UPU"], catalog="local", catalog_root=str(catalog))
    assert refs == [{"key": "29UPU_20170617T113321", "tile_id": "29UPU",
                     "sensing_time": "2017-06-17T11:33:21+00:00", "patches": 2}]
    tile = pipeline.load_tile(work, "29UPU_20170617T113321")
    assert {p.s2_name for p in tile.patches} == {"S2A_MSIL2A_20170617T113321_4_55", "S2A_MSIL2A_20170617T113321_36_85"}


def test_plan_downloads_each_product_once_and_labels_pairs() -> None:
    a = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
    b = "S1B_IW_GRDH_1SDV_20170614T051122_20170614T051147_006147_00AC99_1234"
    out = pipeline.plan([{"key": "33UUP_20170613T101031", "products": [a, b]},
                         {"key": "33UUQ_20170613T101031", "products": [a]},
                         {"key": "32TQM_20170613T101031", "products": []}, None])
    assert out["products"] == [a, b]
    assert [(p["tile"], p["product"]) for p in out["pairs"]] == [
        ("33UUP_20170613T101031", a), ("33UUP_20170613T101031", b), ("33UUQ_20170613T101031", a)]
    assert out["pairs"][0]["label"] == "33UUP_20170613T101031 S1A 20170613T165043"
    assert out["tiles"] == ["33UUP_20170613T101031", "33UUQ_20170613T101031"]


def test_candidate_catalog_filters_by_time_and_footprint() -> None:
    from shapely.geometry import box

    from bigearthnet_s1.catalog import ProductRecord

    def rec(name: str, day: int, geom) -> ProductRecord:
        t = datetime(2017, 6, day, 16, 50, 43, tzinfo=UTC)
        return ProductRecord(name=name, uuid=None, mission="S1A", start_time=t, stop_time=t + timedelta(seconds=25),
                             absolute_orbit=17018, relative_orbit=168, orbit_direction="ASCENDING",
                             datatake_id="01C579", footprint=geom, source="local")

    names = [f"S1A_IW_GRDH_1SDV_201706{d:02d}T165043_201706{d:02d}T165108_017018_01C579_7EEC" for d in (10, 13, 16)]
    cat = pipeline.CandidateCatalog([rec(names[0], 10, box(12, 47, 15, 49)), rec(names[1], 13, box(12, 47, 15, 49)),
                                     rec(names[2], 16, box(20, 47, 22, 49))])
    t = datetime(2017, 6, 13, tzinfo=UTC)
    got = cat.search(box(13, 48, 14, 48.5), t - timedelta(days=3), t + timedelta(days=4))
    assert [r.name for r in got] == names[:2]


def _faults():
    """The test-only fault hook (tests/faults.py), loaded by path (importlib import mode)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bigearthnet_s1_test_faults", Path(__file__).parents[1] / "faults.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fault_hook_fails_once_per_step_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = _faults()
    work = pipeline.WorkDir(tmp_path)
    monkeypatch.delenv(faults.FAIL_ONCE_ENV, raising=False)
    assert faults.install_from_env() == []  # inactive without the variable
    faults.fail_once(work, "preprocess", "33UUP_x", "")  # nothing listed: passes
    spec = "preprocess:33UUP"
    with pytest.raises(faults.InjectedFault, match="preprocess for 33UUP_x"):
        faults.fail_once(work, "preprocess", "33UUP_x", spec)
    faults.fail_once(work, "preprocess", "33UUP_x", spec)  # second attempt passes
    faults.fail_once(work, "preprocess", "29SND_y", spec)  # other keys untouched
    faults.fail_once(work, "download", "33UUP_x", spec)
    # installed, it wraps the pipeline's own step (what the DAG's task calls), and nothing else
    real = pipeline.preprocess_pair
    monkeypatch.setenv(faults.FAIL_ONCE_ENV, "preprocess:29SND")
    assert faults.install(faults.os.environ[faults.FAIL_ONCE_ENV], monkeypatch.setattr) == ["preprocess_pair"]
    assert pipeline.preprocess_pair is not real and pipeline.fetch_product.__name__ == "fetch_product"
    with pytest.raises(faults.InjectedFault, match="preprocess for 29SND_y"):
        pipeline.preprocess_pair(work, "29SND_y", "S1A_x")
    with pytest.raises(pipeline.PipelineError):  # the retry reaches the real step (no tile saved here)
        pipeline.preprocess_pair(work, "29SND_y", "S1A_x")
    with pytest.raises(ValueError, match="unknown step"):
        faults.install("preproces", monkeypatch.setattr)


def test_assemble_names_what_is_missing_and_summary_says_why(big_tile_work) -> None:
    from bigearthnet_s1.tiles import TileAcquisition

    work, key, tile = big_tile_work(2)
    other = "S1B_IW_GRDH_1SDV_20170614T051122_20170614T051147_006147_00AC99_1234"
    sel = json.loads(work.selection_file(key).read_text())
    pipeline.write_json(work.selection_file(key), {**sel, "products": sel["products"] + [{"name": other}]})
    with pytest.raises(pipeline.PipelineError, match=f"preprocessed scene.*missing: {other}"):
        pipeline.assemble_tile(work, key)
    empty = TileAcquisition.from_json({**tile.to_json(), "sensing_time": "2017-06-20T10:10:31Z"})
    pipeline.write_json(work.tile_file(empty.key), empty.to_json())
    pipeline.write_json(work.candidates_file(empty.key), {"products": []})
    pipeline.write_json(work.selection_file(empty.key), {"products": [], "coverage": 0.0})
    with pytest.raises(SelectionError, match="no Sentinel-1 product covers"):
        pipeline.assemble_tile(work, empty.key)
    report = pipeline.summarise(work, [key, empty.key, "33UUP_20170701T101031"], run_id="t")
    assert report["ok"] == 0 and report["tiles"] == 3
    assert report["failed"] == {
        key: f"preprocessing did not finish for {other}",
        empty.key: "no Sentinel-1 product covers the tile's patches in the search window",
        "33UUP_20170701T101031": "not discovered in this work folder",
    }
    assert json.loads(work.summary_file("t").read_text())["failed"] == report["failed"]


@pytest.fixture(scope="module")
def catalog_33uup(s2_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bigearthnet_s1 import demo, tiles

    tile = next(t for t in tiles.read_s2_archive(s2_example) if t.tile_id == "33UUP")
    catalog = tmp_path_factory.mktemp("catalog")
    for j, plan in enumerate(demo.product_plan(tile)[:2]):
        demo._simulate(catalog, plan, seed=j, tile=tile)
    return catalog


def test_build_command_end_to_end_offline(s2_example: Path, catalog_33uup: Path, tmp_path: Path) -> None:
    from bigearthnet_s1.archive import validate_archive

    cmd = [sys.executable, "-m", "bigearthnet_s1.cli", "build", str(s2_example), "--tiles", "33UUP",
           "--catalog", "local", "--catalog-root", str(catalog_33uup), "--work", str(tmp_path / "w"),
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["ok"] == 1 and report["written"] == 1 and report["products"] == 1
    assert report["coverage"] == {"33UUP_20170613T101031": 1.0}
    archive = tmp_path / "w" / "archive"
    assert validate_archive(archive).ok == 1
    assert (tmp_path / "w" / "quicklooks" / "33UUP_20170613T101031.png").stat().st_size > 1000
    sel = json.loads((tmp_path / "w" / "selection" / "33UUP_20170613T101031.json").read_text())
    kept = [d for d in sel["decisions"] if d["kept"]]
    assert len(kept) == 1 and len(sel["decisions"]) == 2  # two orbits offered, one chosen, both explained
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["written"] == 0
    bad = subprocess.run(cmd[:6] + ["99XXX"] + cmd[7:], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "unknown tile(s) 99XXX" in bad.stderr


def test_summary_does_not_count_a_result_left_by_an_earlier_selection(big_tile_work) -> None:
    # run 1 assembled the tile; run 2 selected another product too, whose preprocessing failed,
    # so run 2's assemble_tile failed: the summary must not report the tile ok off run 1's result
    work, key, _ = big_tile_work(2)
    first = pipeline.assemble_tile(work, key)
    assert first["patches"] == 4 and work.result_file(key).exists()
    assert pipeline.summarise(work, [key], run_id="run1")["failed"] == {}
    other = "S1B_IW_GRDH_1SDV_20170614T051122_20170614T051147_006147_00AC99_1234"
    sel = json.loads(work.selection_file(key).read_text())
    pipeline.write_json(work.selection_file(key), {**sel, "products": sel["products"] + [{"name": other}]})
    with pytest.raises(pipeline.PipelineError, match="missing"):
        pipeline.assemble_tile(work, key)
    report = pipeline.summarise(work, [key], run_id="run2")
    assert report["ok"] == 0 and report["patches"] == 0
    assert report["failed"] == {key: f"preprocessing did not finish for {other}"}


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_stored_product_found_bad_while_preprocessing_leaves_the_store(s2_example: Path, catalog_33uup: Path,
                                                                         tmp_path: Path) -> None:
    """The issue's case 3 (second half): a zip in the store that is refused later must not
    stay there looking verified. Here its VV measurement is float32 (value 1e6) of the right
    size: preprocessing refuses it (case 2) and moves it to <name>.zip.bad."""
    import shutil
    import zipfile

    import numpy as np
    import rasterio
    import shapely

    from bigearthnet_s1.catalog import make_record
    from bigearthnet_s1.errors import SafeError
    from bigearthnet_s1.safe import open_safe
    from bigearthnet_s1.store import ProductStore

    src = sorted(catalog_33uup.glob("*.SAFE"))[0]
    name = src.name.removesuffix(".SAFE")
    safe = tmp_path / src.name
    shutil.copytree(src, safe)
    with open_safe(safe) as p:
        rel, ann = p.file("measurement", "VV"), p.annotation("VV")
    (safe / rel).unlink()
    with rasterio.open(safe / rel, "w", driver="GTiff", width=ann.samples, height=ann.lines, count=1,
                       dtype="float32") as ds:
        ds.write(np.full((1, ann.lines, ann.samples), 1e6, np.float32))
    work = pipeline.WorkDir(tmp_path / "work")
    store = ProductStore(work.products)
    with zipfile.ZipFile(store.zip_path(name), "w") as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                zf.write(f, f"{safe.name}/{f.relative_to(safe).as_posix()}")
    rec = make_record(name, source="dhus", footprint=shapely.box(12.0, 41.0, 13.0, 42.0),
                      orbit_direction="ASCENDING", url="https://hub.example/odata/v1/Products('x')/$value", online=True)
    pipeline.write_json(work.record_file(name), rec.to_json())
    key = pipeline.prepare_run(work, str(s2_example), tiles=["33UUP"], catalog_root=str(catalog_33uup))[0]["key"]
    assert store.has(name)
    with pytest.raises(SafeError) as exc:
        pipeline.preprocess_pair(work, key, name)
    msg = str(exc.value)
    assert name in msg and "float32" in msg and f"moved to {name}.zip.bad" in msg
    assert not store.has(name) and (work.products / f"{name}.zip.bad").is_file()
    assert not work.processed_file(key, name).exists()
    assert [p.name for p in work.processed_dir(key).iterdir()] == []  # no scratch folder left either
