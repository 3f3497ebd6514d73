"""The runner: execute a plan one repetition at a time, every outcome becoming rows.

Nothing runs in parallel; every outcome becomes rows, including failures (``failed``),
timeouts (``timeout``) and unprepared pairs (``skipped``). The execution order comes from
:func:`bench.plan.plan` (re-exported here); run-directory files and signal handling live in
:mod:`bench.run.rundir`.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bench.backends.base import Backend, Repetition
from bench.metrics import Metric, declared, lookup
from bench.ownership import make_scratch, scratch_leftovers, sweep
from bench.procgroup import sigterm_as_interrupt, stop_signals_held
from bench.results import (
    SCHEMA_VERSION,
    Counts,
    RunWriter,
    Sample,
    Status,
    StorageError,
    count_row,
    create_run_dir,
)
from bench.run.adaptive import Precision, precision
from bench.run.plan import PlannedItem, Unit, interleaves, order_facts, plan
from bench.run.rundir import (
    WatchdogExpired,
    append_log,
    backend_environment,
    copy_scenarios,
    record_facts,
    shielded,
    watchdog,
)
from bench.run.timing import TimeBook
from bench.scenario.loader import LoadedScenario
from bench.scenario.model import Scenario
from bench.storage import writing
from bench.sysinfo import (
    harness_info,
    health_report,
    health_snapshot,
    host_info,
    host_warnings,
)
from bench.values import Availability, BackendError, Outcome, RepetitionTimeout
from bench.workloads import contract

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


class ProgressSink(Protocol):
    """Where the runner reports what it does (rich bar, plain lines, or nothing)."""

    def message(self, text: str) -> None:
        """A free-form status line (prepare, teardown...)."""

    def begin(self, item: PlannedItem, position: int, total: int) -> None:
        """Item ``position`` (1-based) of ``total`` starts."""

    def end(self, item: PlannedItem, samples: Sequence[Sample]) -> None:
        """The item finished and produced ``samples``."""


class NullProgress:
    """Reports nothing."""

    def message(self, text: str) -> None:
        """Ignore."""

    def begin(self, item: PlannedItem, position: int, total: int) -> None:
        """Ignore."""

    def end(self, item: PlannedItem, samples: Sequence[Sample]) -> None:
        """Ignore."""


@dataclass
class Runner:
    """Executes a plan into a :class:`RunWriter`, strictly one repetition at a time."""

    run_id: str
    run_dir: Path
    writer: RunWriter
    backends: Mapping[str, Backend]
    progress: ProgressSink = field(default_factory=NullProgress)
    #: extra seconds after the scenario timeout before the runner interrupts a backend itself
    watchdog_grace: float = 30.0
    #: where repetitions' working directories go (default: ``run_dir/work``)
    scratch: Path | None = None
    observed: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timing: TimeBook = field(default_factory=TimeBook)
    counts: Counts = field(default_factory=Counts)
    #: ok measured values per (scenario, backend, variant) and metric (adaptive repetitions)
    values: dict[tuple[str, str, str], dict[str, list[float]]] = field(default_factory=dict)
    #: one record per adaptive unit: repetitions taken, precision reached, cap hit
    adaptive: list[dict[str, Any]] = field(default_factory=list)
    _scenario: str = ""  # the scenario running (teardown times are attributed to it)
    _position: int = 0
    _total: int = 0

    # -- logging and rows -----------------------------------------------------------------

    def log(self, text: str) -> None:
        """Append a line to ``runner.log`` (tracebacks go here, not to the user)."""
        append_log(self.run_dir, text)

    def _sample(
        self,
        item: PlannedItem,
        metric: str,
        value: float,
        *,
        unit: str | None,
        status: Status,
        reason: str,
    ) -> Sample:
        catalog = lookup(metric)
        sample = Sample(
            run_id=self.run_id,
            scenario=item.scenario.name,
            scenario_hash=item.scenario.hash,
            backend=item.backend,
            variant=item.variant.label,
            metric=metric,
            unit=unit or (catalog.unit if catalog else ""),
            repetition=item.index,
            warmup=item.warmup,
            value=value,
            status=status,
            reason=reason,
        )
        self.writer.write(sample)
        self.counts += count_row(status, item.warmup, value)
        if status == "ok" and not item.warmup:
            key = (item.scenario.name, item.backend, item.variant.label)
            self.values.setdefault(key, {}).setdefault(metric, []).append(value)
        return sample

    def _bad_rows(
        self, item: PlannedItem, status: Status, reason: str, metrics: Sequence[str] | None = None
    ) -> list[Sample]:
        names = metrics if metrics is not None else contract(item.scenario.workload)
        return [
            self._sample(item, m, math.nan, unit=None, status=status, reason=reason) for m in names
        ]

    def _good_rows(self, item: PlannedItem, outcome: Outcome) -> list[Sample]:
        rows: list[Sample] = []
        for m in outcome.measurements:
            entry = catalog_entry(item.scenario, m.metric)
            ok = math.isfinite(m.value) and entry is not None
            status: Status = "ok" if ok else "failed"
            reason = ""
            if entry is None:
                reason = (
                    f"metric {m.metric!r} is not in the catalog (bench/metrics.py) and the "
                    "scenario does not declare its unit and direction (workload.metrics)"
                )
            elif not ok:
                reason = f"backend reported a non-finite value ({m.value})"
            value = float(m.value) if ok else math.nan
            unit = m.unit or (entry.unit if entry else None)
            rows.append(
                self._sample(item, m.metric, value, unit=unit, status=status, reason=reason)
            )
        seen = {m.metric for m in outcome.measurements}
        expected = contract(item.scenario.workload)
        if item.scenario.workload.kind == "command" and seen:
            expected = ()  # a command's metrics depend on its parser; any one will do
        missing = [m for m in expected if m not in seen]
        rows += self._bad_rows(item, "failed", "backend did not report this metric", missing)
        return rows

    # -- execution --------------------------------------------------------------------------

    def execute(self, items: Sequence[PlannedItem]) -> None:
        """Run every item (grouped by scenario, in plan order); KeyboardInterrupt propagates."""
        self._total, self._position = len(items), 0
        groups: dict[str, list[PlannedItem]] = {}
        for item in items:
            groups.setdefault(item.scenario.name, []).append(item)
        for group in groups.values():
            self._run_scenario(group)

    def _run_scenario(self, items: list[PlannedItem]) -> None:
        """Run one scenario's items in plan order.

        Interleaved pairs are prepared up front; a non-interleaved block (a VM) is prepared
        just before its first item and torn down right after its last, with the interleaved
        backends torn down while it runs and prepared again after it.
        """
        units: dict[Unit, list[PlannedItem]] = {}
        for item in items:
            units.setdefault(item.unit, []).append(item)
        mixed = [u for u in units if interleaves(self.backends[u[0]])]
        touched: list[str] = []
        self._scenario = items[0].scenario.name
        try:
            ready = {u for u in mixed if self._prepare(units[u], touched)}
            prepared = set(ready)
            position = 0
            while position < len(items):
                item = items[position]
                if item.unit in mixed:
                    if item.unit in ready:
                        self._run_item(item)
                    else:
                        self._advance(item)
                    position += 1
                    continue
                block = units[item.unit]
                self._teardown_all(dict.fromkeys(u[0] for u in mixed if u in ready))
                if self._prepare(block, touched):
                    for member in block:
                        self._run_item(member)
                    self._adapt({item.unit: block}, touched)
                else:
                    for member in block:
                        self._advance(member)
                self._teardown(item.unit[0])
                position += len(block)
                rest = items[position:]
                ready = {u for u in ready if self._prepare_rest(u, rest, touched)}
            adapting = {u: units[u] for u in mixed if u in prepared}
            self._adapt(adapting, touched, needs_prepare={u for u in adapting if u not in ready})
            self._teardown_all(dict.fromkeys(u[0] for u in mixed))
        finally:
            for name in dict.fromkeys(touched):
                self._teardown(name)

    def _adapt(
        self,
        units: Mapping[Unit, list[PlannedItem]],
        touched: list[str],
        needs_prepare: set[Unit] | None = None,
    ) -> None:
        """Adaptive repetitions: more rounds for the units whose median is not yet precise.

        ``needs_prepare``: units torn down since their last item (around a VM block); they are
        prepared again only if they need more repetitions.
        """
        if not units:
            return
        scenario = next(iter(units.values()))[0].scenario
        target = scenario.precision
        if target is None:
            return
        done = {u: sum(not i.warmup for i in items) for u, items in units.items()}
        state = {u: self._precision(scenario.name, u) for u in units}
        pending = set(needs_prepare or ())
        round_number = 0
        while True:
            due = [
                u
                for u in units
                if done[u] < scenario.repeat_cap
                and state[u].metric  # nothing measured: more repetitions would not help
                and not state[u].reached(target)
            ]
            for unit in [u for u in due if u in pending]:
                pending.discard(unit)
                if not self._reprepare(units[unit][0], touched):
                    done[unit] = scenario.repeat_cap  # cannot continue: stop adapting it
            due = [u for u in due if done[u] < scenario.repeat_cap]
            if not due:
                break
            shift = round_number % len(due)
            for unit in due[shift:] + due[:shift]:  # rotated, as the planned rounds
                variant = units[unit][0].variant
                self._total += 1
                self._run_item(PlannedItem(scenario, unit[0], variant, done[unit], False))
                done[unit] += 1
                state[unit] = self._precision(scenario.name, unit)
            round_number += 1
        for unit in units:
            self._record_adaptive(scenario.name, unit, done[unit], state[unit], scenario)

    def _record_adaptive(
        self, name: str, unit: Unit, done: int, state: Precision, scenario: Scenario
    ) -> None:
        target = scenario.precision or 0.0
        record = {
            "scenario": name,
            "backend": unit[0],
            "variant": unit[1],
            "repetitions": done,
            "max_repeat": scenario.repeat_cap,
            "precision": target,
            "achieved": state.worst if math.isfinite(state.worst) else None,
            "worst_metric": state.metric,
            "capped": not state.reached(target) and done >= scenario.repeat_cap,
        }
        self.adaptive.append(record)
        self.log(f"adaptive {json.dumps(record, sort_keys=True)}")

    def _precision(self, scenario: str, unit: Unit) -> Precision:
        return precision(self.values.get((scenario, *unit), {}))

    def _reprepare(self, item: PlannedItem, touched: list[str]) -> bool:
        """Prepare a unit again for adaptive repetitions; a failure is logged, no rows."""
        touched.append(item.backend)
        try:
            self.backends[item.backend].prepare(item.scenario, item.variant)
        except Exception:  # adaptive repetitions are extra: stop them, keep what was measured
            self.log(f"re-prepare {item.describe()} failed:\n{traceback.format_exc()}")
            return False
        return True

    def _prepare_rest(self, unit: Unit, rest: list[PlannedItem], touched: list[str]) -> bool:
        remaining = [i for i in rest if i.unit == unit]
        return bool(remaining) and self._prepare(remaining, touched)

    def _teardown_all(self, names: Mapping[str, None]) -> None:
        for name in names:
            self._teardown(name)

    def _advance(self, item: PlannedItem) -> None:
        self._position += 1

    def _prepare(self, unit_items: list[PlannedItem], touched: list[str]) -> bool:
        first = unit_items[0]
        backend = self.backends[first.backend]
        touched.append(first.backend)
        self.progress.message(
            f"preparing {first.scenario.name} on {first.backend}/{first.variant.label}"
        )
        started = time.perf_counter()
        try:
            backend.prepare(first.scenario, first.variant)
        except Exception as exc:  # any prepare failure skips this pair, the run goes on
            self.timing.prepare(first, time.perf_counter() - started)
            self.log(f"prepare {first.describe()} failed:\n{traceback.format_exc()}")
            reason = f"prepare failed: {_describe(exc)}"
            self.progress.message(f"skipping {first.backend}/{first.variant.label}: {reason}")
            for item in unit_items:
                self._bad_rows(item, "skipped", reason)
            return False
        self.timing.prepare(first, time.perf_counter() - started)
        return True

    def _teardown(self, name: str) -> None:
        started = time.perf_counter()
        try:
            self.backends[name].teardown()
        except Exception:  # a teardown failure must not hide results or stop the run
            self.log(f"teardown of {name} failed:\n{traceback.format_exc()}")
            self.warnings.append(f"teardown of backend {name} failed (see runner.log)")
        self.timing.teardown(self._scenario, name, time.perf_counter() - started)

    def _run_item(self, item: PlannedItem) -> None:
        self._position += 1
        self.progress.begin(item, self._position, self._total)
        # No scenario name in the path: a valid name can be longer than a file name may be.
        scratch = self.scratch or self.run_dir / "work"
        workdir = scratch / f"{self._position}-{item.backend}"
        with writing(workdir, "create"):
            workdir.mkdir(parents=True, exist_ok=True)
        repetition = Repetition(
            item.scenario, item.variant, item.index, item.warmup, item.scenario.timeout, workdir
        )
        backend = self.backends[item.backend]
        limit = item.scenario.timeout + self.watchdog_grace
        rows: list[Sample]
        started = time.perf_counter()
        try:
            with watchdog(limit):
                outcome = backend.run(repetition)
        except RepetitionTimeout as exc:
            rows = self._bad_rows(item, "timeout", _describe(exc))
        except BackendError as exc:
            rows = self._bad_rows(item, "failed", _describe(exc))
        except WatchdogExpired:
            reason = f"backend did not stop within {limit:g} s; interrupted by the runner"
            self.log(f"{item.describe()}: {reason}")
            rows = self._bad_rows(item, "timeout", reason)
        except Exception as exc:  # a backend bug: keep going, keep the traceback in the log
            self.log(f"{item.describe()} raised:\n{traceback.format_exc()}")
            rows = self._bad_rows(item, "failed", f"{type(exc).__name__}: {_describe(exc)}")
        else:
            rows = self._good_rows(item, outcome)
            record_facts(self.run_dir, item, outcome.facts, self.observed, self.warnings)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        wall = time.perf_counter() - started
        self.timing.repetition(item, wall)
        statuses = sorted({r.status for r in rows})
        self.log(f"item {item.describe()}: {wall:.3f} s, {'/'.join(statuses) or 'no rows'}")
        self.progress.end(item, rows)


def catalog_entry(scenario: Scenario, name: str) -> Metric | None:
    """The catalog's entry for ``name``, else the scenario's declaration, else None (refused)."""
    found = lookup(name)
    if found is not None or scenario.workload.kind != "command":
        return found
    for spec in scenario.workload.metrics:
        if spec.name == name:
            return declared(spec.name, spec.unit, spec.direction)
    return None


def _describe(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


# -- one whole run: directory, environment.json, health checks ---------------------------------


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
    empty = tuple(key for key in runner.timing.units if not runner.values.get(key))
    capped = tuple(
        (a["scenario"], a["backend"], a["variant"]) for a in runner.adaptive if a["capped"]
    )
    return RunResult(
        run_id, run_dir, interrupted, writer.count, state, error, runner.counts, empty, capped
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
