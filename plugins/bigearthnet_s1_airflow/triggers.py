"""A trigger that waits, in the triggerer, for an archived product to come back online.

Hubs keep old products in a long-term archive: a download must first order the product,
then wait minutes to hours. The download operator defers to this trigger so no worker slot
(and no download-pool slot) is held while waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class ProductRetrievalTrigger(BaseTrigger):
    """Poll the hub (``pipeline.product_status``, through ``hub.HubClient``) until the product is online.

    Fires one event: ``{"status": "online" | "timeout" | "error", "product": name, "message": str,
    "polls": int}``. ``deadline`` is a POSIX timestamp (s, UTC); ``poll_interval`` in s.
    """

    def __init__(self, *, product: str, work_dir: str, archive_dir: str | None = None,
                 catalog_conn_id: str | None = None, order_id: str | None = None,
                 poll_interval: float = 60.0, deadline: float | None = None) -> None:
        super().__init__()
        self.product = product
        self.work_dir = work_dir
        self.archive_dir = archive_dir
        self.catalog_conn_id = catalog_conn_id or None
        self.order_id = order_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline) if deadline is not None else time.time() + 86400.0

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "product": self.product,
                "work_dir": self.work_dir,
                "archive_dir": self.archive_dir,
                "catalog_conn_id": self.catalog_conn_id,
                "order_id": self.order_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def _options(self) -> dict[str, Any]:
        if not self.catalog_conn_id:
            return {}
        from airflow.sdk import BaseHook

        from bigearthnet_s1_airflow.hooks import options_from_connection

        conn = await BaseHook.aget_connection(self.catalog_conn_id)
        return options_from_connection(conn.host, conn.schema, conn.port, conn.login,
                                       conn.password, conn.extra_dejson)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from bigearthnet_s1 import pipeline  # the library, loaded in the triggerer only

        work = pipeline.WorkDir(self.work_dir, self.archive_dir)
        polls = 0
        try:
            options = await self._options()
            while True:
                polls += 1
                # The store's status call is blocking HTTP: keep it off the event loop.
                st = await asyncio.to_thread(pipeline.product_status, work, self.product, options,
                                             self.order_id)
                status = st["state"]
                self.log.info("product %s: %s (poll %d)", self.product, status, polls)
                if status == "failed":
                    yield TriggerEvent({"status": "error", "product": self.product, "polls": polls,
                                        "message": f"retrieval failed: {st.get('message') or 'no reason given'}"})
                    return
                if status == "online":
                    yield TriggerEvent({"status": "online", "product": self.product,
                                        "message": "online", "polls": polls})
                    return
                if time.time() >= self.deadline:
                    yield TriggerEvent({
                        "status": "timeout", "product": self.product, "polls": polls,
                        "message": f"product {self.product} still {status} after the wait limit",
                    })
                    return
                await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - time.time())))
        except Exception as exc:  # reported to the task, which raises with this message
            from bigearthnet_s1.redact import redact

            yield TriggerEvent({"status": "error", "product": self.product, "polls": polls,
                                "message": redact(f"{type(exc).__name__}: {exc}")})
