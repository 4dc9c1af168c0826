"""The work folder of a run: where each step leaves its output for the next.

    <work>/tiles/<tile.key>.json            the tile acquisition (grid, patches)
    <work>/selection/<tile.key>.candidates.json, <tile.key>.json   search and selection
    <work>/records/<product>.json           product records chosen for some tile
    <work>/products/                        the product store (downloads, verified, atomic)
    <work>/processed/<tile.key>/<product>.tif   preprocessed scene on the tile grid (dB)
    <work>/results/<tile.key>.json          what assemble_tile wrote for the tile
    <work>/quicklooks/<tile.key>.png        the tile's quicklook
    <work>/summaries/<run id>.json          a run's summary
    <archive>/                              the BigEarthNet-S1 archive (default <work>/archive)

Small JSON files are written atomically (:func:`write_json`), so a file that exists is
complete; :func:`read_json` names the missing step's output when it is not there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bigearthnet_s1.errors import PipelineError

__all__ = ["WorkDir", "write_json", "read_json"]


class WorkDir:
    """Paths of the work folder and of the output archive (created lazily by the steps)."""

    def __init__(self, root: str | os.PathLike[str], archive: str | os.PathLike[str] | None = None):
        self.root = Path(root).expanduser().absolute()
        self.archive = Path(archive).expanduser().absolute() if archive else self.root / "archive"

    def __repr__(self) -> str:
        return f"WorkDir({str(self.root)!r}, archive={str(self.archive)!r})"

    @property
    def products(self) -> Path:
        return self.root / "products"

    def tile_file(self, key: str) -> Path:
        return self.root / "tiles" / f"{key}.json"

    def candidates_file(self, key: str) -> Path:
        return self.root / "selection" / f"{key}.candidates.json"

    def selection_file(self, key: str) -> Path:
        return self.root / "selection" / f"{key}.json"

    def record_file(self, name: str) -> Path:
        return self.root / "records" / f"{name}.json"

    def processed_dir(self, key: str) -> Path:
        return self.root / "processed" / key

    def processed_file(self, key: str, product: str) -> Path:
        return self.processed_dir(key) / f"{product}.tif"

    def result_file(self, key: str) -> Path:
        return self.root / "results" / f"{key}.json"

    def quicklook_file(self, key: str) -> Path:
        return self.root / "quicklooks" / f"{key}.png"

    def summary_file(self, run_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in run_id)
        return self.root / "summaries" / f"{safe}.json"


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    from bigearthnet_s1.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", suffix=".tmp")


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{what} not found: {path} (did the earlier step run?)") from None
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{what} is not valid JSON: {path}: {exc}") from exc
