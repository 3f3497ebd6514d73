"""The native backend for real, every workload kind, through `isobench run` (tiny parameters).

Values are checked against plausibility ranges, not exact numbers: they are measurements.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from bench.cli import main
from bench.results import load
from tests.engines import skip_or_fail

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def run_native(
    tmp_path: Path, body: str, name: str = "t", repeat: int = 2, status: int | set[int] = 0
) -> pd.DataFrame:
    """Run one scenario natively; ``status``: the exit status(es) expected (1: no success)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(
        f"format_version: 1\nname: {name}\nbackends: [native]\nrepeat: {repeat}\nwarmup: 1\n{body}"
    )
    out = tmp_path / "results"
    argv = ["run", str(scenario), "--backend", "native", "--out", str(out), "--plain"]
    assert main(argv) in ({status} if isinstance(status, int) else status)
    runs = list(out.iterdir())
    assert len(runs) == 1
    frame = load(runs)
    frame.attrs["run_dir"] = runs[0]
    return frame


def ok_values(frame: pd.DataFrame, metric: str) -> pd.Series:
    rows = frame[(frame["metric"] == metric) & ~frame["warmup"]]
    assert len(rows) >= 1, metric
    assert set(rows["status"]) == {"ok"}, rows["reason"].tolist()
    return rows["value"]


@pytest.fixture(autouse=True)
def _needs_compiler() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        skip_or_fail("no C compiler to build the static probe")


def test_startup(tmp_path: Path) -> None:
    df = run_native(tmp_path, "workload: {kind: startup}\ntimeout: 30\n", repeat=3)
    ready, total = ok_values(df, "startup.ready"), ok_values(df, "startup.total")
    assert ((ready > 0) & (ready < 0.5)).all()
    assert (total.to_numpy() >= ready.to_numpy()).all()
    assert (total < 1.0).all()
    assert set(df["unit"]) == {"s"}
    assert len(df[df["warmup"]]) == 2  # one warmup, both metrics, kept and flagged


def test_syscall(tmp_path: Path) -> None:
    body = "workload: {kind: syscall, null_calls: 200000, mixed_calls: 20000}\ntimeout: 60\n"
    df = run_native(tmp_path, body)
    null, mixed = ok_values(df, "syscall.null_rate"), ok_values(df, "syscall.mixed_rate")
    assert ((null > 1e4) & (null < 1e9)).all()  # 1 ns .. 100 µs per getppid
    assert ((mixed > 1e3) & (mixed < 1e9)).all()
    assert mixed.median() < null.median()  # open/stat/read do more work than getppid
    env = json.loads((df.attrs["run_dir"] / "environment.json").read_text())
    assert env["observed"]["native"]["host"]["kernel"] == env["host"]["kernel"]


def test_memory(tmp_path: Path) -> None:
    body = "workload: {kind: memory, alloc: 16MiB, idle: 0.3}\ntimeout: 60\n"
    df = run_native(tmp_path, body)
    environment = ok_values(df, "memory.environment")
    peak = ok_values(df, "memory.workload_peak")
    # the probe touched 16 MiB; a static binary adds well under 4 MiB on top
    assert ((environment >= 16 * MiB) & (environment < 20 * MiB)).all()
    assert ((peak >= 16 * MiB) & (peak < 20 * MiB)).all()
    assert set(df[df["metric"] == "memory.environment"]["unit"]) == {"B"}


def test_disk(tmp_path: Path) -> None:
    if shutil.which("fio") is None:
        skip_or_fail("fio is not installed")
    body = "workload: {kind: disk, file_size: 4MiB, runtime: 0.3}\ntimeout: 120\n"
    df = run_native(tmp_path, body, repeat=1)
    for metric in ("disk.seq_read", "disk.seq_write"):
        assert (ok_values(df, metric) > 1e6).all(), metric  # > 1 MB/s
    for metric in ("disk.rand_read_iops", "disk.rand_write_iops"):
        assert (ok_values(df, metric) > 10).all(), metric
    fsync = ok_values(df, "disk.fsync_latency")
    assert ((fsync > 1e-7) & (fsync < 1.0)).all()
    lines = (df.attrs["run_dir"] / "facts.jsonl").read_text().splitlines()
    facts = [json.loads(line) for line in lines]
    assert facts[0]["facts"]["disk_host_fs_type"] not in ("", "unknown")
    assert facts[0]["facts"]["direct_io"] == "on"  # the default; no silent fallback


def test_command_parsers_and_a_timeout_row(tmp_path: Path) -> None:
    if not Path("/usr/bin/time").exists():
        skip_or_fail("GNU time (/usr/bin/time) is not installed")
    timed = "workload: {kind: command, command: [sleep, '0.2'], parser: time}\ntimeout: 30\n"
    df = run_native(tmp_path / "a", timed, name="timed")
    wall = ok_values(df, "command.wall")
    assert ((wall >= 0.15) & (wall < 2.0)).all()
    assert (ok_values(df, "command.max_rss") > 0).all()

    # An unusual duration, so that no unrelated `sleep` on the host is mistaken for ours.
    hung = "workload: {kind: command, command: [sleep, '3141.59']}\ntimeout: 0.5\n"
    started = time.monotonic()
    df = run_native(tmp_path / "b", hung, name="hung", repeat=1, status=1)
    assert time.monotonic() - started < 20
    assert set(df["status"]) == {"timeout"}
    assert "within the 0.5 s timeout" in df["reason"].iloc[0]
    sleepers = [
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "3141.59"]
    ]
    assert sleepers == []  # the whole process group was killed


def test_memory_limit_is_enforced_by_a_cgroup(tmp_path: Path) -> None:
    # 64 MiB touched under a 32 MiB limit: the kernel must refuse (OOM kill), if limits apply
    body = (
        "workload: {kind: memory, alloc: 64MiB, idle: 0.2}\ntimeout: 60\nlimits: {memory: 32MiB}\n"
    )
    df = run_native(tmp_path, body, repeat=1, status={0, 1})  # 1 when every repetition died
    env = json.loads((df.attrs["run_dir"] / "environment.json").read_text())
    if not sys.platform.startswith("linux") or "native" not in env["observed"]:
        # every repetition failed: the limit was enforced (no facts from failed repetitions)
        assert set(df["status"]) == {"failed"}
        assert "status -9" in df["reason"].iloc[0] or "exited" in df["reason"].iloc[0]
        return
    limits = env["observed"]["native"]["host"]["limits"]
    assert limits.startswith("NOT applied"), limits  # ran to completion: only if unenforced
    assert any("limits" in w for w in env["warnings"])
