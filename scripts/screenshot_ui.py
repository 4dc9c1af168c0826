#!/usr/bin/env python
"""Screenshot the Airflow UI's grid view of the bigearthnet_s1 DAG after a run (e.g. the demo's).

Starts ``airflow api-server`` on a free loopback port with the given AIRFLOW_HOME, logs in
through the simple auth manager's token endpoint (user/password, as the login form does),
and drives headless Chromium over the DevTools protocol: sets the session cookie, opens the
DAG run's page and saves a PNG. Everything started here is stopped at the end.

    python scripts/screenshot_ui.py --airflow-home demo-work/airflow --out docs/images/airflow-grid.png

Needs Debian's ``chromium`` (apt-get install chromium) and a finished run in that metadata DB.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, *, data: dict | None = None, token: str | None = None, method: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read().decode())


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a process group started here (its own session), politely then firmly."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def cdp_screenshot(ws_url: str, base: str, token: str, page_url: str, out: Path,
                         width: int, height: int, settle: float) -> None:
    from websockets.asyncio.client import connect

    async with connect(ws_url, max_size=64 * 2**20) as ws:
        counter = 0

        async def call(method: str, **params: Any) -> dict:
            nonlocal counter
            counter += 1
            my_id = counter
            await ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == my_id:
                    if "error" in msg:
                        raise SystemExit(f"DevTools {method}: {msg['error']}")
                    return msg.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                   mobile=False)
        await call("Network.enable")
        # the cookie the login form sets: the UI sends it with every API call
        await call("Network.setCookie", name="_token", value=token, url=base + "/", path="/")
        await call("Page.enable")
        await call("Page.navigate", url=page_url)
        await asyncio.sleep(settle)  # the React UI fetches the grid after load
        shot = await call("Page.captureScreenshot", format="png")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--airflow-home", type=Path, default=Path("demo-work/airflow"))
    ap.add_argument("--out", type=Path, default=Path("docs/images/airflow-grid.png"))
    ap.add_argument("--dag-id", default="bigearthnet_s1")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="admin")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=8.0, help="seconds to let the page render")
    ap.add_argument("--page", default="run", choices=("run", "dag", "mapped"),
                    help="the run's grid (default), the DAG page, or the mapped preprocess task's instances")
    args = ap.parse_args()

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("chromium not found: apt-get install chromium")
    home = args.airflow_home.absolute()
    if not (home / "airflow.cfg").is_file():
        raise SystemExit(f"{home}/airflow.cfg not found: run the demo first (make demo)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    airflow = str(Path(sys.executable).with_name("airflow"))
    server = browser = None
    profile = Path(tempfile.mkdtemp(prefix="bigearthnet-s1-chromium-"))
    try:
        server = subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=open(home / "api-server.log", "wb"),
                                  start_new_session=True)
        wait_http(f"{base}/api/v2/version", 180, server, "airflow api-server")
        token = http_json(f"{base}/auth/token", data={"username": args.user, "password": args.password})["access_token"]
        runs = http_json(f"{base}/api/v2/dags/{args.dag_id}/dagRuns?order_by=-run_after&limit=1", token=token)
        if not runs.get("dag_runs"):
            raise SystemExit(f"no run of {args.dag_id} in {home}: run the demo first")
        run_id = runs["dag_runs"][0]["dag_run_id"]
        quoted = urllib.parse.quote(run_id, safe="")
        page = {"run": f"{base}/dags/{args.dag_id}/runs/{quoted}",
                "dag": f"{base}/dags/{args.dag_id}",
                "mapped": f"{base}/dags/{args.dag_id}/runs/{quoted}/tasks/preprocess/mapped"}[args.page]

        dport = free_port()
        browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                    "--hide-scrollbars", f"--remote-debugging-port={dport}",
                                    "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
                                    f"--window-size={args.width},{args.height}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_http(f"http://127.0.0.1:{dport}/json/version", 60, browser, "chromium")
        targets = http_json(f"http://127.0.0.1:{dport}/json/list")
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        asyncio.run(cdp_screenshot(ws_url, base, token, page, args.out, args.width, args.height, args.settle))
        print(f"{args.out} ({page})")
        return 0
    finally:
        stop(browser)
        stop(server)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
