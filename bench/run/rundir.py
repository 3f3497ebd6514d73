"""The runner's I/O edge: run-directory files (runner.log, facts.jsonl, scenarios/) and signals."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backends.base import Backend
from bench.run.plan import PlannedItem
from bench.scenario.loader import LoadedScenario
from bench.scenario.model import Scenario
from bench.storage import writing
from bench.values import Availability

# -- run-directory files ------------------------------------------------------------------------


def append_log(run_dir: Path, text: str) -> None:
    """Append a line to ``runner.log`` (tracebacks go here, not to the user)."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    path = run_dir / "runner.log"
    with writing(path), path.open("a", encoding="utf-8") as fh:
        fh.write(f"{stamp} {text.rstrip()}\n")


def record_facts(
    run_dir: Path,
    item: PlannedItem,
    facts: Mapping[str, str],
    observed: dict[str, dict[str, dict[str, Any]]],
    warnings: list[str],
) -> None:
    """Append ``facts`` to ``facts.jsonl``; merge them into ``observed`` and ``warnings``."""
    if not facts:
        return
    record = {
        "backend": item.backend,
        "variant": item.variant.label,
        "scenario": item.scenario.name,
        "repetition": item.index,
        "warmup": item.warmup,
        "facts": dict(facts),
    }
    path = run_dir / "facts.jsonl"
    with writing(path), path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    seen = observed.setdefault(item.backend, {}).setdefault(item.variant.label, {})
    for key, value in facts.items():
        if key == "warning":
            text = f"{item.backend}/{item.variant.label}: {value}"
            if text not in warnings:
                warnings.append(text)
        previous = seen.get(key)
        if previous is None or previous == value:
            seen[key] = value
        else:  # the fact changed between repetitions: keep every distinct value
            values = previous if isinstance(previous, list) else [previous]
            seen[key] = values if value in values else [*values, value]


def copy_scenarios(
    loaded: Sequence[LoadedScenario], items: Sequence[PlannedItem], run_dir: Path
) -> dict[str, Any]:
    """Copy scenario files into ``run_dir/scenarios``; their environment.json block."""
    planned = {item.scenario.name: item.scenario for item in items}
    target = run_dir / "scenarios"
    with writing(target, "create"):
        target.mkdir(parents=True, exist_ok=True)
    block: dict[str, Any] = {}
    for number, entry in enumerate(loaded):
        copy = target / entry.path.name
        if copy.exists():  # the same file name from two directories
            copy = target / f"{number}-{entry.path.name}"
        with writing(copy):
            copy.write_text(entry.text, encoding="utf-8")
        scenario = planned.get(entry.scenario.name, entry.scenario)  # with --repeat applied
        block[scenario.name] = scenario_environment(scenario, copy.relative_to(run_dir), entry.path)
    return block


# -- signals ------------------------------------------------------------------------------------


class WatchdogExpired(BaseException):
    """A backend ignored the repetition timeout; the runner interrupted it.

    A BaseException so that a backend's ``except Exception`` cannot swallow it.
    """


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Raise :class:`WatchdogExpired` in this (main) thread after ``seconds`` (SIGALRM)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; backends must honour timeouts there
        return

    def expire(signum: int, frame: object) -> None:
        raise WatchdogExpired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """Ignore further Ctrl-C and SIGTERM while the run is being finished (kill -9 still works)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- run description blocks ------------------------------------------------------------------


def scenario_environment(scenario: Scenario, copy: Path, source: Path) -> dict[str, Any]:
    """One entry of environment.json["scenarios"]."""
    return {
        "hash": scenario.hash,
        "file": str(copy),
        "source": str(source),
        "workload": scenario.workload.kind,
        "definition": scenario.model_dump(mode="json"),
    }


def backend_environment(
    backends: Mapping[str, Backend], availability: Mapping[str, Availability]
) -> dict[str, Any]:
    """environment.json["backends"]: availability plus each backend's own description."""
    block: dict[str, Any] = {}
    for name, avail in availability.items():
        entry: dict[str, Any] = {"available": avail.ok, "reason": avail.reason, "hint": avail.hint}
        backend = backends.get(name)
        if backend is not None:
            try:
                entry.update(backend.environment())
            except Exception as exc:  # a description must never cost the results
                entry["environment_error"] = str(exc) or type(exc).__name__
            try:
                entry["notes"] = list(backend.notes())
            except Exception as exc:  # the same rule as above
                entry["notes"] = [f"notes unavailable: {exc}"]
        block[name] = entry
    return block
