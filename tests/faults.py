"""Transient failures injected on purpose into the pipeline's steps: a test-only hook.

The production steps know nothing of it: :func:`install` wraps the step functions of
``bigearthnet_s1.pipeline`` (the DAG's tasks call them through the module, so a wrapped
attribute is what a task runs). The Airflow tests install it in the process that runs
``dag.test()`` (``tests/airflow/conftest.py``), from the environment variable
:data:`FAIL_ONCE_ENV`; unit tests install it with ``monkeypatch``.

``FAIL_ONCE_ENV`` lists ``step`` or ``step:<key prefix>`` items, comma separated. The first
call of a listed step for a matching key raises :class:`InjectedFault` (an error the DAG's
retry policy retries) and leaves a marker in ``<work>/.faults``, so the retry, in this
process or another, passes.

Not collected by pytest (no ``test_`` prefix); loaded by path (``runpy`` / ``importlib``),
since test modules cannot import each other under ``--import-mode=importlib``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

FAIL_ONCE_ENV = "BIGEARTHNET_S1_FAIL_ONCE"

#: step name (as in FAIL_ONCE_ENV and the DAG's task ids) -> the pipeline function it wraps;
#: each takes (work, key or product name, ...).
STEPS = {
    "lookup_footprint": "lookup_footprint",
    "select_orbits": "select_for_tile",
    "download": "fetch_product",
    "preprocess": "preprocess_pair",
    "assemble_tile": "assemble_tile",
}


class InjectedFault(RuntimeError):
    """A transient failure injected on purpose (not an input error: Airflow retries it)."""


def fail_once(work: Any, step: str, key: str, spec: str) -> None:
    """Raise :class:`InjectedFault` on the first call of ``step`` for ``key`` that ``spec``
    lists (marker in ``<work>/.faults``); pass on every other call."""
    for item in (s.strip() for s in spec.split(",")):
        name, _, prefix = item.partition(":")
        if name == step and key.startswith(prefix):
            marker = work.root / ".faults" / f"{step}-{key}"
            if marker.exists():
                return
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            raise InjectedFault(f"injected failure of {step} for {key} ({FAIL_ONCE_ENV}={spec})")


def _wrap(fn: Callable[..., Any], step: str, spec: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def step_with_fault(work: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        fail_once(work, step, key, spec)
        return fn(work, key, *args, **kwargs)

    return step_with_fault


def install(spec: str, setattr_: Callable[[Any, str, Any], None] = setattr) -> list[str]:
    """Wrap the pipeline steps ``spec`` names; returns the wrapped function names.

    ``setattr_``: how to replace them (``monkeypatch.setattr`` in unit tests, so they are
    restored afterwards; plain ``setattr`` in a throwaway ``dag.test()`` process).
    """
    from bigearthnet_s1 import pipeline

    steps = {item.strip().partition(":")[0] for item in spec.split(",") if item.strip()}
    unknown = sorted(steps - set(STEPS))
    if unknown:
        raise ValueError(f"{FAIL_ONCE_ENV}: unknown step(s) {', '.join(unknown)} (known: {', '.join(STEPS)})")
    for step in sorted(steps):
        name = STEPS[step]
        setattr_(pipeline, name, _wrap(getattr(pipeline, name), step, spec))
    return [STEPS[s] for s in sorted(steps)]


def install_from_env() -> list[str]:
    """:func:`install` from :data:`FAIL_ONCE_ENV` (nothing when it is unset or empty)."""
    spec = os.environ.get(FAIL_ONCE_ENV, "")
    return install(spec) if spec else []
