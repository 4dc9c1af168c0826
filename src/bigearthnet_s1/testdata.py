"""Real test and benchmark data from pinned public releases: fetched once, verified, cached.

The tests and benchmarks read real Sentinel-1 metadata and a real DEM that this repository
does not carry. They come from the source distribution of ``sarsen==0.9.6`` on PyPI (its
``tests/data/``, Apache-2.0; the content is Copernicus Sentinel data 2021):

* ``S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE``: a whole IW
  GRDH slice over central Italy (IPF 3.40): manifest, VV annotation, calibration, noise, RFI
  and a full-size all-zero placeholder measurement (26,102 x 16,705 px, zstd);
* ``S1A_IW_SLC__1SDV_20220104T170557_..._04E951_F1F1.SAFE/manifest.safe``: a second real
  manifest (S1A, IW SLC);
* ``Rome-30m-DEM.tif``: 360 x 360 px, 1 arc-second, EPSG:9707 (EGM96 heights), int16.

The archive is fetched with the package registry's ordinary client (``pip download --no-deps
--no-binary :all: sarsen==0.9.6``, so pip's index and proxy settings apply), its SHA-256 is
checked against :data:`SARSEN.sha256`, and the needed members are extracted (read-only files)
into the cache folder:

    $BIGEARTHNET_S1_TESTDATA, else $XDG_CACHE_HOME/bigearthnet-s1/testdata,
    else ~/.cache/bigearthnet-s1/testdata

Once there, nothing touches the network. ``python -m bigearthnet_s1.testdata`` (``make
testdata``) pre-fetches for an offline machine; copying the archive
``archives/sarsen-0.9.6.tar.gz`` into the cache folder works too (it is verified before use).
Fetching and extraction hold a lock on the cache folder and publish by rename, so concurrent
test sessions and benchmarks fetch once and never see half a tree.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bigearthnet_s1.errors import PinnedDataError

__all__ = [
    "CACHE_ENV",
    "Release",
    "SARSEN",
    "S1B_ROME",
    "S1A_SLC",
    "cache_dir",
    "fetch_archive",
    "release_dir",
    "rome_dem",
    "s1a_slc_manifest",
    "s1b_rome_safe",
]

CACHE_ENV = "BIGEARTHNET_S1_TESTDATA"


@dataclass(frozen=True)
class Release:
    """A source distribution on the package registry and the members the tests need."""

    project: str
    version: str
    filename: str
    sha256: str
    members: tuple[str, ...]  # paths inside the archive below its top folder; a trailing "/" takes a whole folder

    @property
    def top(self) -> str:
        return f"{self.project}-{self.version}"

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


S1B_ROME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
S1A_SLC = "S1A_IW_SLC__1SDV_20220104T170557_20220104T170624_041314_04E951_F1F1.SAFE"

SARSEN = Release(
    project="sarsen",
    version="0.9.6",
    filename="sarsen-0.9.6.tar.gz",
    sha256="e20a10a1e3bee965271b81c6e5663ca668bbbf8b7546ed06a2ca5d37b25470f5",
    members=(
        "LICENSE",
        f"tests/data/{S1B_ROME}/",
        f"tests/data/{S1A_SLC}/manifest.safe",
        "tests/data/Rome-30m-DEM.tif",
    ),
)


def cache_dir() -> Path:
    """The cache folder (see the module docstring); not created here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "bigearthnet-s1" / "testdata"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download(release: Release, dest: Path) -> Path:
    """``pip download`` the sdist into the empty folder ``dest``; return the file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
           "--quiet", "--dest", str(dest), release.requirement]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PinnedDataError(f"test data {release.filename}: `{' '.join(cmd[2:])}` did not run ({exc})") from None
    got = dest / release.filename
    if run.returncode != 0 or not got.is_file():
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-5:])
        raise PinnedDataError(
            f"test data {release.filename}: `pip download {release.requirement}` failed (exit {run.returncode}); "
            f"on an offline machine copy {release.filename} (sha256 {release.sha256}) into "
            f"{cache_dir() / 'archives'}:\n{tail}"
        )
    return got


def fetch_archive(release: Release = SARSEN) -> Path:
    """The verified archive in the cache, downloaded first if it is not there yet."""
    root = cache_dir()
    target = root / "archives" / release.filename
    with _locked(root):
        if target.is_file():
            actual = sha256_of(target)
            if actual == release.sha256:
                return target
            bad = target.with_name(target.name + ".bad")
            os.replace(target, bad)  # kept for inspection, never used; fetched anew below
            print(f"test data {target}: sha256 {actual} is not the pinned {release.sha256}; moved aside to {bad.name}",
                  file=sys.stderr)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download.", dir=target.parent))
        try:
            got = _download(release, tmp)
            actual = sha256_of(got)
            if actual != release.sha256:
                raise PinnedDataError(
                    f"test data {release.filename} from the package registry has sha256 {actual}, "
                    f"not the pinned {release.sha256}; nothing was kept"
                )
            os.replace(got, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _wanted(release: Release, name: str) -> str | None:
    """The member's path below the release's top folder if the tests need it, else None."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] != release.top:
        return None
    rel = "/".join(p.parts[1:])
    for m in release.members:
        if rel == m.rstrip("/") or (m.endswith("/") and rel.startswith(m)):
            return rel
    return None


def release_dir(release: Release = SARSEN) -> Path:
    """Folder holding the release's needed members (``<cache>/<project>-<version>/``),
    extracted from the verified archive on first use."""
    root = cache_dir()
    target = root / release.top
    marker = target / ".complete"
    if marker.is_file() and marker.read_text().strip() == release.sha256:
        return target
    archive = fetch_archive(release)
    with _locked(root):
        if marker.is_file() and marker.read_text().strip() == release.sha256:
            return target  # another process finished it meanwhile
        tmp = Path(tempfile.mkdtemp(prefix=f".{release.top}.", dir=root))
        try:
            found: set[str] = set()
            with tarfile.open(archive) as tar:
                for info in tar:
                    rel = _wanted(release, info.name)
                    if rel is None or info.isdir():
                        continue
                    if not info.isfile():
                        raise PinnedDataError(f"test data {archive.name}: member {info.name} is not a regular file")
                    out = tmp / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(info)
                    assert src is not None  # a regular file
                    with src, open(out, "wb") as f:
                        shutil.copyfileobj(src, f)
                    out.chmod(0o444)  # tests copy before they change anything
                    found |= {m for m in release.members if rel == m.rstrip("/") or rel.startswith(m)}
            missing = set(release.members) - found
            if missing:
                raise PinnedDataError(f"test data {archive.name}: no {', '.join(sorted(missing))} inside")
            (tmp / ".complete").write_text(release.sha256 + "\n")
            if target.exists():
                shutil.rmtree(target)  # an older or unfinished extraction
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def s1b_rome_safe() -> Path:
    """The real S1B IW GRDH product over central Italy (VV files only; zero-filled measurement)."""
    return release_dir(SARSEN) / "tests" / "data" / S1B_ROME


def s1a_slc_manifest() -> Path:
    """manifest.safe of the real S1A IW SLC product (absolute orbit 41314, relative 117, ascending)."""
    return release_dir(SARSEN) / "tests" / "data" / S1A_SLC / "manifest.safe"


def rome_dem() -> Path:
    """The real 30 m DEM over Rome, EPSG:9707 (WGS84 + EGM96 heights), int16, nodata -32768."""
    return release_dir(SARSEN) / "tests" / "data" / "Rome-30m-DEM.tif"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bigearthnet_s1.testdata",
                                     description="Fetch, verify and cache the test data (pinned public releases).")
    parser.parse_args(argv)
    try:
        folder = release_dir(SARSEN)
    except PinnedDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{SARSEN.filename}  sha256 {SARSEN.sha256}  ok")
    print(f"cached in {folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
