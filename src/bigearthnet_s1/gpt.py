"""Run a SNAP graph with ESA SNAP's ``gpt`` command-line tool.

``gpt`` is found from an explicit setting, the ``BIGEARTHNET_S1_GPT`` environment variable
(path of the executable, or of the SNAP installation folder holding ``bin/gpt``), or ``PATH``.

Command line built (see SNAP's ``gpt -h``)::

    gpt GRAPH.xml [-P<name>=<value> ...] [-q THREADS] [-c CACHE] [-J-Xmx<MEM>] [-e]

``-J<opt>`` hands a JVM option to the install4j launcher ``gpt`` is; the same options can
live in ``<snap>/bin/gpt.vmoptions`` (see :func:`set_vmoptions_memory`). The graph's Write node
is pointed at a temporary name beside the final output; the file is renamed into place only
when ``gpt`` exits 0 and the output exists, and removed otherwise (also on timeout).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bigearthnet_s1.atomic import atomic_write_text
from bigearthnet_s1.errors import BigEarthNetS1Error, EngineUnavailableError, GptError, GptTimeoutError
from bigearthnet_s1.graph import Graph, validate

__all__ = [
    "GPT_ENV",
    "GptError",
    "GptTimeoutError",
    "GptOptions",
    "find_gpt",
    "build_command",
    "run_gpt",
    "set_vmoptions_memory",
    "INSTALL_HINT",
]

log = logging.getLogger(__name__)

GPT_ENV = "BIGEARTHNET_S1_GPT"

INSTALL_HINT = (
    "install ESA SNAP with its microwave toolbox (download the esa-snap Linux installer from "
    "ESA's STEP site and run it unattended: `sh esa-snap_*_linux-*.sh -q -varfile response.varfile`, "
    "or use this project's Docker image), then put <snap>/bin on PATH or set "
    f"{GPT_ENV}=/path/to/snap/bin/gpt; or choose the pure-Python engine with `--engine native`"
)


@dataclass(frozen=True)
class GptOptions:
    """How to run ``gpt``.

    threads: ``-q`` (tile scheduler parallelism); cache: ``-c`` tile cache size, e.g. "2G";
    memory: JVM heap passed as ``-J-Xmx<memory>``, e.g. "6G" (None: the vmoptions file's);
    timeout: seconds before the whole process group is killed (None: no limit);
    stack_traces: ``-e`` (SNAP prints Java stack traces on error);
    extra_args: appended verbatim (e.g. ``["-x"]``).
    """

    threads: int | None = None
    cache: str | None = None
    memory: str | None = None
    timeout: float | None = 6 * 3600.0
    stack_traces: bool = False
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.threads is not None and int(self.threads) < 1:
            raise BigEarthNetS1Error(f"gpt threads {self.threads!r} must be >= 1")
        for name in ("cache", "memory"):
            v = getattr(self, name)
            if v is not None and not re.fullmatch(r"\d+[KkMmGg]?", str(v)):
                raise BigEarthNetS1Error(f"gpt {name} {v!r}: expected a size like 2048M or 4G")
        if self.timeout is not None and not self.timeout > 0:
            raise BigEarthNetS1Error(f"gpt timeout {self.timeout!r} s must be > 0")


def find_gpt(setting: str | os.PathLike[str] | None = None) -> Path:
    """Locate the ``gpt`` executable: ``setting``, then ``$BIGEARTHNET_S1_GPT``, then PATH.

    A setting may name the executable or a SNAP installation folder (``<dir>/bin/gpt``).
    Raises EngineUnavailableError with install instructions when none is usable.
    """
    tried: list[str] = []
    for origin, value in (("setting", setting), (GPT_ENV, os.environ.get(GPT_ENV))):
        if not value:
            continue
        p = Path(value).expanduser()
        for cand in (p, p / "bin" / "gpt", p / "gpt"):
            if cand.is_file() and os.access(cand, os.X_OK):
                return cand
        tried.append(f"{origin}={value} (not an executable gpt)")
    found = shutil.which("gpt")
    if found:
        return Path(found)
    tried.append("PATH (no gpt)")
    raise EngineUnavailableError(f"SNAP's gpt was not found ({'; '.join(tried)}): {INSTALL_HINT}")


def build_command(
    gpt: str | os.PathLike[str],
    graph_file: str | os.PathLike[str],
    *,
    parameters: Mapping[str, object] | None = None,
    options: GptOptions = GptOptions(),
) -> list[str]:
    """The argument vector for one run (no shell involved, so values need no quoting)."""
    cmd = [os.fspath(gpt), os.fspath(graph_file)]
    for name, value in (parameters or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise BigEarthNetS1Error(f"gpt parameter name {name!r} is not a valid identifier")
        cmd.append(f"-P{name}={os.fspath(value) if isinstance(value, os.PathLike) else value}")
    if options.threads is not None:
        cmd += ["-q", str(int(options.threads))]
    if options.cache is not None:
        cmd += ["-c", str(options.cache)]
    if options.memory is not None:
        cmd.append(f"-J-Xmx{options.memory}")
    if options.stack_traces:
        cmd.append("-e")
    cmd += list(options.extra_args)
    return cmd


_NODE_RE = re.compile(r"\[NodeId:\s*([^\]]+)\]")
_PROGRESS_RE = re.compile(r"\d+%")


def _error_summary(stderr_lines: Sequence[str], stdout_lines: Sequence[str]) -> tuple[str, str | None]:
    """Pick the lines that explain a failure; gpt prints 'Error: [NodeId: X] message'."""
    lines = [ln.strip() for ln in list(stderr_lines) + list(stdout_lines) if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error") or "exception" in ln.lower()
              or _NODE_RE.search(ln)]
    node = None
    for ln in errors or lines:
        m = _NODE_RE.search(ln)
        if m:
            node = m.group(1).strip()
            break
    chosen = errors[:3] if errors else lines[-3:]
    return " | ".join(chosen) or "no error output", node


def _output_candidates(tmp_out: Path) -> list[Path]:
    """Files/folders gpt may have created for ``tmp_out`` (GeoTIFF, BEAM-DIMAP .dim/.data)."""
    stem = tmp_out.with_suffix("")
    return [tmp_out, stem.with_suffix(".tif"), stem.with_suffix(".dim"), stem.with_suffix(".data")]


def _remove(paths: Sequence[Path]) -> None:
    for p in paths:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        except OSError as exc:  # pragma: no cover - best effort cleanup
            log.warning("could not remove partial gpt output %s: %s", p, exc)


def run_gpt(
    graph: Graph,
    output: str | os.PathLike[str],
    *,
    parameters: Mapping[str, object] | None = None,
    options: GptOptions = GptOptions(),
    gpt: str | os.PathLike[str] | None = None,
    logger: logging.Logger | None = None,
) -> Path:
    """Run ``graph`` with SNAP's gpt and return ``output`` once it is complete.

    The graph's Write node is redirected to a temporary name in ``output``'s folder (same
    suffix), the rendered graph goes to a temporary folder, ``gpt`` runs with ``options``
    (progress lines streamed to ``logger`` at INFO), and the output is renamed into place
    on success. On a non-zero exit, a missing output, or a timeout, partial files are
    removed and GptError / GptTimeoutError names the failing node when gpt says which.
    """
    logger = logger or log
    exe = find_gpt(gpt)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    g = graph.copy()
    writes = g.nodes_by_operator("Write")
    if len(writes) != 1:
        raise GptError(f"{graph.name}: needs exactly one Write node to run with gpt, has {len(writes)}")
    tmp_out = output.with_name(f".{output.stem}.{uuid.uuid4().hex[:12]}.partial{output.suffix or '.tif'}")
    writes[0].set("file", tmp_out)
    validate(g, placeholders=bool(parameters))
    partials = _output_candidates(tmp_out)

    with tempfile.TemporaryDirectory(prefix="bigearthnet-s1-gpt-") as tmpdir:
        graph_file = g.write(Path(tmpdir) / "graph.xml")
        cmd = build_command(exe, graph_file, parameters=parameters, options=options)
        logger.info("running %s", " ".join(cmd))
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=tmpdir,
                start_new_session=True,  # own process group: a timeout kills the JVM too
            )
        except OSError as exc:
            raise EngineUnavailableError(f"cannot start gpt {exe}: {exc}; {INSTALL_HINT}") from None

        stdout_tail: deque[str] = deque(maxlen=200)
        stderr_tail: deque[str] = deque(maxlen=200)
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, stdout_tail, logger, logging.INFO), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, stderr_tail, logger, logging.WARNING), daemon=True),
        ]
        for r in readers:
            r.start()
        try:
            rc = proc.wait(timeout=options.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            for r in readers:
                r.join(timeout=5)
            _remove(partials)
            raise GptTimeoutError(
                f"gpt timed out after {options.timeout:g} s running {graph.name} for {output}; "
                "partial output removed (raise the timeout or give gpt more threads/memory)",
                returncode=None,
                stderr_tail="\n".join(stderr_tail),
            ) from None
        except BaseException:
            _kill_group(proc)
            _remove(partials)
            raise
        for r in readers:
            r.join(timeout=10)
        elapsed = time.monotonic() - t0

    if rc != 0:
        _remove(partials)
        summary, node = _error_summary(list(stderr_tail), list(stdout_tail))
        where = f" in node {node}" if node else ""
        raise GptError(
            f"gpt failed{where} (exit {rc}) running {graph.name} for {output}: {summary}",
            returncode=rc,
            node=node,
            stderr_tail="\n".join(stderr_tail),
        )
    produced = next((p for p in partials[:2] if p.is_file()), None)
    if produced is None:
        _remove(partials)
        summary, node = _error_summary(list(stderr_tail), list(stdout_tail))
        raise GptError(
            f"gpt exited 0 but wrote no output for {output} (running {graph.name}): {summary}",
            returncode=rc,
            node=node,
            stderr_tail="\n".join(stderr_tail),
        )
    os.replace(produced, output)
    _remove([p for p in partials if p != produced])
    logger.info("gpt finished %s in %.1f s", output, elapsed)
    return output


def _pump(stream, tail: deque[str], logger: logging.Logger, level: int) -> None:  # type: ignore[no-untyped-def]
    """Read a pipe in chunks and log each line; gpt prints progress as '....10%....20%'
    without newlines, so a percentage also ends a log line."""
    buf = ""
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk.decode("utf-8", errors="replace")
        while True:
            nl = buf.find("\n")
            m = _PROGRESS_RE.search(buf)
            cut = -1
            if nl >= 0 and (m is None or nl < m.end()):
                cut, line = nl + 1, buf[:nl]
            elif m is not None:
                cut, line = m.end(), buf[: m.end()]
            if cut < 0:
                break
            buf = buf[cut:]
            line = line.strip().strip(".").strip()
            if line:
                tail.append(line)
                logger.log(level, "gpt: %s", line)
    if buf.strip():
        tail.append(buf.strip())
        logger.log(level, "gpt: %s", buf.strip())
    stream.close()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def set_vmoptions_memory(gpt: str | os.PathLike[str], memory: str) -> Path:
    """Set the JVM heap (``-Xmx<memory>``) in the ``gpt.vmoptions`` file beside ``gpt``
    (SNAP's installer writes one; created if missing), replacing any -Xmx line; atomic.
    This changes the installation for every later run; prefer ``GptOptions.memory`` per run."""
    if not re.fullmatch(r"\d+[KkMmGg]?", memory):
        raise BigEarthNetS1Error(f"JVM memory {memory!r}: expected a size like 6G")
    exe = Path(gpt)
    vm = exe.with_name(exe.name + ".vmoptions")
    lines = vm.read_text(encoding="utf-8").splitlines() if vm.exists() else []
    lines = [ln for ln in lines if not ln.strip().startswith("-Xmx")]
    lines.append(f"-Xmx{memory}")
    return atomic_write_text(vm, "\n".join(lines) + "\n")
