"""One repetition: run it under the watchdog, and turn whatever happens into sample rows.

Every outcome becomes rows: the backend's measurements (``ok``, or ``failed`` when a value is
not finite or a metric is neither catalogued nor declared), and for a failure, a timeout or an
unprepared pair one row per expected metric with the reason (``failed``, ``timeout``,
``skipped``). :class:`Rows` writes them, counts them and keeps the ``ok`` values that adaptive
repetitions judge.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.backends.base import Backend, Repetition
from bench.metrics import Metric, declared, lookup
from bench.results import Counts, RunWriter, Sample, Status, count_row
from bench.run.plan import PlannedItem
from bench.run.rundir import WatchdogExpired, watchdog
from bench.scenario.model import Scenario
from bench.values import BackendError, Outcome, RepetitionTimeout
from bench.workloads import contract


@dataclass
class Rows:
    """Writes a run's sample rows, counts them and keeps the ok values per unit and metric."""

    run_id: str
    writer: RunWriter
    counts: Counts = field(default_factory=Counts)
    #: ok measured values per (scenario, backend, variant) and metric (adaptive repetitions)
    values: dict[tuple[str, str, str], dict[str, list[float]]] = field(default_factory=dict)

    def sample(
        self,
        item: PlannedItem,
        metric: str,
        value: float,
        *,
        unit: str | None,
        status: Status,
        reason: str,
    ) -> Sample:
        """Write one row of ``item`` (the unit defaults to the catalog's)."""
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

    def bad(
        self, item: PlannedItem, status: Status, reason: str, metrics: Sequence[str] | None = None
    ) -> list[Sample]:
        """One row with ``reason`` per metric (default: every metric the workload promises)."""
        names = metrics if metrics is not None else contract(item.scenario.workload)
        return [
            self.sample(item, m, math.nan, unit=None, status=status, reason=reason) for m in names
        ]

    def good(self, item: PlannedItem, outcome: Outcome) -> list[Sample]:
        """The outcome's measurements, then a failed row per promised metric it lacks."""
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
            rows.append(self.sample(item, m.metric, value, unit=unit, status=status, reason=reason))
        seen = {m.metric for m in outcome.measurements}
        expected = contract(item.scenario.workload)
        if item.scenario.workload.kind == "command" and seen:
            expected = ()  # a command's metrics depend on its parser; any one will do
        missing = [m for m in expected if m not in seen]
        rows += self.bad(item, "failed", "backend did not report this metric", missing)
        return rows


def catalog_entry(scenario: Scenario, name: str) -> Metric | None:
    """The catalog's entry for ``name``, else the scenario's declaration, else None (refused)."""
    found = lookup(name)
    if found is not None or scenario.workload.kind != "command":
        return found
    for spec in scenario.workload.metrics:
        if spec.name == name:
            return declared(spec.name, spec.unit, spec.direction)
    return None


def describe(exc: BaseException) -> str:
    """An exception as a row's reason: its message, else its type's name."""
    return str(exc).strip() or type(exc).__name__


def measure(
    backend: Backend,
    item: PlannedItem,
    workdir: Path,
    *,
    limit: float,
    rows: Rows,
    log: Callable[[str], None],
) -> tuple[list[Sample], Outcome | None]:
    """Run ``item`` once, interrupted after ``limit`` s: its rows, and the outcome if it ran.

    A backend bug (any other exception) fails the rows; its traceback goes to ``log``.
    """
    repetition = Repetition(
        item.scenario, item.variant, item.index, item.warmup, item.scenario.timeout, workdir
    )
    try:
        with watchdog(limit):
            outcome = backend.run(repetition)
    except RepetitionTimeout as exc:
        return rows.bad(item, "timeout", describe(exc)), None
    except BackendError as exc:
        return rows.bad(item, "failed", describe(exc)), None
    except WatchdogExpired:
        reason = f"backend did not stop within {limit:g} s; interrupted by the runner"
        log(f"{item.describe()}: {reason}")
        return rows.bad(item, "timeout", reason), None
    except Exception as exc:  # a backend bug: keep going, keep the traceback in the log
        log(f"{item.describe()} raised:\n{traceback.format_exc()}")
        return rows.bad(item, "failed", f"{type(exc).__name__}: {describe(exc)}"), None
    return rows.good(item, outcome), outcome
