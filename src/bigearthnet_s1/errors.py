"""The library's exception hierarchy.

Every error raised on bad input names the input at fault (file, tile, product, node)
in its message, so that a failed Airflow task log says what to fix.
"""

from __future__ import annotations


class BigEarthNetS1Error(Exception):
    """Base class of every error the library raises on purpose."""


class InputError(BigEarthNetS1Error, ValueError):
    """Malformed or inconsistent input data (names, JSON, rasters, parameters)."""


class TileError(InputError):
    """A BigEarthNet-S2 tile or patch that cannot be read or is inconsistent."""


class ArchiveError(BigEarthNetS1Error):
    """An archive patch that cannot be written or does not match the format."""


class CatalogError(BigEarthNetS1Error):
    """A catalogue (hub) search that failed or returned unusable data."""


class AuthenticationError(CatalogError):
    """The hub refused the credentials (HTTP 401/403)."""


class SelectionError(BigEarthNetS1Error):
    """No usable Sentinel-1 selection for a tile."""


class DownloadError(BigEarthNetS1Error):
    """A product download that failed after its retries."""


class ChecksumError(DownloadError):
    """A downloaded file whose checksum or zip integrity test failed."""


class ProductOfflineError(DownloadError):
    """A product still in the hub's long-term archive after the wait limit."""


class SafeError(InputError):
    """A Sentinel-1 SAFE product (folder or zip) that is missing a file or malformed."""


class GeometryError(BigEarthNetS1Error):
    """Geocoding failed: target grid outside the scene, orbit not spanning the scene, ..."""


class DemError(InputError):
    """A DEM that does not cover the area, has the wrong CRS, or cannot be read."""


class GraphError(InputError):
    """A SNAP graph that is invalid or uses an operator/parameter the engine lacks."""


class EngineUnavailableError(BigEarthNetS1Error):
    """A processing engine that is not installed here (e.g. SNAP's gpt)."""
