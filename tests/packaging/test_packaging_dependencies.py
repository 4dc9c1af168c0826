"""pyproject's dependency lists say what the code imports.

* every third-party module ``src/bigearthnet_s1`` imports belongs to a runtime dependency
  (an import guarded by ``except ImportError`` / a ``find_spec`` lookup may come from an
  extra instead), and every runtime dependency is imported (no passengers);
* ``dags/`` and ``plugins/`` import only runtime + ``airflow`` extra packages, ``tests/`` and
  ``bench/`` only runtime + ``airflow`` + ``test`` extra packages;
* requirements.txt pins the runtime and Airflow set, requirements-test.txt the rest, and
  requirements.txt holds no package that only the tests need.

Modules are mapped to distributions with ``importlib.metadata`` (the test venv has them all);
a declared package that ships no module of its own (``apache-airflow``) stands for the
packages it requires.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"bigearthnet_s1", "bigearthnet_s1_airflow", "conftest"}
#: calls that load a package by name: (function name, whether the code copes with its absence)
NAME_LOOKUPS = {"find_spec": True, "import_module": False, "files": False}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Use:
    module: str  # top-level module name
    where: str  # file:line
    optional: bool  # guarded by except ImportError, or looked up with find_spec


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError", "Exception") for n in names)


def module_uses(source: str, where: str) -> list[Use]:
    """Top-level modules that ``source`` imports or looks up by name (absolute imports only;
    ``if TYPE_CHECKING:`` blocks are not imports at run time)."""
    tree = ast.parse(source)
    uses: list[Use] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Try):
            inner = guarded or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, inner)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        if isinstance(node, ast.Import):
            uses.extend(Use(a.name.split(".")[0], f"{where}:{node.lineno}", guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            uses.append(Use(node.module.split(".")[0], f"{where}:{node.lineno}", guarded))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            arg = node.args[0].value
            if name in NAME_LOOKUPS and isinstance(arg, str) and re.fullmatch(r"[A-Za-z_][\w.]*", arg):
                uses.append(Use(arg.split(".")[0], f"{where}:{node.lineno}", guarded or NAME_LOOKUPS[name]))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return uses


def third_party_uses(*folders: str) -> list[Use]:
    out = []
    for folder in folders:
        for f in sorted((ROOT / folder).rglob("*.py")):
            rel = f.relative_to(ROOT).as_posix()
            out += [u for u in module_uses(f.read_text(), rel)
                    if u.module not in sys.stdlib_module_names and u.module not in FIRST_PARTY and u.module != "__future__"]
    return out


@cache
def project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def declared(*groups: str) -> set[str]:
    """Canonical names of the runtime dependencies (group "runtime") and of the named extras."""
    out: set[str] = set()
    for g in groups:
        reqs = project()["dependencies"] if g == "runtime" else project()["optional-dependencies"][g]
        out |= {canonical(Requirement(r).name) for r in reqs}
    return out


@cache
def providers() -> dict[str, set[str]]:
    """top-level module -> canonical names of the installed distributions that ship it."""
    return {m: {canonical(d) for d in dists} for m, dists in md.packages_distributions().items()}


def dists_of(module: str) -> set[str]:
    return providers().get(module) or {canonical(module)}


@cache
def requires_of(dist: str) -> frozenset[str]:
    try:
        return frozenset(canonical(Requirement(r).name) for r in md.distribution(dist).requires or [])
    except md.PackageNotFoundError:
        return frozenset()


def covering(names: set[str]) -> set[str]:
    """``names`` plus what the meta-packages among them (no module of their own) require."""
    shipping = set().union(*providers().values())
    out = set(names)
    for n in names:
        if n not in shipping:
            out |= requires_of(n)
    return out


def undeclared(uses: list[Use], required: set[str], optional: set[str] = frozenset()) -> list[str]:
    req, opt = covering(required), covering(required | optional)
    bad = []
    for u in uses:
        if not dists_of(u.module) & (opt if u.optional else req):
            bad.append(f"{u.where}: imports {u.module!r} (distribution {'/'.join(sorted(dists_of(u.module)))}) "
                       f"which {'no dependency group' if u.optional else 'the runtime dependencies do not'} declare")
    return bad


def test_src_imports_are_runtime_dependencies() -> None:
    uses = third_party_uses("src/bigearthnet_s1")
    assert len({u.module for u in uses}) >= 15  # the scan sees the library's imports
    extras = set().union(*(declared(g) for g in project()["optional-dependencies"]))
    assert undeclared(uses, declared("runtime"), extras) == []


def test_every_runtime_dependency_is_imported_by_src() -> None:
    used = set().union(*(dists_of(u.module) for u in third_party_uses("src/bigearthnet_s1")))
    assert sorted(declared("runtime") - used) == []  # e.g. xarray-sentinel: only tests use it
    assert "xarray-sentinel" not in declared("runtime") and "sarsen" not in declared("runtime")


def test_dag_and_plugin_imports_are_declared() -> None:
    uses = third_party_uses("dags", "plugins")
    assert any(u.module == "airflow" for u in uses)
    assert undeclared(uses, declared("runtime", "airflow")) == []


def test_test_and_bench_imports_are_declared() -> None:
    uses = third_party_uses("tests", "bench")
    assert {"pytest", "sarsen", "xarray_sentinel"} <= {u.module for u in uses}
    assert undeclared(uses, declared("runtime", "airflow", "test")) == []


def _pins(path: Path) -> set[str]:
    return {canonical(line.split("==")[0]) for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")}


def _closure(names: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += requires_of(n)
    return seen


def test_requirement_files_pin_what_pyproject_declares() -> None:
    runtime_pins, test_pins = _pins(ROOT / "requirements.txt"), _pins(ROOT / "requirements-test.txt")
    assert sorted(declared("runtime", "airflow") - runtime_pins) == []
    assert sorted(declared("test") - runtime_pins - test_pins - {"setuptools"} - (declared("test") & test_pins)) == []
    # requirements.txt holds only what the library, the DAG and Airflow need (installed closure)
    needed = _closure(declared("runtime", "airflow"))
    assert sorted(runtime_pins - needed) == []
    assert {"sarsen", "xarray-sentinel", "pytest"} & runtime_pins == set()


def test_the_check_catches_an_undeclared_import() -> None:
    """The scanner on code that would break an installed wheel: flagged, with file and line."""
    code = (
        "import numpy as np\n"
        "import xarray_sentinel\n"
        "try:\n    import blake3\nexcept ImportError:\n    blake3 = None\n"
        "def f():\n    import importlib.util\n    return importlib.util.find_spec('xmlschema')\n"
        "from importlib import resources\nresources.files('sarsen')\n"
    )
    uses = [u for u in module_uses(code, "x.py") if u.module not in sys.stdlib_module_names]
    assert [(u.module, u.optional) for u in uses] == [
        ("numpy", False), ("xarray_sentinel", False), ("blake3", True), ("xmlschema", True), ("sarsen", False)]
    bad = undeclared(uses, declared("runtime"), declared("blake3"))
    assert len(bad) == 3
    assert bad[0].startswith("x.py:2: imports 'xarray_sentinel' (distribution xarray-sentinel)")
    assert "x.py:9: imports 'xmlschema'" in bad[1] and "x.py:11: imports 'sarsen'" in bad[2]


@pytest.mark.parametrize("module, dist", [("PIL", "pillow"), ("yaml", "pyyaml"), ("airflow", "apache-airflow-core")])
def test_module_to_distribution_mapping(module: str, dist: str) -> None:
    assert dist in dists_of(module)
