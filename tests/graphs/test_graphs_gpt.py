"""The gpt runner, driven against a stand-in ``gpt`` written by the test (tests/graphs/conftest.py).

This tests OUR process handling — the command line we build, progress streaming, timeouts,
non-zero exits with their error output, and that partial outputs are never left behind —
not SNAP itself (SNAP cannot run here)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from bigearthnet_s1 import gpt as GPT
from bigearthnet_s1 import graph as G
from bigearthnet_s1.errors import EngineUnavailableError, GraphError


@pytest.fixture
def rendered(tmp_path: Path) -> G.Graph:
    return G.render("full", G.RenderParams(input=tmp_path / "in.SAFE" / "manifest.safe", output=tmp_path / "ignored.tif",
                                           epsg=32633, grid_origin=(300000.0, 5400000.0), dem=G.DemChoice("SRTM 1Sec HGT")))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_find_gpt_order(fake_gpt: Path, no_gpt_env, monkeypatch) -> None:
    with pytest.raises(EngineUnavailableError, match="--engine native") as exc:
        GPT.find_gpt()
    assert "esa-snap" in str(exc.value) and "BIGEARTHNET_S1_GPT" in str(exc.value)
    monkeypatch.setenv("BIGEARTHNET_S1_GPT", str(fake_gpt.parent.parent))  # installation folder
    assert GPT.find_gpt() == fake_gpt
    assert GPT.find_gpt(fake_gpt) == fake_gpt  # explicit setting wins
    monkeypatch.setenv("BIGEARTHNET_S1_GPT", "/nonexistent/snap")
    with pytest.raises(EngineUnavailableError, match="/nonexistent/snap"):
        GPT.find_gpt()
    monkeypatch.delenv("BIGEARTHNET_S1_GPT")
    monkeypatch.setenv("PATH", str(fake_gpt.parent) + os.pathsep + os.environ["PATH"])
    assert GPT.find_gpt() == fake_gpt


def test_build_command() -> None:
    cmd = GPT.build_command("/snap/bin/gpt", "/tmp/g.xml", parameters={"input": Path("/a b/m.safe"), "n": 3},
                            options=GPT.GptOptions(threads=2, cache="1G", memory="3G", stack_traces=True, extra_args=("-x",)))
    assert cmd == ["/snap/bin/gpt", "/tmp/g.xml", "-Pinput=/a b/m.safe", "-Pn=3", "-q", "2", "-c", "1G", "-J-Xmx3G", "-e", "-x"]
    with pytest.raises(Exception, match="not a valid identifier"):
        GPT.build_command("gpt", "g.xml", parameters={"a=b": 1})
    with pytest.raises(Exception, match="size like"):
        GPT.GptOptions(memory="lots")


def test_success_streams_progress_and_renames(fake_gpt, rendered, tmp_path, monkeypatch, caplog) -> None:
    out = tmp_path / "out" / "scene.tif"
    argv_log = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_GPT_LOG", str(argv_log))
    monkeypatch.setenv("FAKE_GPT_EXPECT", json.dumps(["-q", "2", "-c", "512M", "-J-Xmx2G"]))
    caplog.set_level(logging.INFO, logger="bigearthnet_s1.gpt")
    got = GPT.run_gpt(rendered, out, gpt=fake_gpt, options=GPT.GptOptions(threads=2, cache="512M", memory="2G", timeout=60))
    assert got == out and out.read_bytes().startswith(b"II*\x00fake tiff")
    assert _leftovers(out.parent) == []
    # the graph gpt received wrote to a temporary name beside the output, never to `out` itself
    argv = json.loads(argv_log.read_text())
    assert argv[0].endswith("graph.xml") and not Path(argv[0]).exists()  # temp graph cleaned up
    msgs = [r.getMessage() for r in caplog.records]
    assert "gpt: 10%" in msgs and "gpt: 30%" in msgs and "gpt: 100%" in msgs
    assert any(m.startswith("gpt finished") for m in msgs)


def test_receives_the_rendered_graph(fake_gpt, rendered, tmp_path, monkeypatch) -> None:
    """The stand-in copies nothing; we check the graph file it was given by keeping a copy."""
    keep = tmp_path / "seen.xml"
    wrapper = tmp_path / "gpt"
    wrapper.write_text(f"#!/bin/sh\ncp \"$1\" {keep}\nexec {fake_gpt} \"$@\"\n")
    wrapper.chmod(0o755)
    out = tmp_path / "o.tif"
    GPT.run_gpt(rendered, out, gpt=wrapper, options=GPT.GptOptions(timeout=60))
    seen = G.load_graph(keep)
    G.validate(seen, placeholders=False)
    w = seen.find("Write").value("file")
    assert Path(w).parent == out.parent and Path(w).name.startswith(".o.") and w.endswith(".partial.tif")
    want = rendered.to_dict()
    want["nodes"]["Write"]["parameters"]["file"] = w
    assert seen.to_dict() == want


def test_nonzero_exit_names_node_and_keeps_nothing(fake_gpt, rendered, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_GPT_MODE", "fail")
    out = tmp_path / "scene.tif"
    with pytest.raises(GPT.GptError, match=r"gpt failed in node Calibration \(exit 1\).*SENTINEL-1X is not supported") as exc:
        GPT.run_gpt(rendered, out, gpt=fake_gpt, options=GPT.GptOptions(timeout=60))
    assert exc.value.returncode == 1 and exc.value.node == "Calibration"
    assert "SEVERE" in exc.value.stderr_tail
    assert not out.exists() and _leftovers(tmp_path) == []


def test_partial_output_removed(fake_gpt, rendered, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_GPT_MODE", "partial")
    out = tmp_path / "scene.tif"
    out.write_bytes(b"previous complete result")  # an earlier good output is not clobbered
    with pytest.raises(GPT.GptError, match="node Write.*No space left"):
        GPT.run_gpt(rendered, out, gpt=fake_gpt, options=GPT.GptOptions(timeout=60))
    assert out.read_bytes() == b"previous complete result"
    assert _leftovers(tmp_path) == []


def test_exit_zero_without_output_is_an_error(fake_gpt, rendered, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_GPT_MODE", "noout")
    with pytest.raises(GPT.GptError, match="exited 0 but wrote no output"):
        GPT.run_gpt(rendered, tmp_path / "scene.tif", gpt=fake_gpt, options=GPT.GptOptions(timeout=60))
    assert list(tmp_path.glob("*.tif")) == []


def test_timeout_kills_process_group(fake_gpt, rendered, tmp_path, monkeypatch) -> None:
    child_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_GPT_MODE", "hang")
    monkeypatch.setenv("FAKE_GPT_CHILD", str(child_file))
    out = tmp_path / "scene.tif"
    with pytest.raises(GPT.GptTimeoutError, match="timed out after 3 s.*partial output removed"):
        GPT.run_gpt(rendered, out, gpt=fake_gpt, options=GPT.GptOptions(timeout=3))
    assert not out.exists() and _leftovers(tmp_path) == []
    # the stand-in's child (as gpt's JVM would be) was killed with the group
    pid = int(child_file.read_text())
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # a zombie not yet reaped by init still answers kill(0): check its state
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child process {pid} survived the timeout")


def test_bad_arguments_reported(fake_gpt, rendered, tmp_path, monkeypatch) -> None:
    """The stand-in refuses an option it does not know, as gpt does ('Unknown option')."""
    with pytest.raises(GPT.GptError, match="Unknown option '--fast'"):
        GPT.run_gpt(rendered, tmp_path / "x.tif", gpt=fake_gpt, options=GPT.GptOptions(timeout=60, extra_args=("--fast",)))


def test_graph_needs_one_write_node(fake_gpt, rendered, tmp_path) -> None:
    g = rendered.copy()
    g.root.remove(g.find("Write").element)
    with pytest.raises(GPT.GptError, match="exactly one Write node"):
        GPT.run_gpt(g, tmp_path / "x.tif", gpt=fake_gpt)


def test_unfilled_placeholders_need_parameters(fake_gpt, tmp_path, monkeypatch) -> None:
    """The template itself runs when -P supplies ${input}; without -P validation refuses it."""
    t = G.load_graph("full")
    with pytest.raises(GraphError, match="placeholder"):
        GPT.run_gpt(t, tmp_path / "x.tif", gpt=fake_gpt)
    log = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_GPT_LOG", str(log))
    GPT.run_gpt(t, tmp_path / "x.tif", gpt=fake_gpt, parameters={"input": tmp_path / "m.safe"}, options=GPT.GptOptions(timeout=60))
    assert json.loads(log.read_text())[1:] == [f"-Pinput={tmp_path / 'm.safe'}"]


def test_vmoptions_memory(tmp_path) -> None:
    exe = tmp_path / "gpt"
    exe.write_text("")
    vm = tmp_path / "gpt.vmoptions"
    vm.write_text("# SNAP\n-Xmx2G\n-Dsnap.log.level=WARNING\n")
    assert GPT.set_vmoptions_memory(exe, "12G") == vm
    assert vm.read_text().splitlines() == ["# SNAP", "-Dsnap.log.level=WARNING", "-Xmx12G"]
    with pytest.raises(Exception, match="size like"):
        GPT.set_vmoptions_memory(exe, "-Xmx3G")
