"""Fixtures for the catalogue tests: hub replies and a sleep recorder.

The replies (``fixtures/``, see its README) are written in the hubs' documented schemas with
our own values, and served unchanged by pytest-httpserver on loopback, except where a test
says it rewrites a ``@odata.nextLink`` to point back at the loopback server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def catalog_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def reply(catalog_dir: Path) -> Callable[[str, str], bytes]:
    """``reply("dhus", "search_iw_grd_2017.json")`` -> the reply body's bytes."""

    def read(kind: str, body_file: str) -> bytes:
        return (catalog_dir / kind / body_file).read_bytes()

    return read


@pytest.fixture(scope="session")
def reply_json(reply: Callable[[str, str], bytes]) -> Callable[[str, str], Any]:
    def read(kind: str, body_file: str) -> Any:
        return json.loads(reply(kind, body_file))

    return read


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
def raw_dhus(reply_json: Callable[[str, str], Any]) -> Callable[[str], list[dict[str, Any]]]:
    def read(body_file: str) -> list[dict[str, Any]]:
        return [entry_fields(e) for e in dhus_entries(reply_json("dhus", body_file))]

    return read
