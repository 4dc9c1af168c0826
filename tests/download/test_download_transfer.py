"""transfer.download against the fault-injecting loopback hub (tests/download/conftest.py)."""

from __future__ import annotations

import hashlib
import random
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from bigearthnet_s1.checksum import best_checksum, checksum_supported, normalise_algorithm
from bigearthnet_s1.errors import AuthenticationError, ChecksumError, DownloadError
from bigearthnet_s1.hub import CdseTokenAuth
from bigearthnet_s1.retry import RetryPolicy, parse_retry_after
from bigearthnet_s1.transfer import (
    HttpStatusError,
    NotAZipError,
    ProgressReporter,
    download,
    part_path,
    same_site,
)

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _only_dest(tmp_path: Path, dest: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_plain_download_verifies_and_reports_progress(hub, tmp_path, make_zip):
    p = hub.add(data=make_zip(NAME, size=5_000_000, seed=3))
    dest = tmp_path / f"{NAME}.zip"
    snaps = []
    out = download(hub.dhus_url(p), dest, checksum=p.md5, checksum_algorithm="MD5", progress=snaps.append,
                   chunk_size=256 * 1024)
    assert out == dest and _md5(dest) == p.md5
    _only_dest(tmp_path, dest)
    assert snaps[-1].finished and snaps[-1].done == len(p.data) == snaps[-1].total
    dones = [s.done for s in snaps]
    assert dones == sorted(dones)
    assert len(hub.requests_for(p)) == 1


def test_dropped_connections_resume_with_range(hub, tmp_path, fast_retry, make_zip):
    policy, slept = fast_retry
    data = make_zip(NAME, size=6_000_000, seed=5)
    rnd = random.Random(42)
    drops = sorted(rnd.sample(range(10_000, len(data) - 10_000), 5))
    p = hub.add(data=data, drops=list(drops), drop_style="fin")
    dest = tmp_path / "p.zip"
    download(hub.dhus_url(p), dest, checksum=p.md5, checksum_algorithm="md5", retry=policy, chunk_size=64 * 1024)
    assert _md5(dest) == p.md5
    reqs = hub.requests_for(p)
    # first request without Range, then one resume exactly where each orderly close left the body
    assert reqs[0]["range"] is None
    assert [r["range"] for r in reqs[1:]] == [f"bytes={d}-" for d in drops]
    assert p.bytes_served == len(data)  # nothing downloaded twice
    assert len(slept) == 5  # each drop made progress: back-off stays at its first step
    assert all(s == pytest.approx(0.5) for s in slept)
    _only_dest(tmp_path, dest)


def test_connection_resets_resume(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=4_000_000, seed=6)
    p = hub.add(data=data, drops=[300_000, 1_500_000, 2_900_000, 3_500_000], drop_style="alternate")
    dest = tmp_path / "p.zip"
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy, chunk_size=32 * 1024)
    assert _md5(dest) == p.md5
    reqs = hub.requests_for(p)
    assert len(reqs) == 5 and all(r["range"] for r in reqs[1:])
    starts = [int(r["range"].split("=")[1].rstrip("-")) for r in reqs[1:]]
    assert starts == sorted(starts)  # always resumed forward, never restarted
    _only_dest(tmp_path, dest)


def test_server_ignoring_range_restarts_cleanly(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=3_000_000, seed=7)
    p = hub.add(data=data, drops=[1_000_000], ignore_range=True)
    dest = tmp_path / "p.zip"
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy)
    assert _md5(dest) == p.md5
    reqs = hub.requests_for(p)
    assert reqs[1]["range"] == "bytes=1000000-" and reqs[1]["status"] == 200  # the server sent it all again
    assert p.bytes_served == 1_000_000 + len(data)
    _only_dest(tmp_path, dest)


def test_429_retry_after_and_503_backoff(hub, tmp_path, fast_retry):
    policy, slept = fast_retry
    p = hub.add(statuses=[(429, {"Retry-After": "7"}), (503, {}), (503, {}), (503, {})])
    dest = tmp_path / "p.zip"
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy)
    assert _md5(dest) == p.md5
    # Retry-After honoured (7 s, jitter 0), then exponential back-off 0.5 * 2**(n-1) for the 503s
    assert slept == [pytest.approx(7.0), pytest.approx(1.0), pytest.approx(2.0), pytest.approx(4.0)]
    assert [r["status"] for r in hub.requests_for(p)] == [429, 503, 503, 503, 200]


def test_retry_after_beyond_limit_fails_fast(hub, tmp_path):
    p = hub.add(statuses=[(429, {"Retry-After": "86400"})])
    with pytest.raises(DownloadError, match="retry in 86400 s"):
        download(hub.dhus_url(p), tmp_path / "p.zip", retry=RetryPolicy(max_retry_after=600, sleep=lambda s: None))
    assert list(tmp_path.iterdir()) == []


def test_jitter_spreads_delays_within_bounds():
    policy = RetryPolicy(backoff=2.0, factor=2.0, jitter=0.25, backoff_max=10.0)
    rng = random.Random(0)
    d3 = [policy.delay(3, rng=rng) for _ in range(200)]
    assert 6.0 <= min(d3) < 7.0 and 9.0 < max(d3) <= 10.0  # 8 s +/- 25 %
    assert max(policy.delay(9, rng=rng) for _ in range(50)) <= 12.5  # capped at 10 s (+25 %)
    assert policy.delay(1, retry_after=30.0, rng=rng) >= 30.0


def test_parse_retry_after_forms():
    assert parse_retry_after("120") == 120.0
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90.0, abs=1.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_persistent_503_gives_up_and_keeps_nothing_final(hub, tmp_path, fast_retry):
    policy, slept = fast_retry
    p = hub.add(always_status=503)
    dest = tmp_path / "p.zip"
    with pytest.raises(DownloadError, match="HTTP 503"):
        download(hub.dhus_url(p), dest, retry=policy)
    assert not dest.exists()
    assert len(hub.requests_for(p)) == policy.max_failures + 1
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_wrong_checksum_downloads_twice_then_fails_leaving_nothing(hub, tmp_path, fast_retry):
    policy, _ = fast_retry
    p = hub.add()
    dest = tmp_path / "p.zip"
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download(hub.dhus_url(p), dest, checksum="0" * 32, checksum_algorithm="MD5", retry=policy)
    assert list(tmp_path.iterdir()) == []
    assert p.bytes_served == 2 * len(p.data)  # one re-download (checksum_retries=1)


def test_corrupted_byte_caught_by_zip_test_without_checksum(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=2_000_000, seed=8)
    bad = bytearray(data)
    bad[1_000_000] ^= 0xFF  # inside the stored measurement: only its CRC notices
    p = hub.add(data=data, body=bytes(bad))
    with pytest.raises(ChecksumError, match="CRC"):
        download(hub.dhus_url(p), tmp_path / "p.zip", retry=policy)
    assert list(tmp_path.iterdir()) == []


def _broken_deflate(data: bytes) -> bytes:
    """``data`` (a product zip) with one byte of its deflated manifest changed so that
    inflating it fails with ``zlib.error`` (e.g. "invalid distance too far back"), same size."""
    import io
    import zipfile
    import zlib

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = next(i for i in zf.infolist() if i.compress_type == zipfile.ZIP_DEFLATED)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 2, start + info.compress_size):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        try:
            with zipfile.ZipFile(io.BytesIO(bytes(bad))) as zf:
                zf.testzip()
        except zlib.error:
            return bytes(bad)
        except Exception:  # noqa: BLE001 - another kind of damage: try the next byte
            continue
    raise AssertionError("no single-byte change breaks the deflate stream")


def test_broken_deflate_stream_is_discarded_and_the_next_run_recovers(hub, tmp_path, fast_retry, make_zip):
    """zlib.error during the zip test is a failed verification: the body is not kept as a
    .part, so the next run, served the good file, downloads it afresh (no Range, no 416)."""
    policy, _ = fast_retry
    good = make_zip(NAME, size=300_000, seed=21)
    p = hub.add(data=good, body=_broken_deflate(good))
    dest = tmp_path / "p.zip"
    with pytest.raises(ChecksumError, match=r"zip integrity test failed \(error: ") as exc:
        download(hub.dhus_url(p), dest, retry=policy)  # no hub checksum: only the zip test can tell
    assert "p.zip" in str(exc.value)
    assert list(tmp_path.iterdir()) == []  # neither the product nor a .part to resume
    assert len(hub.requests_for(p)) == 2  # checksum_retries=1: downloaded again once, then gave up
    p.body = None  # the hub serves the good file now
    download(hub.dhus_url(p), dest, retry=policy)
    assert _md5(dest) == hashlib.md5(good).hexdigest()
    assert hub.requests_for(p)[-1]["range"] is None
    _only_dest(tmp_path, dest)


def test_full_size_corrupt_part_left_by_an_earlier_run_is_replaced(hub, tmp_path, fast_retry, make_zip):
    """The issue's loop: a full-size .part whose deflate stream is broken; the server answers
    416 to Range: bytes=<size>-; the part fails the zip test and must be fetched afresh."""
    policy, _ = fast_retry
    good = make_zip(NAME, size=300_000, seed=22)
    p = hub.add(data=good)
    dest = tmp_path / "p.zip"
    part_path(dest).write_bytes(_broken_deflate(good))
    download(hub.dhus_url(p), dest, retry=policy)
    assert _md5(dest) == hashlib.md5(good).hexdigest()
    reqs = hub.requests_for(p)
    assert [r["status"] for r in reqs] == [416, 200] and reqs[1]["range"] is None
    _only_dest(tmp_path, dest)


def test_html_error_page_instead_of_zip(hub, tmp_path, fast_retry):
    policy, _ = fast_retry
    page = b"<!DOCTYPE html><html><head><title>Service in maintenance</title></head><body>come back later</body></html>"
    p = hub.add(body=page, content_type="text/html; charset=utf-8")
    with pytest.raises(NotAZipError, match="Service in maintenance"):
        download(hub.dhus_url(p), tmp_path / "p.zip", retry=policy)
    assert list(tmp_path.iterdir()) == []
    # the same page sent as application/octet-stream is recognised by its first bytes
    p2 = hub.add(body=page, content_type="application/octet-stream")
    with pytest.raises(NotAZipError, match="HTML page"):
        download(hub.dhus_url(p2), tmp_path / "p2.zip", retry=policy)
    assert list(tmp_path.iterdir()) == []


def test_404_is_not_retried(hub, tmp_path, fast_retry):
    policy, slept = fast_retry
    url = f"{hub.base}/odata/v1/Products('no-such-uuid')/$value"
    with pytest.raises(HttpStatusError, match="No such product") as exc:
        download(url, tmp_path / "p.zip", retry=policy)
    assert exc.value.status == 404 and slept == []
    assert list(tmp_path.iterdir()) == []


def test_trickle_stall_is_abandoned_and_resumed(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=2_000_000, seed=9)
    # the first response trickles 256 B every 20 ms (~13 kB/s) for ever; the next one is fast
    p = hub.add(data=data, trickle_requests=1, trickle_step=256, trickle_delay=0.02)
    dest = tmp_path / "p.zip"
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy, min_rate=100_000, min_rate_window=0.5,
             chunk_size=64 * 1024)
    assert _md5(dest) == p.md5
    reqs = hub.requests_for(p)
    assert len(reqs) == 2 and reqs[0]["range"] is None
    resumed_at = int(reqs[1]["range"][len("bytes="):-1])
    assert 0 < resumed_at < 100_000  # abandoned after ~0.5 s of trickle, resumed where it was
    _only_dest(tmp_path, dest)


def test_slow_trickle_that_keeps_moving_completes(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=2_000_000, seed=10)
    p = hub.add(data=data, trickle_requests=1, trickle_bytes=40_000, trickle_step=1000, trickle_delay=0.005)
    dest = tmp_path / "p.zip"
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy, chunk_size=1 << 20)
    assert _md5(dest) == p.md5 and len(hub.requests_for(p)) == 1


def test_resume_from_kept_part_and_complete_part(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=3_000_000, seed=11)
    p = hub.add(data=data)
    dest = tmp_path / "p.zip"
    part_path(dest).write_bytes(data[:1_234_567])
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy)
    assert _md5(dest) == p.md5 and p.bytes_served == len(data) - 1_234_567
    # a part that is already complete: the server answers 416 and nothing is sent again
    dest2 = tmp_path / "q.zip"
    part_path(dest2).write_bytes(data)
    download(hub.dhus_url(p), dest2, checksum=p.md5, retry=policy)
    assert _md5(dest2) == p.md5 and hub.requests_for(p)[-1]["status"] == 416


def test_garbage_part_is_caught_and_redownloaded(hub, tmp_path, fast_retry, make_zip):
    policy, _ = fast_retry
    data = make_zip(NAME, size=2_000_000, seed=12)
    p = hub.add(data=data)
    dest = tmp_path / "p.zip"
    part_path(dest).write_bytes(b"PK" + b"\0" * 700_000)  # e.g. a power cut before the page cache hit the disk
    download(hub.dhus_url(p), dest, checksum=p.md5, retry=policy)
    assert _md5(dest) == p.md5
    assert p.bytes_served == (len(data) - 700_002) + len(data)
    _only_dest(tmp_path, dest)


@pytest.mark.parametrize("algo", ["SHA256", "SHA3-256", "sha3_256"])
def test_other_checksum_algorithms(hub, tmp_path, algo):
    p = hub.add()
    name = normalise_algorithm(algo)
    digest = hashlib.new(name, p.data).hexdigest()
    download(hub.dhus_url(p), tmp_path / "p.zip", checksum=digest.upper(), checksum_algorithm=algo)
    with pytest.raises(ChecksumError):
        download(hub.dhus_url(p), tmp_path / "q.zip", checksum=hashlib.md5(p.data).hexdigest(),
                 checksum_algorithm=algo, retry=RetryPolicy(checksum_retries=0))


def test_checksum_choice_from_odata_fields():
    cdse = [
        {"Value": "ab" * 16, "Algorithm": "MD5", "ChecksumDate": "2023-01-01T00:00:00Z"},
        {"Value": "cd" * 32, "Algorithm": "BLAKE3", "ChecksumDate": "2023-01-01T00:00:00Z"},
    ]
    assert best_checksum(cdse) == ("MD5", "ab" * 16)
    assert best_checksum({"Algorithm": "MD5", "Value": "ff" * 16}) == ("MD5", "ff" * 16)
    assert best_checksum([]) is None
    sha_b3 = [{"Value": "cd" * 32, "Algorithm": "BLAKE3"}, {"Value": "12" * 32, "Algorithm": "SHA256"}]
    assert best_checksum(sha_b3) == ("SHA256", "12" * 32)
    assert best_checksum(sha_b3, verifiable_only=False) == ("SHA256", "12" * 32)
    # a catalogue record keeps what the hub says, even an algorithm this machine cannot compute
    odd = [{"Value": "0badf00d", "Algorithm": "CRC32"}, {"Value": "cd" * 32, "Algorithm": "BLAKE3"}]
    assert best_checksum(odd, verifiable_only=False) == ("BLAKE3", "cd" * 32)
    assert best_checksum(odd[:1], verifiable_only=False) == ("CRC32", "0badf00d")
    assert best_checksum(odd[:1]) is None
    # a download is offered BLAKE3 only where this Python can compute it (the blake3 package)
    assert best_checksum(odd) == (("BLAKE3", "cd" * 32) if checksum_supported("BLAKE3") else None)
    with pytest.raises(DownloadError, match="unsupported checksum"):
        normalise_algorithm("CRC32")


def test_same_site_rules():
    assert same_site("https://catalogue.dataspace.copernicus.eu/odata/v1/x", "https://zipper.dataspace.copernicus.eu/y")
    assert same_site("https://catalogue.dataspace.copernicus.eu/x", "https://download.dataspace.copernicus.eu/y")
    assert not same_site("https://catalogue.dataspace.copernicus.eu/x", "https://evil.example.com/y")
    assert not same_site("https://catalogue.dataspace.copernicus.eu/x", "http://zipper.dataspace.copernicus.eu/y")
    assert not same_site("http://127.0.0.1:1/x", "http://localhost:1/y")


def test_credentials_follow_same_host_redirect_only(hub, tmp_path):
    p = hub.add()
    path = f"odata/v1/Products('{p.uuid}')/$value"
    download(f"{hub.base}/redirect/{path}", tmp_path / "a.zip", auth=("alice", "secret"), checksum=p.md5)
    download(f"{hub.base}/redirect-foreign/{path}", tmp_path / "b.zip", auth=("alice", "secret"), checksum=p.md5)
    sess = requests.Session()
    sess.auth = ("alice", "secret")  # like sentinelsat's session
    download(f"{hub.base}/redirect-foreign/{path}", tmp_path / "c.zip", session=sess, checksum=p.md5)
    final = hub.requests_for(p)
    assert final[0]["auth"] and final[0]["auth"].startswith("Basic ")  # same host: credentials kept
    assert final[1]["auth"] is None and final[1]["host"].startswith("localhost")  # other host: dropped
    assert final[2]["auth"] is None


def test_cdse_token_flow_refresh_and_401(hub, tmp_path):
    p = hub.add(require_token=True)
    now = [1000.0]
    auth = CdseTokenAuth("alice", "secret", token_url=f"{hub.base}/auth/token", refresh_margin=60, clock=lambda: now[0])
    download(hub.cdse_url(p), tmp_path / "a.zip", auth=auth, checksum=p.md5)
    assert hub.token_grants == ["password"]
    now[0] += 500  # 100 s before expiry (600 s): outside the 60 s margin, token reused
    download(hub.cdse_url(p), tmp_path / "b.zip", auth=auth, checksum=p.md5)
    assert hub.token_grants == ["password"]
    now[0] += 50  # 50 s before expiry: renewed with the refresh token before the request
    download(hub.cdse_url(p), tmp_path / "c.zip", auth=auth, checksum=p.md5)
    assert hub.token_grants == ["password", "refresh_token"]
    hub.tokens.clear()  # the server revokes every access token: 401, then a renewed token
    download(hub.cdse_url(p), tmp_path / "d.zip", auth=auth, checksum=p.md5)
    assert hub.token_grants == ["password", "refresh_token", "refresh_token"]
    assert [r["status"] for r in hub.requests_for(p)][-2:] == [401, 200]
    now[0] += 4000  # refresh token expired too: a new password grant
    download(hub.cdse_url(p), tmp_path / "e.zip", auth=auth, checksum=p.md5)
    assert hub.token_grants[-1] == "password"
    assert all(r["auth"].startswith("Bearer access-") for r in hub.requests_for(p) if r["status"] == 200)


def test_cdse_wrong_password(hub, tmp_path):
    p = hub.add(require_token=True)
    auth = CdseTokenAuth("alice", "wrong", token_url=f"{hub.base}/auth/token")
    with pytest.raises(AuthenticationError, match="Invalid user credentials"):
        download(hub.cdse_url(p), tmp_path / "a.zip", auth=auth)
    assert "wrong" not in repr(auth)
    assert list(tmp_path.iterdir()) == []


def test_unauthorised_without_token(hub, tmp_path):
    p = hub.add(require_token=True)
    with pytest.raises(AuthenticationError, match="HTTP 401"):
        download(hub.cdse_url(p), tmp_path / "a.zip")


def test_progress_reporter_rate_and_eta():
    t = [0.0]
    snaps = []
    rep = ProgressReporter("x", callback=snaps.append, callback_interval=0.0, log_interval=1e9, clock=lambda: t[0])
    rep.reset(1_000_000, 11_000_000)
    for i in range(1, 6):
        t[0] = float(i)
        rep.update(1_000_000 + i * 2_000_000)
    last = snaps[-1]
    assert last.rate == pytest.approx(2_000_000) and last.eta == pytest.approx(0.0)
    assert snaps[0].eta == pytest.approx(4.0)  # 8 MB left at 2 MB/s
    assert "MB/s" in last.describe()
