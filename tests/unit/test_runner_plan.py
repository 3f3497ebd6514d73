"""Planning: which repetitions run, in which order, with which flags (pure, fake backends)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bench import backends as registry
from bench.run import plan as plan_module
from bench.run.runner import PlannedItem, plan
from bench.scenario.model import Scenario, parse_scenario
from tests.fake_backend import FakeBackend, FakeScript, register_fakes, scenario_data


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    register_fakes(monkeypatch, "a", "b", "c")  # validation accepts registered names only


def scenario(**overrides: Any) -> Scenario:
    return parse_scenario(scenario_data(["a", "b", "c"], **overrides))


def order(items: list[PlannedItem]) -> list[str]:
    return [f"{i.backend}/{i.variant.label}:{'w' if i.warmup else 'r'}{i.index}" for i in items]


def rounds_of(items: list[PlannedItem]) -> list[list[str]]:
    """Interleaved items grouped per round: (warmup, index) in plan order."""
    grouped: dict[tuple[bool, int], list[str]] = {}
    for item in items:
        grouped.setdefault((not item.warmup, item.index), []).append(item.backend)
    return list(grouped.values())


def test_each_round_runs_every_pair_once_in_a_seeded_shuffled_order() -> None:
    backends = {"a": FakeBackend("a"), "b": FakeBackend("b"), "c": FakeBackend("c")}
    items = plan([scenario(repeat=30)], backends, seed=7)
    assert order(items)[:3] == order(plan([scenario(repeat=30)], backends, seed=7))[:3]
    assert [i.warmup for i in items[:3]] == [True] * 3  # warmup round first
    rounds = rounds_of(items)
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 3  # not one fixed order, nor a rotation of it
    # each backend follows different ones (native after a container start, every time, no more)
    predecessors: dict[str, set[str]] = {}
    flat = [i.backend for i in items]
    for before, after in itertools.pairwise(flat):
        predecessors.setdefault(after, set()).add(before)
    assert all(len(p) >= 2 for p in predecessors.values())
    assert order(plan([scenario(repeat=30)], backends, seed=8)) != order(items)


def block_span(items: list[PlannedItem], name: str) -> tuple[int, int]:
    positions = [n for n, i in enumerate(items) if i.backend == name]
    assert positions == list(range(positions[0], positions[-1] + 1))  # one contiguous block
    return positions[0], positions[-1]


def test_a_block_falls_between_rounds_with_native_on_both_sides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry._EXTRA, "vm", FakeBackend)
    backends = {
        "native": FakeBackend("native"),
        "c": FakeBackend("c"),
        "vm": FakeBackend("vm", interleave=False),
    }
    places = set()
    for seed in range(20):
        items = plan([scenario(backends=["native", "c", "vm"], repeat=5)], backends, seed=seed)
        first, last = block_span(items, "vm")
        assert [i.warmup for i in items[first : last + 1]] == [True] + [False] * 5
        before, after = items[first - 1], items[last + 1]
        assert (before.backend, before.warmup, after.backend) == ("native", False, "native")
        assert after.index == before.index + 1
        places.add(before.index)
        facts = plan_module.order_facts(items, seed, backends)
        assert facts["seed"] == seed
        assert facts["blocks"] == [
            {
                "scenario": "s",
                "backend": "vm",
                "variant": "default",
                "native_before": before.index,
                "native_after": after.index,
            }
        ]
    assert len(places) >= 3  # where the block falls is drawn, not always after the rest


def test_non_interleaved_backend_keeps_its_repetitions_together() -> None:
    backends = {
        "c": FakeBackend("c", interleave=False),
        "a": FakeBackend("a"),
        "b": FakeBackend("b"),
    }
    items = plan([scenario(repeat=2)], backends, seed=3)
    first, last = block_span(items, "c")
    assert last - first == 2  # warmup + 2 repetitions
    assert sorted(order(items)) == sorted(
        ["a/default:w0", "b/default:w0", "a/default:r0", "b/default:r0", "a/default:r1",
         "b/default:r1", "c/default:w0", "c/default:r0", "c/default:r1"]
    )  # fmt: skip
    facts = plan_module.order_facts(items, 3, backends)
    assert facts["blocks"][0]["native_before"] is None  # no native in this scenario


def test_variants_are_units_of_the_shuffle() -> None:
    backends = {"a": FakeBackend("a", FakeScript(variants=("x", "y"))), "b": FakeBackend("b")}
    items = plan([scenario(backends=["a", "b"], warmup=0, repeat=3)], backends)
    labels = [f"{i.backend}/{i.variant.label}" for i in items]
    for start in range(0, 9, 3):
        assert sorted(labels[start : start + 3]) == ["a/x", "a/y", "b/default"]


def test_warmups_counted_separately_and_flagged() -> None:
    items = plan([scenario(backends=["a"], warmup=2, repeat=3)], {"a": FakeBackend("a")})
    assert [(i.warmup, i.index) for i in items] == [
        (True, 0), (True, 1), (False, 0), (False, 1), (False, 2),
    ]  # fmt: skip
    assert items[0].describe() == "s a/default warmup 1/2"
    assert items[-1].describe() == "s a/default rep 3/3"


def test_scenario_backends_filter_and_unavailable_backends_are_absent() -> None:
    backends = {"a": FakeBackend("a"), "b": FakeBackend("b")}  # "c" is unavailable
    items = plan([scenario(backends=["b", "c"])], backends)
    assert {i.backend for i in items} == {"b"}
    assert len(items) == 4  # 1 warmup + 3 repetitions


def test_repeat_override_applies_to_every_scenario_and_its_hash() -> None:
    first, second = scenario(name="one"), scenario(name="two", repeat=7)
    items = plan([first, second], {"a": FakeBackend("a")}, repeat_override=2)
    measured = [i for i in items if not i.warmup]
    assert [(i.scenario.name, i.index) for i in measured] == [
        ("one", 0), ("one", 1), ("two", 0), ("two", 1),
    ]  # fmt: skip
    assert all(i.scenario.repeat == 2 for i in items)
    assert items[0].scenario.hash == first.hash  # --repeat keeps runs comparable


def test_scenarios_run_in_given_order_and_never_mix() -> None:
    backends = {"a": FakeBackend("a"), "b": FakeBackend("b")}
    items = plan([scenario(name="one"), scenario(name="two")], backends)
    names = [i.scenario.name for i in items]
    assert names == sorted(names)  # all of "one" before any of "two"


def test_empty_plan_when_nothing_applies() -> None:
    assert plan([scenario(backends=["c"])], {"a": FakeBackend("a")}) == []
