"""What a scheduled run needs from a deployment: a catalogue configured at all.

Unpausing the DAG starts a scheduled run with the default params; without a catalogue folder
or hub credentials it is skipped with one log line (the DAG asks ``catalog_unconfigured``),
while a configured but broken catalogue still fails in ``prepare_run``.
"""

from __future__ import annotations

import pytest

from bigearthnet_s1 import pipeline

HUB_ENV = ("BIGEARTHNET_S1_DHUS_USER", "BIGEARTHNET_S1_CDSE_USER", "CDSE_USER", "CDSE_TOKEN",
           "BIGEARTHNET_S1_ASF_TOKEN", "EARTHDATA_TOKEN", "BIGEARTHNET_S1_ASF_USER", "EARTHDATA_USERNAME")


@pytest.fixture
def no_hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in HUB_ENV:
        monkeypatch.delenv(name, raising=False)


def test_local_catalogue_needs_a_folder(no_hub_env, tmp_path) -> None:
    why = pipeline.catalog_unconfigured("local", "", {})
    assert why and "catalog_root" in why and "BIGEARTHNET_S1_CATALOG_ROOT" in why
    assert pipeline.catalog_unconfigured("local", str(tmp_path)) is None
    assert pipeline.catalog_unconfigured("local", "", {"root": str(tmp_path)}) is None
    # a folder named but missing is configured (wrongly): prepare_run fails it, red
    assert pipeline.catalog_unconfigured("local", str(tmp_path / "missing")) is None


def test_hubs_need_credentials(no_hub_env, monkeypatch: pytest.MonkeyPatch) -> None:
    why = pipeline.catalog_unconfigured("cdse", "", {"url": "https://catalogue.example"})
    assert why and "cdse" in why and "catalog_conn_id" in why and "CDSE_USER" in why
    assert pipeline.catalog_unconfigured("cdse", "", {"user": "u", "password": "p"}) is None
    assert pipeline.catalog_unconfigured("cdse", "", {"token": "t"}) is None
    assert pipeline.catalog_unconfigured("dhus", "", {}) is not None
    assert pipeline.catalog_unconfigured("asf", "", {}) is not None
    assert pipeline.catalog_unconfigured("asf", "", {"password": "eyJ-earthdata-token"}) is None
    assert pipeline.catalog_unconfigured("cdse", "", {"password": "p"}) is not None  # a password needs its login
    monkeypatch.setenv("BIGEARTHNET_S1_DHUS_USER", "alice")
    assert pipeline.catalog_unconfigured("dhus", "", {}) is None
