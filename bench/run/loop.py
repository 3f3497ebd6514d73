"""The item loop: a plan's items one repetition at a time, grouped by scenario.

Nothing runs in parallel. Interleaved backends are prepared once per scenario and take their
repetitions in rotated rounds; a non-interleaved block (a VM) is prepared just before its first
item and torn down right after its last. Adaptive repetitions follow the planned ones. One
repetition and its rows are :mod:`bench.run.repetition`; the whole run around this loop
(directory, environment.json, end state) is :mod:`bench.run.runner`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.backends.base import Backend, KeepsEnvironment
from bench.results import RunWriter, Sample
from bench.run.adaptive import Precision, precision
from bench.run.plan import PlannedItem, Unit, interleaves
from bench.run.repetition import Rows, describe, measure
from bench.run.rundir import append_log, record_facts
from bench.run.timing import TimeBook
from bench.scenario.model import Scenario
from bench.storage import writing


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
    #: one record per adaptive unit: repetitions taken, precision reached, cap hit
    adaptive: list[dict[str, Any]] = field(default_factory=list)
    _scenario: str = ""  # the scenario running (teardown times are attributed to it)
    _parked: set[str] = field(default_factory=set)  # backends keeping an environment (a VM)
    _position: int = 0
    _total: int = 0
    rows: Rows = field(init=False)

    def __post_init__(self) -> None:
        self.rows = Rows(self.run_id, self.writer)

    def log(self, text: str) -> None:
        """Append a line to ``runner.log`` (tracebacks go here, not to the user)."""
        append_log(self.run_dir, text)

    # -- execution --------------------------------------------------------------------------

    def execute(self, items: Sequence[PlannedItem]) -> None:
        """Run every item (grouped by scenario, in plan order); KeyboardInterrupt propagates."""
        self._total, self._position = len(items), 0
        groups: dict[str, list[PlannedItem]] = {}
        for item in items:
            groups.setdefault(item.scenario.name, []).append(item)
        try:
            for group in groups.values():
                self._run_scenario(group)
        finally:  # environments kept across scenarios (a parked VM) end with the run
            for name in list(self._parked):
                self._parked.discard(name)
                self._teardown(name)

    def _run_scenario(self, items: list[PlannedItem]) -> None:
        """Run one scenario's items in plan order.

        Interleaved pairs are prepared up front; a non-interleaved block (a VM) is prepared
        just before its first item and released right after its last (parked if it keeps its
        environment for a later scenario, else torn down), with the interleaved
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
                self._release(item.unit[0])
                position += len(block)
                rest = items[position:]
                ready = {u for u in ready if self._prepare_rest(u, rest, touched)}
            adapting = {u: units[u] for u in mixed if u in prepared}
            self._adapt(adapting, touched, needs_prepare={u for u in adapting if u not in ready})
            self._teardown_all(dict.fromkeys(u[0] for u in mixed))
        finally:
            for name in dict.fromkeys(touched):
                self._release(name)

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
        return precision(self.rows.values.get((scenario, *unit), {}))

    def _reprepare(self, item: PlannedItem, touched: list[str]) -> bool:
        """Prepare a unit again for adaptive repetitions; a failure is logged, no rows."""
        touched.append(item.backend)
        self._parked.discard(item.backend)
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
        self._parked.discard(first.backend)  # taken up again (a parked VM resumes)
        self.progress.message(
            f"preparing {first.scenario.name} on {first.backend}/{first.variant.label}"
        )
        started = time.perf_counter()
        try:
            backend.prepare(first.scenario, first.variant)
        except Exception as exc:  # any prepare failure skips this pair, the run goes on
            self.timing.prepare(first, time.perf_counter() - started)
            self.log(f"prepare {first.describe()} failed:\n{traceback.format_exc()}")
            reason = f"prepare failed: {describe(exc)}"
            self.progress.message(f"skipping {first.backend}/{first.variant.label}: {reason}")
            for item in unit_items:
                self.rows.bad(item, "skipped", reason)
            return False
        self.timing.prepare(first, time.perf_counter() - started)
        return True

    def _release(self, name: str) -> None:
        """End of a block: park a backend that keeps its environment, else tear it down."""
        backend = self.backends[name]
        if not isinstance(backend, KeepsEnvironment):
            self._teardown(name)
            return
        if name in self._parked:
            return
        started = time.perf_counter()
        backend.park()  # never raises: a VM it cannot pause it destroys (and notes why)
        self._parked.add(name)
        self.timing.teardown(self._scenario, name, time.perf_counter() - started)

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
        backend = self.backends[item.backend]
        limit = item.scenario.timeout + self.watchdog_grace
        started = time.perf_counter()
        try:
            rows, outcome = measure(
                backend, item, workdir, limit=limit, rows=self.rows, log=self.log
            )
            if outcome is not None:
                record_facts(self.run_dir, item, outcome.facts, self.observed, self.warnings)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        wall = time.perf_counter() - started
        self.timing.repetition(item, wall)
        statuses = sorted({r.status for r in rows})
        self.log(f"item {item.describe()}: {wall:.3f} s, {'/'.join(statuses) or 'no rows'}")
        self.progress.end(item, rows)
