"""The pinned packages work together: the executor and the auth manager of docker-compose.yaml
load and instantiate, ``pip check`` is clean, and the environment is the pinned one.

(celery 5.7.0 broke the CeleryExecutor of apache-airflow-providers-celery 3.26.0 at import:
``cannot import name 'retry' from 'celery.backends.database'``; nothing imported it then.)
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import yaml

LOAD = r'''
import json
from airflow.executors.executor_loader import ExecutorLoader
from airflow.api_fastapi.app import create_auth_manager
from airflow.providers.celery.executors import celery_executor_utils
executor = ExecutorLoader.get_default_executor()
auth = create_auth_manager()
print(json.dumps({"executor": f"{type(executor).__module__}.{type(executor).__qualname__}",
                  "auth_manager": f"{type(auth).__module__}.{type(auth).__qualname__}",
                  "broker": celery_executor_utils.app.conf.broker_url,
                  "backend": str(celery_executor_utils.app.conf.result_backend),
                  "login_url": auth.get_url_login()}))
'''


def test_compose_executor_and_auth_manager_load(af, airflow_home: Path) -> None:
    compose = yaml.safe_load((af.repo / "docker-compose.yaml").read_text())
    cenv = compose["x-airflow-common"]["environment"]
    executor, auth = cenv["AIRFLOW__CORE__EXECUTOR"], cenv["AIRFLOW__CORE__AUTH_MANAGER"]
    env = af.env(airflow_home, "sqlite:///" + str(airflow_home / "airflow.db"),
                 AIRFLOW__CORE__EXECUTOR=executor, AIRFLOW__CORE__AUTH_MANAGER=auth,
                 AIRFLOW__CELERY__BROKER_URL="redis://127.0.0.1:6379/0",
                 AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql://airflow@127.0.0.1/airflow")
    proc = af.run_py(LOAD, env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = af.last_json(proc)
    assert executor == "CeleryExecutor"
    assert out["executor"] == "airflow.providers.celery.executors.celery_executor.CeleryExecutor"
    assert out["auth_manager"] == auth == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert out["broker"] == "redis://127.0.0.1:6379/0"
    assert out["backend"].startswith("db+postgresql://")
    assert out["login_url"].endswith("/auth/login/")


def test_pip_check_is_clean(af) -> None:
    proc = subprocess.run([af.python, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No broken requirements found" in proc.stdout


def test_installed_packages_are_the_pinned_ones(af) -> None:
    """The tests run on requirements.txt's set (what the Dockerfile installs), not on a drifted venv."""
    pins = {}
    for line in (af.repo / "requirements.txt").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1)] = m.group(2)
    assert pins["celery"] == "5.6.3" and "apache-airflow-providers-fab" in pins
    wrong = {}
    for name, version in pins.items():
        try:
            got = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            got = None
        if got != version:
            wrong[name] = (version, got)
    assert wrong == {}, json.dumps(wrong)
