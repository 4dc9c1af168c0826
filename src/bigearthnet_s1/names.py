"""Names: Sentinel-1 product names and BigEarthNet's S1 and S2 patch names, parsed and built.

Three kinds of name, three parsers:

* a Sentinel-1 product (ESA naming): ``S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC``
  (mission, mode, type and resolution, level/class/polarisation, start, stop, absolute orbit,
  datatake id, CRC) -> :func:`parse_product_name`;
* a BigEarthNet-S2 patch: ``S2A_MSIL2A_20170613T101031_87_48`` (mission, sensing time, col,
  row; v1.0 has quirky times such as ``T93020``) -> :func:`parse_s2_patch_name`;
* a BigEarthNet-S1 patch: ``S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48`` (the product's
  first four fields and start, MGRS tile, col, row) -> :func:`parse_s1_patch_name`.

A :class:`SceneRef` is the scene a patch comes from: its product name and exact start time;
:func:`s1_patch_name` names the BigEarthNet-S1 patch it gives a tile's square.

reBEN's (v2) names build on these: see :mod:`bigearthnet_s1.reben`. Times in names are UTC, to
the second (``YYYYmmddTHHMMSS``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bigearthnet_s1._time import format_iso, parse_compact, parse_iso, require_utc
from bigearthnet_s1.errors import ArchiveError, InputError, TileError
from bigearthnet_s1.grid import MAX_PATCH_INDEX

__all__ = [
    "PRODUCT_NAME_RE",
    "S1_PATCH_NAME_RE",
    "S2_PATCH_NAME_RE",
    "S1Name",
    "SceneRef",
    "is_iw_grd",
    "name_kind",
    "parse_product_name",
    "parse_s1_patch_name",
    "parse_s2_patch_name",
    "product_name",
    "product_prefix",
    "s1_patch_name",
    "s2_product_time",
    "try_parse_product_name",
]

# --------------------------------------------------------------------------- Sentinel-1 products

#: ESA Sentinel-1 product name, e.g. S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC.
#: mission, mode/beam, product type (4 chars incl. resolution class), level, class,
#: polarisation, start, stop, absolute orbit (6 digits), datatake id (6 hex), CRC (4 hex).
#: ``short`` is the first four fields ("S1A_IW_GRDH_1SDV"), as BigEarthNet's patch names use them.
PRODUCT_NAME_RE = re.compile(
    r"^(?P<short>(?P<mission>S1[A-D])_(?P<mode>IW|EW|WV|S[1-6]|EN|N[1-6]|RF|Z[1-6I]|ZE)_"
    r"(?P<type>GRD|SLC|RAW|OCN|ETA)(?P<resolution>[FHM_])_"
    r"(?P<level>[0-2])(?P<cls>[SAN])(?P<pol>SH|SV|DH|DV|HH|VV|HV|VH))_"
    r"(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_"
    r"(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_(?P<crc>[0-9A-F]{4})$"
)
_SUFFIXES = (".SAFE.zip", ".zip", ".SAFE")


@dataclass(frozen=True)
class S1Name:
    """The fields encoded in a Sentinel-1 product name (times UTC, second resolution)."""

    name: str
    mission: str          # "S1A"
    mode: str             # "IW"
    product_type: str     # "GRD", "SLC", ...
    resolution: str       # "H", "M", "F" or "_" (SLC)
    level: int
    product_class: str    # "S" standard, "A" annotation
    polarisation: str     # "DV", "SV", ...
    start_time: datetime
    stop_time: datetime
    absolute_orbit: int
    datatake_id: str      # hex, "01C579"
    crc: str

    @property
    def is_iw_grd(self) -> bool:
        return self.mode == "IW" and self.product_type == "GRD" and self.level == 1


def product_name(name: str) -> str:
    """Strip a path, ``.SAFE``, ``.zip`` or ``.SAFE.zip`` from a product file name."""
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def parse_product_name(name: str) -> S1Name:
    """Parse a Sentinel-1 product name (a ``.SAFE``/``.zip`` suffix is allowed).

    Raises :class:`~bigearthnet_s1.errors.InputError` naming the product when it does not
    follow the ESA naming convention.
    """
    base = product_name(name)
    m = PRODUCT_NAME_RE.match(base)
    if m is None:
        raise InputError(f"not a Sentinel-1 product name: {name!r}")
    g = m.groupdict()
    return S1Name(
        name=base,
        mission=g["mission"],
        mode=g["mode"],
        product_type=g["type"],
        resolution=g["resolution"],
        level=int(g["level"]),
        product_class=g["cls"],
        polarisation=g["pol"],
        start_time=parse_compact(g["start"]),
        stop_time=parse_compact(g["stop"]),
        absolute_orbit=int(g["orbit"]),
        datatake_id=g["datatake"],
        crc=g["crc"],
    )


@functools.lru_cache(maxsize=65536)
def name_kind(name: str) -> tuple[str, str, str, int, str] | None:
    """(mission, mode, product type, level, polarisation) of a Sentinel-1 name, or ``None``.

    A cheap form of :func:`parse_product_name` (no time parsing, cached) for filtering many names.
    """
    m = PRODUCT_NAME_RE.match(product_name(name))
    if m is None:
        return None
    return m["mission"], m["mode"], m["type"], int(m["level"]), m["pol"]


def try_parse_product_name(name: str) -> S1Name | None:
    """Like :func:`parse_product_name` but return ``None`` for a non-Sentinel-1 name."""
    try:
        return parse_product_name(name)
    except InputError:
        return None


def is_iw_grd(name: str) -> bool:
    """True for a Sentinel-1 IW GRD (level 1) product name."""
    kind = name_kind(name)
    return kind is not None and kind[1:4] == ("IW", "GRD", 1)


def product_prefix(name: str) -> str | None:
    """``<mission>_<mode>_<type>_<level+pol>_<start>`` of a product name (``.SAFE``/``.zip``
    allowed), e.g. "S1A_IW_GRDH_1SDV_20170613T165043": what a BigEarthNet-S1 patch name keeps of
    it. None for a name that is not a Sentinel-1 product's."""
    m = PRODUCT_NAME_RE.match(product_name(name))
    return f"{m['short']}_{m['start']}" if m else None


# --------------------------------------------------------------------------- BigEarthNet patches

S2_PATCH_NAME_RE = re.compile(
    r"^(?P<mission>S2[A-D])_MSIL2A_(?P<date>\d{8})T(?P<time>\d{5,6})_(?P<col>\d{1,2})_(?P<row>\d{1,2})$"
)
S1_PATCH_NAME_RE = re.compile(
    r"^(?P<short>(?P<mission>S1[A-D])_[A-Z0-9]{2}_GRD[HMF]_1S[DSHV][HV])_(?P<time>\d{8}T\d{6})"
    r"_(?P<tile>\d{2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V])_(?P<col>\d{1,2})_(?P<row>\d{1,2})$"
)


def parse_s2_patch_name(name: str) -> tuple[datetime, int, int]:
    """Sensing time (UTC) and (col, row) of a BigEarthNet-S2 patch name.

    Accepts the archive's quirks: an hour without its leading zero
    (``S2B_MSIL2A_20170924T93020_69_24`` -> 09:30:20) and seconds 60/61, which are carried
    over (``...T94161`` -> 09:42:01).
    """
    m = S2_PATCH_NAME_RE.match(name)
    if not m:
        raise TileError(f"not a BigEarthNet-S2 patch name: {name!r}")
    t = m.group("time").rjust(6, "0")
    hh, mm, ss = int(t[:2]), int(t[2:4]), int(t[4:])
    if hh > 23 or mm > 59 or ss > 61:
        raise TileError(f"BigEarthNet-S2 patch name {name!r}: bad time of day {m.group('time')}")
    try:
        day = parse_compact(m.group("date"), "%Y%m%d")
    except ValueError as exc:
        raise TileError(f"BigEarthNet-S2 patch name {name!r}: bad date") from exc
    col, row = int(m.group("col")), int(m.group("row"))
    if col > MAX_PATCH_INDEX or row > MAX_PATCH_INDEX:
        raise TileError(f"BigEarthNet-S2 patch name {name!r}: col/row outside 0..{MAX_PATCH_INDEX}")
    return day + timedelta(hours=hh, minutes=mm, seconds=ss), col, row


@functools.lru_cache(maxsize=8192)
def s2_product_time(prefix: str) -> datetime:
    """Sensing time (UTC) of ``<mission>_MSIL2A_<date>T<time>``, an S2 patch name without its
    col_row, with the quirks :func:`parse_s2_patch_name` accepts. Cached: parsed once per product,
    not per patch (strptime would be most of the time to read 500,000 patch names)."""
    return parse_s2_patch_name(f"{prefix}_0_0")[0]


def parse_s1_patch_name(name: str) -> dict[str, Any]:
    """Fields of a BigEarthNet-S1 patch name ``<S1 short id>_<start>_<tile>_<col>_<row>``.

    Returns ``short`` ("S1A_IW_GRDH_1SDV"), ``mission``, ``start_time`` (UTC), ``tile_id``,
    ``col``, ``row``.
    """
    m = S1_PATCH_NAME_RE.match(name)
    if not m:
        raise TileError(f"not a BigEarthNet-S1 patch name: {name!r}")
    try:
        start = parse_compact(m.group("time"))
    except ValueError as exc:
        raise TileError(f"BigEarthNet-S1 patch name {name!r}: bad start time") from exc
    col, row = int(m.group("col")), int(m.group("row"))
    if col > MAX_PATCH_INDEX or row > MAX_PATCH_INDEX:
        raise TileError(f"BigEarthNet-S1 patch name {name!r}: col/row outside 0..{MAX_PATCH_INDEX}")
    return {
        "short": m.group("short"),
        "mission": m.group("mission"),
        "start_time": start,
        "tile_id": m.group("tile"),
        "col": col,
        "row": row,
    }


# --------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class SceneRef:
    """A Sentinel-1 scene that supplies patches: its product id (no ``.SAFE``) and start time (UTC)."""

    scene_id: str
    start_time: datetime

    def __post_init__(self) -> None:
        if not PRODUCT_NAME_RE.match(self.scene_id):
            raise ArchiveError(f"not a Sentinel-1 product id: {self.scene_id!r}")
        require_utc(self.start_time, f"scene {self.scene_id}: start_time", ArchiveError)

    @classmethod
    def from_scene_id(cls, scene_id: str) -> SceneRef:
        """Build from a product id, the start time read from the id (second precision)."""
        scene_id = product_name(scene_id)
        m = PRODUCT_NAME_RE.match(scene_id)
        if not m:
            raise ArchiveError(f"not a Sentinel-1 product id: {scene_id!r}")
        return cls(scene_id, parse_compact(m.group("start")))

    def to_json(self) -> dict[str, str]:
        return {"scene_id": self.scene_id, "start_time": format_iso(self.start_time, zone="+00:00")}

    @classmethod
    def from_json(cls, d: Mapping[str, str]) -> SceneRef:
        return cls(d["scene_id"], parse_iso(d["start_time"]))


def s1_patch_name(scene_id: str, tile_id: str, col: int, row: int) -> str:
    """``<mission>_<mode>_<type>_<level+pol>_<start>_<tile>_<col>_<row>``, e.g.
    "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48" from scene
    "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"."""
    m = PRODUCT_NAME_RE.match(product_name(scene_id))
    if not m:
        raise ArchiveError(f"not a Sentinel-1 product id: {scene_id!r}")
    name = f"{m.group('short')}_{m.group('start')}_{tile_id}_{col}_{row}"
    if not S1_PATCH_NAME_RE.match(name) or not (0 <= col <= MAX_PATCH_INDEX and 0 <= row <= MAX_PATCH_INDEX):
        raise ArchiveError(f"patch name {name!r} (scene {scene_id}, tile {tile_id}) is not valid")
    return name
