"""Fixtures shared by every test area.

Real data comes from two places, both pinned public releases on the package registry:

* the BigEarthNet example patches inside the ``bigearthnet-common==2.8.0`` wheel;
* the source distribution of ``sarsen==0.9.6`` (real Sentinel-1 metadata, a real DEM),
  fetched once by :mod:`bigearthnet_s1.testdata`, checked against its pinned SHA-256 and
  cached outside the repository (``make testdata`` pre-fetches it for an offline machine).

Recorded hub replies are not used: ``tests/catalog/fixtures`` holds replies written here in
the hubs' documented schemas.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from bigearthnet_s1 import samples, testdata


@pytest.fixture(autouse=True)
def _forget_registered_secrets():
    """Secrets registered for redaction are process-wide: a test's password (say "wrong")
    must not be redacted from the next test's messages."""
    yield
    from bigearthnet_s1 import redact

    redact.forget_secrets()


@pytest.fixture(scope="session")
def s1b_rome_safe() -> Path:
    """Real S1B IW GRDH product over central Italy (IPF 3.40; VV files only, the manifest
    lists VH too; zero-filled measurement). Read-only: copy before changing."""
    return testdata.s1b_rome_safe()


@pytest.fixture(scope="session")
def s1a_slc_manifest() -> Path:
    """manifest.safe of a real S1A IW SLC product (orbit 41314, relative 117, ascending)."""
    return testdata.s1a_slc_manifest()


@pytest.fixture(scope="session")
def rome_dem() -> Path:
    """Real 30 m DEM over Rome, EPSG:9707 (WGS84 + EGM96 heights), int16, nodata -32768."""
    return testdata.rome_dem()


def make_dual_pol(src: Path, dst_root: Path, *, vh_noise_scale: float = 0.71) -> Path:
    """A writable copy of a VV-only product's metadata (no measurement) with the VH files its
    manifest lists made from the VV ones: polarisation and image number relabelled, and the
    range noise LUT scaled by ``vh_noise_scale`` (real VH noise LUTs differ from VV's), so a
    reader that mixed the two polarisations up would get wrong values."""
    dst = dst_root / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tiff"))
    for d in [dst, *dst.rglob("*")]:  # the cache is read-only; so would be the copy
        d.chmod(d.stat().st_mode | 0o200)
    (dst / "measurement").mkdir(exist_ok=True)

    def scaled(m: re.Match[str]) -> str:
        values = " ".join(f"{float(v) * vh_noise_scale:.6e}" for v in m.group(2).split())
        return f"{m.group(1)}{values}{m.group(3)}"

    vv_files = sorted(dst.rglob("*-vv-*-001.xml"))
    assert len(vv_files) == 4, vv_files  # annotation, calibration, noise, RFI
    for f in vv_files:
        text = f.read_text()
        text = text.replace("<polarisation>VV</polarisation>", "<polarisation>VH</polarisation>")
        text = text.replace("<imageNumber>001</imageNumber>", "<imageNumber>002</imageNumber>")
        if f.name.startswith("noise-"):
            text, n = re.subn(r"(<noiseRangeLut[^>]*>)([^<]*)(</noiseRangeLut>)", scaled, text)
            assert n > 0
        f.with_name(f.name.replace("-vv-", "-vh-").replace("-001.xml", "-002.xml")).write_text(text)
    return dst


@pytest.fixture(scope="session")
def s1b_dual_pol_safe(s1b_rome_safe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real S1B metadata as a dual-polarisation product (VV real, VH made from it with a
    different noise LUT; see :func:`make_dual_pol`); no measurement files."""
    return make_dual_pol(s1b_rome_safe, tmp_path_factory.mktemp("s1b-dual-pol"))


#: Start time of the real S1A product S1A_IW_GRDH_1SDV_20210119T031653_..._036201_043ED0_8255
#: (IPF 3.31, descending, relative orbit 79, over Beira, Mozambique).
BEIRA_START = "2021-01-19T03:16:53.799379"


@pytest.fixture(scope="session")
def beira_box() -> tuple[float, float, float, float]:
    """A 21 x 22 km box (lon/lat) inside the real S1A Beira product's footprint."""
    return (33.0, -18.5, 33.2, -18.3)


@pytest.fixture(scope="session")
def s1a_beira_sim(tmp_path_factory: pytest.TempPathFactory, beira_box: tuple[float, float, float, float]) -> Path:
    """A simulated S1A IW GRDH product (VV + VH measurement, IPF 3.31 noise layout with
    azimuth vectors, no RFI files) at the time and place of the real S1A Beira product, so it
    carries that product's identity (orbit 36201, relative 79, datatake 043ED0, descending).
    ``<name>.zip`` lies beside the ``.SAFE`` folder. Read-only by convention: copy first."""
    from bigearthnet_s1.simulate import simulate_product

    return simulate_product(tmp_path_factory.mktemp("s1a-beira-sim"), bounds_wgs84=beira_box, time=BEIRA_START,
                            pass_direction="descending", mission="S1A", ipf_version="003.31", margin_m=1500.0,
                            seed=3, zip=True)


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

    from bigearthnet_s1.tiles import MapGrid, Patch, TileAcquisition

    def make(tile_id: str, epsg: int, ulx: float, uly: float, lon: float, lat: float, time, label: str):
        x, y = pyproj.Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
        col, row = int((x - ulx) // 1200), int((uly - y) // 1200)
        px, py = ulx + 1200 * col, uly - 1200 * row
        patch = Patch(s2_name=f"S2A_MSIL2A_{time:%Y%m%dT%H%M%S}_{col}_{row}", col=col, row=row, labels=(label,),
                      ulx=px, uly=py, lrx=px + 1200, lry=py - 1200)
        return TileAcquisition(tile_id=tile_id, sensing_time=time, s2_product=None,
                               grid=MapGrid.tile(epsg=epsg, ulx=ulx, uly=uly), patches=(patch,))

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
                polarization: str | None = None, precision: str = "ms", geometry: dict | None = None) -> dict:
    """One feature of ASF's Search API ``output=geojson`` reply for an IW GRD_HD product."""
    import shapely.geometry

    from bigearthnet_s1.catalog import parse_product_name

    n = parse_product_name(name)
    start = start or n.start_time
    stop = stop or n.stop_time
    polarization = polarization or {"DV": "VV+VH", "DH": "HH+HV", "SV": "VV", "SH": "HH"}[n.polarisation]
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

    from bigearthnet_s1.catalog import parse_product_name

    n = parse_product_name(name)
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


class AsfHub:
    """ASF on loopback: the Search API, the datapool download, signed storage, Earthdata Login.

    One ``http.server`` answers four roles, told apart by path (and by host name, since the
    storage redirect goes to ``localhost`` while ASF is addressed as ``127.0.0.1``, so that
    the client sees another host and must drop the credentials):

    - ``GET /services/search/param``: the Search API (``output=geojson``), answering the
      published products whose footprint intersects ``intersectsWith`` and whose acquisition
      overlaps [start, end]; unknown or missing keywords get ASF's 400 error reply;
    - ``GET /GRD_HD/S?/<name>.zip``: needs ``Authorization: Bearer <token>`` (else 401),
      then 307 to a signed storage URL; ``statuses`` scripts answers first (429 + Retry-After);
    - ``GET /storage/<name>.zip?X-Amz-Signature=...``: refuses any Authorization header (400,
      like S3: one auth mechanism only), checks the signature, serves Range requests and cuts
      the body at the offsets in ``drops``;
    - ``POST /api/users/find_or_create_token``: EDL's user-token API (HTTP basic auth).
    """

    KEYWORDS = {"platform", "processingLevel", "beamMode", "intersectsWith", "start", "end", "maxResults", "output"}

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.products: dict[str, dict] = {}
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.users = {"alice": "secret"}
        self.tokens = {"edl-token-0001"}
        self.statuses: list[tuple[int, dict]] = []
        self.drops: list[int] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hub.handle(self, "GET")

            def do_POST(self) -> None:
                hub.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.search_url = f"{self.base}/services/search/param"
        self.edl_url = self.base
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def publish(self, name: str, data: bytes, footprint, *, path: int, direction: str, md5: bool = True, **kw) -> dict:
        """List a product (its zip bytes) in the search and serve it for download."""
        import hashlib

        url = f"{self.base}/GRD_HD/S{name[2]}/{name}.zip"
        feature = asf_feature(name, footprint, path=path, direction=direction, size=len(data),
                              md5=hashlib.md5(data).hexdigest() if md5 else None, url=url, **kw)
        self.products[name] = {"data": data, "feature": feature, "footprint": footprint, "url": url}
        return feature

    def requests(self, role: str) -> list[dict]:
        return [e for e in self.log if e["role"] == role]

    @staticmethod
    def signature(name: str) -> str:
        import hashlib

        return hashlib.sha256(f"storage-secret/{name}".encode()).hexdigest()[:32]

    def handle(self, h, method: str) -> None:
        import base64
        import re
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(h.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        entry = {"method": method, "path": parts.path, "query": q, "auth": h.headers.get("Authorization"),
                 "host": h.headers.get("Host", ""), "range": h.headers.get("Range"), "role": "other"}
        with self.lock:
            self.log.append(entry)
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        if parts.path == "/services/search/param":
            entry["role"] = "search"
            return self._search(h, q)
        if parts.path == "/api/users/find_or_create_token" and method == "POST":
            entry["role"] = "edl"
            auth = h.headers.get("Authorization") or ""
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
            if self.users.get(user) != password:
                return self._json(h, 401, {"error": "invalid_credentials", "error_description": "Invalid user credentials"})
            token = f"edl-token-{user}"
            self.tokens.add(token)
            return self._json(h, 200, {"access_token": token, "token_type": "Bearer", "expiration_date": "12/31/2099"})
        m = re.fullmatch(r"/GRD_HD/S[A-D]/(.+)\.zip", parts.path)
        if m:
            entry["role"] = "datapool"
            with self.lock:
                scripted = self.statuses.pop(0) if self.statuses else None
            if scripted:
                return self._send(h, scripted[0], b"<html><title>Too many requests</title></html>", scripted[1])
            auth = h.headers.get("Authorization") or ""
            if not (auth.startswith("Bearer ") and auth[7:] in self.tokens):
                return self._send(h, 401, b"<html><title>Earthdata Login required</title></html>",
                                  {"Content-Type": "text/html"})
            if m.group(1) not in self.products:
                return self._send(h, 404, b"<html><title>Not Found</title></html>", {"Content-Type": "text/html"})
            name = m.group(1)
            target = (f"http://localhost:{self.port}/storage/{name}.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                      f"&X-Amz-Expires=3600&X-Amz-Signature={self.signature(name)}")
            return self._send(h, 307, b"", {"Location": target})
        m = re.fullmatch(r"/storage/(.+)\.zip", parts.path)
        if m:
            entry["role"] = "storage"
            if h.headers.get("Authorization"):
                return self._send(h, 400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                                          b"allowed</Message></Error>", {"Content-Type": "application/xml"})
            name = m.group(1)
            if name not in self.products or q.get("X-Amz-Signature") != self.signature(name):
                return self._send(h, 403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>",
                                  {"Content-Type": "application/xml"})
            return self._body(h, self.products[name]["data"], entry)
        return self._send(h, 404, b"not found", {})

    def _search(self, h, q: dict) -> None:
        import shapely.wkt

        from bigearthnet_s1.catalog import parse_product_name

        unknown = sorted(set(q) - self.KEYWORDS)
        missing = sorted({"intersectsWith", "start", "end", "output"} - set(q))
        if unknown or missing or q.get("output") != "geojson":
            report = f"unknown keywords {unknown}" if unknown else f"missing {missing or 'output=geojson'}"
            return self._json(h, 400, {"error": {"type": "VALUE", "report": f"Validation Error: {report}"}})
        aoi = shapely.wkt.loads(q["intersectsWith"])
        t0 = datetime.fromisoformat(q["start"].replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(q["end"].replace("Z", "+00:00"))
        out = []
        for name, p in self.products.items():
            n = parse_product_name(name)
            if (q.get("processingLevel") == "GRD_HD" and q.get("beamMode") == "IW"
                    and p["footprint"].intersects(aoi) and n.start_time <= t1 and n.stop_time >= t0):
                out.append(p["feature"])
        return self._json(h, 200, asf_reply(out[: int(q.get("maxResults", 10**6))]), "application/geo+json")

    def _json(self, h, status: int, obj, ctype: str = "application/json") -> None:
        import json

        self._send(h, status, json.dumps(obj).encode(), {"Content-Type": ctype})

    def _send(self, h, status: int, body: bytes, headers: dict) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)

    def _body(self, h, data: bytes, entry: dict) -> None:
        import re
        import socket

        start, status = 0, 200
        headers = {"Content-Type": "application/zip", "Accept-Ranges": "bytes"}
        rng = h.headers.get("Range")
        if rng:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        with self.lock:
            drop = self.drops.pop(0) if self.drops else None
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data) - start))
        h.end_headers()
        end = len(data) if drop is None or drop <= start else drop
        entry["served"] = end - start
        try:
            h.wfile.write(data[start:end])
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
            return
        if end < len(data):
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_WR)


@pytest.fixture
def asf_hub():
    """An :class:`AsfHub` on loopback (see its docstring)."""
    hub = AsfHub()
    yield hub
    hub.close()


@pytest.fixture(scope="session")
def asf_hub_class() -> type[AsfHub]:
    """The :class:`AsfHub` class, for fixtures of a wider scope (close it yourself)."""
    return AsfHub
