"""Where the time of a run went: wall seconds per repetition, prepare and teardown.

The runner feeds a :class:`TimeBook`; its :meth:`TimeBook.as_environment` block goes into
``environment.json`` (``timing``), where :mod:`bench.run.estimate` finds it to predict the next
run on this host and the report shows it. Each repetition's wall time is also a line of
``runner.log`` (``item {...}``), so a killed run still tells where its time went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.run.plan import PlannedItem


@dataclass
class UnitTime:
    """Seconds spent on one scenario x backend x variant."""

    scenario: str
    scenario_hash: str
    kind: str
    backend: str
    variant: str
    warmup_s: list[float] = field(default_factory=list)
    rep_s: list[float] = field(default_factory=list)
    prepare_s: float = 0.0
    teardown_s: float = 0.0

    @property
    def total(self) -> float:
        """Every second this unit took."""
        return sum(self.warmup_s) + sum(self.rep_s) + self.prepare_s + self.teardown_s


@dataclass
class TimeBook:
    """Accumulates wall times during a run."""

    units: dict[tuple[str, str, str], UnitTime] = field(default_factory=dict)

    def unit(self, item: PlannedItem) -> UnitTime:
        """The record of ``item``'s scenario x backend x variant (created on first use)."""
        key = (item.scenario.name, item.backend, item.variant.label)
        if key not in self.units:
            self.units[key] = UnitTime(
                item.scenario.name,
                item.scenario.hash,
                item.scenario.workload.kind,
                item.backend,
                item.variant.label,
            )
        return self.units[key]

    def repetition(self, item: PlannedItem, seconds: float) -> None:
        """Record one repetition's wall time."""
        record = self.unit(item)
        (record.warmup_s if item.warmup else record.rep_s).append(round(seconds, 6))

    def prepare(self, item: PlannedItem, seconds: float) -> None:
        """Record the prepare of ``item``'s unit."""
        self.unit(item).prepare_s += round(seconds, 6)

    def teardown(self, scenario: str, backend: str, seconds: float) -> None:
        """Spread one backend teardown over that backend's units of ``scenario``."""
        mine = [u for (s, b, _), u in self.units.items() if s == scenario and b == backend]
        mine = mine or [u for (_, b, _), u in self.units.items() if b == backend][-1:]
        for record in mine:
            record.teardown_s += round(seconds / len(mine), 6)

    def as_environment(self) -> dict[str, Any]:
        """The ``timing`` block of environment.json."""
        units = [vars(u).copy() for u in self.units.values()]
        by_backend: dict[str, float] = {}
        for record in self.units.values():
            by_backend[record.backend] = by_backend.get(record.backend, 0.0) + record.total
        return {
            "units": units,
            "by_backend_s": {k: round(v, 3) for k, v in by_backend.items()},
            "total_s": round(sum(u.total for u in self.units.values()), 3),
        }
