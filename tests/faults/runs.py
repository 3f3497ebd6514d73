"""Helpers of the run-integrity fault cases: a real native run in a child process, and probes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
#: A sleep duration no other process on the host uses: finds this case's workloads.
SLEEP = "0.2417"


def scenario(directory: Path, repeat: int = 12, name: str = "sleepy") -> Path:
    """A native-only command scenario: ``repeat`` sleeps of a quarter second."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sleepy.yaml"
    quoted = json.dumps(name, ensure_ascii=False)
    body = (
        f"format_version: 1\nname: {quoted}\nbackends: [native]\nrepeat: {repeat}\n"
        f"warmup: 0\ntimeout: 30\nworkload:\n  kind: command\n  command: [sleep, '{SLEEP}']\n"
    )
    path.write_text(body, encoding="utf-8")
    return path


def environ() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@dataclass
class Child:
    """``python -m bench ARGS`` running in its own process, output in files."""

    proc: subprocess.Popen[bytes]
    out: Path

    @property
    def stderr(self) -> str:
        return (self.out / "stderr").read_text(encoding="utf-8", errors="replace")

    @property
    def stdout(self) -> str:
        return (self.out / "stdout").read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float = 120.0) -> int:
        return self.proc.wait(timeout)


def start(args: Sequence[str], out: Path) -> Child:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "stdout").open("wb") as stdout, (out / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", *args],
            stdout=stdout,
            stderr=stderr,
            env=environ(),
            cwd=out,
        )
    return Child(proc, out)


def isobench(args: Sequence[str], out: Path, timeout: float = 180.0) -> Child:
    """Run ``isobench ARGS`` to completion."""
    child = start(args, out)
    child.wait(timeout)
    return child


def start_run(scenario_file: Path, results: Path, log: Path) -> Child:
    # the scenario's own repeat: the default profile would cap it at 3 (the 10-minute suite)
    repeat = re.search(r"^repeat: (\d+)$", scenario_file.read_text(encoding="utf-8"), re.M)
    counts = ["--repeat", repeat.group(1)] if repeat else []
    args = ["run", str(scenario_file), "-b", "native", "--out", str(results), "--plain", *counts]
    return start(args, log)


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {what or check}"
            raise AssertionError(msg)
        time.sleep(0.02)


def only_run(results: Path) -> Path | None:
    runs = [p for p in results.iterdir() if p.is_dir()] if results.is_dir() else []
    assert len(runs) <= 1, runs
    return runs[0] if runs else None


def journal_lines(run: Path | None) -> int:
    if run is None or not (run / "samples.jsonl").exists():
        return 0
    return (run / "samples.jsonl").read_bytes().count(b"\n")


def journal_is_whole(run: Path) -> int:
    """Every journal line is one JSON object ending in a newline; returns how many."""
    data = (run / "samples.jsonl").read_bytes()
    assert not data or data.endswith(b"\n"), data[-80:]
    lines = data.splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    return len(lines)


def kill(child: Child, sig: signal.Signals) -> None:
    os.kill(child.proc.pid, sig)


def orphans() -> list[psutil.Process]:
    """Workload processes of these cases still alive (their harness is gone)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if (proc.info["cmdline"] or [])[-1:] == [SLEEP]:
            found.append(proc)
    return found


#: How long the harness's reaper may take to kill a dead harness's workloads (it polls at 0.1 s).
REAPER_GRACE_S = 2.0


def reap_orphans() -> str:
    """Kill leftover workloads of these cases; describe them for the fault table.

    A workload counts as orphaned only if it is still alive :data:`REAPER_GRACE_S` after its
    harness died: the reaper needs a moment to see the harness's pipe close.
    """
    deadline = time.monotonic() + REAPER_GRACE_S
    found = orphans()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = orphans()
    for proc in found:
        proc.kill()
    return f"{len(found)} orphaned workload process(es) (killed by the test)" if found else "none"


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
