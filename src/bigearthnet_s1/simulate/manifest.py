"""The SAFE's manifest, preview and support files: ``manifest.safe`` (XFDU, with the size and
MD5 of every data object), the quick-look, KML overlay and HTML preview, the XSD schemas."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bigearthnet_s1.simulate.annotation import _Meta
from bigearthnet_s1.simulate.mission import _MISSIONS, FULL_DURATION, product_name
from bigearthnet_s1.simulate.planning import _Plan
from bigearthnet_s1.simulate.timeline import _iso, _plus, _seconds, _to_datetime

log = logging.getLogger(__name__)

_NS_DECL = (
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" '
    'xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" '
    'xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" '
    'xmlns:s1sar="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar" '
    'xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" '
    'xmlns:s1sarl2="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-2" '
    'xmlns:gx="http://www.google.com/kml/ext/2.2"'
)


@dataclass
class _DataObject:
    id: str
    rep: str
    href: str  # relative to the SAFE folder, "./..."
    mime: str
    size: int = 0
    md5: str = ""


def _file_stem(meta: _Meta, pol: str, number: str) -> str:
    s = _to_datetime(meta.start).strftime("%Y%m%dt%H%M%S")
    e = _to_datetime(meta.stop).strftime("%Y%m%dt%H%M%S")
    return f"{meta.mission.lower()}-iw-grd-{pol.lower()}-{s}-{e}-{meta.absolute_orbit:06d}-{meta.datatake:06x}-{number}"


def _files_of(meta: _Meta) -> dict[str, dict[str, str]]:
    """pol -> kind -> relative path, for kinds product, noise, rfi (IPF >= 3.4), calibration, measurement."""
    out: dict[str, dict[str, str]] = {}
    for pol, number in (("VH", "002"), ("VV", "001")):
        stem = _file_stem(meta, pol, number)
        files = {"product": f"annotation/{stem}.xml", "noise": f"annotation/calibration/noise-{stem}.xml"}
        if meta.rfi:
            files["rfi"] = f"annotation/rfi/rfi-{stem}.xml"
        files["calibration"] = f"annotation/calibration/calibration-{stem}.xml"
        files["measurement"] = f"measurement/{stem}.tiff"
        out[pol] = files
    return out

_REP = {
    "product": "s1Level1ProductSchema", "noise": "s1Level1NoiseSchema", "rfi": "s1Level1RfiSchema",
    "calibration": "s1Level1CalibrationSchema", "measurement": "s1Level1MeasurementSchema",
}


def _manifest_xml(meta: _Meta, plan: _Plan, objects: dict[str, _DataObject], footprint: list[tuple[float, float]]) -> bytes:
    """``manifest.safe`` of the product (``objects``: every file it lists, with size and MD5)."""
    ipm, meta_objs, data_objs = _content_units(meta, objects)
    processing = _processing(meta)
    schema_objs = _schema_objects(meta.rfi)
    kinds_dmd = "acquisitionPeriod platform generalProductInformation measurementOrbitReference measurementFrameSet"
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<xfdu:XFDU {_NS_DECL} version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/grd/standard/iwdp">\n'
        "  <informationPackageMap>\n"
        '    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 IW Level-1 GRD Product" '
        f'dmdID="{kinds_dmd}" pdiID="processing">\n'
        + "\n".join(ipm) + "\n"
        "    </xfdu:contentUnit>\n"
        "  </informationPackageMap>\n"
        "  <metadataSection>\n"
        + "\n".join(meta_objs) + "\n"
        + '    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">\n'
        '      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">\n'
        f"        <xmlData>\n{processing}        </xmlData>\n      </metadataWrap>\n    </metadataObject>\n"
        + _descriptions(meta, plan, footprint)
        + "\n".join(schema_objs) + "\n"
        "  </metadataSection>\n"
        "  <dataObjectSection>\n"
        + "\n".join(data_objs) + "\n"
        "  </dataObjectSection>\n"
        "</xfdu:XFDU>\n"
    )
    return text.encode("utf-8")


def _content_units(meta: _Meta, objects: dict[str, _DataObject]) -> tuple[list[str], list[str], list[str]]:
    """The information package map's content units, the metadata objects pointing at the annotation
    files, and the data objects (size, MD5 of every file) of the manifest, in the real products' order."""
    kinds = ["product", "noise"] + (["rfi"] if meta.rfi else []) + ["calibration"]
    pols = ["VH", "VV"]
    ipm, meta_objs, data_objs = [], [], []
    for pol in pols:
        for kind in kinds:
            o = objects[f"{kind}-{pol}"]
            ipm.append(f'      <xfdu:contentUnit unitType="Metadata Unit" repID="{o.rep}">\n'
                       f'        <dataObjectPointer dataObjectID="{o.id}"/>\n      </xfdu:contentUnit>')
            meta_objs.append(f'    <metadataObject ID="{o.id}Annotation" classification="DESCRIPTION" category="DMD">\n'
                             f'      <dataObjectPointer dataObjectID="{o.id}"/>\n    </metadataObject>')
    for oid, rep in (("mapoverlay", "s1Level1MapOverlaySchema"), ("productpreview", "s1Level1ProductPreviewSchema")):
        ipm.append(f'      <xfdu:contentUnit unitType="Metadata Unit" repID="{rep}">\n'
                   f'        <dataObjectPointer dataObjectID="{oid}"/>\n      </xfdu:contentUnit>')
        meta_objs.append(f'    <metadataObject ID="{oid}Annotation" classification="DESCRIPTION" category="DMD">\n'
                         f'      <dataObjectPointer dataObjectID="{oid}"/>\n    </metadataObject>')
    for pol in pols:
        o = objects[f"measurement-{pol}"]
        dmd = " ".join(objects[f"{k}-{pol}"].id + "Annotation" for k in kinds) + " "
        ipm.append(f'      <xfdu:contentUnit unitType="Measurement Data Unit" repID="s1Level1MeasurementSchema" dmdID="{dmd}">\n'
                   f'        <dataObjectPointer dataObjectID="{o.id}"/>\n      </xfdu:contentUnit>')
    ipm.append('      <xfdu:contentUnit unitType="Measurement Data Unit" repID="s1Level1QuickLookSchema">\n'
               '        <dataObjectPointer dataObjectID="quicklook"/>\n      </xfdu:contentUnit>')
    order = [f"{k}-{p}" for p in pols for k in kinds] + ["mapoverlay", "productpreview"]
    order += [f"measurement-{p}" for p in pols] + ["quicklook"]
    for key in order:
        o = objects[key]
        data_objs.append(
            f'    <dataObject ID="{o.id}" repID="{o.rep}">\n'
            f'      <byteStream mimeType="{o.mime}" size="{o.size}">\n'
            f'        <fileLocation locatorType="URL" href="{o.href}"/>\n'
            f'        <checksum checksumName="MD5">{o.md5}</checksum>\n'
            f"      </byteStream>\n    </dataObject>"
        )
    return ipm, meta_objs, data_objs


def _processing(meta: _Meta) -> str:
    """The ``processing`` metadata (provenance: GRD from SLC from L0 from the downlinked streams,
    with the IPF version and auxiliary files), as the body of its ``xmlData``."""
    proc_start = meta.processing_start
    slc_name = product_name(meta.mission, _plus(meta.start, -1.0), _plus(meta.stop, 3.0), meta.absolute_orbit, meta.datatake,
                            None).replace("GRDH_1SDV", "SL1__1_DV") + "_0000"
    raw_name = slc_name.replace("SL1__1_DV", "RAW__0SDV")
    day = _to_datetime(meta.start).strftime("%Y%m%dT%H%M%S")
    sw = f'<safe:software name="Sentinel-1 IPF" version="{meta.ipf}"/>'
    fac = ('<safe:facility country="Germany" name="Copernicus S1 Core Ground Segment - DPA" organisation="ESA" '
           'site="DLR-Oberpfaffenhofen">')

    def downlink(channel: int) -> str:
        return (
            '                    <safe:resource name="Unknown" role="Raw Data">\n'
            f'                      <safe:processing name="Generation of Sentinel-1 SAR Slice L0 product single polarisation" '
            f'start="{_iso(_plus(proc_start, -3000.0))}" stop="{_iso(_plus(proc_start, -2999.0))}">\n'
            '                        <safe:resource name="S-1 Core PDGS S-1 Level-0 Product Format Specifications '
            'S1PD.SP.00110.ASTR" role="Applicable Document"/>\n'
            '                        <safe:resource name="Downlinked Stream" role="Raw Data">\n'
            f'                          <safe:processing name="Raw Data Downlink Channel{channel} {channel}" '
            f'start="{_iso(_plus(proc_start, -4000.0))}" stop="{_iso(_plus(proc_start, -3950.0))}"/>\n'
            "                        </safe:resource>\n"
            "                      </safe:processing>\n"
            "                    </safe:resource>\n"
        )

    processing = (
        f'          <safe:processing name="GRD Post Processing" start="{_iso(proc_start)}" stop="{_iso(_plus(proc_start, 570.0))}">\n'
        f"            {fac}\n              {sw}\n            </safe:facility>\n"
        f'            <safe:resource name="{slc_name}.SAFE" role="Level-1 Intermediate SLC Product">\n'
        f'              <safe:processing name="SLC Processing" start="{_iso(_plus(proc_start, 106.0))}" '
        f'stop="{_iso(_plus(proc_start, 426.0))}">\n'
        f"                {fac}\n                  {sw}\n                </safe:facility>\n"
        f'                <safe:resource name="{meta.mission}_AUX_PP1_V20190228T092500_G20210104T140930.SAFE" role="AUX_PP1"/>\n'
        f'                <safe:resource name="{meta.mission}_AUX_CAL_V20190228T092500_G20210104T141000.SAFE" role="AUX_CAL"/>\n'
        f'                <safe:resource name="{meta.mission}_AUX_INS_V20190228T092500_G20180313T104658.SAFE" role="AUX_INS"/>\n'
        f'                <safe:resource name="{meta.mission}_OPER_AUX_RESORB_OPOD_{day}_SIMULATED.EOF" role="AUX_RES"/>\n'
        f'                <safe:resource name="{raw_name}.SAFE" role="Level-0 Product">\n'
        f'                  <safe:processing name="Generation of Sentinel-1 L0 SAR Product, dual polarisation" '
        f'start="{_iso(_plus(proc_start, -2000.0))}" stop="{_iso(_plus(proc_start, -1999.9))}">\n'
        '                    <safe:facility country="Germany" name="DPA_" organisation="ESA" site="DLR-Oberpfaffenhofen">\n'
        '                      <safe:software name="" version=""/>\n'
        "                    </safe:facility>\n"
        '                    <safe:resource name="S-1 Core PDGS S-1 Level-0 Product Format Specifications S1PD.SP.00110.ASTR" '
        'role="Applicable Document"/>\n'
        + downlink(1) + downlink(2)
        + "                  </safe:processing>\n"
        "                </safe:resource>\n"
        '                <safe:resource name="Sentinel-1 Product Definition (S1-RS-MDA-52-7440) release 2/7" role="product definition"/>\n'
        '                <safe:resource name="Sentinel-1 Product Specification (S1-RS-MDA-52-7441) release 3/7" '
        'role="product specification"/>\n'
        "              </safe:processing>\n"
        "            </safe:resource>\n"
        "          </safe:processing>\n"
    )
    return processing


def _descriptions(meta: _Meta, plan: _Plan, footprint: list[tuple[float, float]]) -> str:
    """The platform, orbit reference, general product information, acquisition period and frame
    set (footprint: lon/lat corners) metadata objects."""
    number = meta.mission[-1]
    pass_text = "ASCENDING" if plan.ascending else "DESCENDING"
    coords = " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in footprint)
    platform = (
        "          <safe:platform>\n"
        f"            <safe:nssdcIdentifier>{_MISSIONS[meta.mission]['nssdc']}</safe:nssdcIdentifier>\n"
        "            <safe:familyName>SENTINEL-1</safe:familyName>\n"
        f"            <safe:number>{number}</safe:number>\n"
        "            <safe:instrument>\n"
        '              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>\n'
        "              <safe:extension>\n"
        "                <s1sarl1:instrumentMode>\n"
        "                  <s1sarl1:mode>IW</s1sarl1:mode>\n"
        "                  <s1sarl1:swath>IW</s1sarl1:swath>\n"
        "                </s1sarl1:instrumentMode>\n"
        "              </safe:extension>\n"
        "            </safe:instrument>\n"
        "          </safe:platform>\n"
    )
    orbit_ref = (
        "          <safe:orbitReference>\n"
        f'            <safe:orbitNumber type="start">{meta.absolute_orbit}</safe:orbitNumber>\n'
        f'            <safe:orbitNumber type="stop">{meta.absolute_orbit}</safe:orbitNumber>\n'
        f'            <safe:relativeOrbitNumber type="start">{meta.relative_orbit}</safe:relativeOrbitNumber>\n'
        f'            <safe:relativeOrbitNumber type="stop">{meta.relative_orbit}</safe:relativeOrbitNumber>\n'
        f"            <safe:cycleNumber>{meta.cycle}</safe:cycleNumber>\n"
        "            <safe:phaseIdentifier>1</safe:phaseIdentifier>\n"
        "            <safe:extension>\n"
        "              <s1:orbitProperties>\n"
        f"                <s1:pass>{pass_text}</s1:pass>\n"
        f"                <s1:ascendingNodeTime>{_iso(meta.anx)}</s1:ascendingNodeTime>\n"
        "              </s1:orbitProperties>\n"
        "            </safe:extension>\n"
        "          </safe:orbitReference>\n"
    )
    general = (
        "          <s1sarl1:standAloneProductInformation>\n"
        "            <s1sarl1:instrumentConfigurationID>6</s1sarl1:instrumentConfigurationID>\n"
        f"            <s1sarl1:missionDataTakeID>{meta.datatake}</s1sarl1:missionDataTakeID>\n"
        "            <s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>\n"
        "            <s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>\n"
        "            <s1sarl1:productClass>S</s1sarl1:productClass>\n"
        "            <s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>\n"
        "            <s1sarl1:productComposition>Slice</s1sarl1:productComposition>\n"
        "            <s1sarl1:productType>GRD</s1sarl1:productType>\n"
        "            <s1sarl1:productTimelinessCategory>Fast-24h</s1sarl1:productTimelinessCategory>\n"
        "            <s1sarl1:sliceProductFlag>true</s1sarl1:sliceProductFlag>\n"
        f"            <s1sarl1:segmentStartTime>{_iso(_plus(meta.start, -2 * FULL_DURATION - 0.79))}</s1sarl1:segmentStartTime>\n"
        "            <s1sarl1:sliceNumber>3</s1sarl1:sliceNumber>\n"
        "            <s1sarl1:totalSlices>8</s1sarl1:totalSlices>\n"
        "          </s1sarl1:standAloneProductInformation>\n"
    )
    anx_ms = (_seconds(meta.start, meta.anx) * 1000.0, _seconds(meta.stop, meta.anx) * 1000.0)
    acquisition = (
        "          <safe:acquisitionPeriod>\n"
        f"            <safe:startTime>{_iso(meta.start)}</safe:startTime>\n"
        f"            <safe:stopTime>{_iso(meta.stop)}</safe:stopTime>\n"
        "            <safe:extension>\n"
        "              <s1:timeANX>\n"
        f"                <s1:startTimeANX>{anx_ms[0]:.6e}</s1:startTimeANX>\n"
        f"                <s1:stopTimeANX>{anx_ms[1]:.6e}</s1:stopTimeANX>\n"
        "              </s1:timeANX>\n"
        "            </safe:extension>\n"
        "          </safe:acquisitionPeriod>\n"
    )
    frameset = (
        "          <safe:frameSet>\n            <safe:frame>\n"
        '              <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">\n'
        f"                <gml:coordinates>{coords}</gml:coordinates>\n"
        "              </safe:footPrint>\n            </safe:frame>\n          </safe:frameSet>\n"
    )
    return (
        _wrap("platform", "Platform Description", platform) + "\n"
        + _wrap("measurementOrbitReference", "Orbit Reference", orbit_ref) + "\n"
        + _wrap("generalProductInformation", "General Product Information", general) + "\n"
        + _wrap("acquisitionPeriod", "Acquisition Period", acquisition) + "\n"
        + _wrap("measurementFrameSet", "Frame Set", frameset) + "\n"
    )


def _wrap(oid: str, text_info: str, body: str) -> str:
    """A DESCRIPTION metadata object holding ``body`` as its ``xmlData``."""
    return (f'    <metadataObject ID="{oid}" classification="DESCRIPTION" category="DMD">\n'
            f'      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="{text_info}">\n'
            f"        <xmlData>\n{body}        </xmlData>\n      </metadataWrap>\n    </metadataObject>")


def _schema_objects(rfi: bool) -> list[str]:
    """The metadata objects naming the XSD schema of each kind of file (in ``support/``)."""
    schemas = [("s1Level1ProductSchema", "XML Schema", "s1-level-1-product.xsd"),
               ("s1Level1NoiseSchema", "XML Schema", "s1-level-1-noise.xsd")]
    if rfi:
        schemas.append(("s1Level1RfiSchema", "XML Schema", "s1-level-1-rfi.xsd"))
    schemas += [("s1Level1CalibrationSchema", "XML Schema", "s1-level-1-calibration.xsd"),
                ("s1ObjectTypesSchema", "XML Schema", "s1-object-types.xsd"),
                ("s1Level1MeasurementSchema", "SDF", "s1-level-1-measurement.xsd"),
                ("s1Level1ProductPreviewSchema", "XML Schema", "s1-product-preview.xsd"),
                ("s1Level1QuickLookSchema", "XML Schema", "s1-level-1-quicklook.xsd"),
                ("s1Level1MapOverlaySchema", "XML Schema", "s1-map-overlay.xsd")]
    schema_objs = [
        f'    <metadataObject ID="{i}" classification="SYNTAX" category="REP">\n'
        f'      <metadataReference mimeType="text/xml" vocabularyName="{voc}" locatorType="URL" href="./support/{f}"/>\n'
        "    </metadataObject>"
        for i, voc, f in schemas
    ]
    return schema_objs


_SMALL_XSD = {
    "s1-level-1-measurement.xsd": '<xsd:element name="measurement"/>',
    "s1-level-1-quicklook.xsd": '<xsd:element name="quicklook"/>',
    "s1-map-overlay.xsd": ('<xsd:complexType name="kmlType"><xsd:sequence><xsd:element name="Document" type="xsd:anyType"/>'
                           '</xsd:sequence></xsd:complexType><xsd:element name="kml" type="kmlType"/>'),
    "s1-product-preview.xsd": '<xsd:element name="html"/>',
}


def _write_support(folder: Path, rfi: bool) -> None:
    """The SAFE's support/ schemas: the annotation schemas as shipped by xarray-sentinel (the
    ESA XSDs it validates with; optional, extra ``esa-xsd``), minimal schemas for the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["s1-level-1-product.xsd", "s1-level-1-noise.xsd", "s1-level-1-calibration.xsd", "s1-object-types.xsd"]
    if rfi:
        names.append("s1-level-1-rfi.xsd")
    import importlib.util

    spec = importlib.util.find_spec("xarray_sentinel")  # locate without importing (xarray is slow to import)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    res = Path(locations[0]) / "resources" / "sentinel1" if locations else None
    missing = []
    for n in names:
        if res is not None and (res / n).is_file():
            shutil.copyfile(res / n, folder / n)
        else:  # pragma: no cover - xarray-sentinel is installed with the test extra
            missing.append(n)
    if missing:  # pragma: no cover
        log.warning("simulate: support/ lacks ESA's %s (they come from xarray-sentinel: "
                    "pip install 'bigearthnet-s1[esa-xsd]')", ", ".join(missing))
    for n, body in _SMALL_XSD.items():
        (folder / n).write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'elementFormDefault="qualified" attributeFormDefault="unqualified">{body}</xsd:schema>\n'
        )


def _write_preview(folder: Path, name: str, files: dict[str, dict[str, str]], footprint: list[tuple[float, float]],
                   quicklook: NDArray[np.float64]) -> None:
    from PIL import Image

    (folder / "icons").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (0, 51, 153)).save(folder / "icons" / "logo.png")
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(quicklook)
    valid = np.isfinite(db) & (quicklook > 0)
    db = np.where(valid, db, 0.0)
    rgb = np.zeros(quicklook.shape[1:] + (3,), np.uint8)
    if valid.any():
        for band in range(2):
            v = db[band][valid[band]]
            lo, hi = np.percentile(v, [2, 98]) if v.size else (0.0, 1.0)
            rgb[..., band] = np.clip((db[band] - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8) * valid[band]
        ratio = np.where(valid[0] & valid[1], db[0] - db[1], 0.0)
        rgb[..., 2] = np.clip((ratio - 2.0) / 12.0 * 255, 0, 255).astype(np.uint8) * valid[0]
    Image.fromarray(rgb).save(folder / "quick-look.png", optimize=False)
    coords = " ".join(f"{lon:.6f},{lat:.6f}" for lon, lat in footprint)
    (folder / "map-overlay.kml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<kml {_NS_DECL}>\n  <Document>\n    <name>Sentinel-1 Map Overlay</name>\n'
        "    <Folder>\n      <name>Sentinel-1 Scene Overlay</name>\n      <GroundOverlay>\n"
        "        <name>Sentinel-1 Image Overlay</name>\n        <Icon>\n          <href>quick-look.png</href>\n"
        f"        </Icon>\n        <gx:LatLonQuad>\n          <coordinates>{coords}</coordinates>\n"
        "        </gx:LatLonQuad>\n      </GroundOverlay>\n    </Folder>\n  </Document>\n</kml>\n"
    )
    items = []
    for section, keys in (("annotation", ("product",)), ("annotation/calibration", ("noise", "calibration")),
                          ("annotation/rfi", ("rfi",)), ("measurement", ("measurement",))):
        rel = [files[p][k] for k in keys for p in ("VH", "VV") if k in files[p]]
        if rel:
            li = "\n".join(f'<li><a href="../{r}">{r.rsplit("/", 1)[-1]}</a></li>' for r in rel)
            items.append(f"<h2>{section}</h2>\n<ul>\n{li}\n</ul>")
    title = name  # the product name without its CRC suffix, as in real previews
    (folder / "product-preview.html").write_text(
        '<html xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:fn="http://www.w3.org/2005/xpath-functions">\n<head>\n'
        f'<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n<title>{title}</title>\n</head>\n<body>\n'
        f'<img src="icons/logo.png"><h1>{title}</h1>\n<h2><a href="../manifest.safe">manifest.safe</a></h2>\n'
        + "\n".join(items)
        + '\n<img style="float:right" src="../preview/quick-look.png"><h2>preview</h2>\n<ul>\n'
        '<li><a href="../preview/map-overlay.kml">map-overlay.kml</a></li>\n'
        '<li><a href="../preview/product-preview.html">product-preview.html</a></li>\n'
        '<li><a href="../preview/quick-look.png">quick-look.png</a></li>\n</ul>\n</body>\n</html>\n'
    )

