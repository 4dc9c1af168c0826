"""Every library error survives pickling with its message and fields: Celery results, Airflow's
task runner and multiprocessing pools send exceptions between processes by pickle."""

from __future__ import annotations

import inspect
import pickle

import pytest

from bigearthnet_s1 import errors

CLASSES = sorted(
    (c for _, c in inspect.getmembers(errors, inspect.isclass)
     if issubclass(c, errors.BigEarthNetS1Error) and c.__module__ == errors.__name__),
    key=lambda c: c.__name__,
)


def _make(cls: type[errors.BigEarthNetS1Error]) -> errors.BigEarthNetS1Error:
    if issubclass(cls, errors.HttpStatusError):
        return cls("product S1B_X: HTTP 404 at https://hub.example/odata/x", 404,
                   "https://user:pw@hub.example/odata/x?token=abc")
    if issubclass(cls, errors.GptError):
        return cls("gpt failed on node Calibration", returncode=3, node="Calibration", stderr_tail="SEVERE: no band")
    return cls(f"{cls.__name__}: tile 33UUP has no patches")


def test_the_hierarchy_is_found() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"HttpStatusError", "GptError", "GptTimeoutError", "TileError", "ChecksumError"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip_keeps_type_message_and_fields(cls: type[errors.BigEarthNetS1Error]) -> None:
    e = _make(cls)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls
    assert str(back) == str(e)
    assert back.__dict__ == e.__dict__


def test_http_status_fields_stay_redacted_after_the_round_trip() -> None:
    e = errors.HttpStatusError("HTTP 410", 410, "https://anna:s3cret-pass@hub.example/p?token=tok-123456")
    back = pickle.loads(pickle.dumps(e))
    assert (back.status, back.args) == (410, ("HTTP 410",))
    assert "s3cret-pass" not in back.url and "tok-123456" not in back.url
    assert back.url == e.url and back.url.startswith("https://") and "hub.example/p" in back.url


def test_gpt_error_keeps_keyword_fields() -> None:
    e = errors.GptTimeoutError("gpt killed after 3600 s", returncode=-9, node="Terrain-Correction", stderr_tail="last line")
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, errors.GptError)
    assert (back.returncode, back.node, back.stderr_tail) == (-9, "Terrain-Correction", "last line")

