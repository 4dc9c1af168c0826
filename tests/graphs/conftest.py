"""Fixtures for the graphs/gpt/engine tests."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

# A stand-in for SNAP's gpt: a small Python program that checks the arguments it receives
# (graph file, -P, -q, -c, -J-Xmx), then behaves as FAKE_GPT_MODE says. It tests OUR
# process handling (command line, streaming, timeouts, exit codes, partial outputs), not SNAP.
FAKE_GPT = r'''
import json, os, subprocess, sys, time
import xml.etree.ElementTree as ET

args = sys.argv[1:]
log = os.environ.get("FAKE_GPT_LOG")
if log:
    with open(log, "w") as f:
        json.dump(args, f)

def fail(msg, code=2):
    sys.stderr.write(msg + "\n"); sys.stderr.flush(); sys.exit(code)

if not args or not args[0].endswith(".xml") or not os.path.isfile(args[0]):
    fail("Error: Either operator name or graph XML file must be given")
root = ET.parse(args[0]).getroot()
if root.tag != "graph":
    fail("Error: not a graph")
out = None
for node in root.findall("node"):
    if node.findtext("operator") == "Write":
        out = node.find("parameters").findtext("file")
if not out:
    fail("Error: graph has no Write node with a file")
i = 1
params = {}
while i < len(args):
    a = args[i]
    if a.startswith("-P"):
        k, _, v = a[2:].partition("=")
        if not k or not _:
            fail("Error: bad -P " + a)
        params[k] = v
    elif a in ("-q", "-c"):
        i += 1
        if i >= len(args):
            fail("Error: option " + a + " needs a value")
        if a == "-q" and not args[i].isdigit():
            fail("Error: -q needs an integer")
    elif a.startswith("-J-Xmx") or a in ("-e", "-x"):
        pass
    else:
        fail("Error: Unknown option '" + a + "'")
    i += 1
expect = os.environ.get("FAKE_GPT_EXPECT")
if expect:
    want = json.loads(expect)
    if args[1:] != want:
        fail("Error: arguments " + json.dumps(args[1:]) + " != expected " + json.dumps(want))
mode = os.environ.get("FAKE_GPT_MODE", "ok")
if mode == "ok":
    for p in ("Executing processing graph\n", "....10%", "....20%....30%", "....", "100% done.\n"):
        sys.stdout.write(p); sys.stdout.flush(); time.sleep(0.01)
    with open(out, "wb") as f:
        f.write(b"II*\x00fake tiff written by the stand-in gpt")
    sys.exit(0)
if mode == "fail":
    sys.stdout.write("Executing processing graph\n....10%"); sys.stdout.flush()
    sys.stderr.write("SEVERE: org.esa.snap.core.gpf.graph.GraphProcessor: boom\n")
    sys.stderr.write("Error: [NodeId: Calibration] Mission SENTINEL-1X is not supported\n")
    sys.exit(1)
if mode == "partial":
    with open(out, "wb") as f:
        f.write(b"II*\x00half")
    sys.stderr.write("Error: [NodeId: Write] java.io.IOException: No space left on device\n")
    sys.exit(1)
if mode == "hang":
    with open(out, "wb") as f:
        f.write(b"II*\x00started")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ["FAKE_GPT_CHILD"], "w") as f:
        f.write(str(child.pid))
    sys.stdout.write("....10%"); sys.stdout.flush()
    time.sleep(120)
    sys.exit(0)
if mode == "noout":
    sys.stdout.write("100% done.\n")
    sys.exit(0)
fail("Error: unknown FAKE_GPT_MODE " + mode)
'''


@pytest.fixture
def fake_gpt(tmp_path: Path) -> Path:
    """Path of an executable stand-in ``gpt`` (see FAKE_GPT above)."""
    d = tmp_path / "fake-snap" / "bin"
    d.mkdir(parents=True)
    exe = d / "gpt"
    exe.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_GPT))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def no_gpt_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Environment without any gpt: PATH holds only the venv's bin and /usr/bin:/bin."""
    monkeypatch.delenv("BIGEARTHNET_S1_GPT", raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), str(empty), "/usr/bin", "/bin"])
    monkeypatch.setenv("PATH", path)
    return dict(os.environ)
