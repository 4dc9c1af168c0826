"""One rule for inputs: every CLI verb checks what it was given before any work or any file
is written, and a tile asked for by name that the source lacks is an error, never an empty
result (issue 14, cases 1 and 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigearthnet_s1 import cli, pipeline
from bigearthnet_s1.errors import ParameterError


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize(("tiles", "message"), [
    (["33ZZZ"], "unknown tile(s) 33ZZZ in --tile: not MGRS tile ids"),  # band Z does not exist
    (["34UUP"], "unknown tile(s) 34UUP: not in"),  # grammatical, not in the folder
    (["33UUP", "T61UUP"], "unknown tile(s) T61UUP in --tile"),  # zone 61
])
def test_tiles_of_a_folder_refuse_unknown_tiles(s2_example: Path, capsys, tiles, message) -> None:
    rc, out, err = _run(capsys, "tiles", s2_example, *[x for t in tiles for x in ("--tile", t)])
    assert rc == 1 and out == "" and message in err


def test_tiles_of_the_table_refuse_a_tile_it_lacks_beside_one_it_has(capsys) -> None:
    rc, out, err = _run(capsys, "tiles", "--tile", "33UUP", "--tile", "01CDH")
    assert rc == 1 and out == "" and "unknown tile(s) 01CDH: not in the bundled patch-name table" in err
    rc, out, _ = _run(capsys, "tiles", "--tile", "T33UUP")
    assert rc == 0 and out.count("\n") >= 1 and all('"tile_id":"33UUP"' in line for line in out.splitlines())


@pytest.mark.parametrize(("extra", "message"), [
    (["--tiles", "33ZZZ"], "unknown tile(s) 33ZZZ in --tiles"),
    (["--tiles", "34UUP"], "unknown tile(s) 34UUP: not in"),
    (["--tiles", " , "], "no tile id given"),
    (["--tolerance", "5"], "coverage tolerance must be <= 1; got 5.0"),
    (["--tolerance", "0"], "coverage tolerance must be > 0"),
    (["--window-days", "0"], "search window (days) must be > 0"),
    (["--window-days", "5", "--max-window-days", "4"], "narrower than the search window"),
    (["--step-days", "-1"], "window step (days) must be > 0"),
])
def test_select_checks_everything_before_searching(s2_example: Path, tmp_path: Path, capsys, extra, message) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    out_file = tmp_path / "out" / "sel.jsonl"
    rc, out, err = _run(capsys, "select", s2_example, "--catalog", "local", "--root", catalog,
                        "--output", out_file, *extra)
    assert rc == 1 and out == "" and message in err
    assert not (tmp_path / "out").exists()


def test_select_without_a_catalogue_folder(s2_example: Path, tmp_path: Path, capsys) -> None:
    rc, _, err = _run(capsys, "select", s2_example, "--catalog", "local", "--root", tmp_path / "nope")
    assert rc == 1 and "is not a folder: it does not exist" in err
    rc, _, err = _run(capsys, "select", s2_example, "--catalog", "local")
    assert rc == 1 and "--root: the local catalogue needs its folder" in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--tolerance", "5"], "coverage tolerance must be <= 1; got 5.0"),
    (["--tolerance", "nan"], "coverage tolerance must be a finite number"),
    (["--target", "patches", "--window-days", "-1"], "search window (days) must be > 0"),
    (["--max-window-days", "1e9"], "widest search window (days) must be <= 60"),
    (["--tiles", "33UUP", "33ZZZ"], "unknown tile(s) 33ZZZ in tiles"),
    (["--dem", "no-such-dem.tif"], "neither one of flat, auto, srtm1, glo30 nor an existing raster"),
])
def test_build_fails_before_the_search_and_writes_nothing(s2_example: Path, tmp_path: Path, capsys, extra,
                                                          message) -> None:
    """The issue's case 7: `build --tolerance 5` searched, wrote work files, then blamed the
    orbit selection. Now the parameters fail first, with their own name, and nothing is written."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    work = tmp_path / "work"
    args = ["build", s2_example, "--catalog", "local", "--catalog-root", catalog, "--work", work, "--no-progress"]
    if "--tiles" not in extra:
        args += ["--tiles", "33UUP"]
    rc, out, err = _run(capsys, *args, *extra)
    assert rc == 1 and out == "" and message in err
    assert "orbit selection" not in err
    assert _files(work) == []


def test_prepare_run_checks_the_selection_params_of_the_later_tasks(s2_example: Path, tmp_path: Path) -> None:
    """The DAG's discover_tiles passes every param to prepare_run: a bad one stops the run there."""
    from datetime import timedelta

    catalog = tmp_path / "catalog"
    catalog.mkdir()
    work = pipeline.WorkDir(tmp_path / "work")
    common = {"tiles": ["33UUP"], "catalog_root": str(catalog)}
    bad = [({"tolerance": 1.5}, "coverage tolerance must be <= 1"),
           ({"target": "everything"}, "coverage target must be one of patches, tile"),
           ({"window": timedelta(days=4), "max_window": timedelta(days=2)}, "narrower"),
           ({"poll_interval": 0}, "poll interval (s) must be > 0"),
           ({"offline_wait": -1.0}, "wait for archived products (s) must be > 0"),
           ({"tiles": ["33uup_2017"]}, "unknown tile(s) 33uup_2017 in tiles")]
    for kwargs, message in bad:
        with pytest.raises(ParameterError) as exc:
            pipeline.prepare_run(work, str(s2_example), **{**common, **kwargs})
        assert message in str(exc.value)
    assert _files(work.root) == []
    refs = pipeline.prepare_run(work, str(s2_example), **common, tolerance=1.0, target="tile")
    assert [r["tile_id"] for r in refs] == ["33UUP"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--tile", "33ZZZ"], "--tile '33ZZZ' is not an MGRS tile id"),
    (["--polarisations", "VV,XX"], "unknown polarisation(s) XX"),
    (["--polarisations", "VV,vv"], "names a polarisation twice"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--timeout", "0"], "--timeout (s) must be > 0"),
    (["--graph", "no-such-graph.xml"], "--graph 'no-such-graph.xml' is not a file: it does not exist"),
    (["--time", "yesterday"], "--time 'yesterday': expected ISO 8601"),
])
def test_preprocess_checks_its_options_before_reading(tmp_path: Path, capsys, extra, message) -> None:
    product = tmp_path / "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC.zip"
    product.write_bytes(b"not read: the options fail first")
    out = tmp_path / "out" / "scene.tif"
    args = ["preprocess", product, "--out", out]
    if "--tile" not in extra:
        args += ["--tile", "33UUP"]
    rc, _, err = _run(capsys, *args, *extra)
    assert rc == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_preprocess_output_must_be_a_geotiff_name(tmp_path: Path, capsys) -> None:
    product = tmp_path / "p.zip"
    product.write_bytes(b"x")
    rc, _, err = _run(capsys, "preprocess", product, "--tile", "33UUP", "--out", tmp_path / "scene.png")
    assert rc == 1 and "give it a .tif name" in err
    rc, _, err = _run(capsys, "preprocess", tmp_path / "missing.zip", "--tile", "33UUP", "--out", tmp_path / "a.tif")
    assert rc == 1 and "product" in err and "does not exist" in err


@pytest.mark.parametrize(("extra", "message"), [
    (["--tile", "33ZZZ"], "--tile '33ZZZ' is not an MGRS tile id"),
    (["--tile", "33UUP", "--swath-position", "2"], "--swath-position must be <= 1"),
    (["--tile", "33UUP", "--margin", "-5"], "--margin (m) must be >= 0"),
    (["--tile", "33UUP", "--dem", "nope.tif"], "--dem 'nope.tif' is not a file: it does not exist"),
])
def test_simulate_checks_its_options_before_computing(tmp_path: Path, capsys, extra, message) -> None:
    out = tmp_path / "sim"
    rc, _, err = _run(capsys, "simulate", "--time", "2017-06-13T16:50:43", "--out", out, *extra)
    assert rc == 1 and message in err and not out.exists()


def test_validate_checks_its_options(tmp_path: Path, capsys) -> None:
    rc, _, err = _run(capsys, "validate", tmp_path / "nope")
    assert rc == 1 and "ARCHIVE" in err and "is not a folder: it does not exist" in err
    rc, _, err = _run(capsys, "validate", tmp_path, "--workers", "0")
    assert rc == 1 and "--workers must be >= 1" in err
    rc, _, err = _run(capsys, "validate", tmp_path)  # an empty folder: nothing to validate is an error
    assert rc == 1 and "no patch folders" in err
