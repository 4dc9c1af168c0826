"""Test data from pinned releases (``bigearthnet_s1.testdata``): verified, cached, offline once
cached, nothing half-written; and the graph folder override."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from bigearthnet_s1 import graph, testdata
from bigearthnet_s1.errors import GraphError, PinnedDataError


def test_the_real_release_is_cached_and_verified(s1b_rome_safe: Path, rome_dem: Path, monkeypatch) -> None:
    root = testdata.cache_dir()
    archive = root / "archives" / testdata.SARSEN.filename
    assert testdata.sha256_of(archive) == testdata.SARSEN.sha256
    assert s1b_rome_safe.is_relative_to(root) and rome_dem.is_relative_to(root)
    assert (root / "sarsen-0.9.6" / ".complete").read_text().strip() == testdata.SARSEN.sha256
    assert "Apache License" in (root / "sarsen-0.9.6" / "LICENSE").read_text()  # kept beside the data
    files = sorted(p.relative_to(s1b_rome_safe).as_posix() for p in s1b_rome_safe.rglob("*") if p.is_file())
    assert len(files) == 6 and "manifest.safe" in files and sum(f.startswith("measurement/") for f in files) == 1
    assert not any(p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
                   for p in s1b_rome_safe.rglob("*") if p.is_file())  # read-only: tests copy first
    # offline from now on: neither the extraction nor the archive check goes to the network
    monkeypatch.setattr(testdata, "_download", lambda *a: pytest.fail("network used although the data is cached"))
    assert testdata.s1b_rome_safe() == s1b_rome_safe and testdata.fetch_archive() == archive


# --------------------------------------------------------------------------------------
# a small release of our own, served by a stand-in for `pip download`
# --------------------------------------------------------------------------------------
def _tarball(members: dict[str, bytes | None], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buf.getvalue()


GOOD = _tarball({
    "demo-1.0/": None,
    "demo-1.0/LICENSE": b"licence text\n",
    "demo-1.0/tests/data/x.SAFE/manifest.safe": b"<xfdu/>\n",
    "demo-1.0/tests/data/x.SAFE/annotation/a.xml": b"<product/>\n",
    "demo-1.0/tests/data/other.bin": b"\0" * 100,
    "demo-1.0/setup.py": b"print('never run')\n",
    "../escape.txt": b"outside",
})
DEMO = testdata.Release("demo", "1.0", "demo-1.0.tar.gz", hashlib.sha256(GOOD).hexdigest(),
                        members=("LICENSE", "tests/data/x.SAFE/"))


class Registry:
    """Stands in for `pip download`: writes ``body`` as the archive, counts the calls."""

    def __init__(self) -> None:
        self.body = GOOD
        self.calls = 0

    def __call__(self, release: testdata.Release, dest: Path) -> Path:
        self.calls += 1
        out = dest / release.filename
        out.write_bytes(self.body)
        return out


@pytest.fixture
def served(tmp_path: Path, monkeypatch) -> Registry:
    """A cache folder in tmp and the registry stand-in."""
    monkeypatch.setenv(testdata.CACHE_ENV, str(tmp_path / "cache"))
    registry = Registry()
    monkeypatch.setattr(testdata, "_download", registry)
    return registry


def test_extracts_only_the_members_once(served, tmp_path: Path) -> None:
    folder = testdata.release_dir(DEMO)
    assert folder == tmp_path / "cache" / "demo-1.0"
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == [".complete", "LICENSE", "tests/data/x.SAFE/annotation/a.xml", "tests/data/x.SAFE/manifest.safe"]
    assert not (tmp_path / "escape.txt").exists() and not list(tmp_path.rglob("escape.txt"))
    assert (folder / "tests/data/x.SAFE/manifest.safe").read_bytes() == b"<xfdu/>\n"
    assert testdata.release_dir(DEMO) == folder and served.calls == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".lock", "archives", "demo-1.0"]  # no temporaries left


def test_wrong_checksum_from_the_registry_keeps_nothing(served, tmp_path: Path) -> None:
    served.body = GOOD[:-1] + b"\1"
    with pytest.raises(PinnedDataError, match=rf"demo-1.0.tar.gz from the package registry has sha256 [0-9a-f]{{64}}, "
                                              rf"not the pinned {DEMO.sha256}; nothing was kept"):
        testdata.release_dir(DEMO)
    cache = tmp_path / "cache"
    assert not (cache / "demo-1.0").exists() and list((cache / "archives").iterdir()) == []


def test_a_corrupt_cached_archive_is_set_aside_and_fetched_again(served, tmp_path: Path) -> None:
    archives = tmp_path / "cache" / "archives"
    archives.mkdir(parents=True)
    (archives / DEMO.filename).write_bytes(b"half a download")  # copied in by hand, say
    assert testdata.fetch_archive(DEMO).read_bytes() == GOOD
    assert (archives / f"{DEMO.filename}.bad").read_bytes() == b"half a download" and served.calls == 1


def test_an_archive_copied_in_by_hand_is_used_offline(served, tmp_path: Path) -> None:
    archives = tmp_path / "cache" / "archives"
    archives.mkdir(parents=True)
    (archives / DEMO.filename).write_bytes(GOOD)
    assert (testdata.release_dir(DEMO) / "LICENSE").read_bytes() == b"licence text\n" and served.calls == 0


def test_missing_member_or_link_is_refused(served, tmp_path: Path) -> None:
    wants_more = testdata.Release("demo", "1.0", DEMO.filename, DEMO.sha256, members=("LICENSE", "tests/data/y.SAFE/"))
    with pytest.raises(PinnedDataError, match="demo-1.0.tar.gz: no tests/data/y.SAFE/ inside"):
        testdata.release_dir(wants_more)
    assert not (tmp_path / "cache" / "demo-1.0").exists()
    linked = _tarball({"demo-1.0/LICENSE": b"x"}, links=("demo-1.0/tests/data/x.SAFE/manifest.safe",))
    served.body = linked
    with_link = testdata.Release("demo", "1.0", DEMO.filename, hashlib.sha256(linked).hexdigest(), members=DEMO.members)
    (tmp_path / "cache" / "archives" / DEMO.filename).unlink()
    with pytest.raises(PinnedDataError, match="member demo-1.0/tests/data/x.SAFE/manifest.safe is not a regular file"):
        testdata.release_dir(with_link)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".lock", "archives"]


def test_registry_unreachable_names_the_file_and_the_offline_way(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(testdata.CACHE_ENV, str(tmp_path / "cache"))

    def no_network(cmd, **kw):
        assert cmd[1:6] == ["-m", "pip", "download", "--no-deps", "--no-binary"] and cmd[-1] == "demo==1.0"
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies the requirement")

    monkeypatch.setattr(testdata.subprocess, "run", no_network)
    with pytest.raises(PinnedDataError) as err:
        testdata.fetch_archive(DEMO)
    msg = str(err.value)
    assert "pip download demo==1.0` failed (exit 1)" in msg and DEMO.sha256 in msg
    assert str(tmp_path / "cache" / "archives") in msg and "Could not find a version" in msg


def test_cache_dir_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(testdata.CACHE_ENV, str(tmp_path / "td"))
    assert testdata.cache_dir() == tmp_path / "td"
    monkeypatch.delenv(testdata.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert testdata.cache_dir() == tmp_path / "xdg" / "bigearthnet-s1" / "testdata"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert testdata.cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "bigearthnet-s1" / "testdata"


def test_graphs_dir_override(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BIGEARTHNET_S1_GRAPHS", raising=False)
    packaged = graph.graphs_dir()
    assert (packaged / "s1_grd_full.xml").read_bytes() == (Path(__file__).resolve().parents[2] / "include" / "graphs"
                                                           / "s1_grd_full.xml").read_bytes()
    mine = tmp_path / "graphs"
    mine.mkdir()
    (mine / "s1_grd_full.xml").write_bytes((packaged / "s1_grd_full.xml").read_bytes())
    monkeypatch.setenv("BIGEARTHNET_S1_GRAPHS", str(mine))
    assert graph.graphs_dir() == mine and graph.template_path("full") == mine / "s1_grd_full.xml"
    monkeypatch.setenv("BIGEARTHNET_S1_GRAPHS", str(tmp_path / "nowhere"))
    with pytest.raises(GraphError, match="BIGEARTHNET_S1_GRAPHS=.*nowhere: not a folder"):
        graph.graphs_dir()
