"""Bad trigger input: the first task fails at once with a clear message and nothing is written.

Runs the real DAG with dag.test() on a real PostgreSQL metadata DB, one run per bad input.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bad_runs(af, postgres, s2_example: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("bad-input")
    home = base / "airflow-home"
    home.mkdir()
    env = af.env(home, postgres.create_database("bad_input"))
    af.migrate(env)
    catalog = base / "catalog"
    catalog.mkdir()
    blocker = base / "a-file"
    blocker.write_text("not a folder\n")
    work = base / "work"
    common = {"s2_source": str(s2_example), "catalog": "local", "catalog_root": str(catalog),
              "work_dir": str(work)}
    cases = {
        "unknown_tile": {"tiles": ["33UUP", "99XXX"]},
        "empty_window": {"start": "2017-06-14T00:00:00Z", "end": "2017-06-13T00:00:00Z"},
        "window_without_tiles": {"start": "2016-01-01T00:00:00Z", "end": "2016-02-01T00:00:00Z"},
        "missing_connection": {"catalog": "cdse", "catalog_conn_id": "no_such_catalog_conn"},
        "unwritable_archive": {"archive_dir": str(blocker / "archive")},
    }
    runs = [{"conf": {**common, **c}, "logical_date": f"2030-01-{i + 1:02d}T00:00:00Z"}
            for i, c in enumerate(cases.values())]
    results = af.dag_test(env, runs)
    return {"results": dict(zip(cases, results, strict=True)), "work": work, "blocker": blocker}


EXPECTED = {
    "unknown_tile": "unknown tile(s) 99XXX",
    "empty_window": "empty time window",
    "window_without_tiles": "no S2 tile acquisition",
    "missing_connection": "Airflow Connection 'no_such_catalog_conn'",
    "unwritable_archive": "cannot be created",
}


@pytest.mark.postgres
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_first_task_fails_clearly_and_nothing_is_written(bad_runs: dict, case: str) -> None:
    run = bad_runs["results"][case]
    assert run["state"] == "failed", run["state"]
    states = {t["task_id"]: t for t in run["tis"] if t["map_index"] == -1}
    first = states["discover_tiles"]
    assert first["state"] == "failed"
    assert first["try_number"] == 1, "bad input must not be retried"
    for tid, t in states.items():
        if tid != "discover_tiles":
            assert t["state"] in ("upstream_failed", "skipped", "failed", "None"), (tid, t)
    # dag.test runs tasks in process: their log lines are in the driver's output
    log = run["output"] + "\n".join(run["logs"].values())
    assert EXPECTED[case] in log, log[-3000:]
    assert "Retry policy decision" in log and "action=fail" in log
    # nothing written: neither the work folder nor an archive appeared
    assert not bad_runs["work"].exists()
    assert bad_runs["blocker"].read_text() == "not a folder\n"
