"""Execution: rows for every outcome, teardown, facts, watchdog, Ctrl-C (fake backends)."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench import backends as registry
from bench.backends.base import Backend, Repetition
from bench.results import SCHEMA_VERSION, ResultsWarning, load
from bench.run import runner as runner_module
from bench.run.runner import RunResult, execute_run, plan
from bench.scenario.loader import LoadedScenario
from bench.scenario.model import parse_scenario
from bench.values import Availability, Measurement, Outcome
from tests.fake_backend import (
    FakeBackend,
    FakeScript,
    KeepingFakeBackend,
    register_fakes,
    scenario_data,
)


@pytest.fixture(autouse=True)
def _quick_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # host_info() asks every tool for its version; one test below checks the real thing
    monkeypatch.setattr(runner_module, "host_info", lambda: {"hostname": "testhost"})
    register_fakes(monkeypatch, "a", "b", "c")


def loaded(tmp_path: Path, **overrides: Any) -> LoadedScenario:
    defaults = {"workload": {"kind": "syscall"}, "repeat": 2, "timeout": 5}
    data = scenario_data(["a", "b", "c"], **(defaults | overrides))
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(json.dumps(data))
    return LoadedScenario(parse_scenario(data), path, path.read_text())


def go(tmp_path: Path, backends: dict[str, Backend], *scenarios: LoadedScenario,
       grace: float = 30.0) -> RunResult:  # fmt: skip
    items = plan([s.scenario for s in scenarios], backends)
    availability = {name: Availability(True) for name in backends}
    return execute_run(
        scenarios, items, backends, availability, tmp_path / "results", watchdog_grace=grace
    )


def frame(result: RunResult) -> pd.DataFrame:
    return load([result.run_dir])


def test_ok_rows_values_units_and_parquet(tmp_path: Path) -> None:
    fake = FakeBackend("a", FakeScript(values={"syscall.null_rate": 100.0}))
    result = go(tmp_path, {"a": fake}, loaded(tmp_path, backends=["a"]))
    df = frame(result)
    assert (result.run_dir / "samples.parquet").exists()
    assert len(df) == 3 * 2  # (1 warmup + 2 reps) x 2 contract metrics
    assert set(df["status"]) == {"ok"}
    null = df[df["metric"] == "syscall.null_rate"].sort_values(["warmup", "repetition"])
    assert null["value"].tolist() == [100.0, 101.0, 100.0]  # base + index: reps 0,1 then warmup 0
    assert set(df["unit"]) == {"calls/s"}  # from the metric catalog
    assert df["scenario_hash"].nunique() == 1
    assert fake.teardowns >= 1


def test_failure_timeout_and_crash_rows_and_run_goes_on(tmp_path: Path) -> None:
    fake = FakeBackend("a", FakeScript(fail={0}, timeout={1}, crash={2}))
    result = go(tmp_path, {"a": fake}, loaded(tmp_path, backends=["a"], repeat=3))
    df = frame(result)
    by_call = {k: set(g["status"]) for k, g in df.groupby(["warmup", "repetition"])}
    assert by_call[(True, 0)] == {"failed"}
    assert by_call[(False, 0)] == {"timeout"}
    assert by_call[(False, 1)] == {"failed"}
    assert by_call[(False, 2)] == {"ok"}
    bad = df[df["status"] != "ok"]
    assert bad["value"].isna().all()
    assert len(bad) == 3 * 2  # one row per contract metric each
    reasons = set(bad["reason"])
    assert "scripted failure at call 0" in reasons
    assert "scripted timeout after 5 s" in reasons
    assert "RuntimeError: scripted crash at call 2" in reasons
    log = (result.run_dir / "runner.log").read_text()
    assert "Traceback" in log
    assert "scripted crash" in log


def test_prepare_failure_skips_that_backend_only(tmp_path: Path) -> None:
    broken = FakeBackend("a", FakeScript(prepare_error="image missing"))
    fine = FakeBackend("b")
    result = go(tmp_path, {"a": broken, "b": fine}, loaded(tmp_path, backends=["a", "b"]))
    df = frame(result)
    skipped = df[df["backend"] == "a"]
    assert len(skipped) == 3 * 2
    assert set(skipped["status"]) == {"skipped"}
    assert set(skipped["reason"]) == {"prepare failed: image missing"}
    assert set(df[df["backend"] == "b"]["status"]) == {"ok"}
    assert broken.calls == []
    assert broken.teardowns >= 1  # torn down even though prepare failed


def test_runner_follows_the_plan_and_isolates_a_block(tmp_path: Path) -> None:
    journal: list[str] = []
    backends: dict[str, Backend] = {
        "a": FakeBackend("a", journal=journal),
        "b": FakeBackend("b", journal=journal),
        "c": FakeBackend("c", interleave=False, journal=journal),
    }
    scenario = loaded(tmp_path, warmup=0)
    items = plan([scenario.scenario], backends, seed=11)
    availability = {name: Availability(True) for name in backends}
    execute_run([scenario], items, backends, availability, tmp_path / "results")
    runs = [e for e in journal if ":run:" in e]
    planned = [f"{i.backend}:run:{i.variant.label}:r{i.index}" for i in items]
    assert runs == planned  # the runner executes the plan's order, block included
    assert runs[2:4] == ["c:run:default:r0", "c:run:default:r1"]  # between the two rounds
    prepare_c, teardown_c = journal.index("c:prepare:default"), journal.index("c:teardown")
    # the others are torn down while the block runs and prepared again after it
    for name in ("a", "b"):
        assert journal.index(f"{name}:teardown") < prepare_c
        assert journal.index(f"{name}:prepare:default", prepare_c) > teardown_c
    assert teardown_c > journal.index("c:run:default:r1")


def test_facts_journal_observed_and_warnings(tmp_path: Path) -> None:
    fake = FakeBackend("a", FakeScript(facts={"kernel": "6.1", "warning": "limits ignored"}))
    result = go(tmp_path, {"a": fake}, loaded(tmp_path, backends=["a"]))
    lines = (result.run_dir / "facts.jsonl").read_text().splitlines()
    assert len(lines) == 3
    record = json.loads(lines[0])
    assert record["backend"] == "a"
    assert record["facts"]["kernel"] == "6.1"
    env = json.loads((result.run_dir / "environment.json").read_text())
    assert env["observed"]["a"]["default"]["kernel"] == "6.1"
    assert "a/default: limits ignored" in env["warnings"]


def test_missing_and_non_finite_metrics_become_failed_rows(tmp_path: Path) -> None:
    class Partial(FakeBackend):
        def run(self, repetition: Repetition) -> Outcome:
            return Outcome([Measurement("syscall.null_rate", math.inf)])

    result = go(tmp_path, {"a": Partial("a")}, loaded(tmp_path, backends=["a"], warmup=0))
    df = frame(result)
    assert set(df["status"]) == {"failed"}
    reasons = set(df["reason"])
    assert "backend did not report this metric" in reasons
    assert "backend reported a non-finite value (inf)" in reasons


def test_watchdog_turns_a_hung_backend_into_a_timeout_row(tmp_path: Path) -> None:
    fake = FakeBackend("a", FakeScript(hang={0}))
    scenario = loaded(tmp_path, backends=["a"], warmup=0, repeat=2, timeout=0.2)
    result = go(tmp_path, {"a": fake}, scenario, grace=0.1)
    df = frame(result)
    first = df[df["repetition"] == 0]
    assert set(first["status"]) == {"timeout"}
    assert "interrupted by the runner" in first["reason"].iloc[0]
    assert set(df[df["repetition"] == 1]["status"]) == {"ok"}


def test_ctrl_c_keeps_measured_samples_and_writes_parquet(tmp_path: Path) -> None:
    fake = FakeBackend("a", FakeScript(interrupt={2}))
    result = go(tmp_path, {"a": fake}, loaded(tmp_path, backends=["a"], repeat=5))
    assert result.interrupted
    assert (result.run_dir / "samples.parquet").exists()
    with pytest.warns(ResultsWarning, match="interrupted"):
        df = frame(result)
    assert len(df) == 2 * 2  # calls 0 and 1 were measured, call 2 was interrupted
    assert fake.teardowns >= 1
    env = json.loads((result.run_dir / "environment.json").read_text())
    assert env["interrupted"] is True
    assert env["finished"] is not None
    assert any("interrupted" in w for w in env["warnings"])


def test_sigterm_stops_like_ctrl_c(tmp_path: Path) -> None:
    class Terminated(FakeBackend):
        def run(self, repetition: Repetition) -> Outcome:
            if len(self.calls) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().run(repetition)

    before = signal.getsignal(signal.SIGTERM)
    result = go(tmp_path, {"a": Terminated("a")}, loaded(tmp_path, backends=["a"], repeat=4))
    assert result.interrupted
    assert result.state == "interrupted"
    with pytest.warns(ResultsWarning, match="interrupted"):
        assert len(frame(result)) == 1 * 2
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored


def test_environment_json_layout_with_real_host_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the real host_info this time
    registry.register("a", FakeBackend)
    try:
        result = go(tmp_path, {"a": FakeBackend("a")}, loaded(tmp_path, backends=["a"]))
    finally:
        registry.unregister("a")
    env = json.loads((result.run_dir / "environment.json").read_text())
    assert env["schema_version"] == SCHEMA_VERSION
    assert env["run_id"] == result.run_id
    assert env["interrupted"] is False
    assert set(env["harness"]) >= {"version", "git_sha", "git_dirty", "python"}
    host_keys = {"hostname", "kernel", "os", "cpu_model", "cpu_count", "memory_bytes",
                 "cgroup_version", "mitigations", "virtualized", "hypervisor", "governor",
                 "turbo", "tools"}  # fmt: skip
    assert set(env["host"]) >= host_keys
    assert env["host"]["cpu_count"] == os.cpu_count()
    assert "python" in env["host"]["tools"]
    entry = env["scenarios"]["s"]
    assert entry["workload"] == "syscall"
    assert (result.run_dir / entry["file"]).read_text() == (tmp_path / "s.yaml").read_text()
    assert entry["definition"]["repeat"] == 2
    assert env["backends"]["a"] == {
        "available": True, "reason": "", "hint": "", "kind": "fake", "variants": ["default"],
            "notes": [],
    }  # fmt: skip
    assert set(env["health"]) >= {"before", "after", "swap_delta"}
    assert isinstance(env["warnings"], list)
    assert not (result.run_dir / "work").exists()


def test_a_stop_signal_while_the_run_directory_is_made_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = runner_module.create_run_dir

    def made_then_terminated(out: Path) -> tuple[str, Path]:
        made_run = made(out)
        os.kill(os.getpid(), signal.SIGTERM)  # lands before the writer and the try exist
        return made_run

    monkeypatch.setattr(runner_module, "create_run_dir", made_then_terminated)
    result = go(tmp_path, {"a": FakeBackend("a")}, loaded(tmp_path, backends=["a"], repeat=2))
    assert result.interrupted
    assert json.loads((result.run_dir / "end.json").read_text())["state"] == "interrupted"


def test_a_kept_environment_is_parked_between_scenarios_and_torn_down_at_the_end(
    tmp_path: Path,
) -> None:
    """A backend keeping its environment (a VM) is parked after each block, torn down once."""
    journal: list[str] = []
    vm = KeepingFakeBackend("c", shared_kinds=("syscall", "disk"), journal=journal)
    backends: dict[str, Backend] = {"a": FakeBackend("a", journal=journal), "c": vm}
    one = loaded(tmp_path, name="one", backends=["a", "c"])
    fresh = loaded(tmp_path, name="two", backends=["a", "c"], workload={"kind": "memory"})
    three = loaded(tmp_path, name="three", backends=["a", "c"], workload={"kind": "disk"})
    items = plan([one.scenario, fresh.scenario, three.scenario], backends)
    # the scenarios sharing the environment run next to each other
    assert list(dict.fromkeys(i.scenario.name for i in items)) == ["one", "three", "two"]
    execute_run([one, fresh, three], items, backends, {"a": Availability(True),
                "c": Availability(True)}, tmp_path / "results")  # fmt: skip
    mine = [e for e in journal if e.startswith("c:") and ":run:" not in e]
    assert mine == ["c:prepare:default", "c:park", "c:prepare:default", "c:park",
                    "c:prepare:default", "c:park", "c:teardown"]  # fmt: skip


def test_a_kept_environment_is_torn_down_on_ctrl_c(tmp_path: Path) -> None:
    journal: list[str] = []
    vm = KeepingFakeBackend("c", FakeScript(interrupt={1}), shared_kinds=("syscall",),
                            journal=journal)  # fmt: skip
    scenario = loaded(tmp_path, backends=["c"], warmup=0)
    assert go(tmp_path, {"c": vm}, scenario).interrupted
    assert journal[-2:] == ["c:park", "c:teardown"]
