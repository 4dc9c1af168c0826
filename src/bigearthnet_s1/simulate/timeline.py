"""Times inside the simulator: UTC ``numpy.datetime64[ns]`` (no zone), and the annotation's
time text (UTC, rounded to the microsecond, no zone: ``2021-01-19T03:16:53.799379``)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1._time import as_utc, parse_iso
from bigearthnet_s1.errors import SimulationError


def _to_datetime64(t: datetime | str | np.datetime64) -> np.datetime64:
    """UTC ``datetime64[ns]`` of a tz-aware datetime (naive = UTC), ISO string or datetime64."""
    if isinstance(t, np.datetime64):
        return t.astype("datetime64[ns]")
    if isinstance(t, str):
        try:
            t = parse_iso(t)
        except ValueError as exc:
            raise SimulationError(f"simulate: cannot read time {t!r} (ISO 8601 expected)") from exc
    if not isinstance(t, datetime):
        raise SimulationError(f"simulate: time must be a datetime or ISO string, got {t!r}")
    return np.datetime64(as_utc(t).replace(tzinfo=None), "us").astype("datetime64[ns]")


def _to_datetime(t: np.datetime64) -> datetime:
    us = int(t.astype("datetime64[us]").astype(np.int64))
    return datetime(1970, 1, 1, tzinfo=UTC) + (np.timedelta64(us, "us").item())


def _round_us(t: np.datetime64 | NDArray[np.datetime64]) -> np.datetime64:
    """Round to the microsecond (the annotation's time resolution)."""
    ns = int(t.astype("datetime64[ns]").astype(np.int64))
    return np.datetime64(((ns + 500) // 1000) * 1000, "ns")


def _plus(t: np.datetime64, seconds: float) -> np.datetime64:
    return t + np.timedelta64(int(round(seconds * 1e9)), "ns")


def _seconds(a: np.datetime64, b: np.datetime64) -> float:
    """a - b in seconds."""
    return float((a.astype("datetime64[ns]") - b.astype("datetime64[ns]")).astype(np.int64)) * 1e-9


def _iso(t: np.datetime64 | NDArray[np.datetime64]) -> str:
    """Annotation time format: ``2021-01-19T03:16:53.799379`` (UTC, rounded to the microsecond, no zone)."""
    return str(np.datetime_as_string(_round_us(t.astype("datetime64[ns]")), unit="us"))
