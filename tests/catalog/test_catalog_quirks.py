"""Hub and manifest quirks: footprints across the antimeridian, malformed manifests."""

from __future__ import annotations

import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
import shapely

from bigearthnet_s1.catalog import FootprintRepairWarning, clean_footprint, make_record
from bigearthnet_s1.catalog.local import LocalCatalog, LocalProductWarning

S1B = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371"
S1B_FOOT = "40.876698,14.925448 41.281048,11.865704 42.780445,12.189661 42.376778,15.321935"
# an IW slice over the Chukotka coast, as the manifest / DHuS write it: corners either side of 180
ANTI_FOOT = "65.10,179.20 65.50,-178.60 67.00,-179.40 66.60,178.10"
ANTI_NAME = "S1B_IW_GRDH_1SDV_20211223T051222_20211223T051247_030148_039993_AAAA"


def _safe(root: Path, name: str, src: Path, foot: str | None = None, **replace: str) -> Path:
    safe = root / f"{name}.SAFE"
    safe.mkdir(parents=True)
    text = (src / "manifest.safe").read_text()
    if foot is not None:
        assert text.count(S1B_FOOT) == 1
        text = text.replace(S1B_FOOT, foot)
    for old, new in replace.items():
        assert text.count(old) >= 1, old
        text = text.replace(old, new)
    (safe / "manifest.safe").write_text(text)
    return safe


def test_antimeridian_footprint_is_split_not_wrapped_round_the_globe() -> None:
    # DHuS WKT / manifest corners of a product crossing 180 deg: as a plain polygon it would
    # span 357 deg of longitude and "cover" every tile between 65 and 67 N (Finland included)
    ring = [(179.2, 65.1), (-178.6, 65.5), (-179.4, 67.0), (178.1, 66.6)]
    with pytest.warns(FootprintRepairWarning, match="antimeridian"):
        fp = clean_footprint(shapely.Polygon(ring), ANTI_NAME)
    assert fp.is_valid
    finland = shapely.box(25.0, 65.5, 26.0, 66.0)
    assert not fp.intersects(finland)
    assert fp.intersects(shapely.Point(179.9, 66.0)) and fp.intersects(shapely.Point(-179.9, 66.0))
    lon0, _, lon1, _ = fp.bounds
    assert (lon0, lon1) == (-180.0, 180.0)
    # the area is the slice's own (about 2.3 x 1.9 deg), not a band round the Earth
    unwrapped = shapely.Polygon([(x % 360.0, y) for x, y in ring])
    assert fp.area == pytest.approx(unwrapped.area, rel=1e-9)


def test_footprints_not_crossing_the_antimeridian_are_unchanged() -> None:
    poly = shapely.Polygon([(14.9, 40.9), (11.9, 41.3), (12.2, 42.8), (15.3, 42.4)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clean_footprint(poly, S1B) is poly
        # CDSE sends such products already split into two parts at +-180
        split = shapely.MultiPolygon([shapely.box(178.0, 65.0, 180.0, 67.0), shapely.box(-180.0, 65.0, -178.5, 67.0)])
        assert clean_footprint(split, ANTI_NAME) is split


def test_make_record_splits_a_dhus_antimeridian_footprint() -> None:
    wkt = "POLYGON ((179.2 65.1, -178.6 65.5, -179.4 67.0, 178.1 66.6, 179.2 65.1))"
    with pytest.warns(FootprintRepairWarning):
        rec = make_record(ANTI_NAME, source="dhus", footprint=shapely.from_wkt(wkt), orbit_direction="ASCENDING")
    assert not rec.footprint.intersects(shapely.box(25.0, 65.5, 26.0, 66.0))


def test_local_catalogue_does_not_return_an_antimeridian_product_for_finland(tmp_path: Path, s1b_rome_safe: Path) -> None:
    root = tmp_path / "products"
    _safe(root, ANTI_NAME, s1b_rome_safe, ANTI_FOOT)
    cat = LocalCatalog(root)
    t0, t1 = datetime(2021, 12, 20, tzinfo=UTC), datetime(2021, 12, 26, tzinfo=UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FootprintRepairWarning)
        assert cat.search(shapely.box(25.0, 65.5, 26.0, 66.0), t0, t1) == []
        assert [r.name for r in cat.search(shapely.box(-179.95, 65.8, -179.9, 65.9), t0, t1)] == [ANTI_NAME]


@pytest.mark.parametrize(
    "foot, replace",
    [
        ("40.876698,14.925448 41.281048 42.780445,12.189661 42.376778,15.321935", {}),  # a pair without comma
        ("40.876698,14.925448 41.281048,1l.865704 42.780445,12.189661 42.376778,15.321935", {}),  # not a number
        (None, {'<safe:orbitNumber type="start">30148<': '<safe:orbitNumber type="start">30l48<'}),
        (None, {"<s1sarl1:missionDataTakeID>235923<": "<s1sarl1:missionDataTakeID>n/a<"}),
    ],
)
def test_a_malformed_manifest_is_skipped_not_fatal(
    tmp_path: Path, s1b_rome_safe: Path, foot: str | None, replace: dict[str, str]
) -> None:
    root = tmp_path / "products"
    good = _safe(root, S1B, s1b_rome_safe)
    bad_name = S1B.replace("_5371", "_5372")
    bad = _safe(root, bad_name, s1b_rome_safe, foot, **replace)
    cat = LocalCatalog(root)
    with pytest.warns(LocalProductWarning, match=bad_name):
        names = [r.name for r in cat.products()]
    assert names == [S1B]
    reasons = dict(cat.skipped)
    assert str(bad) in reasons[bad] or "manifest.safe" in reasons[bad]
    assert good.exists()
    shutil.rmtree(bad)
