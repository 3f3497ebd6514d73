"""Pure parts of planning: filters, plan rows, profiles, adaptive precision, time estimates."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.run import adaptive, estimate, profiles
from bench.run.plan import parse_filter, plan, plan_rows, select
from bench.scenario.model import Scenario, parse_scenario
from tests.fake_backend import (
    FakeBackend,
    FakeScript,
    KeepingFakeBackend,
    register_fakes,
    scenario_data,
)


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    register_fakes(monkeypatch, "a", "b")


def scenario(**overrides: Any) -> Scenario:
    return parse_scenario(scenario_data(["a", "b"], **overrides))


BACKENDS = {"a": FakeBackend("a", FakeScript(variants=("x", "y"))), "b": FakeBackend("b")}


def test_filters_by_field_glob_substring_and_negation() -> None:
    items = plan([scenario(), scenario(name="t")], BACKENDS)

    def ids(chosen: list[Any]) -> list[str]:
        return sorted({f"{i.scenario.name}/{i.backend}/{i.variant.label}" for i in chosen})

    four = ["s/a/x", "s/a/y", "t/a/x", "t/a/y"]
    assert ids(select(items, [parse_filter("backend=a")])) == four
    assert ids(select(items, [parse_filter("t"), parse_filter("!variant=default")])) == [
        "t/a/x",
        "t/a/y",
    ]
    assert ids(select(items, [parse_filter("variant=?")])) == four
    with pytest.raises(ValueError, match="unknown filter field 'host'"):
        parse_filter("host=x")
    with pytest.raises(ValueError, match="empty filter"):
        parse_filter("!")


def test_plan_rows_count_warmups_repetitions_and_adaptive_cap() -> None:
    rows = plan_rows(plan([scenario(precision=0.05, max_repeat=12)], BACKENDS))
    assert [(r.backend, r.variant, r.warmups, r.repetitions, r.cap) for r in rows] == [
        ("a", "x", 1, 3, 12),
        ("a", "y", 1, 3, 12),
        ("b", "default", 1, 3, 12),
    ]


def test_profiles() -> None:
    base = scenario(repeat=5, warmup=2, precision=0.1)
    quick = profiles.apply(base, profiles.PROFILES["quick"])
    assert (quick.repeat, quick.warmup, quick.precision) == (1, 0, None)
    default = profiles.apply(base, profiles.PROFILES["default"])
    assert (default.repeat, default.warmup, default.precision) == (3, 2, 0.1)
    assert default.counts_for("vagrant") == (2, 2)  # VMs: at most 2 measured repetitions
    assert profiles.apply(scenario(repeat=2), profiles.PROFILES["default"]).repeat == 2
    publish = profiles.apply(base, profiles.PROFILES["publish"])
    assert (publish.repeat, publish.warmup, publish.precision, publish.max_repeat) == (
        10, 2, 0.1, 30,
    )  # fmt: skip
    cli = profiles.apply(base, profiles.PROFILES["quick"], repeat=4, precision=0.02)
    assert (cli.repeat, cli.precision, cli.hash) == (4, 0.02, base.hash)


def test_relative_half_width_needs_six_samples_and_a_95_percent_interval() -> None:
    assert adaptive.relative_half_width([1.0] * 5) == math.inf
    assert adaptive.relative_half_width([1.0] * 6) == 0.0
    values = [9.0, 10.0, 10.0, 10.0, 10.0, 11.0]  # n = 6: the interval is [min, max]
    assert adaptive.relative_half_width(values) == pytest.approx(0.1)
    worst = adaptive.precision({"m1": [10.0] * 6, "m2": values, "empty": []})
    assert (worst.metric, worst.reached(0.1), worst.reached(0.05)) == ("m2", True, False)


def test_default_estimates_come_from_the_workload_and_the_backend() -> None:
    disk = scenario(workload={"kind": "disk", "runtime": 2.0, "file_size": "64MiB"})
    per_rep, setup = estimate.default_seconds(disk, "native")
    assert per_rep == pytest.approx(5 * 2.0 + 64 * 2**20 / 300e6 + 0.5)
    assert setup == 0
    vm = estimate.default_seconds(scenario(), "vagrant")
    assert vm == (estimate.DEFAULT_COSTS["vagrant"].boot_per_startup, 0.0)
    command = scenario(workload={"kind": "command", "command": ["sysbench", "--time=5", "run"]})
    assert estimate.native_seconds(command) == pytest.approx(5.1)


def test_history_of_this_host_only(tmp_path: Path) -> None:
    s = scenario()
    for run, host, seconds in (("r1", "me", 2.0), ("r2", "me", 4.0), ("r3", "other", 100.0)):
        (tmp_path / run).mkdir()
        env = {
            "host": {"identity": {"fingerprint": host}},
            "timing": {"units": [{"scenario": "s", "scenario_hash": s.hash, "backend": "b",
                                  "variant": "default", "rep_s": [seconds] * 3,
                                  "warmup_s": [seconds], "prepare_s": 1.0, "teardown_s": 0.5}]},
        }  # fmt: skip
        (tmp_path / run / "environment.json").write_text(json.dumps(env))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "environment.json").write_text("[not json")
    history = estimate.load_history(tmp_path, "me")
    assert history.runs == 2
    rows = plan_rows(plan([s], {"b": FakeBackend("b")}))
    (only,) = estimate.estimate(rows, history)
    assert (only.per_rep, only.setup, only.source) == (3.0, 1.5, "history")
    assert only.seconds == 4 * 3.0 + 1.5
    assert estimate.duration(125) == "2 min 05 s"
    assert estimate.duration(3.25) == "3.2 s"


def test_a_vm_may_take_fewer_repetitions_than_the_scenario() -> None:
    s = scenario(backends=["a", "vagrant"], repeat=4, warmup=1, vagrant={"repeat": 2, "warmup": 0})
    assert s.hash == scenario(backends=["a", "vagrant"], repeat=4, warmup=1).hash
    backends = {"a": FakeBackend("a"), "vagrant": FakeBackend("vagrant", interleave=False)}
    rows = plan_rows(plan([s], backends))
    assert [(r.backend, r.warmups, r.repetitions) for r in rows] == [("a", 1, 4), ("vagrant", 0, 2)]
    vm_item = next(i for i in plan([s], backends) if i.backend == "vagrant")
    assert vm_item.describe() == "s vagrant/default rep 1/2"
    # a profile or --repeat that sets counts sets them for every backend
    quick = profiles.apply(s, profiles.PROFILES["quick"])
    assert quick.counts_for("vagrant") == (0, 1)
    assert profiles.apply(s, profiles.PROFILES["default"], repeat=3).counts_for("vagrant") == (0, 3)
    assert profiles.apply(s, profiles.PROFILES["default"]).counts_for("vagrant") == (0, 2)
    single = scenario(backends=["a", "vagrant"], repeat=4, vagrant={"repeat": 1})
    assert profiles.apply(single, profiles.PROFILES["default"]).counts_for("vagrant") == (1, 1)


def test_a_kept_vm_is_booted_once_in_the_estimate(tmp_path: Path) -> None:
    """Rows sharing a kept environment: the first pays the boot, the others the resume."""
    vm = KeepingFakeBackend("vagrant", shared_kinds=("syscall", "disk"))
    backends = {"a": FakeBackend("a"), "vagrant": vm}
    one = scenario(name="one", backends=["a", "vagrant"], workload={"kind": "syscall"})
    fresh = scenario(name="two", backends=["a", "vagrant"], workload={"kind": "memory"})
    three = scenario(name="three", backends=["a", "vagrant"], workload={"kind": "disk"})
    rows = plan_rows(plan([one, fresh, three], backends), backends)
    assert [(r.scenario.name, r.backend, r.shared) for r in rows] == [
        ("one", "a", None), ("one", "vagrant", "vagrant:env"), ("three", "a", None),
        ("three", "vagrant", "vagrant:env"), ("two", "a", None), ("two", "vagrant", None),
    ]  # fmt: skip
    cost = estimate.DEFAULT_COSTS["vagrant"]
    setups = [e.setup for e in estimate.estimate(rows) if e.row.backend == "vagrant"]
    assert setups == [cost.setup, cost.resume, 0.0]  # memory boots in every repetition
    # from this host's history: the boot and the resume as measured
    history = estimate.History()
    for name, setup in (("one", 50.0), ("three", 0.4), ("two", 0.0)):
        history.add({"scenario": name, "backend": "vagrant", "variant": "default",
                     "rep_s": [1.0], "prepare_s": setup})  # fmt: skip
    setups = [e.setup for e in estimate.estimate(rows, history) if e.row.backend == "vagrant"]
    assert setups == [50.0, 0.4, 0.0]


def test_a_fresh_vm_memory_repetition_is_estimated_with_its_boot() -> None:
    memory = scenario(workload={"kind": "memory", "alloc": "64MiB", "idle": 2})
    per_rep, setup = estimate.default_seconds(memory, "vagrant")
    assert setup == 0.0
    assert per_rep > estimate.DEFAULT_COSTS["vagrant"].boot_per_startup


def test_history_of_an_unreadable_directory_is_empty(tmp_path: Path) -> None:
    assert estimate.load_history(tmp_path / ("x" * 300), "me").runs == 0  # ENAMETOOLONG
    assert estimate.load_history(tmp_path / "absent", "me").runs == 0
    (tmp_path / "file").write_text("")
    assert estimate.load_history(tmp_path / "file", "me").runs == 0
