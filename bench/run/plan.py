"""Planning, pure: scenario x backend x variant x repetition, in execution order.

Per scenario, warmup rounds come first, then measured rounds; within a round every
interleavable (backend, variant) pair runs once, in an order rotated by one each round, so
slow drift of the host (page cache, thermals, background jobs) spreads over all backends
instead of biasing the one that ran last. Backends with ``interleave = False`` (a VM left idle
would perturb the others) run their rounds as one block afterwards, prepared just before and
torn down just after.

Repetition numbering: warmups and measured repetitions are counted *separately*
(warmups ``0..warmup-1`` with ``warmup=True``, measured ``0..repeat-1`` with
``warmup=False``), so measured repetition ``i`` means the same thing whatever the warmup count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.backends.base import Backend
from bench.scenario.model import Scenario
from bench.values import Variant

Unit = tuple[str, str]  # (backend name, variant label)


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """One repetition to run: scenario x backend x variant x (warmup, index)."""

    scenario: Scenario
    backend: str
    variant: Variant
    index: int
    warmup: bool

    @property
    def unit(self) -> Unit:
        """The (backend, variant label) pair this item belongs to."""
        return (self.backend, self.variant.label)

    def describe(self) -> str:
        """Human label such as ``syscall native/host rep 2/5``."""
        total = self.scenario.warmup if self.warmup else self.scenario.repeat
        kind = "warmup" if self.warmup else "rep"
        return (
            f"{self.scenario.name} {self.backend}/{self.variant.label} "
            f"{kind} {self.index + 1}/{total}"
        )


def interleaves(backend: Backend) -> bool:
    """Whether ``backend`` may alternate with others (attribute ``interleave``, default True)."""
    return bool(getattr(backend, "interleave", True))


def plan(
    scenarios: Sequence[Scenario],
    backends: Mapping[str, Backend],
    repeat_override: int | None = None,
) -> list[PlannedItem]:
    """Every repetition to run, in execution order (``backends``: the available ones)."""
    items: list[PlannedItem] = []
    for original in scenarios:
        scenario = original.with_repeat(repeat_override) if repeat_override else original
        pairs = [
            (name, variant)
            for name, backend in backends.items()
            if name in scenario.backends
            for variant in backend.variants(scenario)
        ]
        rounds = [(True, i) for i in range(scenario.warmup)]
        rounds += [(False, i) for i in range(scenario.repeat)]
        mixed = [p for p in pairs if interleaves(backends[p[0]])]
        blocks = [p for p in pairs if not interleaves(backends[p[0]])]
        for number, (warmup, index) in enumerate(rounds):
            shift = number % len(mixed) if mixed else 0
            for name, variant in mixed[shift:] + mixed[:shift]:
                items.append(PlannedItem(scenario, name, variant, index, warmup))
        for name, variant in blocks:
            items += [PlannedItem(scenario, name, variant, i, w) for w, i in rounds]
    return items
