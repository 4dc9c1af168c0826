"""Fixtures shared by every test area.

Real data comes from two places: the BigEarthNet example patches inside the
``bigearthnet-common`` wheel, and ``../shared/data`` beside the repository (real Sentinel-1
metadata, a real DEM, recorded catalogue responses). CI has both.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bigearthnet_s1 import samples

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("BIGEARTHNET_S1_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    raise RuntimeError(
        f"shared test data not found (looked in {', '.join(map(str, candidates))}); "
        "set BIGEARTHNET_S1_SHARED_DATA"
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: s1-grd/, dem/, catalog/ (read-only)."""
    return _shared_data_dir()


@pytest.fixture(scope="session")
def s1b_rome_safe(shared_data: Path) -> Path:
    """Real S1B IW GRDH product over central Italy (VV only; zero-filled measurement)."""
    return shared_data / "s1-grd" / "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"


@pytest.fixture(scope="session")
def s1a_beira_safe(shared_data: Path) -> Path:
    """Real S1A IW GRDH product over Mozambique (VV+VH metadata; no measurement files)."""
    return shared_data / "s1-grd" / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.SAFE"


@pytest.fixture(scope="session")
def rome_dem(shared_data: Path) -> Path:
    """Real 30 m DEM over Rome, EPSG:9707 (WGS84 + EGM96 heights), int16, nodata -32768."""
    return shared_data / "dem" / "Rome-30m-DEM.tif"


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bigearthnet-examples")


@pytest.fixture(scope="session")
def s2_example(examples_dir: Path) -> Path:
    """The six real BigEarthNet-S2 example patches (read-only: copy before changing)."""
    return samples.s2_example(examples_dir)


@pytest.fixture(scope="session")
def s1_example(examples_dir: Path) -> Path:
    """The six real BigEarthNet-S1 example patches (read-only: copy before changing)."""
    return samples.s1_example(examples_dir)


@pytest.fixture(scope="session")
def one_patch_tile():
    """Factory: a tile acquisition with one 1200 m patch around (lon, lat) on the 1200 m grid
    from the UTM corner (ulx, uly) of tile ``tile_id`` in ``epsg``, sensed at ``time`` (UTC)."""
    import pyproj

    from bigearthnet_s1.tiles import Patch, TileAcquisition, TileGrid

    def make(tile_id: str, epsg: int, ulx: float, uly: float, lon: float, lat: float, time, label: str):
        x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
        col, row = int((x - ulx) // 1200), int((uly - y) // 1200)
        px, py = ulx + 1200 * col, uly - 1200 * row
        patch = Patch(s2_name=f"S2A_MSIL2A_{time:%Y%m%dT%H%M%S}_{col}_{row}", col=col, row=row, labels=(label,),
                      ulx=px, uly=py, lrx=px + 1200, lry=py - 1200)
        return TileAcquisition(tile_id=tile_id, sensing_time=time, s2_product=None,
                               grid=TileGrid(epsg=epsg, ulx=ulx, uly=uly), patches=(patch,))

    return make


# ---------------------------------------------------------------------------------------
# Hub replies written here in each hub's documented schema (no recorded third-party file):
# ASF Search API GeoJSON features and CDSE OData products, built from one product description
# so that tests can list the same products through both hubs.


def _asf_time(t, precision: str = "ms") -> str:
    """ASF writes UTC times as ``2017-06-13T16:50:43.000Z`` (milliseconds)."""
    if precision == "s":
        t = t.replace(microsecond=0)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def asf_feature(name: str, footprint, *, path: int, direction: str, frame: int = 150, size: int = 1_650_000_000,
                md5: str | None = "0123456789abcdef0123456789abcdef", url: str | None = None, start=None, stop=None,
                polarization: str = "VV+VH", precision: str = "ms", geometry: dict | None = None) -> dict:
    """One feature of ASF's Search API ``output=geojson`` reply for an IW GRD_HD product."""
    import shapely.geometry

    from bigearthnet_s1.catalog import parse_s1_name

    n = parse_s1_name(name)
    start = start or n.start_time
    stop = stop or n.stop_time
    centre = footprint.centroid
    platform = f"Sentinel-1{n.mission[-1]}"
    return {
        "type": "Feature",
        "geometry": geometry or shapely.geometry.mapping(footprint),
        "properties": {
            "beamModeType": "IW",
            "browse": [f"https://datapool.asf.alaska.edu/BROWSE/S{n.mission[-1]}/{name}.jpg"],
            "bytes": size,
            "centerLat": round(centre.y, 4),
            "centerLon": round(centre.x, 4),
            "faradayRotation": None,
            "fileID": f"{name}-GRD_HD",
            "flightDirection": direction,
            "groupID": f"{n.mission}_IWD{n.polarisation[-1]}_{frame:04d}_{frame + 5:04d}_{n.absolute_orbit:06d}_{path:03d}",
            "granuleType": f"SENTINEL_1{n.mission[-1]}_FRAME",
            "insarStackId": None,
            "md5sum": md5,
            "offNadirAngle": None,
            "orbit": n.absolute_orbit,
            "pathNumber": path,
            "platform": platform,
            "pointingAngle": None,
            "polarization": polarization,
            "processingDate": _asf_time(stop),
            "processingLevel": "GRD_HD",
            "sceneName": name,
            "sensor": "C-SAR",
            "startTime": _asf_time(start, precision),
            "stopTime": _asf_time(stop, precision),
            "url": url or f"https://datapool.asf.alaska.edu/GRD_HD/S{n.mission[-1]}/{name}.zip",
            "fileName": f"{name}.zip",
            "frameNumber": frame,
            "pgeVersion": "002.91",
            "s3Urls": [],
        },
    }


def asf_reply(features: list[dict]) -> dict:
    """The Search API's GeoJSON reply: a FeatureCollection."""
    return {"type": "FeatureCollection", "features": list(features)}


def cdse_item(name: str, footprint, *, uuid: str, path: int, direction: str, size: int = 1_650_000_000,
              md5: str = "0123456789abcdef0123456789abcdef", start=None, stop=None, online: bool = True) -> dict:
    """One product of the CDSE OData catalogue (``$expand=Attributes``) for an IW GRDH product."""
    import shapely
    import shapely.geometry

    from bigearthnet_s1.catalog import parse_s1_name

    n = parse_s1_name(name)
    start = start or n.start_time
    stop = stop or n.stop_time

    def t(x) -> str:
        return x.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def attr(kind: str, key: str, value) -> dict:
        return {"@odata.type": f"#OData.CSC.{kind}Attribute", "Name": key, "Value": value, "ValueType": kind}

    return {
        "@odata.mediaContentType": "application/octet-stream",
        "Id": uuid,
        "Name": f"{name}.SAFE",
        "ContentType": "application/octet-stream",
        "ContentLength": size,
        "OriginDate": t(stop),
        "PublicationDate": t(stop),
        "ModificationDate": t(stop),
        "Online": online,
        "EvictionDate": "9999-12-31T23:59:59.999999Z",
        "S3Path": f"/eodata/Sentinel-1/SAR/IW_GRDH_1S/{start:%Y/%m/%d}/{name}.SAFE",
        "Checksum": [{"Value": md5, "Algorithm": "MD5", "ChecksumDate": t(stop)}],
        "ContentDate": {"Start": t(start), "End": t(stop)},
        "Footprint": f"geography'SRID=4326;{shapely.to_wkt(footprint, rounding_precision=6, trim=True)}'",
        "GeoFootprint": shapely.geometry.mapping(footprint),
        "Attributes": [
            attr("String", "productType", "IW_GRDH_1S"),
            attr("String", "platformShortName", "SENTINEL-1"),
            attr("String", "platformSerialIdentifier", n.mission[-1]),
            attr("String", "instrumentShortName", "SAR"),
            attr("String", "operationalMode", "IW"),
            attr("String", "polarisationChannels", "VV&VH" if n.polarisation == "DV" else "HH&HV"),
            attr("String", "orbitDirection", direction),
            attr("Integer", "orbitNumber", n.absolute_orbit),
            attr("Integer", "relativeOrbitNumber", path),
            attr("String", "datatakeID", str(int(n.datatake_id, 16))),
            attr("DateTimeOffset", "beginningDateTime", t(start)),
            attr("DateTimeOffset", "endingDateTime", t(stop)),
        ],
    }


def cdse_reply(items: list[dict], next_link: str | None = None) -> dict:
    out: dict = {"@odata.context": "$metadata#Products(Attributes())", "value": list(items)}
    if next_link:
        out["@odata.nextLink"] = next_link
    return out


@pytest.fixture(scope="session")
def hub_replies():
    """Builders of ASF Search API and CDSE OData replies (see the functions above)."""
    from types import SimpleNamespace

    return SimpleNamespace(asf_feature=asf_feature, asf_reply=asf_reply, cdse_item=cdse_item,
                           cdse_reply=cdse_reply, asf_time=_asf_time)
