"""Airflow glue for bigearthnet-s1: a catalogue hook, a retrieval trigger, a download operator.

Thin wrappers only: the work is done by the ``bigearthnet_s1`` library, imported inside
``execute``/``run`` so that parsing a DAG never loads numpy, rasterio or geopandas.

Importing this package installs the library's redactor on the process's logging (every
process that loads the DAG: task runners, triggerer), on top of Airflow's own secrets masker:
URL user info, ``Authorization`` headers, bearer tokens, ``password=``/``token=`` pairs and the
Connection's credentials never reach a task log in any form (see ``bigearthnet_s1.redact``).
"""

from bigearthnet_s1 import redact as _redact  # light: re, base64, logging only


def _to_airflow_masker(form: str) -> None:
    """Hand a secret's form to Airflow's secrets masker, which renders the task logs that do
    not pass through stdlib logging (the task runner's own structlog events)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - another Airflow layout: the stdlib redaction still applies
        return
    mask_secret(form)


_redact.install()
_redact.add_listener(_to_airflow_masker)
