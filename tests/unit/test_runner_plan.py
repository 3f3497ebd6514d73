"""Planning: which repetitions run, in which order, with which flags (pure, fake backends)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import backends as registry
from bench.run.runner import PlannedItem, plan
from bench.scenario.model import Scenario, parse_scenario
from tests.fake_backend import FakeBackend, FakeScript


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # scenario validation accepts registered backend names only
    for name in ("a", "b", "c"):
        monkeypatch.setitem(registry._EXTRA, name, FakeBackend)


def scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "format_version": 1,
        "name": "s",
        "workload": {"kind": "startup"},
        "backends": ["a", "b", "c"],
        "repeat": 3,
        "warmup": 1,
    }
    data.update(overrides)
    return parse_scenario(data)


def order(items: list[PlannedItem]) -> list[str]:
    return [f"{i.backend}/{i.variant.label}:{'w' if i.warmup else 'r'}{i.index}" for i in items]


def test_interleaves_backends_with_rotation_warmups_first() -> None:
    backends = {"a": FakeBackend("a"), "b": FakeBackend("b")}
    items = plan([scenario(backends=["a", "b"])], backends)
    assert order(items) == [
        "a/default:w0", "b/default:w0",
        "b/default:r0", "a/default:r0",
        "a/default:r1", "b/default:r1",
        "b/default:r2", "a/default:r2",
    ]  # fmt: skip


def test_non_interleaved_backend_runs_as_block_after_the_others() -> None:
    backends = {
        "c": FakeBackend("c", interleave=False),
        "a": FakeBackend("a"),
        "b": FakeBackend("b"),
    }
    items = plan([scenario(repeat=2)], backends)
    assert order(items) == [
        "a/default:w0", "b/default:w0",
        "b/default:r0", "a/default:r0",
        "a/default:r1", "b/default:r1",
        "c/default:w0", "c/default:r0", "c/default:r1",
    ]  # fmt: skip


def test_variants_are_units_of_rotation() -> None:
    backends = {"a": FakeBackend("a", FakeScript(variants=("x", "y"))), "b": FakeBackend("b")}
    items = plan([scenario(backends=["a", "b"], warmup=0, repeat=3)], backends)
    assert order(items) == [
        "a/x:r0", "a/y:r0", "b/default:r0",
        "a/y:r1", "b/default:r1", "a/x:r1",
        "b/default:r2", "a/x:r2", "a/y:r2",
    ]  # fmt: skip


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
