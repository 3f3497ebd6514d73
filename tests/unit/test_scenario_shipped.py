"""The scenarios shipped in scenarios/ (the default suite) and scenarios/extended/."""

from __future__ import annotations

import re

from pydantic import BaseModel

from bench import paths
from bench.metrics import CATALOG
from bench.scenario.loader import load_scenarios
from bench.scenario.model import Scenario, sub_models, workload_classes
from bench.workloads import CONTRACT

SCENARIOS = paths.REPO_ROOT / "scenarios"
EXTENDED = SCENARIOS / "extended"
#: The default suite (`nox -s bench`, a bare `isobench run`): one file per classic workload.
DEFAULT_SUITE = {"disk", "memory", "startup", "syscall"}
README = (SCENARIOS / "README.md").read_text(encoding="utf-8")


def test_shipped_scenarios_validate_every_workload_kind_covered():
    loaded = load_scenarios([SCENARIOS, EXTENDED])
    kinds = {item.scenario.workload.kind for item in loaded}
    assert kinds == set(CONTRACT)
    for item in loaded:
        assert item.path.stem == item.scenario.name
        assert len(item.scenario.description) > 80, item.path
        assert item.scenario.timeout >= 300  # a VM under software emulation is slow


def test_default_suite_is_the_classic_scenarios_and_extended_is_not_in_it():
    assert {item.scenario.name for item in load_scenarios([SCENARIOS])} == DEFAULT_SUITE
    extended = {item.scenario.name for item in load_scenarios([EXTENDED])}
    assert extended == {
        "command",
        "density",
        "felter-cpu",
        "felter-memory-bandwidth",
        "felter-randread-qd32",
        "network",
    }
    assert "scenarios/extended/" in README


def test_default_suite_keeps_every_rung_of_the_ladder():
    """startup, syscall and memory ask for every backend and the runtimes of the ladder."""
    ladders = [i.scenario for i in load_scenarios([SCENARIOS]) if i.scenario.ladder]
    assert {s.name for s in ladders} == {"memory", "startup", "syscall"}
    for scenario in ladders:
        assert set(scenario.backends) == {"native", "sandbox", "docker", "podman", "vagrant"}
        assert "runsc" in scenario.docker.runtimes


def test_fresh_vm_scenarios_take_no_vm_warmup():
    """Each VM repetition of startup and memory boots afresh: a warm-up boot warms nothing."""
    for item in load_scenarios([SCENARIOS]):
        if item.scenario.workload.kind in {"startup", "memory"}:
            assert item.scenario.counts_for("vagrant")[0] == 0, item.path


def test_shipped_scenarios_are_sized_for_a_short_default_run():
    for item in load_scenarios([SCENARIOS, EXTENDED]):
        s = item.scenario
        # syscall is the gating scenario: it takes the n the gate calibration asks for
        # (tests/unit/test_compare_gate.py, GATE_N); its repetitions take about a second
        limit = 11 if s.name == "syscall" else 6
        assert s.repeat + s.warmup <= limit, item.path
        workload = s.workload.model_dump()
        assert workload.get("null_calls", 0) <= 1_000_000
        assert workload.get("file_size", 0) <= 256 * 1024**2


def test_readme_documents_every_field_of_every_model():
    table = {line.split("|")[1].strip() for line in README.splitlines() if line.startswith("| `")}
    for name, info in Scenario.model_fields.items():
        model = info.annotation
        if name == "workload":
            assert "| `workload` |" in README
        elif isinstance(model, type) and issubclass(model, BaseModel):
            for field in model.model_fields:
                assert f"`{name}.{field}`" in table, f"{name}.{field}"
        else:
            assert f"`{name}`" in table, name
    assert "`vagrant.sizes[].cpus`" in table
    assert "`vagrant.sizes[].memory`" in table
    for workload in (*workload_classes(), *sub_models()):
        for field in workload.model_fields:
            assert f"`{field}`" in README, (workload.__name__, field)


def test_readme_documents_every_contract_metric_with_its_unit():
    for kind, metrics in CONTRACT.items():
        assert f"### `{kind}`" in README
        for metric in metrics:
            unit = CATALOG[metric].unit
            assert re.search(rf"`{re.escape(metric)}`[^\n]*\| {re.escape(unit)} ", README) or (
                f"`{metric}` ({unit})" in README
            ), metric


def test_readme_states_the_safety_limits():
    for fragment in ("256 KiB", "10,000", "billion laughs", "!!python", "Duplicate keys"):
        assert fragment in README
