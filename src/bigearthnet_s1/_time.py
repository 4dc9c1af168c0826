"""UTC times: the one place that parses and formats them.

Every time in the library is a tz-aware :class:`datetime` in UTC (``numpy.datetime64[ns]``
inside radar-geometry arrays, UTC by convention since numpy has no zones). Times enter as
ISO 8601 text (hub replies, manifests, annotations, the CLI, JSON written by this project), as
``YYYYmmddTHHMMSS`` stamps (product, patch and tile names) or as datetimes from a caller, and
leave in the exact form each file format prescribes: the helpers take the form as an argument
so that what is written stays byte for byte what it was.

Parse errors are :class:`ValueError` (as :mod:`datetime` raises them): each caller knows which
input it was reading and turns them into the library error that names it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from bigearthnet_s1.errors import BigEarthNetS1Error, InputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "COMPACT",
    "as_utc",
    "format_compact",
    "format_iso",
    "parse_compact",
    "parse_datetime64",
    "parse_iso",
    "parse_iso_or_none",
    "require_utc",
]

#: ``YYYYmmddTHHMMSS``: the stamp in Sentinel-1/-2 product names, patch names and tile keys.
COMPACT = "%Y%m%dT%H%M%S"


def as_utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive ``t`` is taken to be UTC already."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def require_utc(t: datetime | str, what: str, error: type[BigEarthNetS1Error] = InputError) -> datetime:
    """``t`` (a datetime or ISO 8601 text) in UTC; a time without a zone is refused (``error``
    naming ``what``), for APIs whose callers must say which zone they mean."""
    if isinstance(t, str):
        try:
            t = parse_iso(t, naive_is_utc=False)
        except ValueError as exc:
            raise error(f"{what}: {exc}") from None
    if not isinstance(t, datetime):
        raise error(f"{what}: expected a datetime, got {t!r}")
    if t.tzinfo is None:
        raise error(f"{what}: naive datetime {t.isoformat()}; times must be tz-aware UTC")
    return t.astimezone(UTC)


def parse_iso(text: str, *, naive_is_utc: bool = True) -> datetime:
    """An ISO 8601 date or date-time (``Z`` or an offset; surrounding blanks ignored) as UTC.

    Text without a zone is UTC (Sentinel-1 manifests and annotations, hub replies, the CLI),
    unless ``naive_is_utc`` is False: then it comes back naive, for the caller to refuse.
    Raises :class:`ValueError` naming the text.
    """
    if not isinstance(text, str):
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None and not naive_is_utc:
        return t
    return as_utc(t)


def parse_iso_or_none(value: object) -> datetime | None:
    """:func:`parse_iso` of an optional field (a hub reply's): None or '' -> None; anything that
    is not ISO 8601 text raises :class:`ValueError` naming it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    return parse_iso(value)


def parse_compact(text: str, fmt: str = COMPACT) -> datetime:
    """A stamp in ``fmt`` (default ``YYYYmmddTHHMMSS``) read as UTC. Raises :class:`ValueError`."""
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def format_compact(t: datetime) -> str:
    """``YYYYmmddTHHMMSS`` in UTC (product names, patch names, tile keys)."""
    return as_utc(t).strftime(COMPACT)


def format_iso(
    t: datetime,
    *,
    timespec: Literal["auto", "seconds", "milliseconds", "microseconds"] = "auto",
    zone: Literal["Z", "+00:00", ""] = "Z",
) -> str:
    """ISO 8601 in UTC: ``2017-06-13T10:10:31.123456Z`` with the defaults.

    ``timespec`` as :meth:`datetime.isoformat` (``auto`` drops zero microseconds); ``zone`` is
    the suffix: ``Z``, ``+00:00`` (what ``isoformat`` writes), or none (a UTC wall-clock time,
    as BigEarthNet's JSON ``acquisition_time``). A naive ``t`` is taken to be UTC.
    """
    return as_utc(t).replace(tzinfo=None).isoformat(timespec=timespec) + zone


def parse_datetime64(text: str) -> np.datetime64:
    """An annotation time (ISO 8601, UTC, no zone or ``Z``) as ``datetime64[ns]``."""
    import numpy as np  # only the radar-geometry readers need it; the rest of this module is light

    return np.datetime64(text.strip().removesuffix("Z"), "ns")
