"""Download throughput of ``transfer.download`` vs ``curl`` from a loopback server.

Serves one random file (default 300 MB) from a separate server process (ThreadingHTTPServer
answering with ``socket.sendfile``), then downloads it alternately, a few rounds, with:
curl; our transfer without a checksum; curl followed by ``md5sum``; our transfer with its
streamed MD5 verification (zip test off: the file is not a zip). Prints the best throughput
of each and two like-for-like ratios (target >= 0.8): transfer only (ours / curl), and
verified download (ours + MD5 / curl then md5sum).

    python bench/bench_download.py [--size-mb 300] [--rounds 3] [--strict]

All temporary files live in one temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.8


def serve(path: str) -> None:
    """Server mode (run in a child process): GET with Range support, body via sendfile."""
    size = os.path.getsize(path)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if m:
                start = int(m.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size - start))
            self.end_headers()
            self.wfile.flush()
            with open(path, "rb") as f:
                self.connection.sendfile(f, offset=start)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strict", action="store_true", help="exit 1 when the ratio is below the target")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if shutil.which("curl") is None:
        print("curl not found: cannot compare", file=sys.stderr)
        return 1

    from bigearthnet_s1.transfer import download

    tmp = Path(tempfile.mkdtemp(prefix="bench-download-"))
    server = None
    try:
        src = tmp / "source.bin"
        md5 = hashlib.md5()
        with open(src, "wb") as f:
            for _ in range(args.size_mb):
                block = os.urandom(1 << 20)
                md5.update(block)
                f.write(block)
        digest = md5.hexdigest()
        size = src.stat().st_size
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(src)], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/source.bin"
        out = tmp / "out.bin"

        def run_curl(verify: bool) -> float:
            t = time.perf_counter()
            subprocess.run(["curl", "-sS", "--fail", "-o", str(out), url], check=True)
            if verify:
                got = subprocess.run(["md5sum", str(out)], check=True, capture_output=True, text=True).stdout.split()[0]
                assert got == digest, "curl download corrupted"
            dt = time.perf_counter() - t
            assert out.stat().st_size == size
            out.unlink()
            return size / dt

        def run_ours(checksum: bool) -> float:
            t = time.perf_counter()
            download(url, out, checksum=digest if checksum else None, checksum_algorithm="MD5",
                     expect_zip=False, test_zip=False, log_interval=1e9)
            dt = time.perf_counter() - t
            assert out.stat().st_size == size
            out.unlink()
            return size / dt

        results: dict[str, list[float]] = {"curl": [], "ours+md5": [], "ours": [], "curl+md5sum": []}
        run_curl(False)  # warm the page cache and the server
        for _ in range(args.rounds):
            results["curl"].append(run_curl(False))
            results["ours+md5"].append(run_ours(True))
            results["ours"].append(run_ours(False))
            results["curl+md5sum"].append(run_curl(True))
        best = {k: max(v) for k, v in results.items()}
        mb = 1e6
        print(f"file: {size / mb:.0f} MB over loopback, best of {args.rounds} rounds (MB/s; all rounds in brackets)")
        for k, v in results.items():
            print(f"  {k:<12} {best[k] / mb:8.0f}   [{', '.join(f'{x / mb:.0f}' for x in v)}]")
        plain = best["ours"] / best["curl"]
        verified = best["ours+md5"] / best["curl+md5sum"]
        print(f"ratio ours / curl (transfer only, no checksum):       {plain:.2f}  (target >= {TARGET})")
        print(f"ratio ours + streamed MD5 / curl then md5sum:         {verified:.2f}  (target >= {TARGET})")
        print(f"(ours + streamed MD5 / bare curl:                     {best['ours+md5'] / best['curl']:.2f}; MD5 costs CPU curl skips)")
        ok = plain >= TARGET and verified >= TARGET
        print("OK" if ok else "BELOW TARGET")
        return 0 if ok or not args.strict else 1
    finally:
        if server is not None:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
