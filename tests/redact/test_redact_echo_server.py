"""One rule for secrets: a hostile server that echoes every request (credentials first) gets
no secret into any output: stdout, stderr, logs, exception messages and tracebacks, summary
JSON, work files, Airflow task logs (issue 14, case 6).

Each scenario checks first that the secret really went to the server, then greps every output
for it in plain, URL-encoded and base64 form (``leak_forms``), and checks that the echo did
reach the output (so the test would see a leak)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import shapely

from bigearthnet_s1 import pipeline
from bigearthnet_s1.catalog import make_record
from bigearthnet_s1.errors import AuthenticationError, BigEarthNetS1Error, CatalogError
from bigearthnet_s1.hub import CdseTokenAuth
from bigearthnet_s1.retry import RetryPolicy
from bigearthnet_s1.transfer import download

from .conftest import PASSWORD, TOKEN, USER, EchoServer, assert_no_leak

REPO = Path(__file__).resolve().parents[2]
NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
CRED_ENV = ("BIGEARTHNET_S1_DHUS_USER", "BIGEARTHNET_S1_DHUS_PASSWORD", "BIGEARTHNET_S1_CDSE_USER",
            "BIGEARTHNET_S1_CDSE_PASSWORD", "CDSE_USER", "CDSE_PASSWORD", "CDSE_TOKEN", "DHUS_USER",
            "DHUS_PASSWORD", "BIGEARTHNET_S1_HUB_USER", "BIGEARTHNET_S1_HUB_PASSWORD")


def _cli(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CRED_ENV}
    return subprocess.run([sys.executable, "-m", "bigearthnet_s1.cli", "-v", *args], capture_output=True, text=True,
                          timeout=120, env={**base, **(env or {})}, cwd=cwd)


def _files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file()) if root.exists() else ""


def _exception_text(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


@pytest.mark.parametrize(("how", "style", "status"), [
    ("userinfo", "text", 403),  # credentials in the URL, echoed back as basic auth
    ("options", "html", 403),  # --user/--password, the echo in an error page's title
    ("options", "text", 404),  # a not-retried status: the body is quoted in the message
])
def test_download_cli_against_an_echoing_server(echo_server: EchoServer, tmp_path: Path, how: str, style: str,
                                                status: int) -> None:
    if how == "userinfo":
        args = ["download", echo_server.url_with_userinfo(status, style, f"{NAME}.zip")]
    else:
        args = ["download", echo_server.url(status, style, f"{NAME}.zip"), "--user", USER, "--password", PASSWORD]
    proc = _cli([*args, "--store", str(tmp_path / "store"), "--no-progress"])
    assert proc.returncode == 1
    assert echo_server.saw(PASSWORD), "the secret never reached the server: nothing to test"
    output = proc.stdout + proc.stderr
    assert f"HTTP {status}" in output and "refused" in output  # the echo is quoted
    assert_no_leak(output, "CLI output", PASSWORD)
    assert_no_leak(_files_text(tmp_path / "store"), "store files", PASSWORD)
    assert "***" in output


def test_library_download_errors_and_logs_are_clean_at_the_source(echo_server: EchoServer, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Without any logging set-up by us (a library user's program): the exceptions and log
    records the library makes carry no secret, also through retries of 503 echoes."""
    caplog.set_level(logging.DEBUG)
    retry = RetryPolicy(max_failures=2, backoff=0.0, jitter=0.0, sleep=lambda s: None)
    errors: list[BaseException] = []
    for url, auth in [(echo_server.url_with_userinfo(403, "html"), None),
                      (echo_server.url(503, "text"), (USER, PASSWORD)),
                      (echo_server.url(410, "text"), (USER, PASSWORD))]:
        with pytest.raises(BigEarthNetS1Error) as exc:
            download(url, tmp_path / "p.zip", auth=auth, retry=retry)
        errors.append(exc.value)
    token_auth = CdseTokenAuth(USER, PASSWORD, token_url=echo_server.url(401, "json", "token"))
    with pytest.raises(AuthenticationError) as exc:
        download(echo_server.url(200, "text"), tmp_path / "q.zip", auth=token_auth, retry=retry)
    errors.append(exc.value)
    assert echo_server.saw(PASSWORD)
    assert any("giving up" in str(e) for e in errors) and "retry" in caplog.text  # the 503 echoes were logged
    assert any("invalid_grant" in str(e) for e in errors)  # the token endpoint's echo was quoted
    for e in errors:
        assert_no_leak(_exception_text(e), f"exception {type(e).__name__}", PASSWORD)
    assert_no_leak(caplog.text, "log records", PASSWORD)
    assert_no_leak(repr(token_auth), "repr of the auth", PASSWORD)
    assert list(tmp_path.iterdir()) == []


def test_pipeline_fetch_with_connection_credentials(echo_server: EchoServer, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for k in CRED_ENV:
        monkeypatch.delenv(k, raising=False)
    caplog.set_level(logging.DEBUG)
    work = pipeline.WorkDir(tmp_path / "work")
    rec = make_record(NAME, source="dhus", footprint=shapely.box(12.0, 41.0, 13.0, 42.0), orbit_direction="ASCENDING",
                      url=echo_server.url(403, "text", "odata/v1/Products('x')/$value"), online=True)
    pipeline.write_json(work.record_file(NAME), rec.to_json())
    with pytest.raises(AuthenticationError) as exc:
        pipeline.fetch_product(work, NAME, {"user": USER, "password": PASSWORD, "kind": "dhus"})
    assert echo_server.saw(PASSWORD) and "refused" in str(exc.value)
    assert_no_leak(_exception_text(exc.value), "fetch_product's exception", PASSWORD)
    assert_no_leak(caplog.text, "log records", PASSWORD)
    assert_no_leak(_files_text(work.root), "work files", PASSWORD)


def test_build_against_an_echoing_catalogue(echo_server: EchoServer, s2_example: Path, tmp_path: Path) -> None:
    """`build` with a CDSE catalogue whose URL carries user info and a token in the
    environment: the search fails with the echo; logs, the printed summary and every file of
    the work folder (the summary JSON among them) stay clean."""
    work = tmp_path / "work"
    url = echo_server.url_with_userinfo(400, "text", "odata/v1")
    proc = _cli(["build", str(s2_example), "--tiles", "33UUP", "--catalog", "cdse", "--catalog-url", url,
                 "--work", str(work), "--no-progress"],
                env={"CDSE_TOKEN": TOKEN, "BIGEARTHNET_S1_HUB_USER": USER, "BIGEARTHNET_S1_HUB_PASSWORD": PASSWORD})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert echo_server.saw(PASSWORD)
    assert "HTTP 400" in proc.stderr and "refused" in proc.stderr
    assert '"failed"' in proc.stdout and "footprint lookup" in proc.stdout
    assert list((work / "summaries").glob("*.json"))
    for text, where in [(proc.stdout, "summary on stdout"), (proc.stderr, "logs"), (_files_text(work), "work files")]:
        assert_no_leak(text, where, PASSWORD, TOKEN)
    assert "***" in proc.stderr


def test_catalogue_error_quotes_the_echo_redacted(echo_server: EchoServer) -> None:
    from bigearthnet_s1.catalog import open_catalog

    cat = open_catalog("cdse", url=echo_server.url(400, "html", "odata/v1"), token=TOKEN, retries=0)
    with pytest.raises(CatalogError) as exc:
        cat.search(shapely.box(12.0, 41.0, 12.1, 41.1), *_window())
    assert echo_server.saw(TOKEN) and "refused" in str(exc.value)
    assert_no_leak(_exception_text(exc.value), "catalogue error", TOKEN)


def _window():  # noqa: ANN202 - test helper
    from datetime import UTC, datetime

    return datetime(2017, 6, 1, tzinfo=UTC), datetime(2017, 6, 2, tzinfo=UTC)


AIRFLOW_TASK = r"""
import logging, sys
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
import bigearthnet_s1_airflow  # what the DAG file imports: installs the redactor
from bigearthnet_s1_airflow.hooks import options_from_connection
user, password, token, echo = sys.argv[1:5]
opts = options_from_connection("hub.example", "https", None, user, password, {"token": token, "kind": "cdse"})
log = logging.getLogger("airflow.task")
log.info("connection options: %s", opts)
log.warning("a third-party library says: %s", echo)
try:
    raise RuntimeError(f"server answered: {echo}")
except RuntimeError:
    log.exception("task failed")
# the task runner's own events (structlog, not stdlib) go through Airflow's secrets masker:
# it was handed every form of the secrets
from airflow.sdk.log import redact as airflow_redact
print("AIRFLOW MASKER:", airflow_redact(echo))
"""


def test_airflow_task_logs_are_redacted(tmp_path: Path) -> None:
    """Records of any logger in a process that loaded the plugin package (what the DAG file
    imports) are redacted, the Connection's password and token included, tracebacks too."""
    from .conftest import leak_forms

    echo = " ".join(leak_forms(PASSWORD, TOKEN).values())  # the worst echo: every form at once
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", AIRFLOW_TASK, USER, PASSWORD, TOKEN, echo], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr  # Airflow's logging (structlog) writes to stdout
    assert "task failed" in output and "Traceback" in output and "server answered" in output
    assert "'password': '***'" in output and "'token': '***'" in output and "AIRFLOW MASKER: ***" in output
    assert_no_leak(output, "task log", PASSWORD, TOKEN)
