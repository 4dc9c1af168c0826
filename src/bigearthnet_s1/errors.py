"""The library's exception hierarchy.

Every error raised on bad input names the input at fault (file, tile, product, node)
in its message, so that a failed Airflow task log says what to fix. The modules that raise
an error re-export it (``from bigearthnet_s1.transfer import HttpStatusError`` still works).

Every message is redacted when the error is created (``bigearthnet_s1.redact``): URL user
info, ``Authorization`` headers, bearer tokens, ``password=``/``token=`` pairs and the
registered credentials never reach a log, a traceback or an Airflow task page through them.
"""

from __future__ import annotations

from typing import Any

from bigearthnet_s1.redact import redact, redact_url


class BigEarthNetS1Error(Exception):
    """Base class of every error the library raises on purpose (message redacted)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class InputError(BigEarthNetS1Error, ValueError):
    """Malformed or inconsistent input data (names, JSON, rasters, parameters)."""


class TileError(InputError):
    """A BigEarthNet-S2 tile or patch that cannot be read or is inconsistent."""


class LabelError(InputError):
    """A label source (BigEarthNet-S2/S1 folder, reBEN metadata) that cannot be read or used."""


class ArchiveError(BigEarthNetS1Error):
    """An archive patch that cannot be written or does not match the format."""


class CatalogError(BigEarthNetS1Error):
    """A catalogue (hub) search that failed or returned unusable data."""


class AuthenticationError(CatalogError):
    """The hub refused the credentials (HTTP 401/403)."""


class SelectionError(BigEarthNetS1Error):
    """No usable Sentinel-1 selection for a tile."""


# -- downloads (transfer.py, store.py)
class DownloadError(BigEarthNetS1Error):
    """A product download that failed after its retries."""


class HttpStatusError(DownloadError):
    """The server answered with an HTTP status that is not retried (404, 410, 400, ...)."""

    def __init__(self, message: str, status: int, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = redact_url(url)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*self.args), which lacks status and url: a Celery worker or a
        # multiprocessing pool that sends this error back would fail with a TypeError instead.
        return (type(self), (self.args[0], self.status, self.url), self.__dict__)


class StoreLockTimeout(DownloadError):
    """Another process held a product's lock for longer than the store's ``lock_timeout``."""


class ChecksumError(DownloadError):
    """A downloaded file whose checksum or zip integrity test failed."""


class NotAZipError(ChecksumError):
    """The server sent something else (typically an HTML error page) instead of a zip."""


class ProductOfflineError(DownloadError):
    """A product still in the hub's long-term archive after the wait limit."""


class RetrievalPendingError(ProductOfflineError):
    """The hub answered 202 Accepted: the product is offline, its retrieval was triggered."""


# -- products and processing
class SafeError(InputError):
    """A Sentinel-1 SAFE product (folder or zip) that is missing a file or malformed."""


class UnsafeArchiveError(SafeError):
    """A product zip with a member that would escape the target folder or is a link/device."""


class RadiometryError(InputError):
    """Bad parameters for a radiometric step (unknown LUT kind, window mismatch, ...)."""


class SpeckleFilterError(InputError):
    """An unknown or unsupported speckle filter or parameter."""


class GeometryError(BigEarthNetS1Error):
    """Geocoding failed: target grid outside the scene, orbit not spanning the scene, ..."""


class DemError(InputError):
    """A DEM that does not cover the area, has the wrong CRS, or cannot be read."""


class MosaicError(InputError):
    """A preprocessed scene that does not fit the tile grid, or an impossible mosaic."""


class SimulationError(InputError):
    """Bad simulator parameters (size, pass, IPF version, area...)."""


# -- processing graphs and engines
class GraphError(InputError):
    """A SNAP graph that is invalid or uses an operator/parameter the engine lacks."""


class EngineUnavailableError(BigEarthNetS1Error):
    """A processing engine that is not installed here (e.g. SNAP's gpt)."""


class GptError(BigEarthNetS1Error):
    """SNAP's ``gpt`` ran but failed (non-zero exit, or no output written)."""

    def __init__(self, message: str, *, returncode: int | None = None, node: str | None = None,
                 stderr_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.node = node
        self.stderr_tail = redact(stderr_tail)


class GptTimeoutError(GptError):
    """``gpt`` did not finish within the timeout; it was killed."""


class ParameterError(InputError):
    """A run parameter that cannot work (unknown tile, empty window, unwritable output ...)."""


class PipelineError(BigEarthNetS1Error):
    """A pipeline step that cannot run because an earlier step's output is missing."""


class PinnedDataError(BigEarthNetS1Error):
    """Test data from a pinned release that cannot be fetched or fails its SHA-256 check."""

