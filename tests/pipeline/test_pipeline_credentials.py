"""The download step authenticates with the credentials the run accepted.

``prepare_run`` accepts a catalogue whose credentials are a Connection's ``token`` extra or
the catalogue's environment variables (``BIGEARTHNET_S1_DHUS_USER``, ``CDSE_USER``,
``CDSE_TOKEN``, ...); the download of the chosen products must then use them too, not go out
anonymously and fail with 401. Real HTTP server on loopback, real zip.
"""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest
import shapely
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bigearthnet_s1 import pipeline
from bigearthnet_s1.catalog import make_record

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
CRED_ENV = ("BIGEARTHNET_S1_DHUS_USER", "BIGEARTHNET_S1_DHUS_PASSWORD", "BIGEARTHNET_S1_CDSE_USER",
            "BIGEARTHNET_S1_CDSE_PASSWORD", "CDSE_USER", "CDSE_PASSWORD", "CDSE_TOKEN")


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{NAME}.SAFE/manifest.safe", "<xfdu/>" * 100)
    return buf.getvalue()


def _serve(httpserver: HTTPServer, expected_auth: str) -> bytes:
    body = _zip_bytes()

    def handler(request: Request) -> Response:
        if request.headers.get("Authorization") != expected_auth:
            return Response("who are you?", status=401)
        return Response(body, status=200, content_type="application/zip")

    httpserver.expect_request("/product/$value").respond_with_handler(handler)
    return body


def _work(tmp_path: Path, source: str, url: str) -> pipeline.WorkDir:
    work = pipeline.WorkDir(tmp_path / "work")
    rec = make_record(NAME, source=source, footprint=shapely.box(12.0, 41.0, 13.0, 42.0),
                      orbit_direction="ASCENDING", url=url, online=True)
    pipeline.write_json(work.record_file(NAME), rec.to_json())
    return work


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for k in CRED_ENV:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_dhus_download_uses_the_environment_credentials(httpserver: HTTPServer, tmp_path: Path, clean_env) -> None:
    clean_env.setenv("BIGEARTHNET_S1_DHUS_USER", "alice")
    clean_env.setenv("BIGEARTHNET_S1_DHUS_PASSWORD", "s3cret")
    body = _serve(httpserver, "Basic " + base64.b64encode(b"alice:s3cret").decode())
    work = _work(tmp_path, "dhus", httpserver.url_for("/product/$value"))
    out = pipeline.fetch_product(work, NAME, {})
    assert Path(out["path"]).read_bytes() == body


def test_cdse_download_uses_the_connection_token(httpserver: HTTPServer, tmp_path: Path, clean_env) -> None:
    body = _serve(httpserver, "Bearer tok-123")
    work = _work(tmp_path, "cdse", httpserver.url_for("/product/$value"))
    out = pipeline.fetch_product(work, NAME, {"token": "tok-123", "kind": "cdse"})
    assert Path(out["path"]).read_bytes() == body
    assert "tok-123" not in repr(pipeline._auth({"token": "tok-123"}, "cdse"))


def test_cdse_download_uses_the_environment_token(httpserver: HTTPServer, tmp_path: Path, clean_env) -> None:
    clean_env.setenv("CDSE_TOKEN", "tok-env")
    body = _serve(httpserver, "Bearer tok-env")
    work = _work(tmp_path, "cdse", httpserver.url_for("/product/$value"))
    out = pipeline.fetch_product(work, NAME, {})
    assert Path(out["path"]).read_bytes() == body


def test_connection_login_wins_over_the_environment(httpserver: HTTPServer, tmp_path: Path, clean_env) -> None:
    clean_env.setenv("BIGEARTHNET_S1_DHUS_USER", "mallory")
    clean_env.setenv("BIGEARTHNET_S1_DHUS_PASSWORD", "nope")
    body = _serve(httpserver, "Basic " + base64.b64encode(b"bob:pw").decode())
    work = _work(tmp_path, "dhus", httpserver.url_for("/product/$value"))
    out = pipeline.fetch_product(work, NAME, {"user": "bob", "password": "pw"})
    assert Path(out["path"]).read_bytes() == body
