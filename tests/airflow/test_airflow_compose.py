"""docker-compose.yaml: the official Airflow 3 Celery layout, the project's image, data volumes,
pools and the catalogue Connection created by init. (No Docker engine here: structure only.)"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_services_follow_the_official_celery_layout() -> None:
    services = _compose()["services"]
    for name in ("postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer", "airflow-worker", "airflow-init"):
        assert name in services, name
    commands = {n: s.get("command") for n, s in services.items()}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-worker"] == "celery worker"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker"):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_common_settings_image_env_and_volumes() -> None:
    worker = _compose()["services"]["airflow-worker"]
    assert worker["build"] == "."  # the project's image, from the repository's Dockerfile
    env = worker["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["BIGEARTHNET_S1_CATALOG_CONN_ID"] == "bigearthnet_s1_catalog"
    targets = {v.split("}", 1)[-1].split(":")[1] for v in worker["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/data/work",
            "/opt/airflow/data/archive", "/opt/airflow/data/s2"} <= targets
    assert any(v.endswith("/opt/airflow/data/s2:ro") for v in worker["volumes"])


def test_no_service_overrides_the_config_files_keys_with_empty_values() -> None:
    """An empty AIRFLOW__CORE__FERNET_KEY (or JWT secret) in the environment beats the random key
    that init writes into the shared config file: Connection passwords would be stored in clear."""
    for name, service in _compose()["services"].items():
        env = service.get("environment") or {}
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            if key in env:
                value = str(env[key])
                assert value and not value.endswith(":-}"), f"{name}: {key} may be empty ({value!r})"


def test_init_creates_pools_and_connection_without_interpolating_secrets() -> None:
    init = _compose()["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert "airflow pools set bigearthnet_s1_download" in script
    assert "airflow pools set bigearthnet_s1_cpu" in script
    assert "airflow connections add bigearthnet_s1_catalog" in script
    # $$ keeps compose from pasting the password into the container's command line
    assert '"$${BIGEARTHNET_S1_HUB_PASSWORD}"' in script
    assert "${BIGEARTHNET_S1_HUB_PASSWORD}" not in script.replace("$${", "")
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_dag_and_compose_agree_on_pool_names() -> None:
    dag_src = (REPO / "dags" / "bigearthnet_s1_dag.py").read_text()
    script = "\n".join(_compose()["services"]["airflow-init"]["command"])
    for pool in ("bigearthnet_s1_download", "bigearthnet_s1_cpu"):
        assert f'"{pool}"' in dag_src and pool in script


def test_compose_carries_what_separate_components_need() -> None:
    """The settings the distributed test runs with: execution API URL, a heartbeat timeout, one
    config file (shared JWT secret) for every container, the FAB auth manager, Generic Connection."""
    compose = _compose()
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "${BIGEARTHNET_S1_HEARTBEAT_TIMEOUT:-120}"
    assert env["AIRFLOW_CONFIG"] == "/opt/airflow/config/airflow.cfg"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert "AIRFLOW__API_AUTH__JWT_SECRET" not in env  # an empty value would override the shared file's key
    for name, service in compose["services"].items():
        if name.startswith("airflow-"):
            assert service["environment"]["AIRFLOW_CONFIG"] == env["AIRFLOW_CONFIG"], name
            assert "/opt/airflow/config" in {v.split("}", 1)[-1].split(":")[1] for v in service["volumes"]}, name
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "airflow config list" in script and "--conn-type generic" in script


SHARED = r'''
import json
from airflow.configuration import conf
print(json.dumps({"jwt": conf.get("api_auth", "jwt_secret"), "secret": conf.get("api", "secret_key"),
                  "fernet": conf.get("core", "fernet_key")}))
'''


def test_init_writes_one_config_with_the_keys_every_container_reads(af, tmp_path: Path) -> None:
    """Compose's init runs ``airflow config list`` once with AIRFLOW_CONFIG on the shared volume;
    every other container then reads the same keys from it (run here without Docker)."""
    import subprocess

    home = tmp_path / "opt-airflow"  # /opt/airflow, with config/ on the shared volume
    (home / "config").mkdir(parents=True)
    cfg = home / "config" / "airflow.cfg"
    env = dict(af.env(home), AIRFLOW_CONFIG=str(cfg))
    proc = subprocess.run([str(Path(af.python).with_name("airflow")), "config", "list"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert cfg.is_file()
    seen = [af.last_json(af.run_py(SHARED, env)) for _ in range(2)]  # two "containers"
    assert seen[0] == seen[1]
    assert all(len(v) >= 16 for v in seen[0].values()), seen[0]
    assert f"jwt_secret = {seen[0]['jwt']}" in cfg.read_text()


def _connection_script() -> str:
    """The init command's Connection part as bash runs it ($$ unescaped; /entrypoint stubbed)."""
    script = _compose()["services"]["airflow-init"]["command"][1]
    start = script.index("asf_url=")
    end = script.index("  done\nfi\n", start) + len("  done\nfi\n")
    body = script[start:end].replace("$$", "$").replace("/entrypoint ", "stub ")
    stub = 'stub() { [[ "$3" == add ]] || return 0; printf "CALL"; printf " [%s]" "$@"; echo; }\n'
    return stub + body


def _run_connections(**env: str) -> list[list[str]]:
    import re
    import subprocess

    proc = subprocess.run(["bash", "-c", _connection_script()], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [re.findall(r"\[([^\]]*)\]", line) for line in proc.stdout.splitlines() if line.startswith("CALL")]


def test_init_creates_the_asf_connection_from_the_token() -> None:
    init = _compose()["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert '"$${BIGEARTHNET_S1_ASF_TOKEN}"' in script  # read by the shell, not pasted in by compose
    assert "${BIGEARTHNET_S1_ASF_TOKEN}" not in script.replace("$${", "")
    assert init["environment"]["BIGEARTHNET_S1_ASF_TOKEN"] == "${BIGEARTHNET_S1_ASF_TOKEN:-}"
    asf = "https://api.daac.asf.alaska.edu/services/search/param"
    # no token, no account: no Connection
    assert _run_connections(BIGEARTHNET_S1_CATALOG="cdse") == []
    # token with the default catalogue (cdse): only bigearthnet_s1_asf, the token as password
    (call,) = _run_connections(BIGEARTHNET_S1_CATALOG="cdse", BIGEARTHNET_S1_ASF_TOKEN="eyJtok")
    assert call[:4] == ["airflow", "connections", "add", "bigearthnet_s1_asf"]
    assert call[call.index("--conn-host") + 1] == asf and call[call.index("--conn-password") + 1] == "eyJtok"
    assert call[call.index("--conn-extra") + 1] == '{"kind": "asf"}'
    # catalogue asf: the token also makes the DAG's default catalogue Connection
    calls = _run_connections(BIGEARTHNET_S1_CATALOG="asf", BIGEARTHNET_S1_ASF_TOKEN="eyJtok")
    assert [c[3] for c in calls] == ["bigearthnet_s1_asf", "bigearthnet_s1_catalog"]
    # catalogue asf with an Earthdata account: login/password on ASF's Search API
    (call,) = _run_connections(BIGEARTHNET_S1_CATALOG="asf", BIGEARTHNET_S1_HUB_USER="alice",
                               BIGEARTHNET_S1_HUB_PASSWORD="pw")
    assert call[3] == "bigearthnet_s1_catalog" and call[call.index("--conn-host") + 1] == asf
    assert call[call.index("--conn-extra") + 1] == '{"kind": "asf"}'
    # CDSE account: the OData root (the catalogue appends /Products to it)
    (call,) = _run_connections(BIGEARTHNET_S1_CATALOG="cdse", BIGEARTHNET_S1_HUB_USER="bob", BIGEARTHNET_S1_HUB_PASSWORD="pw")
    assert call[call.index("--conn-host") + 1] == "https://catalogue.dataspace.copernicus.eu/odata/v1"
