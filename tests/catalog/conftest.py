"""Fixtures for the catalogue tests: the recorded real hub responses and a sleep recorder.

The recorded bodies (../shared/data/catalog) are served unchanged by pytest-httpserver on
loopback, except where a test says it rewrites a ``@odata.nextLink`` to point back at the
loopback server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def catalog_dir(shared_data: Path) -> Path:
    return shared_data / "catalog"


@pytest.fixture(scope="session")
def recorded(catalog_dir: Path) -> Callable[[str, str], bytes]:
    """``recorded("dhus", "02_search_s1_grd_amazon_2017.json")`` -> the body bytes."""

    def read(kind: str, body_file: str) -> bytes:
        return (catalog_dir / kind / body_file).read_bytes()

    return read


@pytest.fixture(scope="session")
def recorded_json(recorded: Callable[[str, str], bytes]) -> Callable[[str, str], Any]:
    def read(kind: str, body_file: str) -> Any:
        return json.loads(recorded(kind, body_file))

    return read


@pytest.fixture(scope="session")
def interactions(catalog_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {k: json.loads((catalog_dir / k / "interactions.json").read_text()) for k in ("dhus", "cdse")}


class SleepRecorder:
    """Stands in for ``time.sleep``: records the requested waits, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(float(seconds))


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def dhus_entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    entries = doc["feed"].get("entry", [])
    return [entries] if isinstance(entries, dict) else entries


def entry_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """Flatten a raw DHuS OpenSearch JSON entry (read straight from the file, no sentinelsat)."""
    out: dict[str, Any] = {"id": entry["id"], "title": entry["title"]}
    for kind in ("str", "int", "date", "double", "bool"):
        items = entry.get(kind, [])
        if isinstance(items, dict):
            items = [items]
        for it in items:
            out[it["name"]] = it["content"]
    links = entry["link"] if isinstance(entry["link"], list) else [entry["link"]]
    out["link"] = next(link["href"] for link in links if "rel" not in link)
    return out


@pytest.fixture(scope="session")
def raw_dhus(recorded_json: Callable[[str, str], Any]) -> Callable[[str], list[dict[str, Any]]]:
    def read(body_file: str) -> list[dict[str, Any]]:
        return [entry_fields(e) for e in dhus_entries(recorded_json("dhus", body_file))]

    return read
