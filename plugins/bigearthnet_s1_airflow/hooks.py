"""Catalogue credentials from an Airflow Connection.

Connection layout (conn type ``http`` or any): ``host`` is the hub's base URL (with scheme,
or the scheme in ``schema``), ``login``/``password`` the account, ``extra`` JSON may hold
``kind`` ("dhus" | "cdse" | "asf" | "local"), ``root`` (a folder, for ``local``) and any other
option of ``bigearthnet_s1.catalog.open_catalog``. For ``asf`` the host is ASF's Search API
(``https://api.daac.asf.alaska.edu/services/search/param``) and the password alone an
Earthdata bearer token (login + password: an Earthdata account). Credentials are never logged
(Airflow masks Connection passwords in task logs).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from bigearthnet_s1.errors import InputError  # the light exceptions module only


class CatalogConnectionError(InputError):
    """The Connection named for the catalogue does not exist or is unusable (not retried)."""


class CatalogHook(BaseHook):
    """Open a ``bigearthnet_s1`` catalogue (and a download auth) from an Airflow Connection."""

    conn_name_attr = "catalog_conn_id"
    default_conn_name = "bigearthnet_s1_catalog"
    conn_type = "http"
    hook_name = "BigEarthNet-S1 catalogue"

    def __init__(self, catalog_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.catalog_conn_id = catalog_conn_id

    def connection_options(self) -> dict[str, Any]:
        """Catalogue options (url, user, password, extra keys) read from the Connection."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.catalog_conn_id)
        except AirflowNotFoundException as exc:
            raise CatalogConnectionError(
                f"Airflow Connection {self.catalog_conn_id!r} (catalogue credentials) does not exist: "
                f"create it in the UI (Admin > Connections), with `airflow connections add "
                f"{self.catalog_conn_id} --conn-type http --conn-host https://... --conn-login USER "
                f"--conn-password ...`, or as the environment variable "
                f"AIRFLOW_CONN_{self.catalog_conn_id.upper()}"
            ) from exc
        return options_from_connection(conn.host, conn.schema, conn.port, conn.login,
                                       conn.password, conn.extra_dejson)


def options_from_connection(host: str | None, schema: str | None, port: int | None,
                            login: str | None, password: str | None,
                            extra: dict[str, Any] | None) -> dict[str, Any]:
    """Map Connection fields onto ``open_catalog`` options (``url``, ``user``, ``password``, extras)."""
    from bigearthnet_s1.redact import is_secret_key, register_secret

    options: dict[str, Any] = dict(extra or {})
    register_secret(password)
    for k, v in options.items():  # token, client_secret, ... extras
        if isinstance(v, str) and is_secret_key(str(k)):
            register_secret(v)
    if host:
        if "://" in host or host.startswith("/"):
            url = host
        else:
            url = f"{schema or 'https'}://{host}"
            if port:
                url += f":{port}"
        options.setdefault("url", url)
    if login:
        options["user"] = login
    if password:
        options["password"] = password
    return options
