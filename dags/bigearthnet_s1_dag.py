"""BigEarthNet-S1: Sentinel-1 patches for the BigEarthNet-S2 tiles, one DAG run at a time.

discover_tiles -> lookup_footprint[tile] -> select_orbits[tile] -> plan -> download[product]
-> preprocess[tile, product] -> assemble_tile[tile] (mosaic, clip, write, quicklook, index)
-> summary.

Wiring only: every task calls one step of ``bigearthnet_s1.pipeline``, imported inside the
task so that parsing this file loads neither numpy nor rasterio. XCom carries small JSON
(tile keys, product names, paths, counts); rasters live in the work dir. Every step skips
finished work, so a retried task resumes and a re-run redoes only what is missing.

Scheduled runs (and ``airflow backfill create --dag-id bigearthnet_s1 --from-date 2017-06-01
--to-date 2018-05-31``) process the S2 acquisitions sensed in the run's data interval;
manual runs process the trigger form's time window (everything when it is empty).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from bigearthnet_s1_airflow.operators import ProductDownloadOperator

DAG_ID = "bigearthnet_s1"
DOWNLOAD_POOL = "bigearthnet_s1_download"  # hubs allow few parallel downloads per user
CPU_POOL = "bigearthnet_s1_cpu"  # preprocessing and mosaicking: about one slot per core
LIGHT_POOL = "default_pool"  # catalogue queries and bookkeeping

#: The output archive as an Airflow Asset; every tile written emits an event (extra: tile, counts).
ARCHIVE = Asset(name="bigearthnet_s1_archive", uri="file:///bigearthnet-s1/archive",
                group="bigearthnet-s1")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BIGEARTHNET_S1_{name}", default)


_WORK_DIR = _env("WORK_DIR", os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")),
                                          "bigearthnet-s1"))

#: Input errors do not heal by retrying: fail at once with the library's message.
RETRY_POLICY = ExceptionRetryPolicy(rules=[
    RetryRule(exception=["bigearthnet_s1.errors.InputError",
                         "bigearthnet_s1.errors.AuthenticationError",
                         "bigearthnet_s1.errors.SelectionError",
                         "bigearthnet_s1.errors.EngineUnavailableError"],
              action=RetryAction.FAIL, reason="bad input: retrying cannot help"),
])

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "bigearthnet-s1",
    "retries": int(_env("RETRIES", "3")),
    "retry_delay": timedelta(seconds=float(_env("RETRY_DELAY", "60"))),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "retry_policy": RETRY_POLICY,
    "pool": LIGHT_POOL,
}

PARAMS = {
    "s2_source": Param(
        _env("S2_SOURCE", "table"), type="string", title="BigEarthNet-S2 source",
        description="'table' (the patch-name table shipped with bigearthnet-common), a folder of "
                    "BigEarthNet-S2 patches, or a path to s1_s2_name_country_season.csv(.bz2)."),
    "labels_from": Param(
        _env("LABELS_FROM", ""), type="string", title="Label source",
        description="Where patch labels come from when the S2 source has none (the patch table has "
                    "none): a BigEarthNet-S2 v1.0 folder (43 classes), a reBEN metadata.parquet (19 "
                    "classes, splits) or a BigEarthNet-S1 v1.0 archive. Empty: the S2 source's own. "
                    "Unlabeled patches are counted in the summary."),
    "layout": Param(
        _env("LAYOUT", "v1"), type="string", enum=["v1", "v2"], title="Archive layout",
        description="v1: BigEarthNet-S1 v1.0 (patch folders with JSON); v2: reBEN "
                    "(BigEarthNet-S1/<prefix>/<s1_name>/, metadata.parquet)."),
    "pairing": Param(
        "select", type="string", enum=["select", "reben"], title="S1 pairing",
        description="select: choose products by the selection rule; reben: the acquisitions reBEN's "
                    "s1_name names (needs a reBEN metadata.parquet as the S2 source)."),
    "tiles": Param(
        [], type="array", items={"type": "string"}, title="Tiles",
        description="MGRS tile ids (33UUP) or tile keys (33UUP_20170613T101031); empty: all."),
    "start": Param(
        None, type=["null", "string"], format="date-time", title="Window start (UTC)",
        description="S2 sensing time from (inclusive). Empty: the data interval of a scheduled run, "
                    "no limit for a manual run."),
    "end": Param(
        None, type=["null", "string"], format="date-time", title="Window end (UTC)",
        description="S2 sensing time until (exclusive)."),
    "catalog": Param(
        _env("CATALOG", "local"), type="string", enum=["local", "cdse", "dhus", "asf"],
        title="Catalogue backend",
        description="local (a folder of products), cdse (Copernicus Data Space), dhus (a DHuS hub) "
                    "or asf (Alaska Satellite Facility, NASA Earthdata login)."),
    "catalog_conn_id": Param(
        _env("CATALOG_CONN_ID", ""), type="string", title="Catalogue Connection id",
        description="Airflow Connection with the hub URL and credentials (extra: kind, root); for "
                    "asf the password is an Earthdata token (or login + password an Earthdata "
                    "account). May be empty for the local backend."),
    "catalog_root": Param(
        _env("CATALOG_ROOT", ""), type="string", title="Local catalogue folder",
        description="Folder of .SAFE/.zip products for the local backend."),
    "dem": Param(
        _env("DEM", "flat"), type="string", title="DEM",
        description="'flat', 'glo30', 'srtm1' or a GeoTIFF/VRT path."),
    "engine": Param(_env("ENGINE", "native"), type="string", enum=["native", "snap"],
                    title="Processing engine"),
    "work_dir": Param(_WORK_DIR, type="string", title="Work folder",
                      description="Holds products/, processed/ and the run bookkeeping."),
    "archive_dir": Param(_env("ARCHIVE_DIR", ""), type="string", title="Output archive",
                         description="Folder of the BigEarthNet-S1 archive; empty: <work>/archive."),
    "coverage_tolerance": Param(0.999, type="number", minimum=0, maximum=1,
                                title="Coverage tolerance (fraction of area)"),
    "coverage_target": Param("patches", type="string", enum=["patches", "tile"],
                             title="Area to cover"),
    "search_window_days": Param(3.0, type="number", exclusiveMinimum=0,
                                title="Search window (± days around S2 sensing)"),
    "max_window_days": Param(9.0, type="number", exclusiveMinimum=0,
                             title="Widest search window (± days)"),
    "poll_interval_s": Param(300.0, type="number", exclusiveMinimum=0,
                             title="Poll interval for archived products (s)"),
    "offline_wait_hours": Param(12.0, type="number", exclusiveMinimum=0,
                                title="Give up on an archived product after (h)"),
}


def _label(key: str) -> None:
    """Name the running mapped task instance after its tile (see ``map_index_template``)."""
    # map_index_template renders this extra context key (Airflow's documented way to name instances)
    get_current_context()["label"] = key  # type: ignore[typeddict-unknown-key]  # extra key, see above


@dag(
    dag_id=DAG_ID,
    description="Build BigEarthNet-S1 patches for BigEarthNet-S2 tiles",
    # A data-interval timetable (not Airflow 3's default CronTriggerTimetable, whose runs have an
    # empty interval): run D covers S2 acquisitions sensed in [D, D + 1 day).
    schedule=CronDataIntervalTimetable(_env("SCHEDULE", "@daily"), timezone="UTC"),
    start_date=datetime(2017, 6, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=int(_env("MAX_ACTIVE_RUNS", "2")),
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["bigearthnet", "sentinel-1"],
    doc_md=__doc__,
)
def bigearthnet_s1() -> None:
    @task(task_display_name="Discover tiles")
    def discover_tiles() -> list[dict[str, Any]]:
        """Check the parameters, find the S2 tile acquisitions to build; write nothing on bad input."""
        from bigearthnet_s1 import pipeline

        ctx = get_current_context()
        p = ctx["params"]
        dag_run = ctx["dag_run"]
        options = _catalog_options(p["catalog_conn_id"])
        start, end = pipeline.run_window(
            p["start"], p["end"], run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
            interval_start=ctx.get("data_interval_start"), interval_end=ctx.get("data_interval_end"))
        return pipeline.prepare_run(
            pipeline.WorkDir(p["work_dir"], p["archive_dir"] or None), p["s2_source"],
            tiles=p["tiles"], start=start, end=end, catalog=p["catalog"], catalog_root=p["catalog_root"],
            catalog_options=options, dem=p["dem"], engine=p["engine"],
            explicit_window=bool(p["start"] or p["end"]), labels_from=p.get("labels_from") or "",
            layout=p.get("layout") or "v1", pairing=p.get("pairing") or "select",
            # every param of the later tasks is checked here, before anything runs
            tolerance=p["coverage_tolerance"], target=p["coverage_target"],
            window=_days(p["search_window_days"], "search_window_days"),
            max_window=_days(p["max_window_days"], "max_window_days"),
            poll_interval=p["poll_interval_s"],
            offline_wait=3600.0 * _positive(p["offline_wait_hours"], "offline_wait_hours"))

    @task(task_display_name="Footprint lookup", map_index_template="{{ label }}")
    def lookup_footprint(tile: dict[str, Any]) -> dict[str, Any]:
        """Search the catalogue for IW GRD products over the tile's footprint (widest window)."""
        from bigearthnet_s1 import pipeline

        _label(tile["key"])
        p = get_current_context()["params"]
        return pipeline.lookup_footprint(
            _work(p), tile["key"], catalog=p["catalog"], catalog_root=p["catalog_root"],
            catalog_options=_catalog_options(p["catalog_conn_id"]),
            max_window=timedelta(days=p["max_window_days"]))

    @task(task_display_name="Orbit selection", map_index_template="{{ label }}")
    def select_orbits(found: dict[str, Any]) -> dict[str, Any]:
        """Keep one product per relative orbit until the tile is covered; record why."""
        from bigearthnet_s1 import pipeline

        _label(found["key"])
        p = get_current_context()["params"]
        return pipeline.select_for_tile(
            _work(p), found["key"], tolerance=p["coverage_tolerance"], target=p["coverage_target"],
            window=timedelta(days=p["search_window_days"]),
            max_window=timedelta(days=p["max_window_days"]),
            catalog_options=_catalog_options(p["catalog_conn_id"]) if p["catalog"] == "dhus" else None,
            pairing=p.get("pairing") or "select")

    @task(task_display_name="Plan downloads")
    def plan_downloads(selections: list[dict[str, Any]]) -> list[str]:
        """Every selected product once, whichever tiles share it."""
        from bigearthnet_s1 import pipeline

        return pipeline.plan(list(selections))["products"]

    @task(task_display_name="Plan pairs")
    def plan_pairs(selections: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The (tile, product) pairs to preprocess, each with a label for the UI."""
        from bigearthnet_s1 import pipeline

        return pipeline.plan(list(selections))["pairs"]

    @task(task_display_name="Preprocess", pool=CPU_POOL, map_index_template="{{ label }}",
          trigger_rule="all_done", execution_timeout=timedelta(hours=3))
    def preprocess(pair: dict[str, Any]) -> dict[str, Any]:
        """Radar chain + terrain correction of one product onto one tile's grid (dB GeoTIFF)."""
        from bigearthnet_s1 import pipeline

        _label(pair["label"])
        p = get_current_context()["params"]
        return pipeline.preprocess_pair(_work(p), pair["tile"], pair["product"],
                                        engine=p["engine"], dem=p["dem"])

    @task(task_display_name="Mosaic, clip, write", pool=CPU_POOL, map_index_template="{{ label }}",
          trigger_rule="all_done", outlets=[ARCHIVE], execution_timeout=timedelta(hours=2))
    def assemble_tile(selection: dict[str, Any]) -> dict[str, Any]:
        """Mosaic the tile's scenes, write its patches, quicklook and index part; emit an asset event."""
        from bigearthnet_s1 import pipeline

        key = selection["key"]
        _label(key)
        ctx = get_current_context()
        work = _work(ctx["params"])
        result = pipeline.assemble_tile(work, key, layout=ctx["params"].get("layout") or "v1")
        ctx["outlet_events"][ARCHIVE].extra = {
            "tile": key, "archive": str(work.archive), "patches": result["patches"],
            "written": result["written"], "index": result["index"],
        }
        return result

    @task(task_display_name="Summary", trigger_rule="all_done")
    def summary() -> dict[str, Any]:
        """Counts, coverage, unlabeled patches and failures of this run; merges the archive index
        (and writes metadata.parquet / split files). Fails if a tile failed."""
        from airflow.sdk.exceptions import AirflowFailException

        ctx = get_current_context()
        tiles = ctx["ti"].xcom_pull(task_ids="discover_tiles", default=None)
        if tiles is None:  # discover_tiles failed: its log says why; write nothing
            raise AirflowFailException("discover_tiles did not succeed (see its log): nothing to summarise")
        from bigearthnet_s1 import pipeline

        # this run's assemble_tile returns (None where a tile failed), for the counts written now
        results = ctx["ti"].xcom_pull(task_ids="assemble_tile", map_indexes=list(range(len(tiles))),
                                      default=None) if tiles else []
        report = pipeline.summarise(_work(ctx["params"]), [t["key"] for t in tiles], run_id=ctx["run_id"],
                                    results=[r for r in (results or []) if isinstance(r, dict)])
        if report["failed"]:
            raise AirflowFailException(
                f"{len(report['failed'])} of {report['tiles']} tiles failed: "
                + "; ".join(f"{k}: {why}" for k, why in sorted(report["failed"].items())))
        return report

    tiles = discover_tiles()
    selections = select_orbits.expand(found=lookup_footprint.expand(tile=tiles))
    downloads = ProductDownloadOperator.partial(
        task_id="download", task_display_name="Download", pool=DOWNLOAD_POOL,
        map_index_template="{{ task.product }}",
        work_dir="{{ params.work_dir }}", archive_dir="{{ params.archive_dir }}",
        catalog_conn_id="{{ params.catalog_conn_id }}", poll_interval="{{ params.poll_interval_s }}",
        wait_timeout="{{ params.offline_wait_hours * 3600 }}",
    ).expand(product=plan_downloads(selections))  # type: ignore[arg-type]  # XComArg: the list, at run time
    processed = preprocess.expand(pair=plan_pairs(selections))  # type: ignore[arg-type]  # XComArg, as above
    downloads >> processed
    written = assemble_tile.expand(selection=selections)
    processed >> written
    [tiles, written] >> summary()


def _positive(value: Any, what: str, maximum: float | None = None) -> float:
    """A number param checked (> 0, finite) before it is used in arithmetic."""
    from bigearthnet_s1.params import check_number

    return check_number(value, what, minimum=0.0, maximum=maximum, exclusive_minimum=True)


def _days(value: Any, what: str) -> timedelta:
    """A days param as a timedelta, its range checked first (NaN or 1e12 days break timedelta)."""
    return timedelta(days=_positive(value, what, 60.0))


def _work(params: Any) -> Any:
    from bigearthnet_s1 import pipeline

    return pipeline.WorkDir(params["work_dir"], params["archive_dir"] or None)


def _catalog_options(conn_id: str) -> dict[str, Any]:
    """Options of the catalogue Connection (empty when no Connection is named)."""
    if not conn_id:
        return {}
    from bigearthnet_s1_airflow.hooks import CatalogHook

    return CatalogHook(conn_id).connection_options()


bigearthnet_s1()
