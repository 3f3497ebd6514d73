"""The metric catalog is complete: every name a module can emit has a unit and a direction.

Grep-free: each emitting module declares ``EMITS`` (collected here by importing every module
of the package); the shared parsers are run on literal tool outputs and their names must be
among the declared ones; the runner refuses any other name unless the scenario declares it.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import bench
from bench import backends as registry
from bench import metrics, report, workloads
from bench import stats as st
from bench.backends.base import Repetition
from bench.results import load
from bench.run import runner as runner_module
from bench.run.runner import execute_run, plan
from bench.scenario.loader import LoadedScenario
from bench.scenario.model import parse_scenario
from bench.values import Availability, Measurement, Outcome
from tests.fake_backend import FakeBackend

SYSBENCH_OUTPUT = """
CPU speed:
    events per second:  3469.12
Latency (ms):
         min:                                    0.27
         avg:                                    0.29
         max:                                   26.20
         95th percentile:                        0.30
"""
FIO_OUTPUT = json.dumps(
    {
        "jobs": [
            {"jobname": "seq_write", "write": {"bw_bytes": 9e8, "io_bytes": 1}},
            {"jobname": "seq_read", "read": {"bw_bytes": 1.8e9, "io_bytes": 1}},
            {"jobname": "rand_read", "read": {"iops": 9e4, "io_bytes": 1}},
            {"jobname": "rand_write", "write": {"iops": 4e4, "io_bytes": 1}},
            {"jobname": "fsync", "sync": {"lat_ns": {"mean": 1.1e6}}},
        ]
    }
)
FIO_GENERIC = (
    '{"jobs": [{"jobname": "j", "read": {"io_bytes": 10, "bw_bytes": 5, "iops": 2},'
    ' "write": {"io_bytes": 4, "bw_bytes": 3, "iops": 1}}]}'
)
TIME_STDERR = "isobench_time wall=0.50 user=0.40 sys=0.05 maxrss_kb=2048\n"


def declarations() -> dict[str, frozenset[str]]:
    """Module name -> its EMITS, for every module of the bench package."""
    found: dict[str, frozenset[str]] = {}
    for info in pkgutil.walk_packages(bench.__path__, "bench."):
        if info.name.endswith("__main__"):
            continue  # running it would start the CLI
        module = importlib.import_module(info.name)
        emits = getattr(module, "EMITS", None)
        if emits is not None:
            found[info.name] = frozenset(emits)
    return found


def test_every_declared_metric_is_catalogued_with_unit_and_direction() -> None:
    found = declarations()
    # the workloads' parsers and every backend's own measurements
    assert {
        "bench.workloads",
        "bench.backends.native.measure",
        "bench.backends.docker.measure",
        "bench.backends.vagrant.startup",
        "bench.backends.vagrant.memory",
    } <= set(found)
    missing = sorted(
        f"{module}: {name}"
        for module, names in found.items()
        for name in names
        if metrics.lookup(name) is None
    )
    assert missing == []
    for names in found.values():
        for name in names:
            entry = metrics.lookup(name)
            assert entry is not None
            assert entry.unit
            assert entry.family == name.split(".", 1)[0]


def test_parsers_on_literal_outputs_emit_only_declared_names() -> None:
    emitted = [
        *workloads.parse_syscall("null_rate=4.4e6\nmixed_rate=4e5\nkernel=6.1\n").measurements,
        *workloads.parse_fio(FIO_OUTPUT),
        *workloads.parse_sysbench(SYSBENCH_OUTPUT),
        *workloads.parse_time(TIME_STDERR),
        *workloads.parse_fio_generic(FIO_GENERIC),
    ]
    declared = {metrics.lookup(n) for n in workloads.EMITS}
    for measurement in emitted:
        entry = metrics.lookup(measurement.metric)
        assert entry is not None, measurement.metric
        assert any(d is not None and d.description == entry.description for d in declared)
        if measurement.unit:
            assert measurement.unit == entry.unit, measurement.metric
    names = {m.metric for m in emitted}
    assert {"command.j.read_bw", "command.j.write_iops", "disk.fsync_latency"} <= names


def test_fake_backend_emits_catalogued_names_for_every_kind() -> None:
    fake = FakeBackend("fake")
    for kind in workloads.CONTRACT:
        workload: dict[str, Any] = {"kind": kind}
        if kind == "command":
            workload["command"] = ["true"]
        scenario = parse_scenario({"format_version": 1, "name": "s", "workload": workload})
        variant = fake.variants(scenario)[0]
        outcome = fake.run(Repetition(scenario, variant, 0, False, 5.0, Path()))
        assert all(metrics.lookup(m.metric) for m in outcome.measurements)


def test_directions_fixed_by_issue_9() -> None:
    assert metrics.higher_is_better("memory.guest_available")  # a drop is a loss
    for name in ("startup.vagrant_cli", "memory.vmm_rss"):
        entry = metrics.lookup(name)
        assert entry is not None
        assert not entry.higher_is_better
    assert metrics.higher_is_better("command.myjob.read_bw")  # a catalogued pattern
    assert metrics.lookup("command.a.b.read_bw") is None  # <job> is one dotted segment
    # nothing is guessed from a name any more
    assert not metrics.higher_is_better("command.unknown_rate")
    assert metrics.higher_is_better("command.unknown_rate", {"command.unknown_rate": True})


class Surprising(FakeBackend):
    """Emits the contract plus one name the catalog does not know."""

    def run(self, repetition: Repetition) -> Outcome:
        outcome = super().run(repetition)
        extra = Measurement("command.hits_rate", 10.0 + repetition.index)
        return Outcome([*outcome.measurements, extra], {})


def command_scenario(tmp_path: Path, **workload: Any) -> LoadedScenario:
    data = {
        "format_version": 1,
        "name": "cmd",
        "workload": {"kind": "command", "command": ["true"], **workload},
        "backends": ["a"],
        "repeat": 5,
        "warmup": 0,
    }
    path = tmp_path / "cmd.yaml"
    path.write_text(json.dumps(data))
    return LoadedScenario(parse_scenario(data), path, path.read_text())


@pytest.fixture
def fake_a(monkeypatch: pytest.MonkeyPatch) -> Surprising:
    monkeypatch.setattr(runner_module, "host_info", lambda: {"hostname": "testhost"})
    monkeypatch.setitem(registry._EXTRA, "a", FakeBackend)
    return Surprising("a")


def run_rows(tmp_path: Path, backend: Surprising, scenario: LoadedScenario) -> Any:
    items = plan([scenario.scenario], {"a": backend})
    result = execute_run(
        [scenario], items, {"a": backend}, {"a": Availability(True)}, tmp_path / "r"
    )
    return load([result.run_dir])


def test_uncatalogued_metric_is_refused_with_a_reason(tmp_path: Path, fake_a: Surprising) -> None:
    df = run_rows(tmp_path, fake_a, command_scenario(tmp_path))
    extra = df[df["metric"] == "command.hits_rate"]
    assert len(extra) == 5
    assert set(extra["status"]) == {"failed"}
    assert "not in the catalog" in extra["reason"].iloc[0]
    assert "workload.metrics" in extra["reason"].iloc[0]
    assert set(df[df["metric"] == "command.wall"]["status"]) == {"ok"}


def test_a_declared_metric_is_kept_with_its_unit_and_direction(
    tmp_path: Path, fake_a: Surprising
) -> None:
    declared = [{"name": "command.hits_rate", "unit": "hits/s", "direction": "higher"}]
    loaded = command_scenario(tmp_path, metrics=declared)
    df = run_rows(tmp_path, fake_a, loaded)
    extra = df[df["metric"] == "command.hits_rate"]
    assert set(extra["status"]) == {"ok"}
    assert set(extra["unit"]) == {"hits/s"}
    env = json.loads((tmp_path / "r" / str(df["run_id"].iloc[0]) / "environment.json").read_text())
    directions = report.declared_directions([env])  # what the report reads back
    assert directions == {"command.hits_rate": True}
    summary = st.summarize(df, declared=directions)
    assert bool(summary.set_index("metric").loc["command.hits_rate", "higher_is_better"])


def test_a_declaration_cannot_override_the_catalog() -> None:
    with pytest.raises(ValueError, match="is catalogued"):
        parse_scenario(
            {
                "format_version": 1,
                "name": "c",
                "workload": {
                    "kind": "command",
                    "command": ["x"],
                    "metrics": [{"name": "command.wall", "unit": "s", "direction": "higher"}],
                },
            }
        )
