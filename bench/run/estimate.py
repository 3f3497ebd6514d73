"""How long a plan will take: previous runs on this host, else stated defaults.

Every run records, in ``environment.json`` under ``timing``, the wall time of each repetition
and of each prepare/teardown (see :mod:`bench.run.timing`). :func:`load_history` reads those
records from the run directories of *this host* (same ``host.identity.fingerprint``) and
:func:`estimate` takes the median seconds per repetition for the same scenario (by hash, then
by name) x backend x variant. Where no run of this host measured an item, the estimate is a
stated default (:data:`DEFAULT_COSTS`), marked ``default`` in the plan: a guess from the
workload's own parameters and typical costs measured on the development machine.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.run.plan import PlanRow
from bench.scenario.model import (
    DensityWorkload,
    DiskWorkload,
    MemoryWorkload,
    NetworkWorkload,
    Scenario,
    StartupWorkload,
    SyscallWorkload,
)

#: Runs read for the history, newest first (older ones say little about today's host).
HISTORY_RUNS: Final = 50


@dataclass(frozen=True, slots=True)
class Cost:
    """A backend's typical cost: a factor on the native time plus fixed seconds."""

    factor: float  # workload time relative to native
    per_rep: float  # fixed seconds each repetition adds (container create/start, ssh)
    setup: float  # seconds to prepare and tear down one scenario x variant (a VM boot)
    boot_per_startup: float = 0.0  # seconds of one startup/memory repetition's fresh boot
    resume: float = 0.0  # seconds to take up an environment kept from an earlier scenario


#: Stated defaults (development machine, 2 vCPU, TCG for the VM): see docs/report.md.
DEFAULT_COSTS: Final[Mapping[str, Cost]] = {
    "native": Cost(1.0, 0.0, 0.0),
    "sandbox": Cost(1.0, 0.01, 0.0),  # bubblewrap: about 9 ms per launch
    "docker": Cost(1.05, 0.6, 1.0),
    "vagrant": Cost(10.0, 2.5, 60.0, boot_per_startup=55.0, resume=1.0),
}
#: Workload kinds whose every repetition boots afresh where the backend boots (a VM).
FRESH_KINDS: Final = frozenset({"startup", "memory"})
#: A backend without its own defaults (a new one) is assumed to cost like a container.
FALLBACK_COST: Final = DEFAULT_COSTS["docker"]
#: A command workload's duration cannot be known in advance unless it states one.
DEFAULT_COMMAND_SECONDS: Final = 10.0
_TIME_OPTION: Final = re.compile(r"^--(?:time|runtime|duration)=(\d+(?:\.\d+)?)s?$")


@dataclass
class History:
    """Seconds per repetition and per prepare/teardown, keyed by scenario x backend x variant."""

    reps: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    setup: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    runs: int = 0

    def add(self, unit: Mapping[str, Any]) -> None:
        """Merge one ``timing.units`` record of environment.json."""
        backend, variant = str(unit.get("backend", "")), str(unit.get("variant", ""))
        walls = _floats(unit.get("rep_s")) + _floats(unit.get("warmup_s"))
        setup = sum(_floats([unit.get("prepare_s"), unit.get("teardown_s")]))
        for scenario in (f"#{unit.get('scenario_hash', '')}", str(unit.get("scenario", ""))):
            key = (scenario, backend, variant)
            self.reps.setdefault(key, []).extend(walls)
            self.setup.setdefault(key, []).append(setup)

    def lookup(self, scenario: Scenario, backend: str, variant: str) -> tuple[float, float] | None:
        """Median (seconds per repetition, setup seconds), or None when never measured."""
        for name in (f"#{scenario.hash}", scenario.name):
            reps = self.reps.get((name, backend, variant))
            if reps:
                setup = self.setup.get((name, backend, variant)) or [0.0]
                return statistics.median(reps), statistics.median(setup)
        return None


def _floats(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    ]


def _host_fingerprint(environment: Mapping[str, Any]) -> str | None:
    host = environment.get("host")
    identity = host.get("identity") if isinstance(host, Mapping) else None
    value = identity.get("fingerprint") if isinstance(identity, Mapping) else None
    return str(value) if value else None


def load_history(results: Path, fingerprint: str) -> History:
    """Timing records of the newest runs under ``results`` made on host ``fingerprint``."""
    history = History()
    try:  # history only informs a guess: an unreadable or odd --out is no history, not an error
        runs = sorted((p for p in results.iterdir() if p.is_dir()), reverse=True)
    except OSError:
        return history
    for run_dir in runs[:HISTORY_RUNS]:
        try:
            environment = json.loads((run_dir / "environment.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a run directory, or a damaged one: it only informs a guess
        if not isinstance(environment, dict) or _host_fingerprint(environment) != fingerprint:
            continue
        timing = environment.get("timing")
        units = timing.get("units") if isinstance(timing, Mapping) else None
        if not isinstance(units, list):
            continue
        history.runs += 1
        for unit in units:
            if isinstance(unit, Mapping):
                history.add(unit)
    return history


def native_parts(scenario: Scenario) -> tuple[float, float]:
    """A stated guess of one native repetition: (fixed seconds, work seconds).

    Fixed time does not depend on the environment's speed (fio's time-based jobs, the memory
    workload's idle, a command's ``--time=N``); work does (a backend's ``factor`` scales it).
    """
    workload = scenario.workload
    if isinstance(workload, StartupWorkload):
        return 0.0, 0.01
    if isinstance(workload, SyscallWorkload):
        return 0.0, 0.05 + workload.null_calls / 4e6 + workload.mixed_calls / 7e5
    if isinstance(workload, DiskWorkload):
        # five fio jobs of `runtime` seconds each, plus laying out the test file
        return 5 * workload.runtime, workload.file_size / 300e6 + 0.5
    if isinstance(workload, MemoryWorkload):
        return workload.idle, workload.alloc / 1e9 + 0.3
    if isinstance(workload, NetworkWorkload):  # the stream's duration; round trips, set-ups
        return workload.duration, workload.requests * 2e-5 + workload.connections * 6e-5 + 0.1
    if isinstance(workload, DensityWorkload):  # settle; the largest N's starts and stops
        return workload.settle, max(workload.instances) * 0.02 + 0.1
    for argument in workload.command:  # a command that says how long it runs
        match = _TIME_OPTION.match(argument)
        if match:
            return float(match.group(1)), 0.1
    return DEFAULT_COMMAND_SECONDS, 0.0


def native_seconds(scenario: Scenario) -> float:
    """A stated guess of one native repetition, from the workload's own parameters."""
    return sum(native_parts(scenario))


def default_seconds(scenario: Scenario, backend: str) -> tuple[float, float]:
    """Stated default (seconds per repetition, setup seconds) for ``backend``."""
    cost = DEFAULT_COSTS.get(backend, FALLBACK_COST)
    if scenario.workload.kind == "startup" and cost.boot_per_startup:
        return cost.boot_per_startup, 0.0
    fixed, work = native_parts(scenario)
    per_rep = fixed + cost.factor * work + cost.per_rep
    if scenario.workload.kind in FRESH_KINDS and cost.boot_per_startup:
        return min(per_rep + cost.boot_per_startup, scenario.timeout), 0.0
    return min(per_rep, scenario.timeout), cost.setup


@dataclass(frozen=True, slots=True)
class Estimate:
    """Expected wall time of one plan row."""

    row: PlanRow
    per_rep: float
    setup: float
    source: str  # "history" or "default"

    @property
    def seconds(self) -> float:
        """With the planned (minimum) repetitions."""
        return (self.row.warmups + self.row.repetitions) * self.per_rep + self.setup

    @property
    def seconds_max(self) -> float:
        """With every adaptive repetition up to the cap."""
        return (self.row.warmups + self.row.cap) * self.per_rep + self.setup


def estimate(rows: Iterable[PlanRow], history: History | None = None) -> list[Estimate]:
    """An :class:`Estimate` per row: this host's history where it has one, else defaults."""
    out = []
    for row in rows:
        found = history.lookup(row.scenario, row.backend, row.variant) if history else None
        if found is not None:
            out.append(Estimate(row, found[0], found[1], "history"))
        else:
            per_rep, setup = default_seconds(row.scenario, row.backend)
            out.append(Estimate(row, per_rep, setup, "default"))
    return _shared_setup(out)


def _shared_setup(estimates: list[Estimate]) -> list[Estimate]:
    """Rows sharing a kept environment (one VM) pay its setup once, the first of them.

    The first row (in plan order) gets the largest setup of the group (the boot); the others
    the smallest one this host measured below it (taking up the paused VM), else the stated
    ``resume`` default.
    """
    groups: dict[str, list[int]] = {}
    for number, item in enumerate(estimates):
        if item.row.shared is not None:
            groups.setdefault(f"{item.row.backend}:{item.row.shared}", []).append(number)
    out = list(estimates)
    for members in groups.values():
        boot = max(estimates[i].setup for i in members)
        measured = [
            estimates[i].setup
            for i in members
            if estimates[i].source == "history" and estimates[i].setup < boot
        ]
        backend = estimates[members[0]].row.backend
        resume = min(measured) if measured else DEFAULT_COSTS.get(backend, FALLBACK_COST).resume
        for position, i in enumerate(members):
            item = estimates[i]
            setup = boot if position == 0 else resume
            out[i] = Estimate(item.row, item.per_rep, setup, item.source)
    return out


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if not math.isfinite(seconds):
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def totals(estimates: Sequence[Estimate]) -> tuple[float, float]:
    """(expected seconds with the planned repetitions, with every adaptive one)."""
    return sum(e.seconds for e in estimates), sum(e.seconds_max for e in estimates)
