"""The trigger form can be submitted with its own defaults and with its optional fields emptied.

The UI sends an emptied field as null and treats a param whose schema type lacks "null" as
required (the Trigger button stays disabled while it is null). The server validates a run's
conf with the DAG's params (``SerializedParamsDict.deep_merge(conf).validate()``, as
``create_dagrun`` does). Here the DAG is parsed and serialized as the dag-processor stores it,
and the payloads a user sends from the form go through that same validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FORM = r'''
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(bag.dags["bigearthnet_s1"]))))
params = dag.params
defaults = params.dump()   # the form's initial values
schema = {k: params.get_param(k).schema for k in params.keys()}
out = {"defaults": defaults, "schema": schema, "results": {}}
for name, payload in json.loads(sys.argv[2]).items():
    conf = {k: v for k, v in defaults.items()}
    conf.update(payload)
    try:
        resolved = params.deep_merge(conf).validate()
        out["results"][name] = {"ok": True, "resolved": resolved}
    except Exception as exc:
        out["results"][name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
print(json.dumps(out, default=str))
'''

#: params whose description says "may be empty" / "empty: all"
OPTIONAL = ("tiles", "start", "end", "catalog_conn_id", "catalog_root", "archive_dir")


@pytest.fixture(scope="module")
def form(af, tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = af.env(home, "sqlite:///" + str(home / "airflow.db"))
    payloads = {
        "defaults": {},
        "emptied": {k: None for k in OPTIONAL},
        "typed": {"tiles": ["33UUP", "29SND_20171221T112501"], "catalog_root": "/data/products",
                  "archive_dir": "/data/archive", "catalog_conn_id": "bigearthnet_s1_catalog"},
        "required_emptied": {"s2_source": None},
        "work_emptied": {"work_dir": None},
        "tiles_not_strings": {"tiles": [33]},
    }
    import subprocess

    proc = subprocess.run([af.python, "-c", FORM, str(af.repo / "dags"), json.dumps(payloads)], env=env,
                          capture_output=True, text=True, timeout=180, cwd=af.repo)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return af.last_json(proc)


def test_defaults_and_emptied_optional_fields_validate(form: dict) -> None:
    res = form["results"]
    assert res["defaults"]["ok"], res["defaults"]
    assert res["emptied"]["ok"], res["emptied"]
    resolved = res["emptied"]["resolved"]
    assert all(resolved[k] is None for k in OPTIONAL)
    assert res["typed"]["ok"] and res["typed"]["resolved"]["tiles"] == ["33UUP", "29SND_20171221T112501"]


def test_optional_fields_are_optional_in_the_form_and_required_ones_are_not(form: dict) -> None:
    schema = form["schema"]
    for name in OPTIONAL:
        types = schema[name]["type"]
        assert isinstance(types, list) and "null" in types, (name, types)
    # the UI renders ["null", "array"] with string items as a one-per-line text field
    assert schema["tiles"]["type"] == ["null", "array"] and schema["tiles"]["items"] == {"type": "string"}
    assert form["defaults"]["tiles"] is None  # null = all tiles
    for name in ("s2_source", "work_dir", "catalog", "engine", "dem"):
        assert "null" not in schema[name]["type"], name
    # the validation can fail: a required field emptied, a wrong item type
    res = form["results"]
    assert not res["required_emptied"]["ok"] and "s2_source" in res["required_emptied"]["error"]
    assert not res["work_emptied"]["ok"] and "work_dir" in res["work_emptied"]["error"]
    assert not res["tiles_not_strings"]["ok"] and "tiles" in res["tiles_not_strings"]["error"]


def test_readme_and_compose_name_a_connection_type_the_ui_offers(af, airflow_home: Path) -> None:
    """The UI lists Airflow's own types and the installed providers' (no http provider here)."""
    code = r'''
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
print(json.dumps(sorted(h.connection_type for h in HookMetaService.hook_meta_data())))
'''
    env = af.env(airflow_home, "sqlite:///" + str(airflow_home / "airflow.db"))
    proc = af.run_py(code, env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    offered = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "generic" in offered and "http" not in offered
    readme = " ".join((af.repo / "README.md").read_text().split())
    compose = (af.repo / "docker-compose.yaml").read_text()
    hooks = (af.repo / "plugins" / "bigearthnet_s1_airflow" / "hooks.py").read_text()
    assert "--conn-type generic" in compose and "--conn-type http" not in compose
    assert 'conn_type = "generic"' in hooks
    assert "Connection of type Generic" in readme and "type `http`" not in readme
