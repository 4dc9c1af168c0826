"""A catalogue search saved for the selection step, and when a saved search may be reused.

The footprint lookup saves its search (``<work>/selection/<key>.candidates.json``: the query,
its hash, when it was made, the products); the selection step reads the products back through
:class:`CandidateCatalog`. A cleared or re-run lookup reuses the saved search only when
:func:`reuse_reason` gives a reason. Times are tz-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bigearthnet_s1._time import parse_iso

if TYPE_CHECKING:
    from bigearthnet_s1.catalog import Catalog, ProductRecord

__all__ = ["SEARCH_SETTLED_AFTER", "CandidateCatalog", "reuse_reason"]


#: Hubs publish a GRD product within about a day of sensing: a search made this long after
#: the end of its time window has seen every product the window will ever hold.
SEARCH_SETTLED_AFTER = timedelta(days=2)


def reuse_reason(saved: Mapping[str, Any], qhash: str, catalog_state: str | None, end: datetime,
              now: datetime, max_age: timedelta) -> str | None:
    """Why a saved search may stand for a new one (None: search again).

    Never reused: a search of other inputs (catalogue, window, footprint), an empty one, or one
    that could not read every product. A local catalogue's search stands while the folder is
    unchanged; a hub's while it is younger than ``max_age`` or was made after its window settled.
    """
    if saved.get("query_hash") != qhash or not saved.get("products") or not saved.get("complete", False):
        return None
    if catalog_state is not None:
        return "the catalogue folder is unchanged" if saved.get("catalog_state") == catalog_state else None
    searched_at = parse_iso(saved["searched_at"]) if saved.get("searched_at") else None
    if searched_at is None:
        return None
    if now - searched_at < max_age:
        return f"searched {(now - searched_at).total_seconds() / 60:.0f} min ago"
    if searched_at >= end + SEARCH_SETTLED_AFTER:
        return "searched after its window had settled"
    return None


class CandidateCatalog:
    """A catalogue over saved search results (the footprint lookup's), for the selection step.

    ``hub``: the live catalogue, when it can ``complete`` records (DHuS searches give rounded
    sizes and no checksum; its OData API gives exact ones for the few chosen products).
    """

    def __init__(self, records: Sequence[ProductRecord], hub: Catalog | None = None):
        self.records = list(records)
        if hub is not None and hasattr(hub, "complete"):
            self.complete = hub.complete

    def search(self, footprint_wgs84: Any, start: datetime, end: datetime) -> list[ProductRecord]:
        """Candidates intersecting ``footprint_wgs84`` that start in [start, end] (UTC)."""
        return [r for r in self.records
                if start <= r.start_time <= end and r.footprint.intersects(footprint_wgs84)]
