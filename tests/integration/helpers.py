"""Setup shared by the backends' integration tests: scenarios, one repetition, a real Ctrl-C.

Fixtures (a backend that is available or skipped, the dockerd client and image) live in
``tests/integration/conftest.py``; these are the plain functions the tests call.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench.backends.base import Backend, Repetition
from bench.scenario.model import Scenario, parse_scenario
from bench.values import Outcome, Variant
from tests.engines import skip_or_fail

B = TypeVar("B", bound=Backend)


def scenario(
    workload: dict[str, Any], timeout: float = 60, *, name: str = "", **fields: Any
) -> Scenario:
    """A one-workload scenario (named ``it-<kind>`` unless ``name``); ``fields``: top-level keys."""
    data: dict[str, Any] = {
        "format_version": 1,
        "name": name or f"it-{workload['kind']}",
        "workload": workload,
        "timeout": timeout,
        **fields,
    }
    return parse_scenario(data)


def docker_scenario(workload: dict[str, Any], timeout: float = 60, **docker: Any) -> Scenario:
    """A one-workload scenario whose keyword arguments are its ``docker:`` options."""
    return scenario(workload, timeout, **({"docker": docker} if docker else {}))


def run_once(backend: Backend, sc: Scenario, variant: Variant, tmp_path: Path) -> Outcome:
    """Prepare ``variant`` and run its repetition 0, as the runner does."""
    backend.prepare(sc, variant)
    return backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))


def prepared_variant(backend: Backend, sc: Scenario) -> Variant:
    """The scenario's one variant on ``backend``, prepared (as the runner does before a run)."""
    (variant,) = backend.variants(sc)
    backend.prepare(sc, variant)
    return variant


def values(outcome: Outcome) -> dict[str, float]:
    """metric -> value of an outcome."""
    return {m.metric: m.value for m in outcome.measurements}


def available(backend: B) -> Iterator[B]:
    """Yield ``backend`` if it can run here (else skip, or fail under CI); tear it down after."""
    state = backend.availability()
    if not state.ok:
        skip_or_fail(f"{state.reason} ({state.hint})")
    try:
        yield backend
    finally:
        backend.teardown()


def interrupt_with_sigint(
    run: Callable[[], object], after: float, cleanup: Callable[[], None]
) -> None:
    """A real SIGINT (as Ctrl-C sends) ``after`` s into ``run()``: it must raise
    KeyboardInterrupt; then ``cleanup()``, as the runner does in its ``finally``."""

    def run_then_wait() -> None:
        run()
        time.sleep(5)  # only reached if run() returned early: still let the timer fire

    timer = threading.Timer(after, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_then_wait()
    finally:
        timer.cancel()
        cleanup()


def kept_vm(backend: Any) -> Any:
    """The VM a Vagrant backend keeps across syscall/disk/command/network (None: none kept)."""
    kept = backend._kept
    return kept.vm if kept is not None else None
