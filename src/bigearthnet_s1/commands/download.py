"""``bigearthnet-s1 download``: fetch selected products into the product store.

Inputs are selection JSON files (the output of ``bigearthnet-s1 select``: objects with a
``products`` list, single product records, lists or JSON lines of them), product URLs, or
local ``.zip``/``.SAFE`` paths. Credentials come from ``--user``/``--password`` or the
environment (``DHUS_USER``/``DHUS_PASSWORD``, ``CDSE_USER``/``CDSE_PASSWORD``; for ASF an
Earthdata token in ``BIGEARTHNET_S1_ASF_TOKEN``/``EARTHDATA_TOKEN`` or an account in
``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD``). Prints one JSON line per product:
``{"name": ..., "path": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from bigearthnet_s1 import transfer
from bigearthnet_s1.errors import DownloadError, InputError
from bigearthnet_s1.hub import HubClient, HubEndpoints, ProductLike, ProductRef, guess_source
from bigearthnet_s1.store import ProductStore, check_product_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="SELECTION_JSON_OR_PRODUCT_URL",
                        help="selection JSON file(s), product download URL(s) or local .zip/.SAFE paths")
    parser.add_argument("--store", required=True, type=Path, help="product store folder")
    parser.add_argument("--parallel", type=int, default=2, help="downloads at once (default 2; hubs allow few)")
    parser.add_argument("--extract", action="store_true", help="also unzip each product into <name>.SAFE")
    parser.add_argument("--wait-offline", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for archived (offline) products to be restored (default: do not wait)")
    parser.add_argument("--poll", type=float, default=60.0, metavar="SECONDS", help="poll interval while waiting")
    parser.add_argument("--user", help="hub user name (default: $DHUS_USER / $CDSE_USER)")
    parser.add_argument("--password", help="hub password (default: $DHUS_PASSWORD / $CDSE_PASSWORD)")
    parser.add_argument("--name", help="product name for a single URL input (default: from the server's file name)")
    parser.add_argument("--source", choices=["dhus", "cdse", "asf", "http"], help="hub of URL inputs (default: guessed from the URL)")
    parser.add_argument("--no-zip-test", action="store_true", help="skip the zip CRC test (the checksum still runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    ep = HubEndpoints()
    parser.add_argument("--dhus-url", default=ep.dhus_url, help="DHuS base URL (for records without url)")
    parser.add_argument("--cdse-odata-url", default=ep.cdse_odata_url, help="CDSE catalogue OData base URL")
    parser.add_argument("--cdse-download-url", default=ep.cdse_download_url, help="CDSE download OData base URL")
    parser.add_argument("--cdse-token-url", default=ep.cdse_token_url, help="CDSE identity token endpoint")
    parser.add_argument("--edl-url", default=ep.asf_edl_url, help="NASA Earthdata Login (token for ASF downloads)")


def _name_from_response(resp: requests.Response) -> str | None:
    cd = resp.headers.get("Content-Disposition", "")
    m = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", cd)
    return unquote(m.group(1)).strip() if m else None


def _strip_suffixes(name: str) -> str:
    for suffix in (".zip", ".SAFE"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def resolve_url_name(url: str, session: requests.Session, auth: Any) -> str:
    """Product name of a bare URL: its last path segment if it names a zip, else the server's file name."""
    last = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if last.endswith((".zip", ".SAFE")):
        return _strip_suffixes(last)
    try:
        resp = transfer.open_stream(session, url, headers={"User-Agent": transfer.USER_AGENT}, auth=auth, timeout=(15, 60))
    except requests.RequestException as exc:
        raise DownloadError(f"cannot reach {url} to learn the product name: {exc}") from exc
    with resp:
        name = _name_from_response(resp)
    if not name:
        raise InputError(f"cannot tell the product name of {url} (no file name from the server); pass --name")
    return _strip_suffixes(name)


def _auth_map(args: argparse.Namespace, endpoints: HubEndpoints) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in ("dhus", "cdse"):
        user = args.user or os.environ.get(f"{source.upper()}_USER")
        password = args.password or os.environ.get(f"{source.upper()}_PASSWORD")
        if user and password:
            out[source] = HubClient.credentials(source, user, password, endpoints)
    from bigearthnet_s1.earthdata import EarthdataAuth

    asf = EarthdataAuth.from_options({"user": args.user, "password": args.password} if args.user else {},
                                     edl_url=endpoints.asf_edl_url)
    if asf is not None:
        out["asf"] = asf
    user = args.user
    if user and args.password:
        out["http"] = (user, args.password)
    return out


def records_from_json(data: Any) -> list[ProductLike]:
    """Product records out of a selection's JSON (``{"products": [...]}``), a record, or lists of them.

    Uses ``catalog.ProductRecord.from_json``; falls back to ``hub.ProductRef`` for dicts that
    lack the catalogue's fields.
    """
    from bigearthnet_s1.catalog import ProductRecord  # only for selection JSON: URL inputs need no catalogue

    out: list[ProductLike] = []

    def record(d: Mapping[str, Any]) -> ProductLike:
        try:
            return ProductRecord.from_json(dict(d))
        except Exception:  # noqa: BLE001 - a partial record still downloads
            return ProductRef.from_json(d)

    def walk(x: Any) -> None:
        if isinstance(x, list):
            for item in x:
                walk(item)
        elif isinstance(x, Mapping):
            if "products" in x:
                walk(x["products"])
            elif "name" in x:
                out.append(record(x))
            else:
                raise InputError(f"JSON object with neither 'products' nor 'name': keys {sorted(x)[:8]}")
        else:
            raise InputError(f"unexpected JSON value {type(x).__name__} where product records were expected")

    walk(data)
    seen: dict[str, ProductLike] = {}
    for r in out:
        seen.setdefault(r.name, r)
    return list(seen.values())


def collect_records(args: argparse.Namespace, session: requests.Session, auth: dict[str, Any]) -> list[ProductLike]:
    records: list[ProductLike] = []
    urls = [i for i in args.inputs if re.match(r"^https?://", i)]
    if args.name and len(urls) != 1:
        raise InputError("--name needs exactly one URL input")
    for item in args.inputs:
        if re.match(r"^https?://", item):
            source = args.source or guess_source(item)
            name = args.name or resolve_url_name(item, session, auth.get(source))
            records.append(ProductRef(name=name, url=item, source=source))
            continue
        path = Path(item)
        if not path.exists():
            raise InputError(f"{item}: no such file, and not an http(s) URL")
        if path.name.endswith((".zip", ".SAFE")):
            records.append(ProductRef(name=_strip_suffixes(path.name), url=str(path.resolve()), source="local"))
            continue
        text = path.read_text()
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise InputError(f"{item}: neither JSON nor JSON lines ({exc})") from exc
        try:
            records.extend(records_from_json(data))
        except InputError as exc:
            raise InputError(f"{item}: {exc}") from exc
    seen: dict[str, ProductLike] = {}
    for r in records:
        seen.setdefault(r.name, r)
    return list(seen.values())


class _Bars:
    """One tqdm bar per product, created on its first progress report (thread-safe)."""

    def __init__(self, disable: bool) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.disable = disable
        self.bars: dict[str, Any] = {}
        self.lock = threading.Lock()

    def __call__(self, name: str, p: transfer.TransferProgress) -> None:
        with self.lock:
            bar = self.bars.get(name)
            if bar is None:
                bar = self._tqdm(total=p.total, unit="B", unit_scale=True, unit_divisor=1024, desc=name[:40],
                                 position=len(self.bars), leave=True, disable=self.disable, file=sys.stderr)
                self.bars[name] = bar
            if p.total is not None and bar.total != p.total:
                bar.total = p.total
            bar.update(p.done - bar.n)
            if p.finished:
                bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def check_arguments(args: argparse.Namespace) -> None:
    """Every option's range and path, before anything is fetched or written."""
    from bigearthnet_s1.params import check_int, check_number, check_writable

    check_int(args.parallel, "--parallel", minimum=1, maximum=64)
    check_number(args.wait_offline, "--wait-offline (s)", minimum=0.0)
    check_number(args.poll, "--poll (s)", minimum=0.0, exclusive_minimum=True)
    check_writable(args.store, "--store")
    if args.name is not None:
        check_product_name(_strip_suffixes(args.name))
    for item in args.inputs:
        if not re.match(r"^https?://", item) and not Path(item).exists():
            raise InputError(f"{item}: no such file, and not an http(s) URL")


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    endpoints = HubEndpoints(args.dhus_url, args.cdse_odata_url, args.cdse_download_url, args.cdse_token_url, args.edl_url)
    auth = _auth_map(args, endpoints)
    session = requests.Session()
    records = collect_records(args, session, auth)
    if not records:
        raise InputError("no products in the inputs")
    hub = HubClient(endpoints=endpoints, session=session, auth=auth)
    store = ProductStore(args.store, hub=hub, max_parallel=args.parallel, test_zip=not args.no_zip_test)
    bars = _Bars(disable=args.no_progress)
    try:
        report = store.fetch_all(records, progress=bars, wait_offline=args.wait_offline, poll=args.poll, extract=args.extract)
    finally:
        bars.close()
    for name, path in report.paths.items():
        print(json.dumps({"name": name, "path": str(path)}), flush=True)
    report.raise_for_errors(len(records))
    return 0
