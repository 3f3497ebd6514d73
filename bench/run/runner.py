"""The runner: one whole run of a plan, from its run directory to its end marker.

Nothing runs in parallel; every outcome becomes rows, including failures (``failed``),
timeouts (``timeout``) and unprepared pairs (``skipped``). :func:`execute_run` creates the run
directory, writes environment.json before the first repetition, drives the item loop
(:class:`bench.run.loop.Runner`; one repetition and its rows: :mod:`bench.run.repetition`),
checks the host's health before and after, and ends the run: complete, interrupted (Ctrl-C,
SIGTERM) or failed (a write error). The execution order comes from :func:`bench.run.plan.plan`
(re-exported here); run-directory files live in :mod:`bench.run.rundir`, stop signals in
:mod:`bench.procgroup`.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backends.base import Backend
from bench.ownership import make_scratch, scratch_leftovers, sweep
from bench.procgroup import sigterm_as_interrupt, stop_signals_held
from bench.results import SCHEMA_VERSION, Counts, RunWriter, StorageError, create_run_dir
from bench.run.loop import NullProgress, ProgressSink, Runner
from bench.run.plan import PlannedItem, Unit, interleaves, order_facts, plan
from bench.run.rundir import (
    WatchdogExpired,
    backend_environment,
    copy_scenarios,
    shielded,
    watchdog,
)
from bench.scenario.loader import LoadedScenario
from bench.sysinfo import harness_info, health_report, health_snapshot, host_info, host_warnings
from bench.values import Availability

__all__ = [
    "NullProgress",
    "PlannedItem",
    "ProgressSink",
    "RunResult",
    "Runner",
    "Unit",
    "WatchdogExpired",
    "execute_run",
    "interleaves",
    "order_facts",
    "plan",
    "sigterm_as_interrupt",
    "watchdog",
]


@dataclass(frozen=True, slots=True)
class RunResult:
    """Where a run went and how it ended (``error``: why a write failure stopped it)."""

    run_id: str
    run_dir: Path
    interrupted: bool
    samples: int
    state: str = "complete"  # complete, interrupted or failed (a write error: no end marker)
    error: str = ""
    counts: Counts = field(default_factory=Counts)
    #: (scenario, backend, variant) of every item that produced no successful sample
    empty: tuple[tuple[str, str, str], ...] = ()
    #: adaptive units that reached max_repeat before the requested precision
    capped: tuple[tuple[str, str, str], ...] = ()


def _environment(  # noqa: PLR0917 - one private call site
    run_id: str,
    loaded: Sequence[LoadedScenario],
    items: Sequence[PlannedItem],
    availability: Mapping[str, Availability],
    run_dir: Path,
    order: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The first environment.json: what this run is about to measure, and on what."""
    host = host_info()
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "started": datetime.now(UTC).isoformat(),
        "finished": None,
        "interrupted": False,
        "harness": harness_info(),
        "host": host,
        "scenarios": copy_scenarios(loaded, items, run_dir),
        "backends": {
            name: {"available": a.ok, "reason": a.reason, "hint": a.hint}
            for name, a in availability.items()
        },
        "order": dict(order) if order is not None else {},
        "observed": {},
        "health": {},
        "warnings": host_warnings(host),
    }


def execute_run(
    loaded: Sequence[LoadedScenario],
    items: Sequence[PlannedItem],
    backends: Mapping[str, Backend],
    availability: Mapping[str, Availability],
    out_dir: Path,
    *,
    progress: ProgressSink | None = None,
    watchdog_grace: float = 30.0,
    order: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run a plan into ``out_dir/<run-id>/``.

    Ctrl-C/SIGTERM end it cleanly (interrupted; the handlers are in place before the run
    directory exists). A write error (disk full, read-only...) stops it: the journal stays
    valid up to the last whole sample, the run gets no end marker, and ``error`` says why.
    Raises :class:`StorageError` when the run directory cannot even be created. ``order``:
    :func:`bench.run.plan.order_facts` of the plan (seed, block neighbours), recorded in
    environment.json.
    """
    # A stop signal during set-up waits (held, not lost) until the try below can record it.
    with sigterm_as_interrupt(), stop_signals_held() as release_signals:
        run_id, run_dir = create_run_dir(out_dir.resolve())  # absolute: backends may chdir
        try:
            writer = RunWriter(run_dir)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing of the run was written yet
            raise
        runner = Runner(
            run_id, run_dir, writer, backends, progress or NullProgress(), watchdog_grace
        )
        environment: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "run_id": run_id}
        before: dict[str, Any] = {}
        interrupted, error = False, ""
        try:
            release_signals()
            environment = _environment(run_id, loaded, items, availability, run_dir, order)
            # Scratch data (fio files, working directories) lives outside the results, owned
            # by this process: removed on every exit path, and by the next run if this one is
            # killed.
            environment["warnings"] += sweep(scratch_leftovers()).notes()
            runner.scratch = make_scratch(run_id)
            writer.write_environment(environment)  # a killed run still says what it ran on
            before = health_snapshot()
            runner.log(f"run {run_id}: {len(items)} planned repetitions")
            runner.execute(items)
        except KeyboardInterrupt:
            interrupted = True
        except StorageError as exc:
            error = str(exc)
        finally:
            with shielded():
                state, error = _finish(
                    runner, environment, before, availability, interrupted=interrupted, error=error
                )
    empty = tuple(key for key in runner.timing.units if not runner.rows.values.get(key))
    capped = tuple(
        (a["scenario"], a["backend"], a["variant"]) for a in runner.adaptive if a["capped"]
    )
    return RunResult(
        run_id, run_dir, interrupted, writer.count, state, error, runner.rows.counts, empty, capped
    )


def _finish(
    runner: Runner,
    environment: dict[str, Any],
    before: dict[str, Any],
    availability: Mapping[str, Availability],
    *,
    interrupted: bool,
    error: str,
) -> tuple[str, str]:
    """Consolidate, record the end in environment.json, then write the end marker.

    On a write error nothing claims the run finished: no end marker, the journal kept.
    """
    writer, run_dir = runner.writer, runner.run_dir
    shutil.rmtree(run_dir / "work", ignore_errors=True)
    if runner.scratch is not None:
        shutil.rmtree(runner.scratch, ignore_errors=True)
    if not error:
        health, health_warnings = health_report(before, health_snapshot()) if before else ({}, [])
        environment.update(
            finished=datetime.now(UTC).isoformat(),
            interrupted=interrupted,
            backends=backend_environment(runner.backends, availability),
            observed=runner.observed,
            health=health,
            timing=runner.timing.as_environment(),
            adaptive=runner.adaptive,
        )
        environment["warnings"] = [
            *environment.get("warnings", []),
            *health_warnings,
            *runner.warnings,
        ]
        if interrupted:
            runner.log("interrupted (Ctrl-C or SIGTERM); measured samples are kept")
            environment["warnings"].append("the run was interrupted: it is incomplete")
        try:
            writer.write_environment(environment)
            writer.close("interrupted" if interrupted else "complete")
            return ("interrupted" if interrupted else "complete"), ""
        except StorageError as exc:
            error = str(exc)
    writer.release()
    environment.update(finished=None, stopped_by=error)
    with contextlib.suppress(StorageError):  # the disk may still be full: the journal suffices
        runner.log(f"stopped: {error}")
        writer.write_environment(environment)
    return "failed", error
