"""What the reliability rules cost (issue 14): redaction, locked temporaries, sweeps, local
product verification. Prints each figure and its ratio to the plain operation, same run.

1. ``redact.redact`` on a typical 160-character log message, with 0, 4 and 32 registered
   secrets, against ``str.format`` of the same message; and log records per second through a
   handler with and without ``redact.install()`` (done last: it is process-wide).
2. ``atomic_write_bytes`` of a 1 KB file (exclusive create, ``flock``, write, rename) against a
   plain write + ``os.replace`` without the lock.
3. ``atomic.sweep`` of a folder holding 10,000 ordinary entries (nothing to remove): the cost
   every step pays before it writes.
4. ``ProductStore.verify_local`` of a 128 MB local .SAFE folder: first call (sizes + MD5 of
   every listed file) against a stamped call (file signature only), and against reading the
   files once (``cat``-like) for the disk's own rate.

Usage: ``python bench/bench_reliability.py``; runs in about 10 s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bigearthnet_s1 import redact
from bigearthnet_s1.atomic import atomic_write_bytes, sweep
from bigearthnet_s1.hub import ProductRef
from bigearthnet_s1.store import ProductStore

NAME = "S1A_IW_GRDH_1SDV_20170613T165043_20170613T165108_017018_01C579_7EEC"
MESSAGE = (f"{NAME}: HTTP 503 Service Unavailable for https://zipper.dataspace.copernicus.eu/odata/v1/"
           "Products(8f3c)/$value; retry 3 in 8.0 s (at byte 123456789)")


def per_call(fn: Callable[[], object], n: int) -> float:
    """Seconds per call (best of 3 runs of ``n`` calls)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def bench_redact() -> None:
    plain = per_call(lambda: "{}: {}".format("x", MESSAGE), 20000)
    print(f"format of a {len(MESSAGE)}-char message: {plain * 1e6:.2f} us")
    for n_secrets in (0, 4, 32):
        redact.forget_secrets()
        for i in range(n_secrets):
            redact.register_secret(f"secret-{i:03d}-Zq8+vX/r&y=K3")
        t = per_call(lambda: redact.redact(MESSAGE), 5000)
        print(f"redact, {n_secrets:2d} secrets registered: {t * 1e6:7.2f} us/message ({t / plain:6.1f} x format)")
    redact.forget_secrets()


def bench_logging() -> None:
    log = logging.getLogger("bench.reliability")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    log.addHandler(handler)
    before = per_call(lambda: log.info("%s: %s", "tile", MESSAGE), 20000)
    redact.install()
    after = per_call(lambda: log.info("%s: %s", "tile", MESSAGE), 20000)
    print(f"log records: {1 / before:,.0f}/s plain, {1 / after:,.0f}/s redacted ({after / before:.1f} x the time)")


def bench_atomic(root: Path) -> None:
    data = os.urandom(1024)
    target = root / "summary.json"

    def plain() -> None:
        tmp = root / ".summary.json.plain"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)

    t_plain = per_call(plain, 2000)
    t_atomic = per_call(lambda: atomic_write_bytes(target, data), 2000)
    print(f"1 KB write + rename: {t_plain * 1e6:.0f} us plain, {t_atomic * 1e6:.0f} us locked temporary "
          f"({t_atomic / t_plain:.2f} x)")
    many = root / "many"
    many.mkdir()
    for i in range(10000):
        (many / f"S1A_{i:05d}.tif").touch()
    t_sweep = per_call(lambda: sweep(many), 5)
    print(f"sweep of 10,000 ordinary entries: {t_sweep * 1e3:.1f} ms")


def bench_verify(root: Path) -> None:
    safe = root / "catalog" / f"{NAME}.SAFE"
    objs = []
    for i, size in enumerate((64 << 20, 64 << 20, 1 << 20)):
        rel = f"measurement/s1a-iw-grd-v{i}.tiff"
        (safe / rel).parent.mkdir(parents=True, exist_ok=True)
        blob = os.urandom(size)
        (safe / rel).write_bytes(blob)
        objs.append(f'<dataObject ID="o{i}"><byteStream size="{size}"><fileLocation href="./{rel}"/>'
                    f'<checksum checksumName="MD5">{hashlib.md5(blob).hexdigest()}</checksum></byteStream></dataObject>')
    (safe / "manifest.safe").write_text(f"<XFDU><dataObjectSection>{''.join(objs)}</dataObjectSection></XFDU>")
    total = sum(f.stat().st_size for f in safe.rglob("*") if f.is_file())
    store = ProductStore(root / "store")
    rec = ProductRef(name=NAME, url=str(safe), source="local")

    def read_all() -> None:
        for f in safe.rglob("*.tiff"):
            with open(f, "rb") as fh:
                while fh.read(8 << 20):
                    pass

    t_read = per_call(read_all, 1)
    t0 = time.perf_counter()
    store.verify_local(rec)
    t_first = time.perf_counter() - t0
    t_stamped = per_call(lambda: store.verify_local(rec), 20)
    mb = total / 1e6
    print(f"local .SAFE of {mb:.0f} MB: read once {t_read:.3f} s ({mb / t_read:,.0f} MB/s); "
          f"verified {t_first:.3f} s ({mb / t_first:,.0f} MB/s, {t_first / t_read:.1f} x the read); "
          f"stamped re-check {t_stamped * 1e3:.2f} ms ({t_first / t_stamped:,.0f} x faster)")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        bench_redact()
        bench_atomic(root)
        bench_verify(root)
        bench_logging()


if __name__ == "__main__":
    main()
