"""The simulated SAFE products have the element trees and the file layout of real ones."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bigearthnet_s1.simulate import crc16_ccitt


def element_paths(path: Path) -> list[str]:
    """Tag paths of an XML file in document order, each once (values and list lengths ignored)."""
    out: list[str] = []
    seen: set[str] = set()

    def walk(e: ET.Element, prefix: str) -> None:
        p = f"{prefix}/{e.tag}"
        if p not in seen:
            seen.add(p)
            out.append(p)
        for c in e:
            walk(c, p)

    walk(ET.parse(path).getroot(), "")
    return out


def one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert found, f"no {pattern} in {folder}"
    return found[0]


KINDS = {
    "manifest": "manifest.safe",
    "annotation": "annotation/s1?-iw-grd-vv-*.xml",
    "calibration": "annotation/calibration/calibration-*-vv-*.xml",
}


#: What IPF 3.40 added to the annotation tree (the RFI report): the only difference between
#: the trees of real IPF 3.31 and IPF 3.40 GRD products.
IPF340_ANNOTATION_ONLY = ["/product/imageAnnotation/processingInformation/rfiMitigationPerformed",
                          "/product/imageAnnotation/processingInformation/rfiMitigationDomain"]


def before_ipf340(paths: list[str]) -> list[str]:
    assert all(p in paths for p in IPF340_ANNOTATION_ONLY) or not any(p in paths for p in IPF340_ANNOTATION_ONLY)
    return [p for p in paths if p not in IPF340_ANNOTATION_ONLY]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_old_ipf_trees_equal_the_real_s1b(sim_old, real_s1b: Path, kind: str) -> None:
    """IPF 2.84 product vs the real S1B (IPF 3.40) product: same manifest, annotation and
    calibration trees once 3.40's two RFI elements are left out of the annotation."""
    real = element_paths(one(real_s1b, KINDS[kind]))
    if kind == "annotation":
        assert all(p in real for p in IPF340_ANNOTATION_ONLY)
        real = before_ipf340(real)
    assert element_paths(one(sim_old.safe, KINDS[kind])) == real


@pytest.mark.parametrize("kind", sorted(KINDS) + ["noise", "rfi"])
def test_ipf340_trees_equal_the_real_s1b(sim_new, real_s1b: Path, kind: str) -> None:
    pattern = {**KINDS, "noise": "annotation/calibration/noise-*-vv-*.xml", "rfi": "annotation/rfi/rfi-*-vv-*.xml"}[kind]
    assert element_paths(one(sim_new.safe, pattern)) == element_paths(one(real_s1b, pattern))


def test_ipf3_noise_tree_equals_the_real_s1b(tmp_path: Path, tile_33uup, real_s1b: Path) -> None:
    """IPF 2.91 (range + azimuth noise vectors, no RFI): VV and VH noise trees equal the real
    (VV) noise tree, which did not change from 2.9 to 3.40; the annotation tree equals the
    real one without 3.40's RFI elements."""
    from bigearthnet_s1.simulate import simulate_product

    safe = simulate_product(tmp_path, tile=tile_33uup, time="2018-06-14T16:50:43", pass_direction="ascending",
                            ipf_version="002.91", margin_m=1500.0)
    real_noise = element_paths(one(real_s1b, "annotation/calibration/noise-*-vv-*.xml"))
    for pattern in ("annotation/calibration/noise-*-vv-*.xml", "annotation/calibration/noise-*-vh-*.xml"):
        assert element_paths(one(safe, pattern)) == real_noise
    assert element_paths(one(safe, KINDS["annotation"])) == before_ipf340(element_paths(one(real_s1b, KINDS["annotation"])))
    assert not (safe / "annotation" / "rfi").exists()


def test_old_noise_format(sim_old) -> None:
    """IPF < 2.9: one list of range vectors (noiseVectorList/noiseVector/noiseLut) and no
    azimuth vectors, the format SNAP, ASF and OTB read for products of 2014-2018."""
    base = "/noise/noiseVectorList/noiseVector"
    paths = element_paths(one(sim_old.safe, "annotation/calibration/noise-*-vh-*.xml"))
    assert paths == (
        ["/noise", "/noise/adsHeader"]
        + [f"/noise/adsHeader/{t}" for t in ("missionId", "productType", "polarisation", "mode", "swath", "startTime",
                                              "stopTime", "absoluteOrbitNumber", "missionDataTakeId", "imageNumber")]
        + ["/noise/noiseVectorList", base] + [f"{base}/{t}" for t in ("azimuthTime", "line", "pixel", "noiseLut")]
    )


def test_xml_validates_against_the_esa_schemas(sim_new, sim_old, real_s1b: Path) -> None:
    """The XSDs xarray-sentinel ships (IPF 3.40 era): the simulated files validate strictly,
    as the real S1B files do."""
    import xmlschema

    res = Path(__import__("importlib.util").util.find_spec("xarray_sentinel").submodule_search_locations[0])
    schemas = {k: xmlschema.XMLSchema(str(res / "resources" / "sentinel1" / f"s1-level-1-{k}.xsd"))
               for k in ("product", "calibration", "noise", "rfi")}
    files = {
        "product": "annotation/s1?-iw-grd-v?-*.xml",
        "calibration": "annotation/calibration/calibration-*.xml",
        "noise": "annotation/calibration/noise-*.xml",
        "rfi": "annotation/rfi/rfi-*.xml",
    }
    for kind, pattern in files.items():
        sims = sorted(sim_new.safe.glob(pattern))
        assert len(sims) == 2, kind
        for f in sims + sorted(real_s1b.glob(pattern))[:1]:
            errors = list(schemas[kind].iter_errors(str(f)))
            assert not errors, f"{f.name}: {errors[0]}"
    for f in sorted(sim_old.safe.glob(files["calibration"])):
        assert not list(schemas["calibration"].iter_errors(str(f)))


@pytest.mark.parametrize("which", ["sim_old", "sim_new"])
def test_manifest_data_objects_and_crc(request: pytest.FixtureRequest, which: str) -> None:
    """Every data object exists with the size and MD5 the manifest gives; the name's suffix is
    the CRC-16 of manifest.safe; no file of the product is left out of the manifest."""
    safe = request.getfixturevalue(which).safe
    ns = {"xfdu": "urn:ccsds:schema:xfdu:1"}
    root = ET.parse(safe / "manifest.safe").getroot()
    listed = set()
    for obj in root.iter("dataObject"):
        stream = obj.find("byteStream")
        rel = stream.find("fileLocation").get("href").removeprefix("./")
        f = safe / rel
        assert f.is_file(), rel
        assert int(stream.get("size")) == f.stat().st_size
        assert stream.find("checksum").text == hashlib.md5(f.read_bytes()).hexdigest()
        listed.add(rel)
    for ptr in root.iter("dataObjectPointer"):
        assert any(o.get("ID") == ptr.get("dataObjectID") for o in root.iter("dataObject"))
    for meta in root.iterfind(".//metadataObject/metadataReference"):
        assert (safe / meta.get("href").removeprefix("./")).is_file()
    files = {p.relative_to(safe).as_posix() for p in safe.rglob("*") if p.is_file()}
    assert files - listed - {"manifest.safe"} == {p for p in files if p.startswith("support/")} | {"preview/icons/logo.png"}
    assert root.find("xfdu:informationPackageMap", ns) is None  # un-prefixed, as in real manifests
    crc = int(safe.name.removesuffix(".SAFE").rsplit("_", 1)[1], 16)
    assert crc == crc16_ccitt((safe / "manifest.safe").read_bytes())


NAME_RE = re.compile(
    r"^(?P<mission>S1[AB])_IW_GRDH_1SDV_(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<abs>\d{6})_(?P<dt>[0-9A-F]{6})_"
    r"(?P<crc>[0-9A-F]{4})\.SAFE$"
)


@pytest.mark.parametrize("which", ["sim_old", "sim_new"])
def test_name_matches_manifest_and_annotation(request: pytest.FixtureRequest, which: str) -> None:
    safe = request.getfixturevalue(which).safe
    m = NAME_RE.match(safe.name)
    assert m, safe.name
    ns = {"safe": "http://www.esa.int/safe/sentinel-1.0", "s1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1",
          "s1sarl1": "http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1"}
    man = ET.parse(safe / "manifest.safe").getroot()
    absolute = int(man.find(".//safe:orbitNumber[@type='start']", ns).text)
    relative = int(man.find(".//safe:relativeOrbitNumber[@type='start']", ns).text)
    assert absolute == int(m["abs"])
    offset = 73 if m["mission"] == "S1A" else 27
    assert relative == (absolute - offset) % 175 + 1
    assert int(man.find(".//s1sarl1:missionDataTakeID", ns).text) == int(m["dt"], 16)
    assert man.find(".//safe:platform/safe:number", ns).text == m["mission"][-1]
    start = man.find(".//safe:acquisitionPeriod/safe:startTime", ns).text
    stop = man.find(".//safe:acquisitionPeriod/safe:stopTime", ns).text
    assert start[:19].replace("-", "").replace(":", "") == m["start"]
    assert stop[:19].replace("-", "").replace(":", "") == m["stop"]
    for f in safe.glob("annotation/s1*.xml"):
        ann = ET.parse(f).getroot()
        assert int(ann.findtext("adsHeader/absoluteOrbitNumber")) == absolute
        assert int(ann.findtext("adsHeader/missionDataTakeId")) == int(m["dt"], 16)
        assert ann.findtext("adsHeader/missionId") == m["mission"]
        assert ann.findtext("adsHeader/startTime") == start
        assert ann.findtext("imageAnnotation/imageInformation/productLastLineUtcTime") == stop
        assert ann.findtext("generalAnnotation/productInformation/pass").upper() == man.find(".//s1:pass", ns).text
        stem = f"{m['mission'].lower()}-iw-grd-{ann.findtext('adsHeader/polarisation').lower()}-"
        assert f.name.startswith(stem) and f.name.endswith(f"-{absolute:06d}-{m['dt'].lower()}-"
                                                          f"{ann.findtext('adsHeader/imageNumber')}.xml")
