"""Downloads from ASF on loopback: Earthdata bearer token to ASF only, redirect to signed storage.

``asf_hub`` answers the product URL with 307 to a signed URL on another host name; that
storage refuses any Authorization header (as S3 does), so a download only succeeds when the
credentials stay behind. Resume, MD5 and zip checks, 401/429 and the user/password -> EDL
token exchange are checked on the same server.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
import shapely

from bigearthnet_s1.catalog import open_catalog
from bigearthnet_s1.earthdata import EarthdataAuth, credentials_from_options, find_or_create_token
from bigearthnet_s1.errors import AuthenticationError, ChecksumError, DownloadError
from bigearthnet_s1.hub import HubClient, HubEndpoints, guess_source
from bigearthnet_s1.store import ProductStore
from bigearthnet_s1.transfer import same_site

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
FOOTPRINT = shapely.box(11.9, 46.2, 14.8, 48.1)
AREA = shapely.box(12.5, 47.0, 13.0, 47.5)
T = datetime(2017, 6, 13, 16, 50, 43, tzinfo=UTC)


def _record(asf_hub, make_zip, **publish):
    data = make_zip(NAME, size=2_000_000, seed=3)
    asf_hub.publish(NAME, data, FOOTPRINT, path=146, direction="ASCENDING", **publish)
    (rec,) = open_catalog("asf", url=asf_hub.search_url).search(AREA, T - timedelta(days=1), T + timedelta(days=1))
    return rec, data


def test_bearer_token_goes_to_asf_but_not_to_the_signed_storage(asf_hub, make_zip, fast_retry, tmp_path) -> None:
    rec, data = _record(asf_hub, make_zip)
    assert rec.source == "asf" and rec.checksum == hashlib.md5(data).hexdigest() and rec.size == len(data)
    retry, _ = fast_retry
    store = ProductStore(tmp_path, retry=retry)
    path = store.fetch(rec, auth=EarthdataAuth(token="edl-token-0001"))
    assert path == tmp_path / f"{NAME}.zip" and path.read_bytes() == data
    (pool,) = asf_hub.requests("datapool")
    assert pool["auth"] == "Bearer edl-token-0001" and pool["host"].startswith("127.0.0.1")
    (storage,) = asf_hub.requests("storage")
    assert storage["auth"] is None and storage["host"].startswith("localhost")
    assert storage["query"]["X-Amz-Signature"] == asf_hub.signature(NAME)


def test_user_password_become_an_edl_token_once(asf_hub, make_zip, fast_retry, tmp_path, caplog) -> None:
    rec, data = _record(asf_hub, make_zip)
    asf_hub.users["alice"] = "pw-Xy9-do-not-log"
    caplog.set_level(logging.DEBUG)
    retry, _ = fast_retry
    store = ProductStore(tmp_path, retry=retry, hub=HubClient(endpoints=HubEndpoints(asf_edl_url=asf_hub.edl_url),
                                                              auth={"asf": ("alice", "pw-Xy9-do-not-log")}))
    assert store.fetch(rec).read_bytes() == data
    store.remove(NAME)
    assert store.fetch(rec).read_bytes() == data
    (edl,) = asf_hub.requests("edl")  # the token is reused for the second download
    assert edl["auth"].startswith("Basic ")
    assert [e["auth"] for e in asf_hub.requests("datapool")] == ["Bearer edl-token-alice"] * 2
    assert all(e["auth"] is None for e in asf_hub.requests("storage"))
    assert "pw-Xy9-do-not-log" not in caplog.text and "edl-token-alice" not in caplog.text


def test_a_dropped_transfer_resumes_with_range_through_a_fresh_redirect(asf_hub, make_zip, fast_retry, tmp_path) -> None:
    rec, data = _record(asf_hub, make_zip)
    asf_hub.drops = [700_000]
    retry, slept = fast_retry
    path = ProductStore(tmp_path, retry=retry).fetch(rec, auth=EarthdataAuth(token="edl-token-0001"))
    assert hashlib.md5(path.read_bytes()).hexdigest() == rec.checksum
    first, second = asf_hub.requests("storage")
    assert first["range"] is None and first["served"] == 700_000
    assert second["range"] == "bytes=700000-" and second["served"] == len(data) - 700_000
    assert len(asf_hub.requests("datapool")) == 2 and len(slept) == 1
    assert all(e["auth"] is None for e in (first, second))


def test_md5_mismatch_is_detected_and_nothing_is_kept(asf_hub, make_zip, fast_retry, tmp_path) -> None:
    rec, _ = _record(asf_hub, make_zip)
    retry, _ = fast_retry
    with pytest.raises(ChecksumError, match=f"{NAME}: MD5 checksum mismatch"):
        ProductStore(tmp_path, retry=retry).fetch(rec.replace(checksum="0" * 32), auth=EarthdataAuth(token="edl-token-0001"))
    assert not list(tmp_path.glob(f"{NAME}.zip*"))
    assert len(asf_hub.requests("storage")) == 2  # verified, downloaded once more, refused again


def test_without_md5_the_zip_test_still_runs(asf_hub, make_zip, fast_retry, tmp_path) -> None:
    rec, data = _record(asf_hub, make_zip, md5=False)
    assert rec.checksum is None
    asf_hub.products[NAME]["data"] = data[:-40_000] + bytes(40_000)  # damaged central directory
    retry, _ = fast_retry
    with pytest.raises(ChecksumError, match=NAME):
        ProductStore(tmp_path, retry=retry).fetch(rec, auth=EarthdataAuth(token="edl-token-0001"))
    assert not (tmp_path / f"{NAME}.zip").exists()


def test_a_refused_token_is_an_authentication_error_without_the_token(asf_hub, make_zip, fast_retry, tmp_path) -> None:
    rec, _ = _record(asf_hub, make_zip)
    retry, _ = fast_retry
    with pytest.raises(AuthenticationError) as exc:
        ProductStore(tmp_path, retry=retry).fetch(rec, auth=EarthdataAuth(token="expired-token-xyz"))
    assert NAME in str(exc.value) and "HTTP 401" in str(exc.value) and "expired-token-xyz" not in str(exc.value)
    assert asf_hub.requests("storage") == []


def test_429_retry_after_is_honoured(asf_hub, make_zip, fast_retry, tmp_path) -> None:
    rec, data = _record(asf_hub, make_zip)
    asf_hub.statuses = [(429, {"Retry-After": "42", "Content-Type": "text/html"})]
    retry, slept = fast_retry
    path = ProductStore(tmp_path, retry=retry).fetch(rec, auth=EarthdataAuth(token="edl-token-0001"))
    assert path.read_bytes() == data and slept == [42.0]


def test_wrong_earthdata_password_names_the_user_not_the_password(asf_hub) -> None:
    with pytest.raises(AuthenticationError, match="refused user 'alice' .*Invalid user credentials") as exc:
        find_or_create_token("alice", "wrong-pw-123", edl_url=asf_hub.edl_url)
    assert "wrong-pw-123" not in str(exc.value)
    assert find_or_create_token("alice", "secret", edl_url=asf_hub.edl_url) == "edl-token-alice"


def test_edl_outage_is_retried_then_a_download_error(httpserver) -> None:
    httpserver.expect_request("/api/users/find_or_create_token", method="POST").respond_with_data(
        "<html><title>Service Unavailable</title></html>", status=503, headers={"Retry-After": "3"})
    waits: list[float] = []
    with pytest.raises(DownloadError, match="token request for user 'alice' failed: HTTP 503"):
        find_or_create_token("alice", "pw", edl_url=httpserver.url_for("/"), sleep=waits.append)
    assert len(httpserver.log) == 3 and waits == [3.0, 3.0]


def test_credentials_and_hosts() -> None:
    # a Connection password alone is the token; user + password an account
    assert credentials_from_options(password="tok", environ={}) == {"token": "tok"}
    assert credentials_from_options(user="bob", password="pw", environ={}) == {"user": "bob", "password": "pw"}
    assert credentials_from_options(environ={"EARTHDATA_TOKEN": "t2"}) == {"token": "t2"}
    assert credentials_from_options(environ={"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p"}) == {"user": "u", "password": "p"}
    assert credentials_from_options(environ={}) == {}
    with pytest.raises(AuthenticationError, match="without a password"):
        credentials_from_options(user="bob", environ={})
    # ASF's download chain: datapool -> TEA on another asf.alaska.edu host (keeps the token) -> S3 (drops it)
    pool = f"https://datapool.asf.alaska.edu/GRD_HD/SA/{NAME}.zip"
    assert same_site(pool, f"https://sentinel1.asf.alaska.edu/GRD_HD/SA/{NAME}.zip")
    assert not same_site(pool, "https://asf-ngap2w-p-s1-grd.s3.us-west-2.amazonaws.com/x.zip?X-Amz-Signature=1")
    assert not same_site(pool, "https://d3abc.cloudfront.net/x.zip?Signature=1")
    assert not same_site(pool, f"http://sentinel1.asf.alaska.edu/GRD_HD/SA/{NAME}.zip")  # no https downgrade
    assert guess_source(pool) == "asf" and guess_source("https://notasf.alaska.edu.example.org/x.zip") == "http"
