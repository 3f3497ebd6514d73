"""Planning, pure: scenario x backend x variant x repetition, in execution order.

Per scenario, warmup rounds come first, then measured rounds; within a round every
interleavable (backend, variant) pair runs once, in an order **shuffled per round** by a
seeded generator (``seed``, recorded in environment.json and settable with ``isobench run
--seed``), so no backend is always preceded by the same one and slow drift of the host
(page cache, thermals, background jobs) spreads over all of them. Backends with
``interleave = False`` (a VM must stay up across its repetitions and would perturb the others)
keep their repetitions together as one block, but where each block falls among the measured
rounds is drawn from the same generator; the runner tears the others down around it. When
native takes part, a block is placed *between* two measured rounds, the round before it ends
with native and the round after it starts with native, so native is measured right before and
right after every long block: :func:`order_facts` records those repetitions and the report
turns them into a drift check.

Repetition numbering: warmups and measured repetitions are counted *separately*
(warmups ``0..warmup-1`` with ``warmup=True``, measured ``0..repeat-1`` with
``warmup=False``), so measured repetition ``i`` means the same thing whatever the warmup count.
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bench.backends.base import Backend, KeepsEnvironment
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
        """Human label such as ``syscall native/host rep 2/5`` (``rep 7/<=20``: adaptive)."""
        warmups, repeat = self.scenario.counts_for(self.backend)
        total = str(warmups if self.warmup else repeat)
        if not self.warmup and self.scenario.precision is not None:
            total = f"<={self.scenario.repeat_cap}"
        kind = "warmup" if self.warmup else "rep"
        return (
            f"{self.scenario.name} {self.backend}/{self.variant.label} "
            f"{kind} {self.index + 1}/{total}"
        )


def interleaves(backend: Backend) -> bool:
    """Whether ``backend`` may alternate with others (attribute ``interleave``, default True)."""
    return bool(getattr(backend, "interleave", True))


NATIVE = "native"


def plan(
    scenarios: Sequence[Scenario],
    backends: Mapping[str, Backend],
    repeat_override: int | None = None,
    seed: int = 0,
) -> list[PlannedItem]:
    """Every repetition to run, in execution order (``backends``: the available ones).

    Scenarios run in the order given, except that those sharing a kept environment (one booted
    VM, see :class:`~bench.backends.base.KeepsEnvironment`) are moved up next to the first of
    them, so that environment is brought up once and not once per scenario.
    """
    planned: list[tuple[Scenario, list[tuple[str, Variant]]]] = []
    for original in scenarios:
        scenario = original.with_repeat(repeat_override) if repeat_override else original
        pairs = [
            (name, variant)
            for name, backend in backends.items()
            if name in scenario.backends
            for variant in backend.variants(scenario)
        ]
        planned.append((scenario, pairs))
    items: list[PlannedItem] = []
    for scenario, pairs in _sharing_together(planned, backends):
        items += _scenario_order(
            scenario, pairs, backends, random.Random(f"{seed}:{scenario.name}")
        )
    return items


def _sharing_together(
    planned: list[tuple[Scenario, list[tuple[str, Variant]]]], backends: Mapping[str, Backend]
) -> list[tuple[Scenario, list[tuple[str, Variant]]]]:
    """``planned`` with scenarios that share a kept environment moved next to the first one."""
    groups: dict[object, list[tuple[Scenario, list[tuple[str, Variant]]]]] = {}
    for number, (scenario, pairs) in enumerate(planned):
        keys = sorted(shared_keys(scenario, pairs, backends))
        groups.setdefault(keys[0] if keys else number, []).append((scenario, pairs))
    return [entry for group in groups.values() for entry in group]


def shared_keys(
    scenario: Scenario, pairs: Iterable[tuple[str, Variant]], backends: Mapping[str, Backend]
) -> set[str]:
    """Keys (``backend:key``) of the kept environments the pairs of ``scenario`` run in."""
    keys = set()
    for name, variant in pairs:
        backend = backends[name]
        key = (
            backend.shared_environment(scenario, variant)
            if isinstance(backend, KeepsEnvironment)
            else None
        )
        if key is not None:
            keys.add(f"{name}:{key}")
    return keys


def _scenario_order(
    scenario: Scenario,
    pairs: list[tuple[str, Variant]],
    backends: Mapping[str, Backend],
    rng: random.Random,
) -> list[PlannedItem]:
    rounds = [(True, i) for i in range(scenario.warmup)]
    rounds += [(False, i) for i in range(scenario.repeat)]
    mixed = [p for p in pairs if interleaves(backends[p[0]])]
    blocks = [p for p in pairs if not interleaves(backends[p[0]])]
    orders = [rng.sample(mixed, len(mixed)) for _ in rounds]
    # A block goes between two measured rounds (never first or last when it can be avoided,
    # so native has a repetition on both sides); the gap index counts rounds before it.
    first, last = scenario.warmup + 1, len(rounds) - 1
    gaps: dict[int, list[tuple[str, Variant]]] = {}
    for block in rng.sample(blocks, len(blocks)):
        gap = rng.randint(first, last) if first <= last else len(rounds)
        gaps.setdefault(gap, []).append(block)
    native = [p for p in mixed if p[0] == NATIVE]
    for gap in gaps:
        if native and 0 < gap < len(rounds):  # native right before and right after the block
            orders[gap - 1] = [p for p in orders[gap - 1] if p not in native] + native
            orders[gap] = native + [p for p in orders[gap] if p not in native]
    items: list[PlannedItem] = []
    for number, (warmup, index) in enumerate(rounds):
        for name, variant in gaps.get(number, ()):
            items += _block(scenario, name, variant)
        items += [
            PlannedItem(scenario, name, variant, index, warmup) for name, variant in orders[number]
        ]
    for name, variant in gaps.get(len(rounds), ()):
        items += _block(scenario, name, variant)
    return items


def _block(scenario: Scenario, name: str, variant: Variant) -> list[PlannedItem]:
    """A non-interleaved block: its own counts (a VM may take fewer, ``vagrant.repeat``)."""
    warmups, repeat = scenario.counts_for(name)
    own = [(True, i) for i in range(warmups)] + [(False, i) for i in range(repeat)]
    return [PlannedItem(scenario, name, variant, i, w) for w, i in own]


def order_facts(
    items: Sequence[PlannedItem], seed: int, backends: Mapping[str, Backend]
) -> dict[str, Any]:
    """What environment.json records of the order: the seed and each block's neighbours.

    For every non-interleaved block: its scenario, backend and variant, and the measured
    native repetitions right before and right after it (None when native did not run there).
    """
    blocks: list[dict[str, Any]] = []
    position = 0
    while position < len(items):
        item = items[position]
        end = position
        if interleaves(backends[item.backend]):
            position += 1
            continue
        while end + 1 < len(items) and _same_block(items[end + 1], item):
            end += 1
        blocks.append(
            {
                "scenario": item.scenario.name,
                "backend": item.backend,
                "variant": item.variant.label,
                "native_before": _native_at(items, position - 1),
                "native_after": _native_at(items, end + 1),
            }
        )
        position = end + 1
    method = "seeded shuffle per round; non-interleaved blocks at seeded gaps"
    return {"seed": seed, "method": method, "blocks": blocks}


def _same_block(item: PlannedItem, first: PlannedItem) -> bool:
    return item.unit == first.unit and item.scenario.name == first.scenario.name


def _native_at(items: Sequence[PlannedItem], position: int) -> int | None:
    """The measured native repetition index at ``position``, if that is what runs there."""
    if not 0 <= position < len(items):
        return None
    item = items[position]
    return item.index if item.backend == NATIVE and not item.warmup else None


# -- selection (--filter / -k) and the plan as a table (--dry-run, `isobench plan`) ----------

#: Fields a filter term may name: ``scenario=GLOB``, ``backend=GLOB``, ``variant=GLOB``.
FILTER_FIELDS: Final = ("scenario", "backend", "variant")


@dataclass(frozen=True, slots=True)
class FilterTerm:
    """One ``--filter`` term: a glob on one field (or on any), possibly negated."""

    pattern: str
    field: str | None = None
    negate: bool = False

    def matches(self, item: PlannedItem) -> bool:
        """Whether ``item`` satisfies this term."""
        values = {
            "scenario": item.scenario.name,
            "backend": item.backend,
            "variant": item.variant.label,
        }
        fields = [values[self.field]] if self.field else list(values.values())
        hit = any(fnmatch.fnmatchcase(value, self.pattern) for value in fields)
        return hit != self.negate


def parse_filter(text: str) -> FilterTerm:
    """``[!][FIELD=]GLOB``; a GLOB without ``*?[`` matches as a substring. ValueError if bad."""
    negate = text.startswith("!")
    body = text[1:] if negate else text
    field: str | None = None
    if "=" in body:
        field, body = body.split("=", 1)
        if field not in FILTER_FIELDS:
            msg = (
                f"unknown filter field {field!r} in {text!r}; expected one of "
                f"{', '.join(FILTER_FIELDS)} (e.g. -k backend=docker, -k scenario=sys*)"
            )
            raise ValueError(msg)
    if not body:
        msg = f"empty filter {text!r}; expected e.g. -k syscall, -k backend=docker, -k '!vagrant'"
        raise ValueError(msg)
    if not any(ch in body for ch in "*?["):
        body = f"*{body}*"
    return FilterTerm(body, field, negate)


def select(items: Iterable[PlannedItem], terms: Sequence[FilterTerm]) -> list[PlannedItem]:
    """The items that satisfy every term (all of them when there is none), order kept."""
    return [item for item in items if all(term.matches(item) for term in terms)]


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One line of the plan: a scenario x backend x variant and how many repetitions."""

    scenario: Scenario
    backend: str
    variant: str
    warmups: int
    repetitions: int
    #: most measured repetitions (adaptive: up to ``max_repeat``; else == repetitions)
    cap: int
    #: key of the environment kept across scenarios this row runs in (a VM), if any
    shared: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """(scenario, backend, variant)."""
        return (self.scenario.name, self.backend, self.variant)


def plan_rows(
    items: Iterable[PlannedItem], backends: Mapping[str, Backend] | None = None
) -> list[PlanRow]:
    """The plan grouped per scenario x backend x variant.

    Scenarios in execution order; within one, native first, then backends and variants by
    name (the execution order itself is shuffled per round). With ``backends``, each row
    names the kept environment it shares (:func:`shared_keys`).
    """
    counts: dict[tuple[str, str, str], list[int]] = {}
    scenarios: dict[str, Scenario] = {}
    shared: dict[tuple[str, str, str], str | None] = {}
    for item in items:
        scenarios[item.scenario.name] = item.scenario
        key = (item.scenario.name, item.backend, item.variant.label)
        tally = counts.setdefault(key, [0, 0])
        tally[0 if item.warmup else 1] += 1
        if backends is not None and key not in shared:
            found = shared_keys(item.scenario, [(item.backend, item.variant)], backends)
            shared[key] = found.pop() if found else None
    rows = []
    for (name, backend, variant), (warmups, reps) in counts.items():
        scenario = scenarios[name]
        cap = max(reps, scenario.repeat_cap) if scenario.precision is not None and reps else reps
        own = shared.get((name, backend, variant))
        rows.append(PlanRow(scenario, backend, variant, warmups, reps, cap, own))
    order = {name: number for number, name in enumerate(scenarios)}
    return sorted(
        rows, key=lambda r: (order[r.scenario.name], r.backend != NATIVE, r.backend, r.variant)
    )
