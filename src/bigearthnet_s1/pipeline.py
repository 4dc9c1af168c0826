"""The pipeline's steps as plain functions: what the Airflow DAG (and ``bigearthnet-s1 build``) runs.

One step per DAG task, each taking a :class:`~bigearthnet_s1.workdir.WorkDir` and small
JSON-able values (tile keys, product names) and returning a small JSON-safe dict. Arrays and
products stay on disk, in the work folder's layout (:mod:`bigearthnet_s1.workdir`); the saved
search the footprint lookup leaves for the selection is :mod:`bigearthnet_s1.saved_search`,
the run's summary :mod:`bigearthnet_s1.run_summary`.

Every step is idempotent: it skips work whose output exists (outputs are written under a
temporary name and renamed when complete, so "exists" means "complete"), so a retried or
killed task resumes where it stopped. No Airflow import here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bigearthnet_s1._time import format_iso
from bigearthnet_s1.atomic import sweep
from bigearthnet_s1.errors import BigEarthNetS1Error, ParameterError, PipelineError, SafeError
from bigearthnet_s1.params import DEM_NAMES as DEM_NAMES  # re-exported: the checks moved to params
from bigearthnet_s1.params import check_choice as _check_choice
from bigearthnet_s1.params import check_dem as check_dem
from bigearthnet_s1.params import check_engine as check_engine
from bigearthnet_s1.params import check_number, check_selection, check_tile_ids, check_time
from bigearthnet_s1.params import check_writable as check_writable
from bigearthnet_s1.redact import redact
from bigearthnet_s1.run_summary import summarise as summarise  # the DAG's summary task
from bigearthnet_s1.saved_search import SEARCH_SETTLED_AFTER as SEARCH_SETTLED_AFTER
from bigearthnet_s1.saved_search import CandidateCatalog, reuse_reason
from bigearthnet_s1.workdir import WorkDir, read_json, write_json

if TYPE_CHECKING:  # heavy modules are imported inside the steps
    from bigearthnet_s1.acquisition import TileAcquisition
    from bigearthnet_s1.catalog import Catalog, ProductRecord

log = logging.getLogger(__name__)

UTC = UTC
CATALOG_KINDS = ("local", "cdse", "dhus", "asf")
ENGINES = ("native", "snap")  # = params.ENGINES
#: Archive layouts: BigEarthNet-S1 v1.0, or BigEarthNet v2 (reBEN; see ``archive_v2``).
LAYOUTS = ("v1", "v2")
#: How S1 products are chosen: the selection rule, or the acquisitions reBEN's ``s1_name`` names.
PAIRINGS = ("select", "reben")


#: Environment variables in which the catalogue backends find credentials (see ``open_catalog``).
_CREDENTIAL_ENV = {"local": (), "dhus": ("BIGEARTHNET_S1_DHUS_USER",),
                   "cdse": ("BIGEARTHNET_S1_CDSE_USER", "CDSE_USER", "CDSE_TOKEN"),
                   "asf": ("BIGEARTHNET_S1_ASF_TOKEN", "EARTHDATA_TOKEN", "BIGEARTHNET_S1_ASF_USER", "EARTHDATA_USERNAME")}


# ------------------------------------------------------------------------------ parameters


def run_window(start: str | datetime | None, end: str | datetime | None, *, run_type: str = "manual",
               interval_start: datetime | None = None, interval_end: datetime | None = None
               ) -> tuple[datetime | None, datetime | None]:
    """The S2 sensing-time window [start, end) of a run (UTC; None = unbounded).

    Explicit ``start``/``end`` win. Otherwise scheduled and backfill runs take their data
    interval (so a backfill over a year rebuilds it run by run); manual runs are unbounded.
    Raises :class:`ParameterError` for an empty window (start >= end).
    """
    t0, t1 = check_time(start, "start"), check_time(end, "end")
    if t0 is None and t1 is None and run_type.lower() in ("scheduled", "backfill"):
        t0, t1 = check_time(interval_start, "data interval start"), check_time(interval_end, "data interval end")
    if t0 is not None and t1 is not None and t0 >= t1:
        raise ParameterError(f"empty time window: start {t0.isoformat()} is not before end {t1.isoformat()}")
    return t0, t1


# check_writable, check_dem, check_engine, DEM_NAMES: see bigearthnet_s1.params (imported above)


# ------------------------------------------------------------------------------ tiles


def read_tiles(source: str | os.PathLike[str], tiles: Sequence[str] | None = None) -> list[TileAcquisition]:
    """All tile acquisitions of ``source``: 'table', a patch-name table file, an S2 archive
    folder, or a reBEN source (``metadata.parquet``, a v2 folder). ``tiles``: MGRS ids or keys
    a reBEN source may restrict its reading to (others are filtered by :func:`filter_tiles`)."""
    from bigearthnet_s1 import reben
    from bigearthnet_s1 import tiles as tiles_mod

    if str(source) in ("", "table"):
        return tiles_mod.read_patch_table(None)
    path = Path(source).expanduser()
    if reben.is_reben_source(path):
        ids = {str(t).strip().upper().removeprefix("T").split("_")[0] for t in tiles or () if str(t).strip()}
        return reben.read_reben(path, tiles=ids or None)
    if path.is_dir():
        return tiles_mod.read_s2_archive(path)
    if path.is_file():
        return tiles_mod.read_patch_table(path)
    raise ParameterError(f"S2 source {str(source)!r} is neither 'table', a BigEarthNet-S2 folder, "
                         "a patch-name table file nor a reBEN metadata.parquet / v2 folder")


def filter_tiles(acquisitions: Iterable[TileAcquisition], tiles: Sequence[str] = (), *,
                 start: datetime | None = None, end: datetime | None = None,
                 source: str = "the S2 source") -> list[TileAcquisition]:
    """Keep acquisitions whose tile id or key is in ``tiles`` (all when empty) sensed in [start, end).

    An entry of ``tiles`` that names no acquisition of the source raises :class:`ParameterError`
    (a typo must not silently build nothing).
    """
    from bigearthnet_s1.params import require_tiles

    acqs = list(acquisitions)
    wanted = check_tile_ids(tiles, keys=True)
    if wanted:
        require_tiles(wanted, acqs, source)
        acqs = [a for a in acqs if a.tile_id.upper() in wanted or a.key.upper() in wanted]
    if start is not None:
        acqs = [a for a in acqs if a.sensing_time >= start]
    if end is not None:
        acqs = [a for a in acqs if a.sensing_time < end]
    return sorted(acqs, key=lambda a: a.key)


def tile_ref(tile: TileAcquisition) -> dict[str, Any]:
    """The small JSON that travels through XCom for a tile."""
    return {"key": tile.key, "tile_id": tile.tile_id,
            "sensing_time": format_iso(tile.sensing_time, zone="+00:00"), "patches": len(tile.patches)}


def load_tile(work: WorkDir, key: str) -> TileAcquisition:
    from bigearthnet_s1.acquisition import TileAcquisition

    return TileAcquisition.from_json(read_json(work.tile_file(key), f"tile {key}"))


def prepare_run(work: WorkDir, source: str, *, tiles: Sequence[str] = (), start: datetime | None = None,
                end: datetime | None = None, catalog: str = "local", catalog_root: str = "",
                catalog_options: Mapping[str, Any] | None = None, dem: str = "flat",
                engine: str = "native", explicit_window: bool = False, labels_from: str = "",
                layout: str = "v1", pairing: str = "select", tolerance: float = 0.999,
                target: str = "patches", window: timedelta = timedelta(days=3),
                max_window: timedelta = timedelta(days=9), poll_interval: float | None = None,
                offline_wait: float | None = None) -> list[dict[str, Any]]:
    """Check every parameter, then find the tiles and save their manifests; return tile refs.

    Raises :class:`ParameterError` with a message naming the bad value, before writing anything,
    for: an unknown catalogue/engine/layout/pairing, a catalogue without its credentials or
    folder, a missing DEM, an unwritable work or archive folder, a tile id that is not MGRS, an
    unknown tile, an empty window, an explicit window in which no acquisition was sensed, a
    label source that cannot be read, pairing "reben" with a source that has no reBEN
    ``s1_name``, and selection parameters out of range (``tolerance`` in (0, 1], ``target``,
    ``window`` > 0 and ``max_window`` >= ``window``), a ``poll_interval``/``offline_wait`` (s)
    that is not > 0. Then removes the stale temporaries of killed runs from the work folders
    (see :func:`sweep_work`).

    ``labels_from``: a label source (``bigearthnet_s1.labels.open_label_source``) whose labels
    replace the S2 source's; patches nobody knows stay unlabeled and are counted (logged as a
    warning, reported by :func:`summarise`).
    """
    _check_choice(catalog, CATALOG_KINDS, "catalog")
    _check_choice(layout, LAYOUTS, "layout")
    _check_choice(pairing, PAIRINGS, "pairing")
    opts = dict(catalog_options or {})
    _register_secrets(opts)
    wanted = check_tile_ids(tiles, "tiles", keys=True)
    check_selection(tolerance=tolerance, target=target, window_days=window.total_seconds() / 86400.0,
                    max_window_days=max_window.total_seconds() / 86400.0)
    if poll_interval is not None:
        check_number(poll_interval, "poll interval (s)", minimum=0.0, exclusive_minimum=True)
    if offline_wait is not None:
        check_number(offline_wait, "wait for archived products (s)", minimum=0.0, exclusive_minimum=True)
    if catalog == "local":
        root = catalog_root or opts.get("root") or opts.get("url") or ""
        if not root or not Path(str(root)).expanduser().is_dir():
            raise ParameterError(f"local catalogue folder {str(root)!r} does not exist "
                                 "(param catalog_root, or 'root' in the Connection's extra)")
    elif (not opts.get("user") and not opts.get("token") and not (catalog == "asf" and opts.get("password"))
          and not any(os.environ.get(v) for v in _CREDENTIAL_ENV[catalog])):
        what = "an Earthdata token as password (or login and password)" if catalog == "asf" else "login and password"
        raise ParameterError(f"catalogue {catalog} needs credentials: name an Airflow Connection "
                             f"(param catalog_conn_id) with {what}")
    check_dem(dem)
    check_engine(engine)
    check_writable(work.root, "work folder")
    check_writable(work.archive, "output archive")
    if start is not None and end is not None and start >= end:
        raise ParameterError(f"empty time window: start {start.isoformat()} is not before end {end.isoformat()}")

    label_source = None
    if labels_from:
        from bigearthnet_s1.labels import open_label_source

        if not Path(labels_from).expanduser().exists():
            raise ParameterError(f"label source {labels_from!r} does not exist (param labels_from / --labels-from)")
        label_source = open_label_source(labels_from)

    found = filter_tiles(read_tiles(source, wanted), wanted, start=start, end=end, source=str(source))
    if not found and (explicit_window or wanted):
        span = f"[{start.isoformat() if start else '-inf'}, {end.isoformat() if end else '+inf'})"
        raise ParameterError(f"no S2 tile acquisition of {source} sensed in {span}"
                             + (f" for tiles {', '.join(wanted)}" if wanted else ""))
    if pairing == "reben":
        from bigearthnet_s1.reben import named_prefixes

        unpaired = [t.key for t in found if not named_prefixes(t)]
        if unpaired:
            raise ParameterError(f"pairing 'reben' needs reBEN's s1_name for every tile; {source} has none for "
                                 f"{', '.join(unpaired[:5])} (use a reBEN metadata.parquet as the S2 source)")
    found = _label(found, label_source, source)
    sweep_work(work)
    for t in found:
        write_json(work.tile_file(t.key), t.to_json())
    log.info("%d tile acquisitions to build (%d patches)", len(found), sum(len(t.patches) for t in found))
    return [tile_ref(t) for t in found]


def _register_secrets(options: Mapping[str, Any]) -> None:
    """Register the Connection's password and token (and any secret-named extra) for redaction."""
    from bigearthnet_s1.redact import is_secret_key, register_secret

    for k, v in options.items():
        if isinstance(v, str) and is_secret_key(str(k)):
            register_secret(v)


def sweep_work(work: WorkDir) -> int:
    """Remove the stale temporaries (no live lock: their writer died) from every folder the
    pipeline writes: the bookkeeping folders, ``processed/<key>/``, the quicklooks, the product
    store, the DEM cache, the archive (its patch folders by the archive's own rule). Returns
    how many were removed."""
    from bigearthnet_s1.archive_index import INDEX_DIR
    from bigearthnet_s1.patch_folder import clean_temporaries

    removed = 0
    for sub in ("tiles", "selection", "records", "results", "quicklooks", "summaries", "products",
                "products/verified", "dem-cache", "dem-cache/glo30", "dem-cache/srtm1"):
        removed += sweep(work.root / sub)
    processed = work.root / "processed"
    removed += sweep(processed)
    if processed.is_dir():
        for d in processed.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                removed += sweep(d)
    if work.archive.is_dir():
        removed += sweep(work.archive) + sweep(work.archive / INDEX_DIR) + clean_temporaries(work.archive)
    removed += sweep(work.root)
    return removed


def _label(found: list[TileAcquisition], label_source: Any, source: str | os.PathLike[str]) -> list[TileAcquisition]:
    """Apply the label source (if any) and say, as a warning, how many patches stay unlabeled."""
    from bigearthnet_s1.labels import apply_labels, unlabeled_count

    if label_source is not None:
        found, stats = apply_labels(found, label_source)
        log.info("labels from %s: %d of %d patches", label_source.describe(), stats.labelled, stats.patches)
    n = unlabeled_count(found)
    if n:
        total = sum(len(t.patches) for t in found)
        log.warning("%d of %d patches have no labels (%s): they are written with \"labels\": [] and "
                    "labels_known false; give --labels-from (DAG param labels_from) a BigEarthNet-S2 folder "
                    "or a reBEN metadata.parquet, or run 'bigearthnet-s1 relabel' later",
                    n, total, "the label source does not know them" if label_source is not None
                    else f"the S2 source {source} has no labels")
    return found


# ------------------------------------------------------------------------------ catalogue


#: Connection extras that configure the product store's hub URLs, not the catalogue search.
_ENDPOINT_KEYS = {"download_url": "cdse_download_url", "token_url": "cdse_token_url", "edl_url": "asf_edl_url"}


def open_catalog_for(kind: str, catalog_root: str = "", options: Mapping[str, Any] | None = None) -> Catalog:
    """Open the catalogue backend ``kind`` with Connection options (url, user, password, extras)."""
    from bigearthnet_s1.catalog import open_catalog

    opts = {k: v for k, v in dict(options or {}).items() if k not in ("kind", "token_url")}
    if kind == "local":
        root = catalog_root or opts.pop("root", None) or opts.pop("url", None)
        return open_catalog("local", root=root)
    return open_catalog(kind, **opts)


def catalog_unconfigured(catalog: str, catalog_root: str = "",
                         options: Mapping[str, Any] | None = None) -> str | None:
    """What a deployment lacks for the catalogue ``catalog`` to be usable at all (None: configured).

    A local catalogue needs a folder (param or the Connection's ``root``); a hub needs
    credentials (a Connection with a login or token, or the hub's environment variables).
    Whether the folder exists or the credentials work is checked by :func:`prepare_run`.
    """
    opts = dict(options or {})
    if catalog == "local":
        if _local_root(catalog_root, opts):
            return None
        return ("no local catalogue folder (param catalog_root or BIGEARTHNET_S1_CATALOG_ROOT, "
                "or 'root' in the catalogue Connection's extra)")
    env = _CREDENTIAL_ENV.get(catalog)
    if (env is None or opts.get("user") or opts.get("token") or (catalog == "asf" and opts.get("password"))
            or any(os.environ.get(v) for v in env)):  # asf: the password alone is an Earthdata token
        return None
    return (f"no credentials for the {catalog} catalogue (param catalog_conn_id or "
            f"BIGEARTHNET_S1_CATALOG_CONN_ID naming a Connection, or {' / '.join(env)})")


def hub_endpoints(source: str, options: Mapping[str, Any] | None = None) -> Any:
    """The :class:`~bigearthnet_s1.hub.HubEndpoints` for a record source and Connection options."""
    from bigearthnet_s1.hub import HubEndpoints

    opts = dict(options or {})
    kw: dict[str, str] = {}
    if opts.get("url") and source == "dhus":
        kw["dhus_url"] = str(opts["url"])
    if opts.get("url") and source == "cdse":
        kw["cdse_odata_url"] = str(opts["url"])
    for key, field_name in _ENDPOINT_KEYS.items():
        if opts.get(key):
            kw[field_name] = str(opts[key])
    return HubEndpoints(**kw)


def _record_json(r: ProductRecord) -> dict[str, Any]:
    return r.to_json()


def _local_root(catalog_root: str, options: Mapping[str, Any] | None) -> str:
    """The local catalogue's folder: the param, else ``root`` (or ``url``) of the Connection."""
    opts = dict(options or {})
    return str(catalog_root or opts.get("root") or opts.get("url") or "")


def lookup_footprint(work: WorkDir, key: str, *, catalog: str, catalog_root: str = "",
                     catalog_options: Mapping[str, Any] | None = None,
                     max_window: timedelta = timedelta(days=9),
                     max_age: timedelta = timedelta(hours=6),
                     now: datetime | None = None) -> dict[str, Any]:
    """Search the catalogue once over the tile's footprint and the widest time window.

    Saves the candidates (``<work>/selection/<key>.candidates.json``) so that
    :func:`select_for_tile` (and its window widening) runs without further queries. A cleared
    or re-run task sees the catalogue as it is now: a saved search is reused only for the same
    catalogue, window and footprint, never when it found nothing or could not read every
    product, and then for a local catalogue only while its folder is unchanged (names, sizes,
    modification times of the products), for a hub only while younger than ``max_age`` (a
    retry) or made once the window had settled (its end plus :data:`SEARCH_SETTLED_AFTER`).
    ``now``: UTC, for tests.
    """
    tile = load_tile(work, key)
    footprint = tile.patches_footprint_wgs84 if tile.patches else tile.footprint_wgs84
    start, end = tile.sensing_time - max_window, tile.sensing_time + max_window
    root = _local_root(catalog_root, catalog_options) if catalog == "local" else ""
    query = {"catalog": catalog, "root": root, "url": (catalog_options or {}).get("url"),
             "start": format_iso(start, zone="+00:00"), "end": format_iso(end, zone="+00:00"),
             "footprint": footprint.wkt}
    qhash = hashlib.sha1(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
    path = work.candidates_file(key)
    now = now or datetime.now(UTC)
    cat = open_catalog_for(catalog, root, catalog_options)
    # the folder's state before the search: a product added during the search makes it stale
    state = cat.state() if catalog == "local" and hasattr(cat, "state") else None
    if path.exists():
        saved = read_json(path, f"candidates of {key}")
        why = reuse_reason(saved, qhash, state, end, now, max_age)
        if why:
            log.info("tile %s: reusing the saved search (%d candidates): %s", key, len(saved["products"]), why)
            return {"key": key, "candidates": len(saved["products"]), "cached": True}
        path.unlink()  # stale: never left for the selection if this search fails
    t0 = time.monotonic()
    records = cat.search(tile.footprint_wgs84, start, end)
    unreadable = [(str(p), why) for p, why in getattr(cat, "unreadable", [])]
    log.info("tile %s: %d candidate products in [%s, %s] (%.1f s)%s", key, len(records), start, end,
             time.monotonic() - t0, f"; {len(unreadable)} unreadable products skipped" if unreadable else "")
    write_json(path, {"query_hash": qhash, "query": query, "searched_at": format_iso(now, zone="+00:00"),
                      "catalog_state": state, "complete": not unreadable, "unreadable": unreadable,
                      "products": [_record_json(r) for r in records]})
    return {"key": key, "candidates": len(records), "cached": False}


def select_for_tile(work: WorkDir, key: str, *, tolerance: float = 0.999, target: str = "patches",
                    window: timedelta = timedelta(days=3), max_window: timedelta = timedelta(days=9),
                    catalog_options: Mapping[str, Any] | None = None, pairing: str = "select") -> dict[str, Any]:
    """Select products for a tile among its saved candidates (one per relative orbit, greedy cover).

    Saves the selection (with the reasons) and the chosen product records; returns the chosen
    names and the coverage. Deterministic, so re-running it is harmless. For a DHuS search the
    chosen records are completed from the hub (exact size, MD5, online status), so that the
    download can be verified; ``catalog_options`` carries the hub's URL and credentials.
    ``pairing="reben"``: take exactly the acquisitions reBEN's ``s1_name`` names for the tile's
    patches (``reben.select_named``); the mosaic then gives each patch its named scene.
    """
    _check_choice(pairing, PAIRINGS, "pairing")
    from bigearthnet_s1.catalog import ProductRecord
    from bigearthnet_s1.selection import search_and_select

    tile = load_tile(work, key)
    saved = read_json(work.candidates_file(key), f"candidates of {key}")
    records = [ProductRecord.from_json(d) for d in saved["products"]]
    hub = None
    if saved.get("query", {}).get("catalog") == "dhus" and records:
        hub = open_catalog_for("dhus", "", catalog_options)
    cands = CandidateCatalog(records, hub)
    if pairing == "reben":
        from bigearthnet_s1.reben import select_named

        sel = select_named(tile, records, target=target, tolerance=tolerance)
        if hasattr(cands, "complete") and sel.products:  # DHuS: exact size, MD5, online status
            done = {r.name: r for r in cands.complete(sel.products)}
            sel.products = [done.get(r.name, r) for r in sel.products]
    else:
        sel = search_and_select(cands, tile, window=window, max_window=max_window,
                                tolerance=tolerance, target=target)
    for p in sel.products:
        write_json(work.record_file(p.name), p.to_json())
    write_json(work.selection_file(key), {**sel.to_json(), "pairing": pairing})
    log.info("tile %s: %d products, coverage %.4f", key, len(sel.products), sel.coverage)
    return {"key": key, "products": [p.name for p in sel.products], "coverage": float(sel.coverage)}


def plan(selections: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Merge the tiles' selections: each product downloaded once, (tile, product) pairs, tiles.

    ``pairs`` items carry a ``label`` for the Airflow UI (``<tile key> <S1 start time>``).
    """
    products: dict[str, None] = {}
    pairs: list[dict[str, str]] = []
    tiles: list[str] = []
    for s in selections:
        if not s:
            continue
        if s["products"]:
            tiles.append(s["key"])
        for name in s["products"]:
            products.setdefault(name, None)
            short = name.split("_")[4] if name.count("_") >= 5 else name
            pairs.append({"tile": s["key"], "product": name, "label": f"{s['key']} {name[:3]} {short}"})
    return {"products": sorted(products), "pairs": pairs, "tiles": sorted(tiles)}


def load_record(work: WorkDir, name: str) -> ProductRecord:
    from bigearthnet_s1.catalog import ProductRecord

    return ProductRecord.from_json(read_json(work.record_file(name), f"product record {name}"))


# ------------------------------------------------------------------------------ products


def _store(work: WorkDir, source: str = "local", options: Mapping[str, Any] | None = None) -> Any:
    from bigearthnet_s1.hub import HubClient
    from bigearthnet_s1.store import ProductStore

    return ProductStore(work.products, hub=HubClient(endpoints=hub_endpoints(source, options)))


def _auth(options: Mapping[str, Any] | None, source: str = "") -> dict[str, Any]:
    """Download credentials (``{"auth": ...}``, or ``{}``): the Connection's login or token,
    else the hub's environment variables (the same ones :func:`prepare_run` accepts as the
    catalogue's credentials); see ``hub.auth_from_options``. Every secret found is
    registered for redaction."""
    from bigearthnet_s1.hub import auth_from_options

    auth = auth_from_options(source, options, endpoints=hub_endpoints(source, options))
    return {"auth": auth} if auth is not None else {}


def product_status(work: WorkDir, name: str, options: Mapping[str, Any] | None = None,
                   order_id: str | None = None) -> dict[str, Any]:
    """Where a product stands: ``{"state": "online" | "pending" | "failed", "order_id", "message"}``.

    Online when it is in the store, local, or not flagged offline by the catalogue; otherwise
    one non-blocking poll of the hub (``order_id``: the CDSE order to follow).
    """
    record = load_record(work, name)
    if record.source == "local" or record.online is not False or _store(work).has(name):
        return {"state": "online", "order_id": order_id, "message": ""}
    from bigearthnet_s1.hub import HubClient

    hub = HubClient(endpoints=hub_endpoints(record.source, options))
    st = hub.retrieval_status(record, order_id=order_id, **_auth(options, record.source))
    return {"state": st.state, "order_id": st.order_id, "message": redact(st.message)}


def request_product(work: WorkDir, name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Order an archived product's retrieval from the hub's long-term archive (returns at once)."""
    from bigearthnet_s1.hub import HubClient

    record = load_record(work, name)
    hub = HubClient(endpoints=hub_endpoints(record.source, options))
    st = hub.request_retrieval(record, **_auth(options, record.source))
    return {"state": st.state, "order_id": st.order_id, "message": redact(st.message)}


def fetch_product(work: WorkDir, name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Download a product into the store once (verified, atomic); local products are used in place."""
    record = load_record(work, name)
    store = _store(work, record.source, options)
    cached = record.source != "local" and store.has(name)
    t0 = time.monotonic()
    path = store.fetch(record, **_auth(options, record.source))
    size = Path(path).stat().st_size if Path(path).is_file() else None
    dt = time.monotonic() - t0
    if not cached and record.source != "local" and size:
        log.info("product %s: %.1f MB in %.1f s (%.1f MB/s)", name, size / 1e6, dt, size / 1e6 / max(dt, 1e-3))
    return {"product": name, "path": str(path), "cached": bool(cached or record.source == "local")}


def product_path(work: WorkDir, name: str) -> Path:
    """Where the product is now (the store's zip/SAFE, or the local catalogue's own path)."""
    record = load_record(work, name)
    store = _store(work, record.source)
    if record.source == "local":
        from bigearthnet_s1.hub import local_product_path

        return local_product_path(record)
    if store.has(name):
        for p in (store.safe_path(name), store.zip_path(name)):
            if Path(p).exists():
                return Path(p)
    raise PipelineError(f"product {name} is not in the store {work.products} (download failed?)")


# ------------------------------------------------------------------------------ preprocess


def preprocess_pair(work: WorkDir, key: str, name: str, *, engine: str = "native", dem: str = "flat",
                    graph: str | None = None) -> dict[str, Any]:
    """Preprocess product ``name`` onto tile ``key``'s grid: ``processed/<key>/<name>.tif`` (dB).

    Skipped when the GeoTIFF exists (the engine writes it atomically).
    """
    out = work.processed_file(key, name)
    if out.exists():
        return {"tile": key, "product": name, "path": str(out), "cached": True}
    from bigearthnet_s1.preprocess import preprocess

    tile = load_tile(work, key)
    src = product_path(work, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        preprocess(src, tile, out, engine=engine, graph=graph, dem=dem,
                              dem_cache=work.root / "dem-cache")
    except SafeError as exc:
        # the product itself is bad (unreadable member, wrong measurement type, ...): a store
        # entry must not keep looking verified; the next download fetches it again
        store = _store(work)
        if Path(src).parent == store.root and store.has(name):
            moved = store.quarantine(name, str(exc))
            raise SafeError(f"{exc} (moved to {', '.join(m.name for m in moved)}; "
                            "the next download fetches it again)") from exc
        raise
    log.info("tile %s, product %s: preprocessed in %.1f s", key, name, time.monotonic() - t0)
    return {"tile": key, "product": name, "path": str(out), "cached": False}


# ------------------------------------------------------------------------------ assemble


def _scenes_signature(work: WorkDir, key: str, names: Sequence[str]) -> str:
    """Identifies the inputs of a tile's assembly: the selected products and their GeoTIFFs."""
    parts = []
    for n in sorted(names):
        st = work.processed_file(key, n).stat()
        parts.append(f"{n}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def assemble_tile(work: WorkDir, key: str, *, overwrite: bool = False,
                  min_valid_fraction: float = 1.0, layout: str = "v1") -> dict[str, Any]:
    """Mosaic a tile's preprocessed scenes, write its patches, quicklook and index part.

    Patches are clipped on the S2 patch grid from the mosaic (``bigearthnet_s1.mosaic``) and
    written by the archive writer, each folder atomically; patches already complete in the
    archive are kept, so a killed run resumes with only the missing ones. A tile whose result
    exists for the same inputs is skipped. ``min_valid_fraction``: patches with less valid
    data (both bands finite) are not written (counted as ``uncovered``). ``layout``: "v1"
    (BigEarthNet-S1 v1.0) or "v2" (reBEN, ``archive_v2``). A selection made with pairing
    "reben" gives each patch the scene reBEN pairs it with (when that scene covers it).
    Returns ``{"key", "patches", "written", "uncovered", "unlabeled", "scenes", "index",
    "quicklook", "cached"}``.
    """
    from bigearthnet_s1.errors import SelectionError

    _check_choice(layout, LAYOUTS, "layout")
    sel = read_json(work.selection_file(key), f"selection of {key}")
    names = [p["name"] for p in sel.get("products", [])]
    if not names:
        raise SelectionError(f"tile {key}: no Sentinel-1 product covers its patches "
                             f"(coverage {sel.get('coverage', 0):.3f}); nothing to assemble")
    missing = [n for n in names if not work.processed_file(key, n).exists()]
    if missing:
        raise PipelineError(f"tile {key}: preprocessed scene(s) missing: {', '.join(missing)} "
                            "(their preprocess task failed or has not run)")
    signature = _scenes_signature(work, key, names) + ("" if layout == "v1" else f"-{layout}")
    res_path = work.result_file(key)
    index_part = work.archive / "index" / f"{key}.parquet"
    if res_path.exists() and not overwrite:
        res = read_json(res_path, f"result of {key}")
        if res.get("signature") == signature and index_part.exists():
            log.info("tile %s: already assembled (%d patches), skipped", key, res["patches"])
            return {**{k: v for k, v in res.items() if k != "signature"}, "written": 0, "cached": True}

    from bigearthnet_s1 import archive_v2
    from bigearthnet_s1.archive import is_complete
    from bigearthnet_s1.archive_index import INDEX_DIR
    from bigearthnet_s1.names import s1_patch_name

    for folder in (work.quicklook_file(key).parent, res_path.parent, work.archive, work.archive / INDEX_DIR):
        sweep(folder)  # temporaries of killed runs (patch folders: the archive writer's own sweep)
    from bigearthnet_s1.mosaic import SceneOnGrid, mosaic_tile
    from bigearthnet_s1.quicklook import write_quicklook
    from bigearthnet_s1.reben import preferred_scenes

    t0 = time.monotonic()
    tile = load_tile(work, key)
    scenes = [SceneOnGrid.from_geotiff(work.processed_file(key, n), tile) for n in names]
    preferred = preferred_scenes(tile) if sel.get("pairing") == "reben" else None
    mosaic = mosaic_tile(tile, scenes, min_valid_fraction=min_valid_fraction, preferred=preferred)
    todo = mosaic.patch_scenes()

    def complete(s2_name: str, scene_id: str) -> bool:
        name = s1_patch_name(scene_id, tile.tile_id, tile.patch(s2_name).col, tile.patch(s2_name).row)
        if layout == "v2":
            return archive_v2.is_complete(archive_v2.patch_dir(work.archive, name))
        return is_complete(work.archive / name)

    present = sum(1 for s2_name, scene in todo.items() if complete(s2_name, scene.scene_id))
    rows = mosaic.write(work.archive, overwrite=overwrite, layout=layout)
    quicklook = write_quicklook(work.quicklook_file(key), mosaic)
    mosaic.write_summary(work.root / "results" / f"{key}.mosaic.json")
    written = len(rows) if overwrite else len(rows) - present
    result: dict[str, Any] = {
        "key": key, "patches": len(rows), "written": written, "uncovered": len(tile.patches) - len(todo),
        "unlabeled": sum(1 for r in rows if not r["labels_known"]), "scenes": list(names),
        "index": str(index_part), "quicklook": str(quicklook), "cached": False}
    write_json(res_path, {**result, "signature": signature})
    dt = time.monotonic() - t0
    log.info("tile %s: %d patches (%d written, %d kept, %d uncovered) from %d scenes in %.1f s (%.0f patches/s)",
             key, len(rows), result["written"], present, result["uncovered"], len(names), dt,
             written / max(dt, 1e-3))
    if result["unlabeled"]:
        log.warning("tile %s: %d of %d patches written without labels", key, result["unlabeled"], len(rows))
    return result


# ------------------------------------------------------------------------------ without Airflow


def build(work: WorkDir, source: str, *, tiles: Sequence[str] = (), start: datetime | None = None,
          end: datetime | None = None, catalog: str = "local", catalog_root: str = "",
          catalog_options: Mapping[str, Any] | None = None, dem: str = "flat", engine: str = "native",
          tolerance: float = 0.999, target: str = "patches", window: timedelta = timedelta(days=3),
          max_window: timedelta = timedelta(days=9), progress: bool = False,
          run_id: str | None = None, labels_from: str = "", layout: str = "v1",
          pairing: str = "select") -> dict[str, Any]:
    """Run every step in this process, tile after tile (what the DAG does, without Airflow).

    A failing tile is logged and reported in the summary; the others go on.
    """
    refs = prepare_run(work, source, tiles=tiles, start=start, end=end, catalog=catalog,
                       catalog_root=catalog_root, catalog_options=catalog_options, dem=dem, engine=engine,
                       explicit_window=bool(start or end), labels_from=labels_from, layout=layout,
                       pairing=pairing, tolerance=tolerance, target=target, window=window,
                       max_window=max_window)
    keys = [r["key"] for r in refs]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(keys), unit="tile", desc="build")
    fetched: set[str] = set()
    results: list[dict[str, Any]] = []
    for key in keys:
        try:
            lookup_footprint(work, key, catalog=catalog, catalog_root=catalog_root,
                             catalog_options=catalog_options, max_window=max_window)
            sel = select_for_tile(work, key, tolerance=tolerance, target=target, window=window,
                                  max_window=max_window, catalog_options=catalog_options, pairing=pairing)
            for name in sel["products"]:
                if name not in fetched:
                    status = product_status(work, name, catalog_options)
                    if status["state"] != "online":
                        raise PipelineError(f"product {name} is archived at the hub ({status['state']}); "
                                            "order it and re-run later (the DAG waits for it)")
                    fetch_product(work, name, catalog_options)
                    fetched.add(name)
                preprocess_pair(work, key, name, engine=engine, dem=dem)
            if sel["products"]:
                results.append(assemble_tile(work, key, layout=layout))
        except BigEarthNetS1Error as exc:
            log.error("tile %s failed: %s", key, exc)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summarise(work, keys, run_id=run_id or f"build_{datetime.now(UTC):%Y%m%dT%H%M%S}", results=results)
