"""The download operator: fetch one product into the store, deferring while it is archived."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator


class ProductDownloadOperator(BaseOperator):
    """Download one product (by name) into ``<work_dir>/products`` and return a small JSON dict.

    If the hub reports the product as archived (offline), the operator orders its retrieval
    and defers to :class:`~bigearthnet_s1_airflow.triggers.ProductRetrievalTrigger`, which polls
    every ``poll_interval`` s for at most ``wait_timeout`` s without holding a worker slot. The
    product record is read from the work dir (written by the selection step): XCom carries only
    the name. Idempotent: a product already in the store is not downloaded again.
    """

    template_fields: Sequence[str] = ("product", "work_dir", "archive_dir", "catalog_conn_id",
                                      "poll_interval", "wait_timeout")
    ui_color = "#d9ecf2"

    def __init__(self, *, product: str, work_dir: str, archive_dir: str | None = None,
                 catalog_conn_id: str | None = None, poll_interval: float | str = 60.0,
                 wait_timeout: float | str = 6 * 3600.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.product = product
        self.work_dir = work_dir
        self.archive_dir = archive_dir
        self.catalog_conn_id = catalog_conn_id
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout

    def _options(self) -> dict[str, Any]:
        if not self.catalog_conn_id:
            return {}
        from bigearthnet_s1_airflow.hooks import CatalogHook

        return CatalogHook(self.catalog_conn_id).connection_options()

    def execute(self, context: Any) -> dict[str, Any]:
        from bigearthnet_s1 import pipeline

        work = pipeline.WorkDir(self.work_dir, self.archive_dir)
        options = self._options()
        status = pipeline.product_status(work, self.product, options)
        if status["state"] != "online":
            order = pipeline.request_product(work, self.product, options)
            if order["state"] == "online":
                return self._fetch(work, options)
            self.log.info("product %s is archived: retrieval ordered (%s), deferring (poll every %s s, "
                          "give up after %s s)", self.product, order.get("order_id") or order["message"],
                          self.poll_interval, self.wait_timeout)
            from bigearthnet_s1_airflow.triggers import ProductRetrievalTrigger

            wait = float(self.wait_timeout)
            self.defer(
                trigger=ProductRetrievalTrigger(
                    product=self.product, work_dir=str(self.work_dir),
                    archive_dir=str(self.archive_dir) if self.archive_dir else None,
                    catalog_conn_id=self.catalog_conn_id, order_id=order.get("order_id"),
                    poll_interval=float(self.poll_interval), deadline=time.time() + wait,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=wait + 3 * float(self.poll_interval)),
            )
        return self._fetch(work, options)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from bigearthnet_s1 import pipeline
        from bigearthnet_s1.errors import ProductOfflineError

        if not event or event.get("status") != "online":
            msg = (event or {}).get("message", "no event from the retrieval trigger")
            raise ProductOfflineError(f"product {self.product}: {msg}")
        self.log.info("product %s online after %s polls", self.product, event.get("polls"))
        work = pipeline.WorkDir(self.work_dir, self.archive_dir)
        return self._fetch(work, self._options())

    def _fetch(self, work: Any, options: dict[str, Any]) -> dict[str, Any]:
        from bigearthnet_s1 import pipeline

        t0 = time.monotonic()
        result = pipeline.fetch_product(work, self.product, options)
        self.log.info("product %s ready at %s (%.1f s)", self.product, result["path"],
                      time.monotonic() - t0)
        return result
