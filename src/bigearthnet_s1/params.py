"""Checks of run parameters, one rule for every entry point: each CLI verb, the pipeline and
the DAG's params call these before any work starts or any file is written.

Every check raises :class:`~bigearthnet_s1.errors.ParameterError` naming the parameter, the
value given and what would be accepted. Tile ids follow the MGRS grammar (``33UUP``: zone
1-60, latitude band C-X without I and O, 100 km square letters); tile keys are
``<tile id>_<YYYYMMDDTHHMMSS>`` (``33UUP_20170613T101031``). A tile asked for by name that the
source does not hold is an error (:func:`require_tiles`), never an empty result.

Light module (no numpy, no GDAL): the DAG file may import it at parse time.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bigearthnet_s1._time import as_utc, parse_iso
from bigearthnet_s1.errors import ParameterError

__all__ = [
    "DEM_NAMES",
    "POLARISATIONS",
    "check_choice",
    "check_dem",
    "check_engine",
    "check_existing",
    "check_fraction",
    "check_int",
    "check_number",
    "check_polarisations",
    "check_selection",
    "check_tile_id",
    "check_tile_ids",
    "check_time",
    "check_writable",
    "require_tiles",
]

#: MGRS tile id (optionally with Sentinel-2's leading "T"), and a tile acquisition key.
_TILE_ID_RE = re.compile(r"^T?(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")
_TILE_KEY_RE = re.compile(r"^T?(\d{1,2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V])_(\d{8}T\d{6})$")

DEM_NAMES = ("flat", "auto", "srtm1", "glo30")
POLARISATIONS = ("VV", "VH", "HH", "HV")


def check_choice(value: Any, choices: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ParameterError(f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def check_number(value: Any, what: str, *, minimum: float | None = None, maximum: float | None = None,
                 exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> float:
    """``value`` as a finite float within the bounds (inclusive unless ``exclusive_*``)."""
    if isinstance(value, bool):
        raise ParameterError(f"{what} must be a number; got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a number; got {value!r}") from None
    if not math.isfinite(v):
        raise ParameterError(f"{what} must be a finite number; got {value!r}")
    if minimum is not None and (v <= minimum if exclusive_minimum else v < minimum):
        raise ParameterError(f"{what} must be {'>' if exclusive_minimum else '>='} {minimum:g}; got {value!r}")
    if maximum is not None and (v >= maximum if exclusive_maximum else v > maximum):
        raise ParameterError(f"{what} must be {'<' if exclusive_maximum else '<='} {maximum:g}; got {value!r}")
    return v


def check_int(value: Any, what: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within the (inclusive) bounds; floats must be whole."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ParameterError(f"{what} must be an integer; got {value!r}")
    try:
        f = float(value)
    except ValueError:
        raise ParameterError(f"{what} must be an integer; got {value!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise ParameterError(f"{what} must be an integer; got {value!r}")
    v = int(f)
    if minimum is not None and v < minimum:
        raise ParameterError(f"{what} must be >= {minimum}; got {value!r}")
    if maximum is not None and v > maximum:
        raise ParameterError(f"{what} must be <= {maximum}; got {value!r}")
    return v


def check_fraction(value: Any, what: str) -> float:
    """A fraction in (0, 1] (a coverage tolerance: 0 would accept an empty cover)."""
    return check_number(value, what, minimum=0.0, maximum=1.0, exclusive_minimum=True)


def check_time(value: str | datetime | None, what: str) -> datetime | None:
    """An ISO 8601 date or date-time (a naive one is UTC; a date alone is midnight) as a tz-aware
    UTC datetime; None or '' -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return parse_iso(str(value))
    except ValueError:
        raise ParameterError(f"{what} {value!r}: expected ISO 8601, e.g. 2017-06-13T10:10:31Z "
                             "(this is not an ISO date or date-time)") from None


def check_tile_id(value: Any, what: str = "tile", *, keys: bool = False) -> str:
    """An MGRS tile id (``33UUP``, ``T33UUP``), or with ``keys`` also a tile key
    (``33UUP_20170613T101031``); returned upper-case without the ``T``."""
    text = str(value).strip().upper() if isinstance(value, str) else ""
    m = _TILE_ID_RE.match(text)
    if m:
        if not 1 <= int(m.group(1)) <= 60:
            raise ParameterError(f"{what} {value!r}: UTM zone {int(m.group(1))} outside 1..60")
        return text.removeprefix("T")
    k = _TILE_KEY_RE.match(text) if keys else None
    if k:
        check_tile_id(k.group(1), what)
        return f"{k.group(1)}_{k.group(2)}"
    expect = "an MGRS tile id such as 33UUP" + (" or a tile key such as 33UUP_20170613T101031" if keys else "")
    raise ParameterError(f"{what} {value!r} is not {expect} (zone 1-60, band C-X without I/O, "
                         "two 100 km square letters)")


def check_tile_ids(values: Iterable[Any] | None, what: str = "tiles", *, keys: bool = False) -> list[str]:
    """:func:`check_tile_id` on each value (empty strings skipped); order kept, duplicates
    dropped. One error names every value that is not a tile id."""
    out: list[str] = []
    bad: list[str] = []
    for v in values or ():
        if isinstance(v, str) and not v.strip():
            continue
        try:
            t = check_tile_id(v, what, keys=keys)
        except ParameterError:
            bad.append(str(v))
            continue
        if t not in out:
            out.append(t)
    if bad:
        expect = "MGRS tile ids such as 33UUP" + (" or tile keys such as 33UUP_20170613T101031" if keys else "")
        raise ParameterError(f"unknown tile(s) {', '.join(bad)} in {what}: not {expect} (zone 1-60, band C-X "
                             "without I/O, two 100 km square letters)")
    return out


def require_tiles(requested: Iterable[str], acquisitions: Iterable[Any], source: str, what: str = "tiles") -> None:
    """Raise unless every tile id/key in ``requested`` names an acquisition of ``source``
    (objects with ``tile_id`` and ``key``): a typo must not look like "nothing to do"."""
    wanted = check_tile_ids(requested, what, keys=True)
    if not wanted:
        return
    acqs = list(acquisitions)
    ids = {a.tile_id.upper() for a in acqs}
    keys = {a.key.upper() for a in acqs}
    unknown = [t for t in wanted if t not in ids and t not in keys]
    if unknown:
        known = ", ".join(sorted(ids)[:12]) + (" ..." if len(ids) > 12 else "") if ids else "none"
        raise ParameterError(f"unknown tile(s) {', '.join(unknown)}: not in {source} (its tiles: {known})")


def check_polarisations(value: str | Sequence[str], what: str = "polarisations") -> tuple[str, ...]:
    """A non-empty list of distinct polarisations among VV, VH, HH, HV (comma-separated text or a list)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    pols = tuple(str(p).strip().upper() for p in items if str(p).strip())
    if not pols:
        raise ParameterError(f"{what}: none given (expected e.g. VV,VH)")
    bad = [p for p in pols if p not in POLARISATIONS]
    if bad:
        raise ParameterError(f"{what}: unknown polarisation(s) {', '.join(bad)} (expected {', '.join(POLARISATIONS)})")
    if len(set(pols)) != len(pols):
        raise ParameterError(f"{what}: {', '.join(pols)} names a polarisation twice")
    return pols


def check_existing(path: str | os.PathLike[str], what: str, *, kind: str = "any") -> Path:
    """``path`` if it exists (``kind``: "file", "dir" or "any")."""
    p = Path(path).expanduser()
    why = "it does not exist" if not p.exists() else ("it is a folder" if p.is_dir() else "it is a file")
    if kind == "file" and not p.is_file():
        raise ParameterError(f"{what} {str(path)!r} is not a file: {why}")
    if kind == "dir" and not p.is_dir():
        raise ParameterError(f"{what} {str(path)!r} is not a folder: {why}")
    if kind == "any" and not p.exists():
        raise ParameterError(f"{what} {str(path)!r} does not exist")
    return p


def check_writable(path: Path, what: str) -> None:
    """Raise unless ``path`` is (or can be created as) a writable folder.

    Writes nothing that stays: the probe is an anonymous temporary file in the nearest existing
    ancestor (``os.access`` alone is not enough: root passes it on a read-only file system).
    """
    p = Path(path)
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise ParameterError(f"{what} {path} cannot be created: {p} is not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ParameterError(f"{what} {path} is not writable (no write permission on {p})")
    try:
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        raise ParameterError(f"{what} {path} is not writable ({p}: {exc.strerror or exc})") from exc


def check_dem(dem: str) -> None:
    """A DEM spec is 'flat', 'flat:<height m>', 'auto', 'srtm1', 'glo30' or an existing raster path."""
    if dem in DEM_NAMES:
        return
    if isinstance(dem, str) and dem.startswith("flat:"):
        check_number(dem[5:], "DEM flat height (m)", minimum=-500.0, maximum=9000.0)
        return
    if not Path(dem).expanduser().is_file():
        raise ParameterError(f"DEM {dem!r} is neither one of {', '.join(DEM_NAMES)} nor an existing raster file")


ENGINES = ("native", "snap")


def check_engine(engine: str) -> None:
    """The engine exists here (``snap`` needs SNAP's gpt): fail before anything runs."""
    check_choice(engine, ENGINES, "engine")
    if engine == "snap":
        from bigearthnet_s1 import gpt

        gpt.find_gpt()  # raises EngineUnavailableError with install instructions


def check_selection(*, tolerance: Any = 0.999, target: Any = "patches", window_days: Any = 3.0,
                    max_window_days: Any = 9.0, step_days: Any = None) -> None:
    """The orbit selection's parameters: coverage tolerance in (0, 1], target patches|tile,
    search half-window > 0 days, widest half-window >= the first (both at most 60 days),
    widening step > 0 days."""
    check_fraction(tolerance, "coverage tolerance")
    check_choice(target, ("patches", "tile"), "coverage target")
    w = check_number(window_days, "search window (days)", minimum=0.0, maximum=60.0, exclusive_minimum=True)
    mw = check_number(max_window_days, "widest search window (days)", minimum=0.0, maximum=60.0, exclusive_minimum=True)
    if mw < w:
        raise ParameterError(f"widest search window ({max_window_days!r} days) is narrower than the search window "
                             f"({window_days!r} days)")
    if step_days is not None:
        check_number(step_days, "window step (days)", minimum=0.0, maximum=60.0, exclusive_minimum=True)
